"""From a trained network to instances and scores.

- :func:`predict_representation` -- run a model on one image (whole, or in
  overlapping tiles) and get its raw output as a numpy array ``(C, H, W)``.
- :func:`aligned_tile_starts`, :func:`predict_tiled_aligned` -- tiles on a
  network's pooling grid, each overlap cut at its middle: with an overlap of
  twice :func:`fieldseg_core.models.receptive_field_margin` tiled prediction
  equals untiled prediction.
- :func:`to_instances` -- the post-processing of each representation:
  watershed for the scalar fields (Ruiz Vargas et al.) and for the signed distance
  (the SDF paper), following the flows for the flow representation (Le & Nguyen,
  004).
- :func:`predict_instances` -- both steps.
- :func:`ideal_output` -- the output a perfect network would give for a
  target of :func:`fieldseg_core.data.make_target`, to check the
  post-processing on its own.
- :func:`evaluate_model` -- mean scores of :func:`fieldseg_core.metrics.evaluate`
  over a dataset (the columns of Ruiz Vargas et al., Table 1).

References
----------
.. [1] Ruiz Vargas et al., Sec. 2.1.3 (watershed) and Table 1 (IoU, Dice, PQ, SQ, RQ).
.. [2] Le & Nguyen, Algorithm 1 (cell probability > 0.5, follow the flows, cluster).
.. [3] The SDF paper, Sec. 2 (signed distance with a learnable sigmoid).
.. [4] Peters, Sec. 6.5 (tiling).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from scipy.special import expit

from ._validate import validate_field, validate_number
from .data import _validate_representation, predict_tiled, target_channels

__all__ = [
    "aligned_tile_starts",
    "predict_tiled_aligned",
    "exact_overlap",
    "seam_distance",
    "predict_representation",
    "to_instances",
    "predict_instances",
    "ideal_output",
    "evaluate_model",
]

#: Factor between the flow channels a network is trained to output and unit
#: flows (the default of :func:`fieldseg_core.losses.flow_loss`, as in Cellpose).
FLOW_SCALE = 5.0


# --------------------------------------------------------------------------
# validation helpers (private)
# --------------------------------------------------------------------------

def _validate_model(model):
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model


def _model_device(model):
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _validate_image(image):
    """A (H, W) or (1, H, W) image as a float32 (1, H, W) array."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3:
        raise ValueError(f"image must be (H, W) or (C, H, W), got shape {image.shape}")
    return validate_field(image, "image", ndims=(3,)).astype(np.float32, copy=False)


def _validate_output(output, representation):
    if isinstance(output, torch.Tensor):
        output = output.detach().float().cpu().numpy()
    output = validate_field(output, "output", ndims=(3,))
    expected = target_channels(representation, 2)
    if output.shape[0] != expected:
        raise ValueError(f"output must have {expected} channels (C, H, W) for representation "
                         f"{representation!r}, got shape {output.shape}")
    return output


def _resolve_representation(model, representation):
    own = getattr(model, "representation", None)
    if representation is None:
        if own is None:
            raise ValueError("representation must be given for a model without a "
                             "'representation' attribute")
        return _validate_representation(own)
    _validate_representation(representation)
    if own is not None and own != representation:
        raise ValueError(f"representation {representation!r} does not match the model's "
                         f"representation {own!r}")
    return representation


# --------------------------------------------------------------------------
# tiling on the pooling grid
# --------------------------------------------------------------------------

