"""Flow dynamics: move pixels along a flow field, then group them by where they end.

Given a flow field (see :mod:`fieldseg_core.flows`) and a foreground mask,
every foreground pixel is treated as an initial value and integrated through
the field with Euler's method; pixels of one cell converge to one sink and are
then grouped by clustering their final positions [1]_ (Algorithm 1), [2]_
(Sec. 2).

Conventions
-----------
- Flows are channel-first arrays of shape ``(ndim, *spatial)``; component
  ``k`` is the velocity along array axis ``k`` (2D: ``(dy, dx)`` = (d/d row,
  d/d col); 3D: ``(dz, dy, dx)``). The torch core :func:`euler_integrate`
  takes a batch, ``(B, ndim, *spatial)``.
- Positions are array index coordinates, in the same axis order:
  ``(row, col)`` in 2D and ``(plane, row, col)`` in 3D, so position ``p``
  lies on pixel ``labels[tuple(np.rint(p).astype(int))]``.
- Between pixels the field is interpolated bilinearly (2D) or trilinearly
  (3D); positions are kept inside ``[0, size - 1]`` along every axis.

Pipeline
--------
:func:`euler_integrate` (differentiable torch core) ->
:func:`follow_flows` (numpy wrapper) -> :func:`cluster_sinks` or
:func:`cluster_dbscan` -> :func:`masks_from_flows` (whole pipeline).
:func:`stitch_3d` links per-slice 2D masks into 3D objects.

References
----------
.. [1] Course report on Cellpose-SAM with a from-scratch flow-field
   re-implementation , Sec. 3.3, 4.1, Algorithm 1, Table 7.
.. [2] "Vector fields for instance segmentation" (Peters), Sec. 2, 3
   and 6.4.
"""

from __future__ import annotations

import contextlib

import numpy as np
from scipy import ndimage as ndi

from ._labels import compact_labels
from ._validate import (
    as_array,
    resolve_device,
    validate_field,
    validate_labels,
    validate_mask,
    validate_number,
)

__all__ = [
    "euler_integrate",
    "follow_flows",
    "cluster_dbscan",
    "cluster_sinks",
    "masks_from_flows",
    "stitch_3d",
]


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------

def _validate_flow_array(flows, name="flows"):
    """Check a numpy flow field ``(ndim, *spatial)`` with ndim in (2, 3)."""
    arr = validate_field(flows, name, ndims=(3, 4))
    if arr.shape[0] != arr.ndim - 1:
        raise ValueError(
            f"{name} must have shape (ndim, *spatial) with one component per spatial axis; "
            f"got shape {arr.shape}, i.e. {arr.shape[0]} components for {arr.ndim - 1} axes"
        )
    return arr


def _validate_foreground(mask, shape, name="mask"):
    """A required boolean (or 0/1 integer) foreground mask of the given shape."""
    if mask is None:
        raise TypeError(f"{name} must be a boolean array of shape {tuple(shape)}, got None")
    return validate_mask(mask, shape, name)


