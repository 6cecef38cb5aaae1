"""From synthetic to real: few-shot fine-tuning of a pretrained model, and a correction round.

- :class:`CropDataset` -- random patches of a few annotated crops with
  flips and quarter turns, the ``(image, target)`` pairs
  :func:`fieldseg_core.train.train` expects.
- :func:`freeze_norm_statistics`, :func:`freeze_encoder`,
  :func:`reset_decoder` -- the building blocks of the settings below.
- :func:`prepare` -- a model in one of four settings: ``"zero-shot"`` (the
  pretrained model as is), ``"frozen-encoder"`` (pretrained encoder frozen,
  a fresh, randomly initialised decoder and flow head; Le & Nguyen §4.2.1
  plug pretrained SAM features into an untrained flow head),
  ``"full"`` (every weight fine-tuned with AdamW, a small learning rate and
  weight decay 0.1, Le & Nguyen §4.2.2) and ``"scratch"`` (the same
  architecture, randomly initialised).
- :func:`fine_tune` -- :func:`prepare` then :func:`fieldseg_core.train.train`
  on the crops.
- :func:`correct_worst` -- a simulated annotator's correction: the worst
  predicted cells replaced by the annotation.
- :func:`score_crops` -- mean scores of a model over held-out crops.

References
----------
.. [1] Le & Nguyen, *Cellpose-SAM: superhuman generalization for cellular
   segmentation* (course report), §4.2.1-4.2.2.
.. [2] M. Pachitariu, C. Stringer, "Cellpose 2.0: how to train your own
   model", Nature Methods 19, 2022 (human-in-the-loop training).
.. [3] I. Loshchilov, F. Hutter, "Decoupled weight decay regularization", ICLR 2019.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from ._validate import validate_labels, validate_number

__all__ = [
    "SETTINGS",
    "CropDataset",
    "freeze_norm_statistics",
    "freeze_encoder",
    "reset_decoder",
    "prepare",
    "fine_tune",
    "score_crops",
    "correct_worst",
]

#: The transfer settings of :func:`prepare`.
SETTINGS = ("zero-shot", "frozen-encoder", "full", "scratch")

#: Defaults of :func:`fine_tune` per setting: (learning rate, weight decay).
#: Full fine-tuning uses a small rate and weight decay 0.1 (Le & Nguyen §4.2.2,
#: scaled from their 1e-5 for a 100 MB model to our 31 k parameters); the
#: fresh decoder and training from scratch use the rate of
#: ``fieldseg_core.train`` and its weight decay.
HYPER = {"frozen-encoder": (1e-3, 1e-5), "full": (3e-4, 0.1), "scratch": (1e-3, 1e-5)}


class CropDataset(torch.utils.data.Dataset):
    """Random augmented patches of annotated crops, as ``(image, target)`` tensors.

    Parameters
    ----------
    images : sequence of (H, W) arrays
        Normalised crops (e.g. :func:`fieldseg_core.datasets.nuclei_2d_split`).
    labels : sequence of (H, W) int arrays
        Their annotations.
    representation : str
        Target of :func:`fieldseg_core.data.make_target`.
    patch : int
        Side of the square patches (at most the smallest crop side).
    n_items : int
        Items per epoch (patches are drawn anew every epoch).
    seed : int
        Item ``i`` of epoch ``e`` depends only on ``(seed, e, i)``.

    Notes
    -----
    The target of each crop is computed once on the whole crop and cut with
    the patch, so a cell cut by the patch border keeps the flows of the whole
    (visible) cell. Flips and quarter turns go through
    :func:`fieldseg_core.data.random_augment`, which rotates flow vectors.

    Examples
    --------
    >>> yy, xx = np.mgrid[:32, :32]
    >>> lab = ((yy - 16) ** 2 + (xx - 16) ** 2 < 50).astype(int)
    >>> ds = CropDataset([lab * 1.0], [lab], "flows", patch=24, n_items=3)
    >>> [tuple(t.shape) for t in ds[0]]
    [(1, 24, 24), (3, 24, 24)]
    """

    def __init__(self, images, labels, representation, patch=96, n_items=16, seed=0):
        from .data import make_target

        if len(images) != len(labels) or len(images) == 0:
            raise ValueError(f"images and labels must be non-empty sequences of equal length, "
                             f"got {len(images)} and {len(labels)}")
        self.images = [np.asarray(im, np.float32) for im in images]
        self.labels = [validate_labels(lab, f"labels[{i}]", ndims=(2,))
                       for i, lab in enumerate(labels)]
        for i, (im, lab) in enumerate(zip(self.images, self.labels)):
            if im.shape != lab.shape:
                raise ValueError(f"images[{i}] and labels[{i}] differ in shape: "
                                 f"{im.shape} vs {lab.shape}")
        smallest = min(min(im.shape) for im in self.images)
        self.patch = validate_number(patch, "patch", low=8, high=smallest, integer=True)
        self.n_items = validate_number(n_items, "n_items", low=1, integer=True)
        self.seed = validate_number(seed, "seed", low=0, integer=True)
        self.representation = representation
        self.targets = [make_target(lab, representation) for lab in self.labels]
        self.epoch = 0

    def __len__(self):
        return self.n_items

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __getitem__(self, i):
        from .data import random_augment

        if not 0 <= i < self.n_items:
            raise IndexError(i)
        rng = np.random.default_rng((self.seed, self.epoch, i))
        k = int(rng.integers(len(self.images)))
        image, target = self.images[k], self.targets[k]
        y = int(rng.integers(image.shape[0] - self.patch + 1))
        x = int(rng.integers(image.shape[1] - self.patch + 1))
        box = (slice(y, y + self.patch), slice(x, x + self.patch))
        image, target = random_augment(image[box][None], target[(slice(None),) + box],
                                       self.representation, rng)
        return (torch.from_numpy(np.ascontiguousarray(image, np.float32)),
                torch.from_numpy(np.ascontiguousarray(target, np.float32)))


# --------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------

def _backbone(model):
    from .models import UNet

    net = getattr(model, "backbone", model)
    if not isinstance(net, UNet):
        raise TypeError(f"model must be a FieldModel around a UNet, got {type(model).__name__}")
    return net


def _encoder_modules(net):
    return [net.encoder, net.downs, net.bottleneck]


def _decoder_modules(net):
    return [net.ups, net.gates, net.decoder, net.fusions, net.head]


def freeze_norm_statistics(model, frozen=True):
    """Make every :class:`~fieldseg_core.models.TileSafeNorm` use its running statistics.

    A batch of one or two real crops gives poor normalisation statistics; a
    pretrained model keeps the ones it learnt (its affine parameters still
    train). Returns ``model``.
    """
    from .models import TileSafeNorm

    for module in model.modules():
        if isinstance(module, TileSafeNorm):
            module.frozen = bool(frozen)
    return model


def freeze_encoder(model):
    """Stop gradients to the encoder and bottleneck; return the number of trainable parameters left."""
    net = _backbone(model)
    for module in _encoder_modules(net):
        for p in module.parameters():
            p.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def reset_decoder(model, seed=0):
    """Re-initialise the decoder and output head with fresh random weights (in place)."""
    net = _backbone(model)
    torch.manual_seed(seed)
    for part in _decoder_modules(net):
        for module in part.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return model


def prepare(pretrained_model, setting, seed=0):
    """A copy of a pretrained model set up for one transfer setting.

    Parameters
    ----------
    pretrained_model : FieldModel
        E.g. ``fieldseg_core.pretrained.load("flows_unet")``; not modified.
    setting : {"zero-shot", "frozen-encoder", "full", "scratch"}
        - ``"zero-shot"``: the model as is.
        - ``"frozen-encoder"``: encoder and bottleneck frozen (weights and
          normalisation statistics), decoder and head re-initialised (their
          normalisation layers train with batch statistics).
        - ``"full"``: every weight trainable, normalisation statistics frozen.
        - ``"scratch"``: the same architecture with fresh weights (seeded by
          ``seed``) and ordinary batch statistics.
    seed : int
        Seeds the fresh weights.

    Returns
    -------
    model : FieldModel
        A new model (deep copy or fresh build), in eval mode.
    """
    from .models import build_model

    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")
    _backbone(pretrained_model)
    if setting == "scratch":
        # the same architecture, freshly initialised: rebuilt from the recorded
        # configuration when there is one, else every layer of a copy reset
        config = getattr(pretrained_model, "model_config", None)
        torch.manual_seed(seed)
        if config is not None:
            return build_model(**config).eval()
        model = copy.deepcopy(pretrained_model)
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            if hasattr(module, "frozen"):
                module.frozen = False
        return model.eval()
    model = copy.deepcopy(pretrained_model)
    freeze_norm_statistics(model)
    if setting == "frozen-encoder":
        freeze_encoder(model)
        reset_decoder(model, seed)
        # the fresh decoder has no statistics to keep: it collects its own
        for part in _decoder_modules(model.backbone):
            freeze_norm_statistics(part, frozen=False)
    return model.eval()


def fine_tune(pretrained_model, images, labels, setting="full", epochs=30, n_items=16,
              batch_size=4, patch=64, lr=None, weight_decay=None, seed=0, device="cpu"):
    """Adapt a pretrained model to a few annotated crops.

    Parameters
    ----------
    pretrained_model : FieldModel
        Not modified.
    images, labels : sequences of (H, W) arrays
        The annotated crops.
    setting : {"frozen-encoder", "full", "scratch"}
        See :func:`prepare`.
    epochs, n_items, batch_size, patch : int
        ``epochs`` passes over ``n_items`` random patches of side ``patch``
        (``epochs * ceil(n_items / batch_size)`` optimiser steps).
    lr, weight_decay : float, optional
        Default from :data:`HYPER` for the setting.
    seed : int
        Seeds the fresh weights, the patches and the batch order.
    device : str
        Torch device.

    Returns
    -------
    model : FieldModel
        The fine-tuned model, in eval mode.
    history : list of dict
        Per epoch, from :func:`fieldseg_core.train.train`, and in
        ``history[-1]["total_seconds"]`` the wall time.

    Notes
    -----
    AdamW with the warmup-cosine schedule of :func:`fieldseg_core.train.train`.
    Frozen parameters receive no gradient and are skipped by the optimiser
    (weight decay included).

    Examples
    --------
    >>> from fieldseg_core import pretrained
    >>> from fieldseg_core.datasets import nuclei_2d_split
    >>> crop = nuclei_2d_split("train")[0]
    >>> model, hist = fine_tune(pretrained.load("flows_unet"), [crop.image], [crop.labels],
    ...                         epochs=1, n_items=2, batch_size=2, patch=64)
    >>> len(hist), model.training
    (1, False)
    """
    from .train import train

    if setting not in HYPER:
        raise ValueError(f"setting must be one of {tuple(HYPER)}, got {setting!r}")
    default_lr, default_wd = HYPER[setting]
    lr = default_lr if lr is None else lr
    weight_decay = default_wd if weight_decay is None else weight_decay
    model = prepare(pretrained_model, setting, seed=seed)
    dataset = CropDataset(images, labels, model.representation, patch=patch, n_items=n_items,
                          seed=seed)
    started = time.perf_counter()
    history = train(model, dataset, epochs=epochs, batch_size=batch_size, lr=lr,
                    weight_decay=weight_decay, device=device, seed=seed, progress=False,
                    amp=False)
    history[-1]["total_seconds"] = time.perf_counter() - started
    return model.eval(), history


# --------------------------------------------------------------------------
# scoring and correcting
# --------------------------------------------------------------------------

def score_crops(predict, crops):
    """Mean scores over annotated crops.

    Parameters
    ----------
    predict : callable or torch.nn.Module
        ``predict(image) -> labels``, or a model (then
        :func:`fieldseg_core.predict.predict_instances` is used).
    crops : sequence of objects with ``image`` and ``labels``
        E.g. the test part of :func:`fieldseg_core.datasets.nuclei_2d_split`.

    Returns
    -------
    scores : dict
        Means over crops of ``ap50``, ``ap75``, ``pq``, ``seg`` and
        ``count_error`` (signed, predicted minus true cells) and
        ``abs_count_error``; ``n_crops``.
    """
    from .metrics import evaluate
    from .predict import predict_instances

    if isinstance(predict, torch.nn.Module):
        model = predict
        predict = lambda image: predict_instances(model, image)  # noqa: E731
    rows = [evaluate(c.labels, predict(c.image)) for c in crops]
    if not rows:
        raise ValueError("crops must not be empty")
    keys = ("ap50", "ap75", "pq", "seg", "count_error")
    out = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    out["abs_count_error"] = float(np.mean([abs(r["count_error"]) for r in rows]))
    out["n_crops"] = len(rows)
    return out


def correct_worst(true_labels, predicted, n=3):
    """Simulate an annotator who fixes the ``n`` worst cells of a prediction.

    Parameters
    ----------
    true_labels : (H, W) int array
        The annotation (what the annotator would draw).
    predicted : (H, W) int array
        The model's labels for the same crop.
    n : int
        How many true cells to correct.

    Returns
    -------
    corrected : ndarray of int32
        The prediction with the ``n`` true cells of lowest best-match IoU
        (missed, split or merged cells first) redrawn from the annotation:
        predicted cells touching them are removed and the true masks pasted
        in. Ids are renumbered 1..m.
    fixed : ndarray of int
        The true ids that were corrected, worst first.

    Notes
    -----
    In a human-in-the-loop round (Pachitariu & Stringer, 2022; Le & Nguyen
    §4.2.2) an annotator corrects the model's output instead of drawing
    every cell; the corrected image becomes training data. Here the
    annotation stands in for the annotator, who looks at the worst cells
    first.

    Examples
    --------
    >>> true = np.array([[1, 1, 0, 2, 2]])
    >>> pred = np.array([[1, 1, 0, 0, 0]])      # cell 2 missed
    >>> corrected, fixed = correct_worst(true, pred, n=1)
    >>> corrected.tolist(), fixed.tolist()
    ([[1, 1, 0, 2, 2]], [2])
    """
    from skimage.segmentation import relabel_sequential

    from .metrics import iou_matrix

    true_labels = validate_labels(true_labels, "true_labels", ndims=(2,))
    predicted = validate_labels(predicted, "predicted", ndims=(2,))
    if true_labels.shape != predicted.shape:
        raise ValueError(f"true_labels and predicted must have the same shape, got "
                         f"{true_labels.shape} and {predicted.shape}")
    n = validate_number(n, "n", low=0, integer=True)
    iou, true_ids, pred_ids = iou_matrix(true_labels, predicted, return_ids=True)
    iou = np.asarray(iou)
    best = iou.max(axis=1) if iou.shape[1] else np.zeros(len(true_ids))
    order = np.argsort(best, kind="stable")[:n]
    fixed = np.asarray(true_ids)[order]
    corrected = predicted.astype(np.int32, copy=True)
    if fixed.size:
        region = np.isin(true_labels, fixed)
        touching = np.unique(predicted[region])
        corrected[np.isin(corrected, touching[touching > 0])] = 0
        offset = int(corrected.max())
        corrected[region] = offset + true_labels[region]
    return relabel_sequential(corrected)[0].astype(np.int32), fixed