def aligned_tile_starts(length, tile, overlap, multiple=1):
    """Tiles along one axis that start on a grid, and the part each one keeps.

    Parameters
    ----------
    length : int
        Image size along the axis.
    tile : int
        Tile size; rounded down to a multiple of ``multiple``. The last tile
        ends at the image border and may be up to ``multiple - 1`` longer.
    overlap : int
        Minimum overlap of consecutive tiles; rounded up to a multiple of
        ``multiple``, and smaller than the (rounded) tile.
    multiple : int
        Grid every start lies on (a U-Net's :func:`~fieldseg_core.models.downsampling_factor`).

    Returns
    -------
    tiles : list of (start, stop, keep_start, keep_stop)
        Tile ``k`` covers ``[start, stop)`` and provides the output on
        ``[keep_start, keep_stop)``; the kept ranges partition ``range(length)``.
        Each overlap is cut at its middle, so a kept pixel lies at least
        ``overlap // 2`` pixels from every tile edge inside the image.

    Examples
    --------
    >>> aligned_tile_starts(99, 40, 10, multiple=4)   # tile 40, overlap 12, stride 28
    [(0, 40, 0, 34), (28, 68, 34, 62), (56, 99, 62, 99)]
    >>> aligned_tile_starts(30, 40, 10, multiple=4)
    [(0, 30, 0, 30)]
    """
    length = validate_number(length, "length", low=1, integer=True)
    multiple = validate_number(multiple, "multiple", low=1, integer=True)
    tile = validate_number(tile, "tile", low=1, integer=True)
    overlap = validate_number(overlap, "overlap", low=0, integer=True)
    tile = tile // multiple * multiple
    overlap = -(-overlap // multiple) * multiple
    if tile < multiple:
        raise ValueError(f"tile must be at least the grid multiple {multiple}, got {tile}")
    if overlap >= tile:
        raise ValueError(f"overlap must be smaller than tile (after rounding to multiples of "
                         f"{multiple}: overlap {overlap}, tile {tile})")
    if length <= tile:
        return [(0, length, 0, length)]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    last = (length - tile) // multiple * multiple
    if starts[-1] < last:
        starts.append(last)
    stops = [s + tile for s in starts[:-1]] + [length]
    cuts = [0] + [(starts[k + 1] + stops[k]) // 2 for k in range(len(starts) - 1)] + [length]
    return [(a, b, cuts[k], cuts[k + 1]) for k, (a, b) in enumerate(zip(starts, stops))]


def predict_tiled_aligned(fn, image, tile=256, overlap=48, multiple=1):
    """Apply ``fn`` to grid-aligned overlapping tiles and keep each tile's centre.

    Parameters
    ----------
    fn : callable
        Maps a crop ``(C, *tile_shape)`` of ``image`` to an array-like
        ``(C_out, *tile_shape)``.
    image : (C, H, W) or (C, D, H, W) array
        Input with a leading channel axis; every spatial axis is tiled.
    tile, overlap : int or sequence of int
        As for :func:`aligned_tile_starts`; one value for every spatial axis,
        or one per axis.
    multiple : int
        Start grid of the tiles.

    Returns
    -------
    out : ndarray of float32, shape (C_out, *spatial)

    Notes
    -----
    If ``fn`` is translation-equivariant for shifts by ``multiple`` and its
    output at a pixel depends only on inputs within ``margin`` pixels, then
    with ``overlap >= 2 * margin`` the result equals ``fn(image)`` (up to
    floating-point rounding): every kept pixel is at least ``overlap // 2``
    from each inner tile edge, and a tile flush with the image border sees
    the same border as the whole image. A U-Net in eval mode with
    :class:`~fieldseg_core.models.TileSafeNorm` is such a function, with
    ``multiple = 2**depth`` and the margin of
    :func:`~fieldseg_core.models.receptive_field_margin`. Unlike the
    weighted blending of :func:`fieldseg_core.data.predict_tiled`, nothing is
    averaged, so an exact tile stays exact.

    References
    ----------
    .. [1] Peters, Sec. 6.5 (tiling with overlap).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage
    >>> image = np.random.default_rng(0).random((1, 90, 70))
    >>> blur = lambda x: ndimage.uniform_filter(x, size=(1, 5, 5), mode="nearest")  # margin 2
    >>> out = predict_tiled_aligned(blur, image, tile=32, overlap=4)
    >>> bool(np.allclose(out, blur(image), atol=1e-6))
    True
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    image = np.asarray(image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else image)
    if image.ndim not in (3, 4):
        raise ValueError(f"image must be (C, H, W) or (C, D, H, W), got shape {image.shape}")
    spatial = image.shape[1:]

    def per_axis(value, name):
        if isinstance(value, (list, tuple, np.ndarray)):
            if len(value) != len(spatial):
                raise ValueError(f"{name} must be an int or {len(spatial)} ints, got {value!r}")
            return list(value)
        return [value] * len(spatial)

    plans = [aligned_tile_starts(n, t, o, multiple)
             for n, t, o in zip(spatial, per_axis(tile, "tile"), per_axis(overlap, "overlap"))]
    out = None
    for boxes in itertools.product(*plans):
        crop = image[(slice(None),) + tuple(slice(a, b) for a, b, _, _ in boxes)]
        pred = fn(crop)
        if isinstance(pred, torch.Tensor):
            pred = pred.detach().float().cpu().numpy()
        pred = np.asarray(pred, dtype=np.float32)
        if pred.ndim != image.ndim or pred.shape[1:] != crop.shape[1:]:
            raise ValueError(f"fn must return an array of shape (C_out, {crop.shape[1:]}) for a "
                             f"tile, got {pred.shape}")
        if out is None:
            out = np.empty((pred.shape[0],) + image.shape[1:], np.float32)
        keep_global = tuple(slice(k0, k1) for _, _, k0, k1 in boxes)
        keep_local = tuple(slice(k0 - a, k1 - a) for a, _, k0, k1 in boxes)
        out[(slice(None),) + keep_global] = pred[(slice(None),) + keep_local]
    return out


def seam_distance(shape, tile, overlap, multiple=1):
    """Distance of every pixel to the nearest seam of :func:`predict_tiled_aligned`'s tiling.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape of the image.
    tile, overlap, multiple : int
        As for :func:`aligned_tile_starts`.

    Returns
    -------
    distance : ndarray of float
        For each pixel the smallest distance, along any axis, between the
        pixel and a boundary between the kept parts of two tiles (0 for a
        pixel next to a seam, ``inf`` when the image is one tile).

    Examples
    --------
    >>> seam_distance((1, 10), tile=6, overlap=2)[0].tolist()   # one seam, between pixels 4 and 5
    [4.0, 3.0, 2.0, 1.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0]
    """
    per_axis = []
    for n in shape:
        plan = aligned_tile_starts(n, tile, overlap, multiple)
        cuts = np.array([k1 for _, _, _, k1 in plan[:-1]], dtype=float)
        pos = np.arange(n, dtype=float)
        if cuts.size == 0:
            per_axis.append(np.full(n, np.inf))
        else:
            per_axis.append(np.min(np.abs(pos[:, None] + 0.5 - cuts[None, :]), axis=1) - 0.5)
    grids = np.meshgrid(*per_axis, indexing="ij")
    return np.minimum.reduce(grids)


def exact_overlap(model):
    """The overlap that makes tiled prediction with ``model`` exact, or None.

    Parameters
    ----------
    model : torch.nn.Module
        A U-Net of :mod:`fieldseg_core.models` (or a :class:`FieldModel` around one).

    Returns
    -------
    overlap : int or None
        ``2 * receptive_field_margin(model)`` rounded up to the model's
        pooling grid; None when the output depends on the whole input
        (attention U-Net, GroupNorm) or the model is not one of ours.

    Examples
    --------
    >>> from fieldseg_core.models import build_model
    >>> exact_overlap(build_model("flows", widths=(8, 16, 32)))  # margin 23, grid 4
    48
    """
    from .models import downsampling_factor, receptive_field_margin

    try:
        margin = receptive_field_margin(model)
        multiple = downsampling_factor(model)
    except TypeError:
        return None
    if margin is None:
        return None
    return -(-2 * margin // multiple) * multiple


def _grid_multiple(model):
    from .models import downsampling_factor

    try:
        return downsampling_factor(model)
    except TypeError:
        return 1


# --------------------------------------------------------------------------
# network output
# --------------------------------------------------------------------------

def predict_representation(model, image, device=None, tile=None, overlap=32, blend="center"):
    """Raw network output for one image, as a numpy array.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(B, C_in, H, W)`` to ``(B, C, H, W)``, e.g. a
        :class:`fieldseg_core.models.FieldModel`.
    image : (H, W) or (C_in, H, W) array or tensor
        Input image.
    device : str or torch.device, optional
        Device to run on; the model is moved there. Default: the device of the
        model's parameters (the model is left where it is).
    tile : int or (int, int), optional
        If given and the image is larger than ``tile``, predict overlapping
        tiles of this size (bounded memory for large images). Default: the
        whole image in one pass.
    overlap : int or "exact"
        Tile overlap, smaller than ``tile``; ``"exact"`` is
        :func:`exact_overlap` of the model (tiled = untiled output).
    blend : {"center", "window"}
        ``"center"`` (default): tiles start on the model's pooling grid and
        each overlap is cut at its middle (:func:`predict_tiled_aligned`);
        exact when the overlap covers twice the receptive-field margin.
        ``"window"``: the weighted blending of
        :func:`fieldseg_core.data.predict_tiled` (``tile`` may then be a pair).

    Returns
    -------
    output : ndarray of float32, shape (C, H, W)
        The model's output (for flows: the scaled flow channels and the
        probability logit; for the SDF: the signed distance).

    Notes
    -----
    The model runs in eval mode under :func:`torch.no_grad`; its previous
    train/eval mode is restored afterwards.

    Examples
    --------
    >>> import torch
    >>> from fieldseg_core.models import build_model
    >>> _ = torch.manual_seed(0)
    >>> model = build_model("flows", widths=(4, 8), groups=2)
    >>> predict_representation(model, torch.rand(40, 40)).shape
    (3, 40, 40)
    >>> predict_representation(model, torch.rand(40, 40), tile=24, overlap=8).shape
    (3, 40, 40)
    """
    _validate_model(model)
    image = _validate_image(image)
    if blend not in ("center", "window"):
        raise ValueError(f"blend must be 'center' or 'window', got {blend!r}")
    if isinstance(overlap, str):
        if overlap != "exact":
            raise ValueError(f"overlap must be an integer or 'exact', got {overlap!r}")
        overlap = exact_overlap(model)
        if overlap is None:
            raise ValueError("overlap='exact' needs a model with a finite receptive field "
                             "(a UNet with norm='batch'); give an integer overlap")
    if device is not None:
        model.to(device)
    device = _model_device(model)

    def run(crop):
        batch = torch.from_numpy(np.ascontiguousarray(crop))[None].to(device)
        return model(batch)[0].float().cpu().numpy()

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if tile is None:
                return run(image).astype(np.float32)
            if blend == "window":
                return predict_tiled(run, image, tile=tile, overlap=overlap, blend=blend)
            return predict_tiled_aligned(run, image, tile=tile, overlap=overlap,
                                         multiple=_grid_multiple(model))
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------
# post-processing
# --------------------------------------------------------------------------

def _sdf_instances(phi, level=0.0, h=1.0):
    from .segment import watershed_from_field

    level = validate_number(level, "level")
    h = validate_number(h, "h", low=0.0, low_inclusive=False)
    # eps = level keeps phi >= level; the mask makes the inequality strict.
    return watershed_from_field(phi, eps=level, h=h, mask=phi > level)


def _flow_instances(output, flow_scale=FLOW_SCALE, **params):
    from .dynamics import masks_from_flows

    flow_scale = validate_number(flow_scale, "flow_scale", low=0.0, low_inclusive=False)
    flows = output[:-1] / flow_scale
    return masks_from_flows(flows, expit(output[-1]), **params)


def to_instances(output, representation, **params):
    """Turn a network output (or an ideal one) into instance labels.

    Parameters
    ----------
    output : (C, H, W) array or tensor
        Output of :func:`predict_representation` for ``representation``.
    representation : {"poisson", "diffusion", "edt", "flows", "sdf"}
        What the channels mean.
    **params
        Post-processing parameters:

        - scalar fields: ``eps`` (0.05), ``h`` (0.1) and ``mask`` of
          :func:`fieldseg_core.segment.watershed_from_field`;
        - ``"sdf"``: ``level`` (0.0), the foreground is ``phi > level``, and
          ``h`` (1.0 pixel), the marker height (see Notes);
        - ``"flows"``: ``flow_scale`` (5.0), the factor the network's flow
          channels carry (use 1 for unit flows), and every keyword of
          :func:`fieldseg_core.dynamics.masks_from_flows` (``n_iter``,
          ``cluster``, ``prob_threshold`` (0.5), ``min_size``,
          ``flow_threshold``, ``device``, ...).

    Returns
    -------
    labels : ndarray of int32, shape (H, W)
        Instances ``1..n``, 0 on background.

    Notes
    -----
    *Flows.* The last channel is a cell-probability logit: it goes through a
    sigmoid and pixels with probability ``> prob_threshold`` are the
    foreground; the flow channels are divided by ``flow_scale`` (the network
    learns 5 times the unit flows, see :func:`fieldseg_core.losses.flow_loss`)
    and followed from every foreground pixel.

    *SDF.* We segment the raw signed distance :math:`\\phi`, not the
    sigmoid-mapped probability: :math:`\\sigma(\\alpha\\phi + \\beta)`
    saturates a few pixels inside a cell, which flattens exactly the domes
    the watershed needs, whereas :math:`\\phi` keeps one dome per cell whose
    height is a distance in pixels. The foreground :math:`\\phi > \\text{level}`
    is where the (learnable) sigmoid exceeds 1/2 when
    ``level = -beta / alpha`` (:func:`predict_instances` passes that);
    :func:`~fieldseg_core.segment.watershed_from_field` grows the h-maxima
    of :math:`\\phi` (a flat or rippled top counts once) inside it.
    ``h = 1`` px is above the ripples of a discrete distance ridge (steps
    like :math:`\\sqrt 2 - 1 \\approx 0.41` px), while two cells separated by
    the one-pixel gap of the target differ by at least 2 px (from
    :math:`\\ge 1` inside to :math:`-1` in the gap).
    Pixels of that gap stay background.

    References
    ----------
    .. [1] Ruiz Vargas et al., Sec. 2.1.3; Le & Nguyen, Algorithm 1; the SDF paper, Sec. 2.

    Examples
    --------
    >>> import numpy as np
    >>> from fieldseg_core.data import make_target
    >>> labels = np.zeros((24, 40), dtype=int)
    >>> labels[4:20, 3:20] = 1; labels[4:20, 20:37] = 2     # two touching cells
    >>> [int(to_instances(make_target(labels, r), r).max()) for r in ("poisson", "sdf")]
    [2, 2]
    >>> out = ideal_output(make_target(labels, "flows"), "flows")
    >>> int(to_instances(out, "flows").max())
    2
    """
    from .segment import watershed_from_field

    _validate_representation(representation)
    output = _validate_output(output, representation)
    if representation == "flows":
        return _flow_instances(output, **params)
    if representation == "sdf":
        return _sdf_instances(output[0], **params)
    return watershed_from_field(output[0], **params)


def ideal_output(target, representation, flow_scale=FLOW_SCALE, logit=10.0):
    """The output a perfect network would give for a :func:`~fieldseg_core.data.make_target` target.

    Parameters
    ----------
    target : (C, H, W) array
        Target of ``representation``.
    representation : str
        One of ``"poisson"``, ``"diffusion"``, ``"edt"``, ``"flows"``, ``"sdf"``.
    flow_scale : float
        For flows: the factor the network's flow channels carry.
    logit : float
        For flows: the logit given to probability 1 (and minus it to 0).

    Returns
    -------
    output : ndarray of float32
        The target itself for scalar fields and the SDF; for flows the flow
        channels times ``flow_scale`` and the probability as a logit
        ``logit * (2 p - 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((3, 1, 2), np.float32); t[:, 0, 0] = [0.6, 0.8, 1.0]
    >>> ideal_output(t, "flows")[:, 0].tolist()
    [[3.0, 0.0], [4.0, 0.0], [10.0, -10.0]]
    """
    from .data import _validate_target

    _validate_representation(representation)
    target = _validate_target(target, representation)
    if representation != "flows":
        return target.copy()
    flow_scale = validate_number(flow_scale, "flow_scale", low=0.0, low_inclusive=False)
    logit = validate_number(logit, "logit", low=0.0, low_inclusive=False)
    flows = flow_scale * target[:-1]
    logits = logit * (2.0 * target[-1:] - 1.0)
    return np.concatenate([flows, logits]).astype(np.float32)


def predict_instances(model, image, representation=None, device=None, tile=None, overlap=32,
                      **params):
    """Instances of one image: :func:`predict_representation` then :func:`to_instances`.

    Parameters
    ----------
    model : torch.nn.Module
        The trained model.
    image : (H, W) or (C_in, H, W) array or tensor
        Input image.
    representation : str, optional
        Default: ``model.representation``; if both are set they must agree.
    device, tile, overlap
        As for :func:`predict_representation`.
    **params
        Post-processing parameters of :func:`to_instances`. For the SDF,
        ``level`` defaults to ``-beta / alpha`` of ``model.sigmoid`` (the
        zero of the learnable sigmoid's logit) when the model has one.

    Returns
    -------
    labels : ndarray of int32, shape (H, W)

    Examples
    --------
    >>> import torch
    >>> from fieldseg_core.models import build_model
    >>> model = build_model("poisson", widths=(4, 8), groups=2)
    >>> predict_instances(model, torch.rand(32, 32)).shape
    (32, 32)
    """
    _validate_model(model)
    representation = _resolve_representation(model, representation)
    output = predict_representation(model, image, device=device, tile=tile, overlap=overlap)
    if representation == "sdf" and "level" not in params:
        sigmoid = getattr(model, "sigmoid", None)
        if sigmoid is not None:
            alpha, beta = float(sigmoid.alpha.detach()), float(sigmoid.beta.detach())
            if alpha > 0:
                params["level"] = -beta / alpha
    return to_instances(output, representation, **params)


# --------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------

def evaluate_model(model, dataset, representation=None, device=None, tile=None, overlap=32,
                   max_images=None, **params):
    """Mean instance and semantic scores of a model over a labelled dataset.

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    dataset : sequence
        ``dataset[i]`` gives ``(image, target)`` and ``dataset.labels(i)`` the
        true instance labels, e.g. :class:`fieldseg_core.data.SyntheticCells`
        (build evaluation sets with ``augment=False``).
    representation : str, optional
        Default: ``model.representation``.
    device, tile, overlap
        As for :func:`predict_representation`.
    max_images : int, optional
        Evaluate only the first ``max_images`` items.
    **params
        Post-processing parameters (:func:`to_instances`).

    Returns
    -------
    scores : dict
        The mean over images of every score of
        :func:`fieldseg_core.metrics.evaluate` (``iou``, ``dice``, ``pq``,
        ``sq``, ``rq``, ``ap50``, ``ap75``, ``ap90``, ``seg``, ...; counts
        such as ``tp`` become mean counts per image) and ``n_images``.

    Notes
    -----
    Scores are averaged per image, as in the per-dataset rows of Ruiz Vargas et al.,
    Table 1 (IoU, Dice, PQ, SQ, RQ), to which we add AP at IoU 0.5.

    Examples
    --------
    >>> from fieldseg_core.data import SyntheticCells
    >>> from fieldseg_core.models import build_model
    >>> ds = SyntheticCells(2, "edt", shape=(32, 32), n_cells_range=(2, 2),
    ...                     radius_range=(4, 6), augment=False)
    >>> scores = evaluate_model(build_model("edt", widths=(4, 8), groups=2), ds)
    >>> scores["n_images"], sorted(k for k in ("iou", "pq", "ap50") if 0 <= scores[k] <= 1)
    (2, ['ap50', 'iou', 'pq'])
    """
    from .metrics import evaluate

    _validate_model(model)
    representation = _resolve_representation(model, representation)
    if not hasattr(dataset, "labels") or not callable(dataset.labels):
        raise TypeError("dataset must provide labels(i) with the true instances of item i "
                        f"(e.g. SyntheticCells); got {type(dataset).__name__}")
    n = len(dataset)
    if max_images is not None:
        n = min(n, validate_number(max_images, "max_images", low=1, integer=True))
    if n == 0:
        raise ValueError("dataset must not be empty")
    rows = []
    for i in range(n):
        image = dataset[i][0]
        pred = predict_instances(model, image, representation, device=device, tile=tile,
                                 overlap=overlap, **params)
        rows.append(evaluate(dataset.labels(i), pred))
    scores = {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
    scores["n_images"] = n
    return scores