def _validate_torch_inputs(flows, positions):
    import torch

    for name, t in (("flows", flows), ("positions", positions)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must have a floating-point dtype, got {t.dtype}")
    if flows.dim() not in (4, 5):
        raise ValueError(
            f"flows must have shape (B, ndim, *spatial) with 2 or 3 spatial axes, "
            f"got shape {tuple(flows.shape)}"
        )
    ndim = flows.dim() - 2
    if flows.shape[1] != ndim:
        raise ValueError(
            f"flows must have {ndim} components for {ndim} spatial axes, got shape {tuple(flows.shape)}"
        )
    if positions.dim() != 3 or positions.shape[0] != flows.shape[0] or positions.shape[2] != ndim:
        raise ValueError(
            f"positions must have shape (B, P, {ndim}) with B = {flows.shape[0]}, "
            f"got {tuple(positions.shape)}"
        )
    if positions.dtype != flows.dtype:
        raise TypeError(f"positions and flows must share a dtype, got {positions.dtype} and {flows.dtype}")
    if positions.device != flows.device:
        raise ValueError(
            f"positions and flows must be on one device, got {positions.device} and {flows.device}"
        )
    return ndim


# --------------------------------------------------------------------------
# Euler integration
# --------------------------------------------------------------------------

def euler_integrate(flows, positions, n_iter, step=1.0, suppress=False, return_trajectories=False,
                    method="euler"):
    """Integrate points through a batch of flow fields with Euler's method (differentiable).

    Parameters
    ----------
    flows : torch.Tensor, shape (B, ndim, *spatial)
        Flow fields, ndim = 2 or 3; component ``k`` is the velocity along
        spatial axis ``k``.
    positions : torch.Tensor, shape (B, P, ndim)
        Start positions in index coordinates (same axis order), same dtype and
        device as ``flows``.
    n_iter : int
        Number of Euler steps (>= 0).
    step : float, optional
        Step size ``h``.
    suppress : bool, optional
        Multiply step ``t`` by ``1 / (t + 1)`` (Omnipose's suppression).
    return_trajectories : bool, optional
        Also return every intermediate position.
    method : {"euler", "heun"}, optional
        ``"euler"`` (default): one velocity sample per step, first order.
        ``"heun"``: Heun's method (improved Euler), second order at twice the
        cost per step -- see Notes.

    Returns
    -------
    final : torch.Tensor, shape (B, P, ndim)
        Positions after ``n_iter`` steps.
    trajectories : torch.Tensor, shape (n_iter + 1, B, P, ndim)
        Only with ``return_trajectories``; ``trajectories[0]`` is the start and
        ``trajectories[-1]`` equals ``final``.

    Notes
    -----
    For ``t = 0, 1, ..., n_iter - 1`` the update is

    .. math:: x_{t+1} = \\mathrm{clamp}\\big(x_t + h\\, s_t\\, v(x_t)\\big),
              \\quad s_t = 1/(t + 1) \\text{ if suppress else } 1,

    so the first step is never damped and step ``t`` (0-based) is scaled by
    ``1/(t+1)``. Peters writes the factor as ``1/(t_{n-1} + 1)`` with the
    time ``t_n = n h``; the two agree for ``h = 1``. ``v(x)`` interpolates the
    field bilinearly (2D) or trilinearly (3D) with
    :func:`torch.nn.functional.grid_sample` (``align_corners=True``, index
    coordinates mapped to ``[-1, 1]``), and ``clamp`` keeps every coordinate
    in ``[0, size - 1]`` [1]_ (Algorithm 1), [2]_ (Sec. 2-3). All operations
    are out of place, so gradients reach both ``flows`` and ``positions``
    (this is what an integration-aware loss needs, [2]_ Sec. 5); the clamp
    passes no gradient along a coordinate while it sits on the border. The
    computation runs on the inputs' device and in their dtype. Internally
    the positions live in grid_sample's ``[-1, 1]`` coordinates, so results
    carry float rounding of order ``1e-7 * size`` (the border values 0 and
    ``size - 1`` are exact).

    With ``method="heun"`` each step first predicts
    :math:`\\tilde x = \\mathrm{clamp}(x_t + h s_t v(x_t))` and then moves with
    the mean velocity,
    :math:`x_{t+1} = \\mathrm{clamp}\\big(x_t + h s_t (v(x_t) + v(\\tilde x))/2\\big)`,
    whose local error is :math:`O(h^3)` instead of Euler's :math:`O(h^2)`.

    References
    ----------
    .. [1] Le & Nguyen, *Cellpose-SAM* (course report), Algorithm 1.
    .. [2] Peters, *Vector fields for instance segmentation*, Sec. 2, 3 and 5.

    Examples
    --------
    >>> import torch
    >>> flows = torch.zeros(1, 2, 4, 5)
    >>> flows[:, 1] = 1.0                       # move +1 column per step
    >>> start = torch.tensor([[[1.0, 0.5]]])
    >>> euler_integrate(flows, start, n_iter=2, step=0.5).tolist()
    [[[1.0, 1.5]]]
    >>> euler_integrate(flows, start, n_iter=10).tolist()   # clamped at col 4
    [[[1.0, 4.0]]]
    """
    import torch
    import torch.nn.functional as F

    ndim = _validate_torch_inputs(flows, positions)
    n_iter = validate_number(n_iter, "n_iter", low=0, integer=True)
    step = validate_number(step, "step")
    if method not in ("euler", "heun"):
        raise ValueError(f"method must be 'euler' or 'heun', got {method!r}")
    sizes = flows.shape[2:]
    options = dict(dtype=flows.dtype, device=flows.device)
    # grid_sample's last grid dimension is (x, y[, z]): the array axes reversed,
    # each mapped from [0, size - 1] to [-1, 1] (a size-1 axis stays at -1).
    scale = torch.tensor([2.0 / (s - 1) if s > 1 else 0.0 for s in reversed(sizes)], **options)
    half_span = torch.tensor([(s - 1) / 2.0 for s in reversed(sizes)], **options)
    batch, n_points = positions.shape[:2]
    # Integrating in normalised coordinates (flows rescaled to match) saves a
    # conversion per step, and the clamp becomes a cheap scalar clamp.
    field = flows.flip(1) * scale.view((1, ndim) + (1,) * ndim)
    # Positions are stored channel-first, (B, ndim, 1[, 1], P), like the
    # sampled velocities, so the update adds contiguous tensors; grid_sample
    # reads them through a permuted view.
    layout = (batch, ndim) + (1,) * (ndim - 1) + (n_points,)
    to_grid = (0,) + tuple(range(2, ndim + 2)) + (1,)
    pts = (positions.flip(-1) * scale - 1.0).transpose(1, 2).reshape(layout)

    def sample(p):
        return F.grid_sample(field, p.permute(to_grid), mode="bilinear",
                             padding_mode="border", align_corners=True)

    history = [pts] if return_trajectories else None
    for t in range(n_iter):
        velocity = sample(pts)
        factor = step / (t + 1) if suppress else step
        if method == "heun":
            predicted = torch.add(pts, velocity, alpha=factor).clamp(-1.0, 1.0)
            velocity = 0.5 * (velocity + sample(predicted))
        pts = torch.add(pts, velocity, alpha=factor).clamp(-1.0, 1.0)
        if history is not None:
            history.append(pts)

    def to_index(p):
        # (..., B, ndim, 1[, 1], P) -> (..., B, P, ndim) in index coordinates
        p = p.reshape(p.shape[:p.dim() - ndim - 1] + (ndim, n_points)).transpose(-1, -2)
        return ((p + 1.0) * half_span).flip(-1)

    final = to_index(pts)
    if history is None:
        return final
    return final, to_index(torch.stack(history))


#: Below this many points the CPU integration runs on one torch thread: each
#: step is then too little work to amortise thread synchronisation, and with
#: other jobs competing for a 2-core machine a 2-thread pool was measured 6x
#: slower than one thread (0.6 s vs 3.8 s for the 512x512 benchmark scene).
SINGLE_THREAD_BELOW = 1_000_000


@contextlib.contextmanager
def _torch_threads(n):
    """Temporarily set torch's intra-op thread count (restored on exit)."""
    import torch

    previous = torch.get_num_threads()
    if n is None or n == previous:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def follow_flows(flows, mask, n_iter=200, step=1.0, suppress=False, device=None,
                 return_trajectories=False, method="euler", num_threads=None):
    """Integrate every foreground pixel through a flow field (numpy in, numpy out).

    Parameters
    ----------
    flows : (ndim, *spatial) array of float
        Flow field, ndim = 2 or 3, component ``k`` along array axis ``k``.
    mask : (*spatial) array of bool
        Pixels to integrate.
    n_iter : int, optional
        Number of Euler steps (Cellpose uses 200, [1]_ Sec. 3.3).
    step : float, optional
        Step size.
    suppress : bool, optional
        Damp step ``t`` by ``1 / (t + 1)`` (see :func:`euler_integrate`).
    device : None, str or torch.device, optional
        Where to compute; ``None`` picks CUDA when available, else the CPU.
    return_trajectories : bool, optional
        Also return all intermediate positions.
    method : {"euler", "heun"}, optional
        Integration scheme (see :func:`euler_integrate`).
    num_threads : int, optional
        torch threads for a CPU integration. Default: 1 below
        :data:`SINGLE_THREAD_BELOW` points, torch's setting otherwise. The
        global setting is restored afterwards.

    Returns
    -------
    final : (n_fg, ndim) ndarray of float32
        Final index coordinates, one row per foreground pixel in the order of
        ``np.nonzero(mask)``.
    trajectories : (n_iter + 1, n_fg, ndim) ndarray of float32
        Only with ``return_trajectories``.

    Notes
    -----
    A thin wrapper around :func:`euler_integrate` that runs under
    ``torch.no_grad`` in float32.

    References
    ----------
    .. [1] Le & Nguyen, *Cellpose-SAM* (course report), Sec. 3.3 and Algorithm 1.

    Examples
    --------
    >>> import numpy as np
    >>> flows = np.zeros((2, 3, 5), dtype=np.float32)
    >>> flows[1] = -1.0                          # everything moves left
    >>> mask = np.zeros((3, 5), dtype=bool)
    >>> mask[1, 4] = True
    >>> follow_flows(flows, mask, n_iter=2, device="cpu").tolist()
    [[1.0, 2.0]]
    """
    import torch

    flows = _validate_flow_array(flows)
    mask = _validate_foreground(mask, flows.shape[1:])
    n_iter = validate_number(n_iter, "n_iter", low=0, integer=True)
    step = validate_number(step, "step")
    dev = resolve_device(device)
    ndim = flows.shape[0]
    start = np.stack(np.nonzero(mask), axis=1).astype(np.float32)
    if start.shape[0] == 0:
        empty = np.zeros((0, ndim), dtype=np.float32)
        if return_trajectories:
            return empty, np.zeros((n_iter + 1, 0, ndim), dtype=np.float32)
        return empty
    if num_threads is not None:
        num_threads = validate_number(num_threads, "num_threads", low=1, integer=True)
    elif dev.type == "cpu" and start.shape[0] < SINGLE_THREAD_BELOW:
        num_threads = 1
    with torch.no_grad(), _torch_threads(num_threads if dev.type == "cpu" else None):
        field = torch.as_tensor(np.ascontiguousarray(flows, dtype=np.float32), device=dev)[None]
        points = torch.from_numpy(start).to(dev)[None]
        out = euler_integrate(field, points, n_iter, step=step, suppress=suppress,
                              return_trajectories=return_trajectories, method=method)
    if return_trajectories:
        final, traj = out
        return final[0].cpu().numpy(), traj[:, 0].cpu().numpy()
    return out[0].cpu().numpy()


# --------------------------------------------------------------------------
# clustering
# --------------------------------------------------------------------------

def _validate_points(points, name="points"):
    arr = as_array(points)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be a real-valued array, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"{name} must have shape (n_points, ndim), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; it contains NaN or infinite values")
    return arr


