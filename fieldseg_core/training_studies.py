"""Reproductions of the papers' training claims: small networks trained on synthetic scenes.

Three studies, each a ``study_*`` function that trains and scores (returning a
plain dict of per-seed results), a ``verdict_*`` function that turns such a
dict into table rows with a ``reproduced`` column computed from criteria stated
in its docstring, and a ``run_*`` function for ``python -m fieldseg_core.reproduce``:

- ``vector_fields`` (Peters, *Vector fields for instance segmentation*,
  Sec. 5-7): the same U-Net trained on truncated-SDF flows and on EDT
  (Omnipose) flows, each with and without the integration-aware IVP loss,
  scored with AP50/AP75/AP90, mAP and the counting error after every epoch.
- ``sdf_ablation`` (the SDF paper, *Boundary-aware instance segmentation with
  signed distance functions*, Table 1): the four loss-term combinations of its
  ablation under paired initialisations, SEG and boundary F1, under both
  zero-level-set conventions of :func:`fieldseg_core.losses.sdf_convention_targets`.
- ``scalar_fields`` (Ruiz Vargas et al., *Single tensor cell segmentation using
  scalar field representations*, Table 1): diffusion and Poisson fields with
  the plain and the attention U-Net, IoU, Dice, PQ, SQ, RQ, with the watershed
  parameters eps and h tuned on a validation split.

Each entry of :data:`REPRODUCTIONS` is picked up by ``python -m fieldseg_core.reproduce``.

Contract of an entry ``REPRODUCTIONS[study_id] = (description, run)``:
``run(out, quick, seeds, device)`` trains and evaluates, and returns ``(rows, fig)``:
``rows`` is a list of dicts with at least the keys ``study``, ``quantity``,
``paper`` (the paper's value, or ``None``), ``ours_mean``, ``ours_spread``,
``n_seeds``, ``reproduced`` (bool, from criteria stated in the code) and
``reason`` (one line); ``fig`` is a matplotlib figure (or ``None``).
``reproduce`` writes ``<out>/<study_id>.csv`` and ``<out>/<study_id>.png``.

"Seeds" here are training seeds: the initial weights and the batch order.
The training and test scenes are the same for every seed and every variant,
so the variants of one seed form a paired comparison. ``ours_spread`` is the
sample standard deviation over seeds (of the paired difference where the
quantity is a difference). A paper's absolute numbers come from real
microscopy and large networks; what a study can reproduce is the paper's
*pattern* (which variant is better, which converges faster), and each
``verdict_*`` docstring says which pattern it tests.

References
----------
.. [1] R. Peters, *Vector fields for instance segmentation*, technical report,
   University of Minnesota, 2022, Sec. 5-7 and Table 1.
.. [2] *Boundary-aware instance segmentation with signed distance functions*,
   manuscript, Sec. 2-3 and Table 1.
.. [3] K. I. Ruiz Vargas, G. G. Galdino, T. I. Ren, A. L. Cunha, *Single tensor
   cell segmentation using scalar field representations*, preprint, 2025,
   Sec. 2.1.3-2.1.4 and Table 1.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import torch

from ._validate import validate_number

__all__ = [
    "REPRODUCTIONS",
    "PETERS_SETTINGS",
    "VectorFieldCells",
    "study_vector_fields",
    "verdict_vector_fields",
    "run_vector_fields",
    "SDF_ABLATION_ROWS",
    "study_sdf_ablation",
    "verdict_sdf_ablation",
    "run_sdf_ablation",
    "study_scalar_fields",
    "verdict_scalar_fields",
    "run_scalar_fields",
    "epochs_to_reach",
    "verdict_table",
    "scalar_fields_table",
]

# --------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------

#: Post-processing and target settings of Peters (Sec. 6.1 and 6.4): truncated
#: SDF with truncation 10 and a Gaussian-smoothed difference kernel of size 11,
#: Euler integration with 25 steps of 0.1, DBSCAN with eps 2.2 (Peters: 2.1-2.3)
#: and min_samples 15, no small-object filter (Peters, Sec. 7.4).
PETERS_SETTINGS = dict(truncation=10, kernel_size=11, n_iter=25, step=0.1, eps=2.2,
                       min_samples=15, min_size=0)


def _validate_seeds(seeds):
    try:
        seeds = tuple(seeds)
    except TypeError:
        raise TypeError(f"seeds must be a sequence of non-negative integers, got {seeds!r}") from None
    if not seeds:
        raise ValueError("seeds must not be empty")
    return tuple(validate_number(s, f"seeds[{i}]", low=0, integer=True) for i, s in enumerate(seeds))


def _config(size, sizes):
    """A study's size: a preset name ("quick", "full") or a dict with the preset's keys."""
    if isinstance(size, str):
        if size not in sizes:
            raise ValueError(f"size must be one of {tuple(sizes)} or a dict, got {size!r}")
        return dict(sizes[size])
    if not isinstance(size, dict):
        raise TypeError(f"size must be a preset name or a dict, got {type(size).__name__}")
    missing = [k for k in sizes["quick"] if k not in size]
    if missing:
        raise ValueError(f"size is missing the keys {missing}")
    return dict(size)


def _mean_spread(values):
    values = np.asarray(values, dtype=float)
    spread = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return float(values.mean()), spread


def _row(study, quantity, paper, values, reproduced, reason):
    mean, spread = _mean_spread(values)
    return {"study": study, "quantity": quantity, "paper": paper, "ours_mean": mean,
            "ours_spread": spread, "n_seeds": int(np.size(values)), "reproduced": bool(reproduced),
            "reason": reason}


def _train_sessions(model, dataset, loss, cfg, seed, device, after_epoch):
    """Train epoch by epoch (one schedule over all epochs) and call ``after_epoch(model)``."""
    from .train import train

    history = []
    with tempfile.TemporaryDirectory(prefix="fieldseg_study_") as tmp:
        for stop in range(1, cfg["epochs"] + 1):
            history = train(model, dataset, loss=loss, epochs=cfg["epochs"], stop_after=stop,
                            batch_size=cfg["batch_size"], lr=cfg["lr"], seed=seed, device=device,
                            out_dir=tmp, resume=True, progress=False)
            after_epoch(model)
    return history


def _score(model, dataset, n_images, **params):
    """Per-image scores of :func:`fieldseg_core.metrics.evaluate` plus boundary F1."""
    from .metrics import boundary_f1, evaluate
    from .predict import predict_instances

    rows = []
    for i in range(n_images):
        truth = dataset.labels(i)
        pred = predict_instances(model, dataset[i][0], **params)
        row = evaluate(truth, pred)
        row["bf1"] = boundary_f1(truth, pred)
        row["abs_count_error"] = abs(row["count_error"])
        row["n_true"] = int(len(np.unique(truth)) - (truth == 0).any())
        rows.append(row)
    return rows


def _mean_of(rows, key):
    return float(np.mean([r[key] for r in rows]))


def epochs_to_reach(curve, level):
    """First epoch (1-based) at which a per-epoch score reaches ``level``.

    Parameters
    ----------
    curve : sequence of float
        Score after epoch 1, 2, ...
    level : float
        Target score.

    Returns
    -------
    epoch : int
        The first epoch with ``curve[epoch - 1] >= level``, or
        ``len(curve) + 1`` when it is never reached (a censored value:
        "later than the run").

    Examples
    --------
    >>> epochs_to_reach([0.1, 0.5, 0.4, 0.9], 0.5), epochs_to_reach([0.1, 0.2], 0.5)
    (2, 3)
    """
    curve = np.asarray(curve, dtype=float)
    hit = np.flatnonzero(curve >= level)
    return int(hit[0] + 1) if hit.size else int(curve.size + 1)


def _cells_kwargs(cfg):
    return dict(shape=(cfg["size"], cfg["size"]), kinds=cfg["kinds"],
                n_cells_range=cfg["n_cells_range"], radius_range=cfg["radius_range"])


def _new_figure(ncols, size=(4.4, 3.4)):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(size[0] * ncols, size[1]), squeeze=False)
    return fig, axes[0]


# --------------------------------------------------------------------------
# 1. Peters: truncated-SDF vs EDT flows, with and without the IVP loss
# --------------------------------------------------------------------------

def _peters_field(labels, field):
    from .flows import edt_flows, tsdf_flows

    if field == "tsdf":
        return tsdf_flows(labels, truncation=PETERS_SETTINGS["truncation"],
                          kernel_size=PETERS_SETTINGS["kernel_size"], normalize=False)
    return edt_flows(labels)


class VectorFieldCells(torch.utils.data.Dataset):
    """Synthetic cells with Peters' targets: a vector field and the foreground.

    Parameters
    ----------
    cells : fieldseg_core.data.SyntheticCells
        Supplies the images, the instance labels and the augmentation.
    field : {"tsdf", "edt"}
        ``"tsdf"``: :func:`fieldseg_core.flows.tsdf_flows` with truncation 10,
        kernel size 11 and no normalisation (Peters, Sec. 4 and 6.1);
        ``"edt"``: :func:`fieldseg_core.flows.edt_flows`, the unit gradient of
        the distance transform (Omnipose, as reviewed by Peters, Sec. 3).

    Notes
    -----
    ``dataset[i]`` is ``(image (1, H, W), target (3, H, W))`` with the two
    flow components followed by the 0/1 foreground; the field is computed
    from the *augmented* labels, which equals rotating the vectors with the
    image (Peters, Sec. 6.3, "Training Quirks"). :meth:`labels` gives the
    matching instance labels, so :mod:`fieldseg_core.predict` can score it.

    Examples
    --------
    >>> from fieldseg_core.data import SyntheticCells
    >>> cells = SyntheticCells(2, "edt", shape=(32, 32), n_cells_range=(2, 2), radius_range=(4, 6))
    >>> image, target = VectorFieldCells(cells, "tsdf")[0]
    >>> tuple(target.shape), bool(((target[2] == 0) | (target[2] == 1)).all())
    ((3, 32, 32), True)
    """

    FIELDS = ("tsdf", "edt")

    def __init__(self, cells, field):
        if not hasattr(cells, "sample") or not hasattr(cells, "labels"):
            raise TypeError(f"cells must be a SyntheticCells dataset, got {type(cells).__name__}")
        if field not in self.FIELDS:
            raise ValueError(f"field must be one of {self.FIELDS}, got {field!r}")
        self.cells, self.field = cells, field

    def __len__(self):
        return len(self.cells)

    def set_epoch(self, epoch):
        """Forward the epoch that seeds the augmentation."""
        self.cells.set_epoch(epoch)

    def labels(self, i):
        """Instance labels of item ``i``."""
        return self.cells.labels(i)

    def __getitem__(self, i):
        image, _, labels = self.cells.sample(i)
        flows = _peters_field(labels, self.field)
        target = np.concatenate([flows, (labels > 0)[None]]).astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(target)


PETERS_CONFIGS = {  # label -> (field, IVP on)
    "tSDF, IVP + MSE + Tversky": ("tsdf", True),
    "tSDF, MSE + Tversky": ("tsdf", False),
    "EDT, IVP + MSE + Tversky": ("edt", True),
    "EDT, MSE + Tversky": ("edt", False),
}

_PETERS_SIZES = {
    "quick": dict(size=64, n_train=24, n_test=6, epochs=10, batch_size=4, lr=3e-3,
                  widths=(8, 16, 32), kinds=("disk", "ellipse", "rod"), n_cells_range=(4, 7),
                  radius_range=(6.0, 14.0), ivp_points=None),
    "full": dict(size=128, n_train=256, n_test=32, epochs=40, batch_size=8, lr=1e-3,
                 widths=(16, 32, 64, 128), kinds=("disk", "ellipse", "rod"),
                 n_cells_range=(8, 20), radius_range=(8.0, 24.0), ivp_points=4096),
}


def study_vector_fields(size="quick", seeds=(0, 1, 2), device="cpu", configs=None):
    """Train Peters' variants and score them after every epoch.

    Parameters
    ----------
    size : {"quick", "full"} or dict
        Scene, data and training sizes (``"quick"``: 64 px scenes, 24 training
        images, a U-Net with widths 8-16-32, 10 epochs of batch 4; ``"full"``: 128 px, 256
        images, widths 16-128, 40 epochs), or a dict with the same keys.
    seeds : sequence of int
        Training seeds (initial weights and batch order); every variant of a
        seed starts from the same weights.
    device : str, optional
        Torch device for training (``None``: CUDA when present). Scoring runs
        where the model is; the integration before DBSCAN on the CPU.
    configs : sequence of str, optional
        Keys of :data:`PETERS_CONFIGS` (default: all four).

    Returns
    -------
    results : dict
        ``{"config": cfg, "seeds": seeds, "curves": {config: {metric:
        (n_seeds, epochs) array}}}`` with metrics ``ap50``, ``ap75``, ``ap90``,
        ``map`` (the mean of the three, as in Peters' Table 1),
        ``count_mae`` (mean absolute error of the cell count per image) and
        ``train_loss``; plus ``"mean_count"``, the mean true count per test image.

    Notes
    -----
    Every variant uses the same network (:func:`fieldseg_core.models.build_model`
    for ``"flows"``: two field channels and a foreground logit), the same
    data, the same optimiser and schedule (:func:`fieldseg_core.train.train`)
    and Peters' post-processing (:data:`PETERS_SETTINGS`); only the target
    field and the IVP term change. The loss is
    :func:`fieldseg_core.losses.vector_field_loss` with weights (1, 1, 1) or
    (0, 1, 1).
    """
    from .data import SyntheticCells
    from .losses import vector_field_loss
    from .models import build_model

    cfg = _config(size, _PETERS_SIZES)
    seeds = _validate_seeds(seeds)
    configs = tuple(PETERS_CONFIGS) if configs is None else tuple(configs)
    for c in configs:
        if c not in PETERS_CONFIGS:
            raise ValueError(f"configs must be keys of PETERS_CONFIGS, got {c!r}")
    train_cells = SyntheticCells(cfg["n_train"], "edt", seed=0, augment=True, **_cells_kwargs(cfg))
    test_cells = SyntheticCells(cfg["n_test"], "edt", seed=1, augment=False, **_cells_kwargs(cfg))
    post = dict(flow_scale=1.0, cluster="dbscan", device="cpu",
                **{k: PETERS_SETTINGS[k] for k in ("n_iter", "step", "eps", "min_samples", "min_size")})
    curves = {}
    for name in configs:
        field, ivp = PETERS_CONFIGS[name]
        train_set, test_set = VectorFieldCells(train_cells, field), VectorFieldCells(test_cells, field)
        loss = functools.partial(vector_field_loss, weights=(1.0 if ivp else 0.0, 1.0, 1.0),
                                 n_iter=PETERS_SETTINGS["n_iter"], step=PETERS_SETTINGS["step"],
                                 max_points=cfg.get("ivp_points"))
        per_seed = {k: [] for k in ("ap50", "ap75", "ap90", "map", "count_mae", "train_loss")}
        for seed in seeds:
            torch.manual_seed(seed)
            model = build_model("flows", widths=cfg["widths"])
            scores = []

            def after_epoch(m):
                rows = _score(m, test_set, len(test_set), **post)
                scores.append({k: _mean_of(rows, k) for k in ("ap50", "ap75", "ap90", "abs_count_error")})

            history = _train_sessions(model, train_set, loss, cfg, seed, device, after_epoch)
            for k in ("ap50", "ap75", "ap90"):
                per_seed[k].append([s[k] for s in scores])
            per_seed["map"].append([(s["ap50"] + s["ap75"] + s["ap90"]) / 3 for s in scores])
            per_seed["count_mae"].append([s["abs_count_error"] for s in scores])
            per_seed["train_loss"].append([r["train_loss"] for r in history])
        curves[name] = {k: np.array(v, dtype=float) for k, v in per_seed.items()}
    mean_count = float(np.mean([len(np.unique(test_cells.labels(i))) - 1 for i in range(len(test_cells))]))
    return {"config": cfg, "seeds": seeds, "curves": curves, "mean_count": mean_count}


#: Peters, Table 1: means over the three BPCIS subsets of the H1 model (truncated
#: SDF flows) and of Omnipose (EDT flows; a different, pretrained network), and
#: the H1 counting MAE averaged over the subsets (Sec. 7.5).
PETERS_PAPER = {
    "tsdf": {"ap50": (0.930 + 0.964 + 0.876) / 3, "ap75": (0.885 + 0.938 + 0.793) / 3,
             "ap90": (0.764 + 0.658 + 0.446) / 3, "map": (0.860 + 0.853 + 0.705) / 3},
    "edt": {"ap50": (0.942 + 0.931 + 0.813) / 3, "ap75": (0.906 + 0.893 + 0.725) / 3,
            "ap90": (0.780 + 0.378 + 0.375) / 3, "map": (0.876 + 0.734 + 0.638) / 3},
    "count_mae": 2.04,
}

#: Convergence level: a fraction of the lower of the two fields' final mean mAP,
#: a level both curves reach by the end (the same rule for every run).
CONVERGENCE_FRACTION = 0.9


def verdict_vector_fields(results):
    """Rows and verdicts of the vector-field study.

    Criteria (Peters' patterns, not its BPCIS numbers):

    - *Final scores* (Table 1, H1 against Omnipose, averaged over the three
      subsets): for AP50, AP75, AP90 and mAP after the last epoch, the
      truncated-SDF model with the full loss beats the EDT model with the
      full loss (mean paired difference > 0).
    - *Convergence* (Sec. 7.2, "converges significantly quicker"): with the
      full loss, the truncated SDF reaches the level
      ``CONVERGENCE_FRACTION`` x (the lower of the two final mean mAPs) in
      fewer epochs than EDT (mean paired difference of the first epoch at
      or above the level < 0; a seed that never reaches it counts as
      ``epochs + 1``), and its mAP averaged over all epochs (the area under
      the curve) is higher.
    - *IVP loss* (Sec. 5; Peters gives no ablation number): adding the IVP
      term to MSE + Tversky does not lower the final mAP of the truncated-SDF
      model (mean paired difference >= 0).
    - *Counting* (Sec. 7.5, MAE 2.04 on images of dozens of cells): the
      truncated-SDF model's count MAE per image after the last epoch is at
      most 10 % of the mean true count per image.

    Parameters
    ----------
    results : dict
        Output of :func:`study_vector_fields` (hand-made dicts with the same
        ``"curves"``, ``"mean_count"`` keys work too).

    Returns
    -------
    rows : list of dict
        The rows of the module's contract.
    """
    study = "vector_fields"
    curves = results["curves"]
    for key in ("tSDF, IVP + MSE + Tversky", "EDT, IVP + MSE + Tversky"):
        if key not in curves:
            raise ValueError(f"results must hold the {key!r} curves (the verdicts compare them)")
    t_full, e_full = curves["tSDF, IVP + MSE + Tversky"], curves["EDT, IVP + MSE + Tversky"]
    rows = []
    for key, label in (("ap50", "AP50"), ("ap75", "AP75"), ("ap90", "AP90"), ("map", "mAP")):
        diff = t_full[key][:, -1] - e_full[key][:, -1]
        paper = PETERS_PAPER["tsdf"][key] - PETERS_PAPER["edt"][key]
        rows.append(_row(study, f"final {label}: tSDF minus EDT flows (IVP + MSE + Tversky)",
                         round(paper, 4), diff, diff.mean() > 0,
                         f"Peters Table 1 (H1 minus Omnipose, mean of 3 subsets); "
                         f"tSDF {t_full[key][:, -1].mean():.3f}, EDT {e_full[key][:, -1].mean():.3f}"))
    level = CONVERGENCE_FRACTION * min(t_full["map"].mean(0)[-1], e_full["map"].mean(0)[-1])
    n_epochs = t_full["map"].shape[1]
    for suffix in ("IVP + MSE + Tversky", "MSE + Tversky"):
        t, e = curves.get(f"tSDF, {suffix}"), curves.get(f"EDT, {suffix}")
        if t is None or e is None:
            continue
        reach_t = np.array([epochs_to_reach(c, level) for c in t["map"]])
        reach_e = np.array([epochs_to_reach(c, level) for c in e["map"]])
        diff = reach_t - reach_e
        rows.append(_row(study, f"epochs to mAP {level:.3f}: tSDF minus EDT ({suffix})", None, diff,
                         diff.mean() < 0,
                         f"Peters Sec. 7.2: tSDF converges faster; tSDF {reach_t.mean():.1f}, "
                         f"EDT {reach_e.mean():.1f} of {n_epochs} epochs ({n_epochs + 1} = not reached)"))
        auc = t["map"].mean(1) - e["map"].mean(1)
        rows.append(_row(study, f"mAP averaged over epochs: tSDF minus EDT ({suffix})", None, auc,
                         auc.mean() > 0, "Peters Sec. 7.2 / Fig. 6: area under the mAP-epoch curve"))
    if "tSDF, MSE + Tversky" in curves:
        diff = t_full["map"][:, -1] - curves["tSDF, MSE + Tversky"]["map"][:, -1]
        rows.append(_row(study, "final mAP: with minus without IVP loss (tSDF)", None, diff,
                         diff.mean() >= 0,
                         "Peters Sec. 5 proposes the IVP loss without an ablation; criterion: not worse"))
    mae = t_full["count_mae"][:, -1]
    rows.append(_row(study, "count MAE per image (tSDF, IVP + MSE + Tversky)", PETERS_PAPER["count_mae"],
                     mae, mae.mean() <= 0.1 * results["mean_count"],
                     f"Peters Sec. 7.5 (BPCIS, dozens of cells); criterion <= 10 % of the mean count "
                     f"{results['mean_count']:.1f}"))
    return rows


def plot_vector_fields(results, axes=None):
    """mAP against epoch (mean and range over seeds) and the final AP50/75/90 per variant."""
    if axes is None:
        fig, axes = _new_figure(2)
    else:
        fig = axes[0].figure
    curves = results["curves"]
    for k, (name, c) in enumerate(curves.items()):
        m = c["map"]
        epochs = np.arange(1, m.shape[1] + 1)
        style = "-" if "IVP" in name else "--"
        axes[0].plot(epochs, m.mean(0), style, color=f"C{0 if name.startswith('tSDF') else 3}",
                     marker="o", ms=3, label=name)
        axes[0].fill_between(epochs, m.min(0), m.max(0), color=f"C{0 if name.startswith('tSDF') else 3}",
                             alpha=0.12)
    axes[0].set(xlabel="epoch", ylabel="mAP (mean of AP50, AP75, AP90)",
                title="convergence (solid: with IVP, dashed: without)")
    axes[0].legend(fontsize=7)
    width = 0.8 / len(curves)
    for k, (name, c) in enumerate(curves.items()):
        vals = [c[key][:, -1].mean() for key in ("ap50", "ap75", "ap90", "map")]
        errs = [c[key][:, -1].std() for key in ("ap50", "ap75", "ap90", "map")]
        # the colours and line styles of the curves: blue tSDF, red EDT; hatched without IVP
        axes[1].bar(np.arange(4) + k * width, vals, width, yerr=errs, label=name,
                    color=f"C{0 if name.startswith('tSDF') else 3}", alpha=1.0 if "IVP" in name else 0.45,
                    hatch=None if "IVP" in name else "//", edgecolor="white")
    axes[1].set_xticks(np.arange(4) + 0.4 - width / 2, ["AP50", "AP75", "AP90", "mAP"])
    axes[1].set(ylim=(0, 1), title="after the last epoch")
    fig.tight_layout()
    return fig


def run_vector_fields(out=None, quick=True, seeds=None, device=None):
    """``reproduce`` entry: Peters' training claims (see :func:`verdict_vector_fields`)."""
    results = study_vector_fields("quick" if quick else "full", seeds=seeds or (0, 1, 2), device=device)
    return verdict_vector_fields(results), plot_vector_fields(results)


# --------------------------------------------------------------------------
# 2. The SDF paper: loss ablation (Table 1) under two zero-level-set conventions
# --------------------------------------------------------------------------

#: Rows of the SDF paper's Table 1 as (lambda_LMHD, lambda_RMHD, lambda_LSE, lambda_CE)
#: with the weights of its implementation details, and its SEG on Fluo-N2DH-GOWT1
#: and Fluo-C2DL-MSC. The check marks are not fully legible in our copy; by our
#: reading the two-term row is CE + LSE and the three-term rows add one MHD term.
SDF_ABLATION_ROWS = {
    "CE + LSE": ((0.0, 0.0, 1.0, 1.0), (0.901, 0.759)),
    "CE + LSE + L-MHD": ((0.9, 0.0, 1.0, 1.0), (0.882, 0.634)),
    "CE + LSE + R-MHD": ((0.0, 0.1, 1.0, 1.0), (0.899, 0.689)),
    "all four": ((0.9, 0.1, 1.0, 1.0), (0.944, 0.775)),
}

_SDF_SIZES = {
    "quick": dict(size=64, n_train=24, n_test=8, epochs=10, batch_size=4, lr=5e-3,
                  widths=(8, 16, 32), kinds=("disk", "ellipse"), n_cells_range=(4, 7),
                  radius_range=(6.0, 10.0)),
    "full": dict(size=128, n_train=256, n_test=32, epochs=40, batch_size=16, lr=1e-3,
                 widths=(16, 32, 64, 128), kinds=("disk", "ellipse"), n_cells_range=(10, 24),
                 radius_range=(6.0, 14.0)),
}


def study_sdf_ablation(size="quick", seeds=(0, 1, 2), device="cpu", conventions=("between", "on_pixels"),
                       variants=None, keep_models=False):
    """Train the rows of the SDF paper's loss ablation and score them.

    Parameters
    ----------
    size : {"quick", "full"} or dict
        Scene, data and training sizes.
    seeds : sequence of int
        Training seeds; all rows and conventions of a seed share the initial
        weights and the batch order (paired comparison).
    device : str, optional
        Training device.
    conventions : sequence of str
        Zero-level-set conventions (:data:`fieldseg_core.losses.SDF_CONVENTIONS`).
    variants : sequence of str, optional
        Keys of :data:`SDF_ABLATION_ROWS` (default: all).
    keep_models : bool
        Also return the trained models (on the CPU, in eval mode) under
        ``"models"``, keyed by ``(convention, variant, seed)``, and the test set
        under ``"test_set"``.

    Returns
    -------
    results : dict
        ``{"config", "seeds", "scores": {(convention, variant): {"seg": (n_seeds,)
        array, "bf1": ..., "ap50": ..., "pq": ...}}}``, means over the test images.

    Notes
    -----
    The loss is :func:`fieldseg_core.losses.sdf_ablation_loss` with the row's
    weights; the prediction is the watershed of the predicted SDF inside
    ``phi > -beta/alpha + offset`` (offset 0 between pixels, -1/2 on pixels),
    with marker height h = 1 px (:func:`fieldseg_core.predict.to_instances`).
    Boundary F1 is :func:`fieldseg_core.metrics.boundary_f1` with a 1 px
    tolerance.
    """
    from .data import SyntheticCells
    from .losses import SDF_CONVENTIONS, sdf_ablation_loss
    from .models import build_model
    from .train import train

    cfg = _config(size, _SDF_SIZES)
    seeds = _validate_seeds(seeds)
    variants = tuple(SDF_ABLATION_ROWS) if variants is None else tuple(variants)
    for c in conventions:
        if c not in SDF_CONVENTIONS:
            raise ValueError(f"conventions must be among {tuple(SDF_CONVENTIONS)}, got {c!r}")
    for v in variants:
        if v not in SDF_ABLATION_ROWS:
            raise ValueError(f"variants must be keys of SDF_ABLATION_ROWS, got {v!r}")
    train_set = SyntheticCells(cfg["n_train"], "sdf", seed=0, augment=True, **_cells_kwargs(cfg))
    test_set = SyntheticCells(cfg["n_test"], "sdf", seed=1, augment=False, **_cells_kwargs(cfg))
    scores, kept = {}, {}
    for convention in conventions:
        for variant in variants:
            weights = SDF_ABLATION_ROWS[variant][0]
            loss = functools.partial(sdf_ablation_loss, weights=weights, convention=convention)
            per_seed = {"seg": [], "bf1": [], "ap50": [], "pq": []}
            for seed in seeds:
                torch.manual_seed(seed)
                model = build_model("sdf", widths=cfg["widths"])
                train(model, train_set, loss=loss, epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                      lr=cfg["lr"], seed=seed, device=device, progress=False)
                alpha, beta = float(model.sigmoid.alpha.detach()), float(model.sigmoid.beta.detach())
                level = (-beta / alpha if alpha > 0 else 0.0) + SDF_CONVENTIONS[convention]
                rows = _score(model, test_set, len(test_set), level=level, h=1.0)
                for k in per_seed:
                    per_seed[k].append(_mean_of(rows, k))
                if keep_models:
                    kept[convention, variant, seed] = model.cpu().eval()
            scores[convention, variant] = {k: np.array(v) for k, v in per_seed.items()}
    results = {"config": cfg, "seeds": seeds, "scores": scores}
    if keep_models:
        results.update(models=kept, test_set=test_set)
    return results


def verdict_sdf_ablation(results):
    """Rows and verdicts of the SDF loss ablation.

    Criteria (the SDF paper, Sec. 3.3: "using both MHD terms consistently
    yields the highest SEG scores"), for each convention separately:

    - the all-four-terms row has the highest mean SEG of the rows trained,
      and every other row's SEG is below it on average (paired difference
      all-four minus the row > 0);
    - boundary F1 (the paper's "improved boundary accuracy", for which it
      gives no number): the all-four row has the highest mean boundary F1.

    Parameters
    ----------
    results : dict
        Output of :func:`study_sdf_ablation` (or a hand-made dict with the
        same ``"scores"`` layout).

    Returns
    -------
    rows : list of dict
    """
    study = "sdf_ablation"
    scores = results["scores"]
    rows = []
    for convention in dict.fromkeys(c for c, _ in scores):
        here = {v: s for (c, v), s in scores.items() if c == convention}
        if "all four" not in here:
            raise ValueError("results must hold the 'all four' row for every convention")
        full = here["all four"]
        best_seg = max(here, key=lambda v: here[v]["seg"].mean())
        best_bf1 = max(here, key=lambda v: here[v]["bf1"].mean())
        for variant, s in here.items():
            gowt1, msc = SDF_ABLATION_ROWS[variant][1]
            if variant == "all four":
                ok = best_seg == "all four"
                reason = (f"highest SEG of the rows: {best_seg}; paper GOWT1 {gowt1:.3f}, MSC {msc:.3f} "
                          "(highest on both)")
                values = s["seg"]
            else:
                values = full["seg"] - s["seg"]
                ok = values.mean() > 0
                reason = (f"all four minus this row, paired; this row SEG {s['seg'].mean():.3f}; "
                          f"paper GOWT1 {gowt1:.3f}, MSC {msc:.3f}")
            qty = (f"SEG, {variant} [{convention}]" if variant == "all four"
                   else f"SEG gain of all four over {variant} [{convention}]")
            paper = gowt1 if variant == "all four" else round(SDF_ABLATION_ROWS["all four"][1][0] - gowt1, 3)
            rows.append(_row(study, qty, paper, values, ok, reason))
        rows.append(_row(study, f"boundary F1, all four [{convention}]", None, full["bf1"],
                         best_bf1 == "all four",
                         f"highest boundary F1 of the rows: {best_bf1}; the paper claims better "
                         "boundaries without a number"))
    return rows


def plot_sdf_ablation(results, axes=None):
    """SEG and boundary F1 per row of the ablation, one panel per convention."""
    scores = results["scores"]
    conventions = list(dict.fromkeys(c for c, _ in scores))
    if axes is None:
        fig, axes = _new_figure(len(conventions))
    else:
        fig = axes[0].figure
    for ax, convention in zip(axes, conventions):
        variants = [v for c, v in scores if c == convention]
        x = np.arange(len(variants))
        for k, (metric, label) in enumerate((("seg", "SEG"), ("bf1", "boundary F1"))):
            vals = [scores[convention, v][metric] for v in variants]
            ax.bar(x + 0.4 * k, [v.mean() for v in vals], 0.4, yerr=[v.std() for v in vals], label=label)
            for j, v in enumerate(vals):
                ax.plot(np.full(v.size, x[j] + 0.4 * k), v, "k.", ms=3)
        ax.set_xticks(x + 0.2, variants, rotation=20, fontsize=8)
        ax.set(ylim=(0, 1), title=f"zero level set: {convention}")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def run_sdf_ablation(out=None, quick=True, seeds=None, device=None):
    """``reproduce`` entry: the SDF paper's Table 1 ablation (see :func:`verdict_sdf_ablation`)."""
    results = study_sdf_ablation("quick" if quick else "full", seeds=seeds or (0, 1, 2), device=device)
    return verdict_sdf_ablation(results), plot_sdf_ablation(results)


# --------------------------------------------------------------------------
# 3. Ruiz Vargas et al.: Table 1 with the attention U-Net, eps and h tuned on validation
# --------------------------------------------------------------------------

#: Ruiz Vargas et al., Table 1: (Diffusion, Poisson) for IoU, Dice, PQ, SQ, RQ on
#: the nine datasets, in the paper's order (BF-C2DL-HSC, DIC-C2DH-HeLa,
#: Fluo-C2DL-Huh7, PhC-C2DL-PSC, Fluo-N2DH-GOWT1, PhC-C2DH-U373, T-cells, A172,
#: SH-SY5Y). The diffusion model is a U-Net, the Poisson model an MA-UNet.
RUIZ_VARGAS_TABLE1 = {
    "iou": ((0.9357, 0.8647, 0.7518, 0.8931, 0.9362, 0.9496, 0.7597, 0.6380, 0.5271),
            (0.9419, 0.8945, 0.7756, 0.8858, 0.9617, 0.9454, 0.7964, 0.6796, 0.5892)),
    "dice": ((0.9664, 0.9247, 0.8401, 0.9411, 0.9663, 0.9733, 0.8529, 0.7596, 0.6693),
             (0.9698, 0.9431, 0.8597, 0.9362, 0.9803, 0.9705, 0.8823, 0.7936, 0.7236)),
    "pq": ((0.9691, 0.8533, 0.6302, 0.9342, 0.9516, 0.9573, 0.8543, 0.6416, 0.5635),
           (0.9184, 0.8874, 0.8085, 0.9161, 0.8682, 0.9303, 0.8952, 0.6794, 0.6236)),
    "sq": ((0.9699, 0.8717, 0.8392, 0.9482, 0.9658, 0.9719, 0.8877, 0.7491, 0.7342),
           (0.9739, 0.8948, 0.8744, 0.9366, 0.9520, 0.9692, 0.9100, 0.7652, 0.7529)),
    "rq": ((0.9991, 0.9783, 0.7482, 0.9845, 0.9850, 0.9843, 0.9678, 0.7809, 0.7267),
           (0.9416, 0.9917, 0.9200, 0.9767, 0.8936, 0.9584, 0.9819, 0.8202, 0.7973)),
}
SCALAR_METRICS = ("iou", "dice", "pq", "sq", "rq")
_METRIC_NAMES = {"iou": "IoU", "dice": "Dice", "pq": "PQ", "sq": "SQ", "rq": "RQ"}
SCALAR_MODELS = (("diffusion", "unet"), ("diffusion", "attention"), ("poisson", "unet"),
                 ("poisson", "attention"))
#: The watershed grid searched on the validation split: the ranges Ruiz Vargas
#: et al. report working (Sec. 2.1.3: eps in [0.05, 0.10], h in [0.05, 0.40]).
WATERSHED_GRID = {"eps": (0.05, 0.1), "h": (0.05, 0.1, 0.2, 0.4)}
WATERSHED_DEFAULT = {"eps": 0.05, "h": 0.1}

_SCALAR_SIZES = {
    "quick": dict(size=64, n_train=24, n_val=6, n_test=8, epochs=10, batch_size=4, lr=3e-3,
                  widths=(8, 16, 32), heads=2, layers=1, kinds=("disk", "ellipse", "rod"),
                  n_cells_range=(4, 8), radius_range=(5.0, 9.0)),
    "full": dict(size=128, n_train=256, n_val=32, n_test=32, epochs=60, batch_size=16, lr=1e-3,
                 widths=(16, 32, 64, 128), heads=4, layers=2, kinds=("disk", "ellipse", "rod"),
                 n_cells_range=(10, 24), radius_range=(6.0, 12.0)),
}


def study_scalar_fields(size="quick", seeds=(0, 1, 2), device="cpu", models=SCALAR_MODELS):
    """Train diffusion and Poisson regressors with both U-Nets; tune eps, h on validation; test.

    Parameters
    ----------
    size : {"quick", "full"} or dict
        Scene, data and training sizes; the dict also holds ``heads`` and
        ``layers`` of the attention U-Net.
    seeds : sequence of int
        Training seeds (paired across the four models).
    device : str, optional
        Training device.
    models : sequence of (representation, arch)
        Which models to train.

    Returns
    -------
    results : dict
        ``{"config", "seeds", "scores": {(rep, arch): {metric: (n_seeds,)
        array}}, "default": {...}, "chosen": {(rep, arch): [(eps, h) per seed]}}``:
        test scores with the validation-tuned watershed (``"scores"``) and with
        the default eps = 0.05, h = 0.1 (``"default"``).

    Notes
    -----
    Training set: dataset seed 0 with augmentation; validation: seed 2;
    test: seed 1 (neither augmented). For every trained model the pair
    (eps, h) of :data:`WATERSHED_GRID` with the best mean PQ on the
    validation images is chosen and then applied, unchanged, to the test
    images, so the test scenes never influence a setting.
    """
    from .data import SyntheticCells
    from .models import build_model
    from .train import train

    cfg = _config(size, _SCALAR_SIZES)
    seeds = _validate_seeds(seeds)
    grid = [(e, h) for e in WATERSHED_GRID["eps"] for h in WATERSHED_GRID["h"]]
    scores, default, chosen = {}, {}, {}
    for rep, arch in models:
        kw = _cells_kwargs(cfg)
        train_set = SyntheticCells(cfg["n_train"], rep, seed=0, augment=True, **kw)
        val_set = SyntheticCells(cfg["n_val"], rep, seed=2, augment=False, **kw)
        test_set = SyntheticCells(cfg["n_test"], rep, seed=1, augment=False, **kw)
        tuned = {m: [] for m in SCALAR_METRICS + ("ap50",)}
        plain = {m: [] for m in SCALAR_METRICS + ("ap50",)}
        chosen[rep, arch] = []
        for seed in seeds:
            torch.manual_seed(seed)
            extra = dict(heads=cfg["heads"], layers=cfg["layers"]) if arch == "attention" else {}
            model = build_model(rep, arch=arch, widths=cfg["widths"], **extra)
            train(model, train_set, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                  seed=seed, device=device, progress=False)
            val_pq = [_mean_of(_score(model, val_set, len(val_set), eps=e, h=h), "pq") for e, h in grid]
            eps, h = grid[int(np.argmax(val_pq))]
            chosen[rep, arch].append((eps, h))
            for store, params in ((tuned, dict(eps=eps, h=h)), (plain, WATERSHED_DEFAULT)):
                rows = _score(model, test_set, len(test_set), **params)
                for m in store:
                    store[m].append(_mean_of(rows, m))
        scores[rep, arch] = {m: np.array(v) for m, v in tuned.items()}
        default[rep, arch] = {m: np.array(v) for m, v in plain.items()}
    return {"config": cfg, "seeds": seeds, "scores": scores, "default": default, "chosen": chosen}


def scalar_fields_table(results):
    """Table 1 layout: one row per metric, one column per trained model (mean ± spread).

    Returns
    -------
    header, rows : list of str, list of list
        For :func:`fieldseg_core.viz.table`.
    """
    models = list(results["scores"])
    header = ["metric"] + [f"{rep} ({'attention U-Net' if arch == 'attention' else 'U-Net'})"
                           for rep, arch in models]
    rows = []
    for m in SCALAR_METRICS:
        row = [_METRIC_NAMES[m]]
        for key in models:
            mean, spread = _mean_spread(results["scores"][key][m])
            row.append(f"{mean:.3f} ± {spread:.3f}")
        rows.append(row)
    return header, rows


def verdict_scalar_fields(results):
    """Rows and verdicts of the scalar-field study.

    Criteria:

    - *Poisson against diffusion* (Ruiz Vargas et al., Table 1, with the
      paper's pairing: Poisson with the attention network, diffusion with the
      U-Net): for each metric, the sign of our mean paired difference
      Poisson minus diffusion equals the sign of the paper's difference of the
      means over its nine datasets.
    - *Attention against plain U-Net* (the paper pairs Poisson with MA-UNet
      but reports no ablation): for the Poisson field, the attention U-Net is
      not worse in the mean (paired difference >= 0), per metric.
    - *No tuning needed* (Sec. 2.1.3: "no tuning really necessary"): for
      every model, the test PQ with the default eps = 0.05, h = 0.1 is
      within 0.02 of the PQ with the validation-tuned eps, h.

    Parameters
    ----------
    results : dict
        Output of :func:`study_scalar_fields` (or a hand-made dict with the
        same ``"scores"`` and ``"default"`` layout).

    Returns
    -------
    rows : list of dict
    """
    study = "scalar_fields"
    s = results["scores"]
    rows = []
    for m in SCALAR_METRICS:
        d, p = (np.mean(v) for v in RUIZ_VARGAS_TABLE1[m])
        paper = float(p - d)
        if ("poisson", "attention") in s and ("diffusion", "unet") in s:
            diff = s["poisson", "attention"][m] - s["diffusion", "unet"][m]
            rows.append(_row(study, f"{_METRIC_NAMES[m]}: Poisson (attention U-Net) minus diffusion (U-Net)",
                             round(paper, 4), diff, np.sign(diff.mean()) == np.sign(paper),
                             f"Ruiz Vargas et al. Table 1, mean over 9 datasets: diffusion {d:.3f}, "
                             f"Poisson {p:.3f}; criterion: same sign"))
    for m in SCALAR_METRICS:
        if ("poisson", "attention") in s and ("poisson", "unet") in s:
            diff = s["poisson", "attention"][m] - s["poisson", "unet"][m]
            rows.append(_row(study, f"{_METRIC_NAMES[m]}: attention minus plain U-Net (Poisson)", None, diff,
                             diff.mean() >= 0,
                             "the paper uses an MA-UNet for Poisson without an ablation; criterion: not worse"))
    gaps = {key: results["scores"][key]["pq"] - results["default"][key]["pq"] for key in s}
    worst = max(gaps, key=lambda k: abs(gaps[k].mean()))
    all_gaps = np.concatenate([g for g in gaps.values()])
    rows.append(_row(study, "PQ: validation-tuned minus default (eps 0.05, h 0.1), all models", None,
                     all_gaps, all(abs(g.mean()) <= 0.02 for g in gaps.values()),
                     f"Ruiz Vargas et al. Sec. 2.1.3 'no tuning really necessary'; criterion |gap| <= 0.02 "
                     f"per model; largest {gaps[worst].mean():+.3f} for {worst[0]} ({worst[1]})"))
    return rows


def plot_scalar_fields(results, axes=None):
    """Test scores per metric for each trained model (mean and range over seeds)."""
    if axes is None:
        fig, axes = _new_figure(1, size=(8.0, 3.4))
    else:
        fig = axes[0].figure
    models = list(results["scores"])
    width = 0.8 / len(models)
    x = np.arange(len(SCALAR_METRICS))
    for k, key in enumerate(models):
        vals = [results["scores"][key][m] for m in SCALAR_METRICS]
        axes[0].bar(x + k * width, [v.mean() for v in vals], width, yerr=[v.std() for v in vals],
                    label=f"{key[0]}, {key[1]}")
    axes[0].set_xticks(x + 0.4 - width / 2, [_METRIC_NAMES[m] for m in SCALAR_METRICS])
    axes[0].set(ylim=(0, 1), title="test scores, eps and h tuned on validation")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def run_scalar_fields(out=None, quick=True, seeds=None, device=None):
    """``reproduce`` entry: Ruiz Vargas et al.'s Table 1 (see :func:`verdict_scalar_fields`)."""
    results = study_scalar_fields("quick" if quick else "full", seeds=seeds or (0, 1, 2), device=device)
    return verdict_scalar_fields(results), plot_scalar_fields(results)


#: study id -> (one-line description, run function); see the module docstring.
REPRODUCTIONS = {
    "vector_fields": ("Peters: U-Nets trained on truncated-SDF vs EDT flows, with and without the "
                      "IVP loss; AP50/75/90, mAP per epoch, counting MAE", run_vector_fields),
    "sdf_ablation": ("SDF paper, Table 1: loss-term ablation, SEG and boundary F1, under both "
                     "zero-level-set conventions", run_sdf_ablation),
    "scalar_fields": ("Ruiz Vargas et al., Table 1: diffusion and Poisson fields with the U-Net and "
                      "the attention U-Net, eps and h tuned on validation", run_scalar_fields),
}


def verdict_table(rows):
    """The rows of a ``verdict_*`` function as a table for :func:`fieldseg_core.viz.table`.

    Parameters
    ----------
    rows : list of dict
        Rows of the module's contract.

    Returns
    -------
    header, table_rows : list of str, list of list
        Columns: quantity, paper, ours (mean ± spread over n seeds), reproduced, reason.

    Examples
    --------
    >>> row = dict(study="s", quantity="PQ gain", paper=None, ours_mean=0.1, ours_spread=0.02,
    ...            n_seeds=3, reproduced=True, reason="r")
    >>> verdict_table([row])[1]
    [['PQ gain', '—', '0.100 ± 0.020 (n = 3)', True, 'r']]
    """
    header = ["quantity", "paper", "ours (mean ± spread)", "reproduced", "reason"]
    out = []
    for r in rows:
        paper = "—" if r["paper"] is None else f"{r['paper']:.3f}"
        out.append([r["quantity"], paper, f"{r['ours_mean']:.3f} ± {r['ours_spread']:.3f} (n = {r['n_seeds']})",
                    bool(r["reproduced"]), r["reason"]])
    return header, out