def cluster_dbscan(points, eps, min_samples):
    """DBSCAN of points rounded to the pixel grid, computed on the distinct grid points.

    Parameters
    ----------
    points : (n, ndim) array of float
        Final positions (index coordinates).
    eps : float
        DBSCAN neighbourhood radius in pixels (> 0). Peters uses 2.1-2.3.
    min_samples : int
        Points (counting duplicates and the point itself) needed within
        ``eps`` for a core point. Peters uses 15.

    Returns
    -------
    labels : (n,) ndarray of int
        Cluster id per point, ``0..k-1``; noise is ``-1``. Identical to
        ``sklearn.cluster.DBSCAN(eps, min_samples).fit_predict(np.rint(points))``.

    Notes
    -----
    After rounding (Le & Nguyen, Algorithm 1), converged points pile up on a few
    grid positions. DBSCAN is run once on the distinct positions with
    ``sample_weight`` = their multiplicities; duplicates share their
    neighbourhood, so weighted core status equals core status on all points
    and the clusters of core points coincide. Two details are then made to
    agree with scikit-learn's run on all points:

    - cluster ids: scikit-learn numbers clusters in the order of their first
      core point in the input, so clusters are renumbered by the smallest
      input index among their core points;
    - border points (non-core points within ``eps`` of cores of several
      clusters) go to the first cluster that reaches them, which is the one
      with the smallest id among the clusters of their core neighbours.

    The work scales with the number of distinct grid positions, not points:
    on a converged image a handful per cell.

    References
    ----------
    .. [1] Le & Nguyen, *Cellpose-SAM* (course report), Algorithm 1 (rounding, DBSCAN).
    .. [2] Peters, *Vector fields for instance segmentation*, Sec. 6.4 (eps 2.1-2.3, min_samples 15).

    Examples
    --------
    >>> import numpy as np
    >>> pts = np.array([[0.1, 0.0]] * 5 + [[9.8, 10.2]] * 5 + [[30.0, 0.0]])
    >>> cluster_dbscan(pts, eps=1.5, min_samples=3).tolist()
    [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, -1]
    """
    from sklearn.cluster import DBSCAN
    from sklearn.neighbors import NearestNeighbors

    points = _validate_points(points)
    eps = validate_number(eps, "eps", low=0, low_inclusive=False)
    min_samples = validate_number(min_samples, "min_samples", low=1, integer=True)
    if points.shape[0] == 0:
        return np.zeros(0, dtype=np.intp)

    grid = np.rint(points.astype(np.float64))
    unique, first, inverse, counts = np.unique(
        grid, axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    inverse = inverse.reshape(-1)
    db = DBSCAN(eps=eps, min_samples=min_samples).fit(unique, sample_weight=counts)
    core = np.zeros(unique.shape[0], dtype=bool)
    core[db.core_sample_indices_] = True
    raw = db.labels_
    labels = np.full(unique.shape[0], -1, dtype=np.intp)
    if core.any():
        n_clusters = int(raw[core].max()) + 1
        first_core = np.full(n_clusters, np.iinfo(np.intp).max, dtype=np.intp)
        np.minimum.at(first_core, raw[core], first[core])
        rank = np.empty(n_clusters, dtype=np.intp)
        rank[np.argsort(first_core, kind="stable")] = np.arange(n_clusters)
        labels[core] = rank[raw[core]]

        border = ~core & (raw >= 0)
        if border.any():
            neighbours = NearestNeighbors(radius=eps).fit(unique[core])
            graph = neighbours.radius_neighbors_graph(unique[border], mode="connectivity")
            # every border point has at least one core neighbour, so no row is empty
            ids = labels[core][graph.indices]
            labels[border] = np.minimum.reduceat(ids, graph.indptr[:-1])
    return labels[inverse]


def _validate_shape(shape, ndim):
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of ints, got {shape!r}") from None
    if len(shape) != ndim or any(s < 1 for s in shape):
        raise ValueError(f"shape must be {ndim} positive ints matching the points, got {shape}")
    return shape


def cluster_sinks(positions, shape, smooth_sigma=1.0, min_count=10):
    """Cluster converged positions by the peaks of their histogram (Cellpose-style).

    Parameters
    ----------
    positions : (n, ndim) array of float
        Final positions in index coordinates of an image of ``shape``; each
        must round to a pixel of the image (a ValueError otherwise).
    shape : tuple of int
        Spatial shape of the image (defines the histogram grid).
    smooth_sigma : float, optional
        Gaussian sigma (pixels) applied to the histogram before looking for
        peaks; 0 disables smoothing. Light smoothing merges a sink whose
        points spread over a few neighbouring bins into one peak.
    min_count : int, optional
        A peak becomes a seed only if at least this many points lie in the
        3x3 (3x3x3) block of bins around it.

    Returns
    -------
    labels : (n,) ndarray of int
        Cluster id per point, ``1..k``; ``0`` marks points that were not
        assigned (their bin is not connected to any seed through occupied
        bins).

    Notes
    -----
    1. Round the positions to the pixel grid and count points per bin.
    2. Seeds: local maxima (plateaus count as one maximum) of the smoothed
       histogram whose 3^ndim neighbourhood holds ``>= min_count`` points.
    3. Grow the seeds over occupied bins by a watershed of the negated
       smoothed histogram restricted to occupied bins (and the seeds), with
       full connectivity, so each occupied blob around a sink is split
       between the sinks it contains along the valleys of the histogram.
    4. Each point takes the label of its bin.

    Sinks of touching cells stay separate peaks as long as they are more
    than about ``2 * smooth_sigma`` pixels apart (the condition for two equal
    Gaussian bumps to keep two maxima), so their cells are split.
    This is Cellpose's idea of finding masks from the histogram of final
    positions [1]_ (Sec. 3.3), with a watershed in place of a fixed number of
    dilations.

    References
    ----------
    .. [1] Le & Nguyen, *Cellpose-SAM* (course report), Sec. 3.3.

    Examples
    --------
    >>> import numpy as np
    >>> pts = np.array([[5.0, 5.0]] * 20 + [[5.2, 9.1]] * 20 + [[5.0, 6.0]])
    >>> lab = cluster_sinks(pts, shape=(12, 12))
    >>> sorted(set(lab[:20].tolist())), sorted(set(lab[20:40].tolist())), int(lab[40])
    ([1], [2], 1)
    """
    from skimage.morphology import local_maxima
    from skimage.segmentation import watershed

    positions = _validate_points(positions, "positions")
    ndim = positions.shape[1]
    shape = _validate_shape(shape, ndim)
    smooth_sigma = validate_number(smooth_sigma, "smooth_sigma", low=0)
    min_count = validate_number(min_count, "min_count", low=1, integer=True)
    if positions.shape[0] == 0:
        return np.zeros(0, dtype=np.intp)

    bins = np.rint(positions).astype(np.intp)
    outside = (bins < 0) | (bins >= np.array(shape))
    if outside.any():
        # Clipping would pile distant points onto the border and merge their sinks.
        row = int(np.flatnonzero(outside.any(axis=1))[0])
        raise ValueError(
            f"positions must lie inside shape {shape} (index coordinates in [0, size - 1], "
            f"as follow_flows returns them); point {row} is {positions[row].tolist()}"
        )
    # Work on the bounding box of occupied bins (plus a margin for the filters).
    margin = int(np.ceil(4 * smooth_sigma)) + 1
    low = np.maximum(bins.min(axis=0) - margin, 0)
    high = np.minimum(bins.max(axis=0) + margin + 1, shape)
    local = bins - low
    box_shape = tuple(int(h - l) for l, h in zip(low, high))
    flat = np.ravel_multi_index(tuple(local.T), box_shape)
    hist = np.bincount(flat, minlength=int(np.prod(box_shape))).reshape(box_shape)

    hist_f = hist.astype(np.float32)
    smooth = ndi.gaussian_filter(hist_f, smooth_sigma, mode="constant") if smooth_sigma > 0 else hist_f
    block = np.rint(ndi.uniform_filter(hist_f, size=3, mode="constant") * 3 ** ndim)
    peaks = local_maxima(smooth, connectivity=ndim, allow_borders=True) & (block >= min_count)
    full = ndi.generate_binary_structure(ndim, ndim)
    markers, n_seeds = ndi.label(peaks, structure=full)
    if n_seeds == 0:
        return np.zeros(positions.shape[0], dtype=np.intp)
    regions = watershed(-smooth, markers, connectivity=ndim, mask=(hist > 0) | peaks)
    point_labels = regions.ravel()[flat]
    # Seeds that captured no point leave gaps: renumber the used ids 1..k.
    used, compact = np.unique(point_labels, return_inverse=True)
    if used[0] != 0:
        compact = compact + 1
    return compact.reshape(-1).astype(np.intp)


# --------------------------------------------------------------------------
# whole pipeline
# --------------------------------------------------------------------------

def _foreground(mask, shape, prob_threshold):
    """Foreground from a boolean mask or a cell-probability map."""
    arr = as_array(mask)
    if np.issubdtype(arr.dtype, np.floating):
        prob = validate_field(arr, "mask", ndims=(len(shape),))
        if prob.shape != tuple(shape):
            raise ValueError(f"mask must have shape {tuple(shape)} (flows.shape[1:]), got {prob.shape}")
        if prob.min() < 0 or prob.max() > 1:
            raise ValueError(
                f"mask as a probability map must lie in [0, 1], got values in "
                f"[{prob.min():.3g}, {prob.max():.3g}] (logits? apply a sigmoid first)"
            )
        return prob > prob_threshold
    return _validate_foreground(arr, shape)


def _remove_small(labels, min_size):
    sizes = np.bincount(labels.ravel())
    small = sizes < min_size
    small[0] = False
    if small.any():
        labels = np.where(small[labels], 0, labels)
    return labels


def _flow_errors(masks, flows):
    """Per-mask sum over components of the mean squared flow difference."""
    from .flows import heat_flows

    n = int(masks.max())
    ideal = heat_flows(masks)
    counts = np.bincount(masks.ravel(), minlength=n + 1)
    sq = np.sum((ideal - flows) ** 2, axis=0)
    err = np.bincount(masks.ravel(), weights=sq.ravel(), minlength=n + 1)
    return err / np.maximum(counts, 1)


def masks_from_flows(flows, mask, n_iter=200, cluster="sinks", step=1.0, suppress=False,
                     eps=2.2, min_samples=15, prob_threshold=0.5, flow_threshold=None,
                     min_size=15, device=None, method="euler"):
    """Instance masks from a flow field and a foreground: follow, cluster, clean up.

    Parameters
    ----------
    flows : (ndim, *spatial) array of float
        Flow field (ndim = 2 or 3), component ``k`` along array axis ``k``.
    mask : (*spatial) array
        Either a boolean foreground mask, or a float cell-probability map
        (values in [0, 1]; logits are refused) whose pixels
        ``> prob_threshold`` are foreground.
    n_iter : int, optional
        Euler steps (Cellpose: 200); >= 1 with ``cluster="sinks"`` (pixels
        that have not moved make no histogram peak), >= 0 with DBSCAN.
    cluster : {"sinks", "dbscan"}, optional
        :func:`cluster_sinks` (histogram peaks, default) or
        :func:`cluster_dbscan`.
    step : float, optional
        Euler step size.
    suppress : bool, optional
        Damp step ``t`` by ``1/(t+1)`` (Omnipose).
    eps, min_samples : float, int, optional
        DBSCAN parameters, used with ``cluster="dbscan"`` (defaults from
        Peters, Sec. 6.4: eps in 2.1-2.3, min_samples 15).
    prob_threshold : float, optional
        Threshold for a probability map, in (0, 1) (Algorithm 1 of Le & Nguyen
        uses 0.5).
    flow_threshold : float or None, optional
        If given, drop masks whose flow error exceeds it (see Notes).
    min_size : int, optional
        Remove objects with fewer pixels.
    device : None, str or torch.device, optional
        Device for the integration (``None``: CUDA if available).
    method : {"euler", "heun"}, optional
        Integration scheme of :func:`follow_flows`.

    Returns
    -------
    labels : (*spatial) ndarray of int32
        Instance labels ``1..n``, 0 on background.

    Notes
    -----
    Steps: threshold the foreground; :func:`follow_flows` from every
    foreground pixel; cluster the final positions; each pixel takes its
    cluster's label (unassigned or noise pixels become background); remove
    objects smaller than ``min_size``; optionally run the flow-error check;
    renumber ``1..n``.

    The flow-error check is Cellpose's quality control: the ideal flows of
    the predicted masks are recomputed with
    :func:`fieldseg_core.flows.heat_flows`, and a mask is dropped when the sum
    over components of the mean (over its pixels) squared difference between
    those and the given flows exceeds ``flow_threshold``. It is meaningful for
    unit-length flows of the heat type.

    References
    ----------
    .. [1] Le & Nguyen, *Cellpose-SAM* (course report), Sec. 3.3 and Algorithm 1.
    .. [2] Peters, *Vector fields for instance segmentation*, Sec. 2 and 6.4.

    Examples
    --------
    >>> import numpy as np
    >>> from fieldseg_core.flows import centroid_flows
    >>> labels = np.zeros((20, 30), dtype=int)
    >>> labels[4:16, 3:15] = 1
    >>> labels[4:16, 15:27] = 2                 # touching squares
    >>> out = masks_from_flows(centroid_flows(labels), labels > 0, device="cpu")
    >>> bool((out[labels == 1] == out[4, 4]).all()), bool((out[labels == 2] == out[4, 20]).all())
    (True, True)
    >>> int(out.max())
    2
    """
    flows = _validate_flow_array(flows)
    shape = flows.shape[1:]
    prob_threshold = validate_number(prob_threshold, "prob_threshold", low=0.0, high=1.0,
                                     low_inclusive=False, high_inclusive=False)
    foreground = _foreground(mask, shape, prob_threshold)
    if cluster not in ("sinks", "dbscan"):
        raise ValueError(f"cluster must be 'sinks' or 'dbscan', got {cluster!r}")
    # Unmoved pixels are one per bin: no histogram peak, so "sinks" needs steps.
    n_iter = validate_number(n_iter, "n_iter", low=1 if cluster == "sinks" else 0, integer=True)
    min_size = validate_number(min_size, "min_size", low=0, integer=True)
    if flow_threshold is not None:
        flow_threshold = validate_number(flow_threshold, "flow_threshold", low=0)
    if cluster == "dbscan":
        eps = validate_number(eps, "eps", low=0, low_inclusive=False)
        min_samples = validate_number(min_samples, "min_samples", low=1, integer=True)

    final = follow_flows(flows, foreground, n_iter=n_iter, step=step, suppress=suppress,
                         device=device, method=method)
    labels = _labels_from_points(final, foreground, cluster, eps, min_samples)
    labels = _remove_small(labels, min_size)
    if flow_threshold is not None and labels.max() > 0:
        labels = compact_labels(labels)[0]
        errors = _flow_errors(labels, flows)
        bad = errors > flow_threshold
        bad[0] = False
        labels = np.where(bad[labels], 0, labels)
    return compact_labels(labels)[0]


# --------------------------------------------------------------------------
# 3D from 2D slices
# --------------------------------------------------------------------------

def stitch_3d(masks_2d, iou_threshold=0.25):
    """Link a stack of independent 2D segmentations into 3D objects by IoU.

    Parameters
    ----------
    masks_2d : (Z, Y, X) array of int
        Per-slice label images; ids need not agree between slices.
    iou_threshold : float, optional
        Minimum IoU for a mask to continue an object of the previous slice
        (``>=`` passes), in (0, 1].

    Returns
    -------
    labels : (Z, Y, X) ndarray of int32
        3D labels ``1..n``, 0 on background.

    Notes
    -----
    Slice by slice, the IoU between every mask of slice ``z`` and every
    (already stitched) object in slice ``z - 1`` is computed at once from the
    pixel-pair histogram of the two slices. Masks and objects are matched
    one-to-one by maximising total IoU (``scipy.optimize.linear_sum_assignment``);
    a matched pair with IoU ``>= iou_threshold`` continues the object, every
    other mask starts a new object. This is Cellpose's stitching mode
    (Le & Nguyen, Table 7, ``stitch_threshold``).

    Known failure: linking only looks at overlap between consecutive slices,
    so two cells stacked along z whose footprints overlap -- one ending in
    slice ``z - 1``, the other starting in slice ``z`` -- become one object.
    Computing 3D flows (:func:`fieldseg_core.flows.flows_from_slices`) avoids
    this.

    References
    ----------
    .. [1] Le & Nguyen, *Cellpose-SAM* (course report), Table 7.

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.zeros((3, 6, 6), dtype=int)
    >>> stack[0, 1:4, 1:4] = 5
    >>> stack[1, 1:4, 1:4] = 2                  # same object, other id
    >>> stack[2, 4:6, 4:6] = 7                  # no overlap: a new object
    >>> out = stitch_3d(stack)
    >>> [int(out[z, 2, 2]) for z in range(2)], int(out[2, 5, 5])
    ([1, 1], 2)
    """
    from scipy.optimize import linear_sum_assignment

    from .metrics import _iou_from_overlap, _overlap_table

    # Compact ids: the per-slice look-up table below is sized by the largest id.
    masks_2d, _ = compact_labels(validate_labels(masks_2d, "masks_2d", ndims=(3,)))
    iou_threshold = validate_number(iou_threshold, "iou_threshold", low=0,
                                    low_inclusive=False, high=1)
    out = np.zeros(masks_2d.shape, dtype=np.int64)
    next_id = 1
    for z in range(masks_2d.shape[0]):
        current = masks_2d[z]
        cur_ids = np.unique(current)
        cur_ids = cur_ids[cur_ids > 0]
        if cur_ids.size == 0:
            continue
        new_ids = np.zeros(cur_ids.size, dtype=np.int64)
        if z > 0 and out[z - 1].any():
            overlap, prev_ids, _ = _overlap_table(out[z - 1], current)
            iou = _iou_from_overlap(overlap)
            rows, cols = linear_sum_assignment(iou, maximize=True)
            good = iou[rows, cols] >= iou_threshold
            new_ids[cols[good]] = prev_ids[rows[good]]
        fresh = new_ids == 0
        new_ids[fresh] = np.arange(next_id, next_id + fresh.sum())
        next_id += int(fresh.sum())
        lookup = np.zeros(int(cur_ids.max()) + 1, dtype=np.int64)
        lookup[cur_ids] = new_ids
        out[z] = lookup[current]
    return compact_labels(out)[0]


# --------------------------------------------------------------------------
# end points -> label image (shared by masks_from_flows and the studies)
# --------------------------------------------------------------------------

def _labels_from_points(points, foreground, cluster, eps, min_samples):
    """Cluster the end points of the foreground pixels and paint the ids back (noise -> 0)."""
    if cluster == "sinks":
        ids = cluster_sinks(points, foreground.shape)
    else:
        ids = cluster_dbscan(points, eps, min_samples) + 1
    labels = np.zeros(foreground.shape, dtype=np.int64)
    labels[foreground] = ids
    return labels


# --------------------------------------------------------------------------
# the interpolated field near a sink (linear stability of the integrators)
# --------------------------------------------------------------------------

def velocity(flows, points):
    """The interpolated flow field at arbitrary points, as the integrators see it.

    Parameters
    ----------
    flows : (ndim, *spatial) array of float
        Flow field, component ``k`` along array axis ``k``.
    points : (P, ndim) array of float
        Positions in index coordinates.

    Returns
    -------
    v : (P, ndim) ndarray of float64
        Bilinearly (2D) or trilinearly (3D) interpolated vectors, with
        positions clamped to ``[0, size - 1]`` along every axis as in
        :func:`euler_integrate` (so ``p + h * velocity(flows, p)`` is one Euler
        step of size ``h`` away from the border).

    Examples
    --------
    >>> import numpy as np
    >>> flows = np.stack([np.zeros((3, 3)), np.arange(9.0).reshape(3, 3)])
    >>> velocity(flows, np.array([[0.5, 1.5]])).tolist()     # mean of 1, 2, 4, 5
    [[0.0, 3.0]]
    """
    flows = _validate_flow_array(flows).astype(np.float64)
    ndim = flows.shape[0]
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != ndim or not np.all(np.isfinite(points)):
        raise ValueError(f"points must be a finite (P, {ndim}) array, got shape {points.shape}")
    upper = np.array(flows.shape[1:], dtype=np.float64) - 1
    coords = np.clip(points, 0.0, upper).T
    return np.stack([ndi.map_coordinates(f, coords, order=1, mode="nearest") for f in flows], axis=1)


def rates_at(flows, point, d=1e-4):
    """Rates of the interpolated field at a sink: eigenvalues of its Jacobian.

    Parameters
    ----------
    flows : (ndim, *spatial) array of float
        Flow field.
    point : (ndim,) array of float
        Where to linearise, usually a sink (where the interpolated vectors cancel).
    d : float
        Half-width of the central differences (pixels), ``> 0``.

    Returns
    -------
    rates : (ndim,) ndarray of float
        Real parts of the eigenvalues of :math:`J_{ij} = \\partial v_i / \\partial x_j`,
        sorted in increasing order (the fastest contraction first).

    Notes
    -----
    Near a sink :math:`s` the field is close to :math:`F(x) \\approx J (x - s)`.
    One Euler step multiplies the offset along an eigenvector with rate
    :math:`\\lambda` by :math:`1 + h\\lambda`, one Heun step by
    :math:`1 + h\\lambda + (h\\lambda)^2/2`; a scheme contracts only while the
    factor has modulus below 1 (Hairer, Nørsett and Wanner, Sec. II.1).
    Bilinear interpolation has kinks on the grid lines, so ``d`` should be
    small against a pixel and ``point`` should not sit on a grid line.

    References
    ----------
    .. [1] E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential
       Equations I*, 2nd ed., Springer, 1993, Sec. II.1.

    Examples
    --------
    >>> import numpy as np
    >>> grid = np.indices((9, 9)).astype(float)
    >>> flows = -np.array([0.5, 1.5])[:, None, None] * (grid - 4.0)   # rates -0.5, -1.5
    >>> np.round(rates_at(flows, np.array([4.2, 3.7])), 6).tolist()
    [-1.5, -0.5]
    """
    flows = _validate_flow_array(flows)
    ndim = flows.shape[0]
    point = np.asarray(point, dtype=np.float64).reshape(-1)
    if point.shape != (ndim,):
        raise ValueError(f"point must have {ndim} coordinates, got shape {point.shape}")
    d = validate_number(d, "d", low=0.0, low_inclusive=False)
    steps = d * np.eye(ndim)
    jacobian = (velocity(flows, point + steps) - velocity(flows, point - steps)).T / (2 * d)
    return np.sort(np.linalg.eigvals(jacobian).real)


__all__ += ["velocity", "rates_at"]


# --------------------------------------------------------------------------
# summaries of integrated trajectories
# --------------------------------------------------------------------------

def settling_step(trajectories, radius=1.0, share=0.95):
    """First step from which a given share of the points stays near its end point.

    Parameters
    ----------
    trajectories : (n_iter + 1, P, ndim) array of float
        Positions after every step, as returned by :func:`follow_flows` with
        ``return_trajectories=True`` (row 0 is the start).
    radius : float
        Distance (pixels) to the final position that counts as "near", ``>= 0``.
    share : float
        Fraction of the points that must be near, in (0, 1].

    Returns
    -------
    step : int
        The smallest ``t`` such that at every step ``>= t`` at least ``share``
        of the points lie within ``radius`` of their final position (the last
        step always qualifies, so ``step <= n_iter``).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([0.0, 3.0, 5.0, 6.0, 6.5, 6.5])          # one point moving along an axis
    >>> settling_step(np.stack([x, np.zeros(6)], -1)[:, None, :], radius=1.0, share=1.0)
    3
    """
    traj = np.asarray(trajectories, dtype=np.float64)
    if traj.ndim != 3 or traj.shape[0] < 1 or traj.shape[1] < 1:
        raise ValueError(f"trajectories must be a (n_iter + 1, P, ndim) array, got shape {traj.shape}")
    radius = validate_number(radius, "radius", low=0.0)
    share = validate_number(share, "share", low=0.0, high=1.0, low_inclusive=False)
    near = np.linalg.norm(traj - traj[-1], axis=-1) <= radius
    ok = near.mean(axis=1) >= share
    # keep only the steps from which on every later step is ok
    stays = np.flip(np.logical_and.accumulate(np.flip(ok)))
    return int(np.argmax(stays))


def end_points_outside(labels, ends):
    """Number of foreground pixels whose end point lies outside their own cell.

    Parameters
    ----------
    labels : (*spatial) array of int
        Label image; its foreground pixels, in raster order, are the start
        points of ``ends`` (the order :func:`follow_flows` uses).
    ends : (P, ndim) array of float
        Final positions, one per foreground pixel.

    Returns
    -------
    n : int
        End points that round to a pixel of another cell or of the background.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[1, 1, 2]])
    >>> end_points_outside(labels, np.array([[0.0, 0.2], [0.0, 1.6], [0.0, 2.0]]))   # the 2nd lands in cell 2
    1
    """
    labels = validate_labels(labels)
    fg = labels > 0
    ends = np.asarray(ends, dtype=np.float64)
    if ends.shape != (int(fg.sum()), labels.ndim):
        raise ValueError(f"ends must have shape {(int(fg.sum()), labels.ndim)} (one row per foreground "
                         f"pixel), got {ends.shape}")
    idx = np.clip(np.rint(ends).astype(np.int64), 0, np.array(labels.shape) - 1)
    return int(np.sum(labels[tuple(idx.T)] != labels[fg]))


__all__ += ["settling_step", "end_points_outside"]
