"""Flow fields: per-pixel unit vectors that lead every cell pixel to its cell's sink.

A flow field turns an instance segmentation into a dense regression target:
each foreground pixel stores a vector, and following those vectors (see
:mod:`fieldseg_core.dynamics`) carries all pixels of one cell to one place,
so that touching cells separate by *where their pixels end up* rather than by a
boundary [1]_, [2]_.

Conventions used throughout this module
---------------------------------------
- Flows are channel-first ``float32`` arrays of shape ``(ndim, *labels.shape)``.
  Component ``k`` is the derivative along array axis ``k``: in 2D,
  ``flows[0]`` is d/d(row) ("dy") and ``flows[1]`` is d/d(col) ("dx"); in 3D
  the components are (dz, dy, dx).
- Positions are array index coordinates ``(row, col)`` in 2D and
  ``(plane, row, col)`` in 3D, the same order as the flow components.
- Background pixels (label 0) always get the zero vector.
- Every function accepts 2D and 3D label images; ids may have gaps.

Constructions
-------------
- :func:`centroid_flows` -- unit vectors to the cell centroid, the simple
  construction used in the re-implementation of [1]_ (Sec. 4.1.1). It fails on
  non-convex cells, whose centroid may lie outside the cell.
- :func:`heat_flows` -- Cellpose's flows: the gradient of a per-cell heat
  diffusion field with its source inside the cell [1]_ (Sec. 3.1).
- :func:`edt_flows` -- Omnipose's flows: the gradient of the per-cell
  Euclidean distance transform, which leads to the cell skeleton [2]_ (Sec. 3).
- :func:`tsdf_flows` -- the gradient of a truncated signed distance field
  taken with a Gaussian-smoothed finite-difference kernel [2]_ (Sec. 4).
- :func:`flows_from_slices` -- 3D flows assembled from 2D flows of the three
  orthogonal slice stacks (Cellpose's 3D mode, [1]_ Table 7).

References
----------
.. [1] Course report on Cellpose-SAM with a from-scratch flow-field
   re-implementation , Sec. 3-4.1 and Table 7.
.. [2] "Vector fields for instance segmentation" (Peters), Sec. 3-4
   and 6.1.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ._labels import bounded_ids
from ._validate import validate_labels, validate_number

__all__ = [
    "centroid_flows",
    "heat_flows",
    "edt_flows",
    "tsdf_flows",
    "flows_from_slices",
]


# --------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------

def _axis_slices(ndim, axis):
    """Index tuples selecting ``[:-1]`` and ``[1:]`` along ``axis``."""
    lo = [slice(None)] * ndim
    hi = [slice(None)] * ndim
    lo[axis] = slice(None, -1)
    hi[axis] = slice(1, None)
    return tuple(lo), tuple(hi)


def _same_cell_gradient(field, labels):
    """Finite-difference gradient that never differences across a cell border.

    Along each axis a pixel uses the central difference when both neighbours
    belong to its cell, the one-sided difference with itself when only one
    does, and 0 when none does. Background pixels get 0.
    """
    field = np.asarray(field, dtype=np.float64)
    grad = np.zeros((labels.ndim,) + labels.shape, dtype=np.float64)
    for axis in range(labels.ndim):
        lo, hi = _axis_slices(labels.ndim, axis)
        # A "pair" is two consecutive pixels along the axis inside one cell.
        same = (labels[lo] == labels[hi]) & (labels[lo] > 0)
        step = np.where(same, field[hi] - field[lo], 0.0)
        total = np.zeros(labels.shape)
        count = np.zeros(labels.shape)
        total[lo] += step          # forward difference of the lower pixel
        total[hi] += step          # backward difference of the upper pixel
        count[lo] += same
        count[hi] += same
        # central difference = mean of forward and backward differences
        grad[axis] = total / np.maximum(count, 1.0)
    return grad


def _unit_vectors(vectors, inside):
    """Scale vectors to unit length inside ``inside``; exact zeros stay zero.

    Returns a float32 array that is 0 outside ``inside`` and wherever the
    input vector is exactly zero.
    """
    norm = np.sqrt(np.sum(np.square(vectors), axis=0))
    keep = inside & (norm > 0)
    out = np.zeros(vectors.shape, dtype=np.float32)
    out[:, keep] = vectors[:, keep] / norm[keep]
    return out


def _same_cell_unit_gradient(field, labels):
    """Unit-length same-cell gradient of ``field``; 0 outside cells and at critical points."""
    return _unit_vectors(_same_cell_gradient(field, labels), labels > 0)


def _validate_kernel_size(kernel_size):
    size = validate_number(kernel_size, "kernel_size", low=3, integer=True)
    if size % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {size}")
    return size


# --------------------------------------------------------------------------
# centroid flows
# --------------------------------------------------------------------------

def centroid_flows(labels, normalisation="unit"):
    """Vectors from each cell pixel toward its cell's centroid, unit or scaled per cell.

    Parameters
    ----------
    labels : (M, N[, P]) array of int
        Label image, 0 = background.
    normalisation : {"unit", "max_distance"}, optional
        The two readings of "normalised vectors pointing to the centroid":
        ``"unit"`` divides each displacement by its own length;
        ``"max_distance"`` divides every displacement of a cell by the
        cell's largest pixel-to-centroid distance ``D``, so lengths run from
        1 at the farthest pixel down to 0 at the centroid.

    Returns
    -------
    flows : (ndim, M, N[, P]) ndarray of float32
        ``flows[k]`` is the component along array axis ``k`` of
        ``(centroid - position) / |centroid - position|`` (``"unit"``) or
        ``(centroid - position) / D`` (``"max_distance"``). It is 0 on the
        background and at a pixel that coincides exactly with its centroid.

    Notes
    -----
    This is the baseline "regression to the centroid" construction of the
    re-implementation in [1]_ (Sec. 4.1.1), reviewed in [2]_ (Sec. 3). The
    centroid is the mean of the cell's pixel coordinates. For a non-convex cell
    (a crescent, a ring) the centroid can lie outside the cell, so the flows
    of the cell lead its pixels out of the cell and into a neighbour -- the
    failure that the gradient-based flows below avoid.

    What the normalisation means for Euler steps of size ``s`` (inside a
    convex cell, where bilinear interpolation of these fields is exact away
    from the border):

    - ``"unit"``: a pixel at distance ``d`` walks straight to the centroid in
      ``ceil(d / s)`` steps, then hops back and forth across it with
      amplitude below ``s``. The largest cell sets the count: about ``D / s``
      steps (15-25 for the cells of the synthetic scenarios), after which the
      end points no longer change.
    - ``"max_distance"``: the field is linear, ``v = (c - x) / D``, so each
      step shrinks the offset by the factor ``1 - s / D``; after ``N`` steps
      ``|x_N - c| = (1 - s / D)^N |x_0 - c|``, which never reaches 0. Bringing
      the farthest pixel within ``delta`` of the sink takes
      ``N = ln(delta / D) / ln(1 - s / D)``, about ``(D / s) ln(D / delta)``
      steps: some 70-120 for ``D`` = 20-30 px and ``delta`` = 0.5 px.

    Only the second reading gives the time scale of Fig. 6 of [1]_, where
    the curves for DBSCAN ``eps`` in ``[1.5, 5]`` come together only after
    about 150 steps and ``N = 20`` still leaves diffuse clouds (Fig. 5); with
    unit vectors every cloud has collapsed by ``N`` of about 20.

    References
    ----------
    .. [1] Le & Nguyen, *Cellpose-SAM* (course report), Sec. 4.1.1 (``labels_to_flows``).
    .. [2] Peters, *Vector fields for instance segmentation*, Sec. 3.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((5, 5), dtype=int)
    >>> labels[1:4, 1:4] = 1
    >>> f = centroid_flows(labels)
    >>> f[:, 1, 2].tolist()          # above the centre: points down (+row)
    [1.0, 0.0]
    >>> f[:, 2, 2].tolist()          # the pixel on the centroid
    [0.0, 0.0]
    >>> g = centroid_flows(labels, normalisation="max_distance")
    >>> round(float(g[0, 1, 2]), 4)  # 1 / sqrt(2): the corners are farthest
    0.7071
    """
    labels = bounded_ids(validate_labels(labels))  # bincount is sized by the largest id
    if normalisation not in ("unit", "max_distance"):
        raise ValueError(
            f"normalisation must be 'unit' or 'max_distance', got {normalisation!r}")
    coords = np.nonzero(labels)
    ids = labels[coords]
    counts = np.bincount(ids)
    safe = np.maximum(counts, 1)
    vectors = np.zeros((labels.ndim,) + labels.shape, dtype=np.float64)
    for axis, c in enumerate(coords):
        centroid = np.bincount(ids, weights=c, minlength=counts.size) / safe
        vectors[(axis,) + coords] = centroid[ids] - c
    if normalisation == "unit":
        return _unit_vectors(vectors, labels > 0)
    # Each cell's largest centroid distance; cells of one pixel have D = 0.
    dist = np.sqrt(np.sum(np.square(vectors[(slice(None),) + coords]), axis=0))
    largest = np.zeros(counts.size)
    np.maximum.at(largest, ids, dist)
    scale = np.where(largest > 0, largest, 1.0)
    vectors[(slice(None),) + coords] /= scale[ids]
    return vectors.astype(np.float32)


# --------------------------------------------------------------------------
# gradient flows of scalar fields
# --------------------------------------------------------------------------

def heat_flows(labels):
    """Cellpose flows: normalised same-cell gradient of a per-cell heat-diffusion field.

    Parameters
    ----------
    labels : (M, N[, P]) array of int
        Label image, 0 = background.

    Returns
    -------
    flows : (ndim, M, N[, P]) ndarray of float32
        Unit vectors inside cells (component ``k`` along array axis ``k``),
        exactly 0 on the background.

    Notes
    -----
    Each cell's field is :func:`fieldseg_core.fields.diffusion_field`: the
    steady state of heat diffusing from a source at the cell pixel nearest its
    centroid, with the cell's outside held at 0, so the field peaks at the
    source (or next to it when the source touches the cell border) [1]_
    (Sec. 3.1). The gradient is taken with finite
    differences between pixels *of the same cell only*: central differences
    where both neighbours along an axis are in the cell, a one-sided
    difference with the pixel itself where one is, and 0 where none is. It is
    then scaled to unit length.

    The gradient vanishes at the sink -- the pixel where the field peaks --
    whenever the central differences there cancel (for instance when the cell
    is symmetric about the source), and at any other pixel whose differences
    are exactly zero (e.g. a single-pixel cell). Such pixels get the zero
    vector rather than an arbitrary direction. Where the differences at the
    peak do not cancel exactly, the peak pixel keeps a unit vector pointing
    to its higher-valued side; points then settle within about a pixel of
    the peak, which the clustering in :mod:`fieldseg_core.dynamics` absorbs.

    Because no difference crosses a cell border, the flows of a cell depend
    only on that cell's mask: removing or changing a touching neighbour leaves
    them unchanged. (Implementations that take the gradient of the whole
    image's field with plain ``np.gradient`` let neighbours perturb each other
    along shared borders.)

    References
    ----------
    .. [1] Le & Nguyen, *Cellpose-SAM* (course report), Sec. 3.1 and 4.1.1.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((7, 7), dtype=int)
    >>> labels[1:6, 1:6] = 1
    >>> f = heat_flows(labels)
    >>> bool(f[0, 1, 3] > 0.99)      # top edge flows down toward the source
    True
    >>> f[:, 3, 3].tolist()          # the source of a symmetric cell
    [0.0, 0.0]
    >>> float(np.abs(f[:, labels == 0]).max())
    0.0
    """
    from .fields import diffusion_field

    labels = validate_labels(labels)
    return _same_cell_unit_gradient(diffusion_field(labels), labels)


def edt_flows(labels):
    """Omnipose-style flows: normalised same-cell gradient of the per-cell distance field.

    Parameters
    ----------
    labels : (M, N[, P]) array of int
        Label image, 0 = background.

    Returns
    -------
    flows : (ndim, M, N[, P]) ndarray of float32
        Unit vectors inside cells, exactly 0 on the background.

    Notes
    -----
    The field is :func:`fieldseg_core.fields.edt_field`, each cell's Euclidean
    distance to its outside divided by the cell's maximum. Its gradient points
    away from the border, toward the cell's skeleton (medial axis) rather than
    its centroid, which is why it also suits non-convex cells [1]_ (Sec. 3).
    Differences are taken between pixels of the same cell only (as in
    :func:`heat_flows`) and scaled to unit length. On the skeleton, where the
    distance has a ridge, the central differences across the ridge cancel;
    pixels where all differences cancel (the maxima of the distance, and flat
    stretches of the ridge, e.g. along the middle of a rectangle) get 0.

    References
    ----------
    .. [1] Peters, *Vector fields for instance segmentation*, Sec. 3 (review of Omnipose).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((7, 7), dtype=int)
    >>> labels[1:6, 1:6] = 1
    >>> f = edt_flows(labels)
    >>> f[:, 1, 3].tolist()          # top edge flows down
    [1.0, 0.0]
    >>> f[:, 3, 3].tolist()          # the distance maximum
    [0.0, 0.0]
    """
    from .fields import edt_field

    labels = bounded_ids(validate_labels(labels))  # edt_field's find_objects is sized by the largest id
    return _same_cell_unit_gradient(edt_field(labels), labels)


# --------------------------------------------------------------------------
# truncated SDF flows
# --------------------------------------------------------------------------

def _smoothed_difference_kernels(kernel_size):
    """1D kernels of the Gaussian-smoothed finite difference.

    Returns ``(derivative, smoothing)``: a Gaussian-weighted antisymmetric
    difference kernel scaled to return slope 1 on a unit ramp, and the
    normalised Gaussian of the same size (sigma = radius / 2).
    """
    radius = kernel_size // 2
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    gauss = np.exp(-0.5 * (offsets / (radius / 2.0)) ** 2)
    derivative = offsets * gauss
    derivative /= np.sum(offsets * derivative)   # exact on linear ramps
    return derivative, gauss / gauss.sum()


def _truncated_sdf(cell, truncation):
    """Signed distance to the border of a boolean mask, positive inside, clipped.

    The border is placed half-way between a cell pixel and its nearest outside
    pixel, so a straight border gives the ramp ..., -1.5, -0.5, 0.5, 1.5, ...
    """
    inside = ndi.distance_transform_edt(cell)
    outside = ndi.distance_transform_edt(~cell)
    sdf = np.where(cell, inside - 0.5, 0.5 - outside)
    return np.clip(sdf, -truncation, truncation)


def tsdf_flows(labels, truncation=10, kernel_size=11, normalize=True):
    """Flows from a truncated signed distance field and a smoothed difference kernel.

    Parameters
    ----------
    labels : (M, N[, P]) array of int
        Label image, 0 = background.
    truncation : float, optional
        Truncation value ``alpha``: the signed distance is clipped to
        ``[-truncation, truncation]``. Peters uses 10.
    kernel_size : int, optional
        Odd size of the Gaussian-smoothed finite-difference kernel (Peters
        uses 11).
    normalize : bool, optional
        Scale the vectors to unit length (default). With ``False`` the raw
        smoothed gradient is returned: about 1 near borders and fading to 0
        on the truncated plateau, as in Peters.

    Returns
    -------
    flows : (ndim, M, N[, P]) ndarray of float32
        Gradient of each cell's truncated SDF at that cell's pixels, 0 on the
        background.

    Notes
    -----
    Construction, following [1]_ (Sec. 4 and 6.1), done for each cell on its
    bounding box enlarged by the kernel radius:

    1. Signed distance field of the cell: inside the cell, the Euclidean
       distance to the nearest non-cell pixel minus 1/2; outside, minus the
       distance to the nearest cell pixel plus 1/2 (the border sits half-way
       between pixel centres, so the field is a unit-slope ramp across a
       straight border). Pixels beyond the image count as outside the cell,
       and so do neighbouring cells: the field -- and hence the flows -- of a
       cell depend on its own mask only.
    2. Truncation: clip to ``[-truncation, truncation]``; deep interior pixels
       form a flat plateau.
    3. Gradient: correlate with a separable Gaussian-smoothed difference
       kernel with radius ``r = kernel_size // 2``: along axis ``k`` the
       weights ``i * g(i)`` for offsets ``i = -r..r`` (``g`` a Gaussian with
       sigma ``r / 2``), scaled so that a unit ramp has slope 1; along every
       other axis the normalised Gaussian ``g``. The signed (rather than
       unsigned) distance keeps the kernel informative where it reaches past
       the border.
    4. Keep the result at the cell's pixels; optionally scale to unit length.

    Where the whole kernel window lies on the plateau (every pixel of the
    window at least ``truncation`` from the border) the gradient is exactly 0
    and so are the flows. Such cells have an extended stable region rather
    than a point sink; Peters pairs these flows with DBSCAN clustering,
    which joins a dense stable region into one cluster.

    References
    ----------
    .. [1] Peters, *Vector fields for instance segmentation*, Sec. 4.1-4.2 and 6.1.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((9, 9), dtype=int)
    >>> labels[2:7, 2:7] = 1
    >>> f = tsdf_flows(labels)
    >>> bool(f[0, 2, 4] > 0.99)      # top edge flows down
    True
    >>> f[:, 4, 4].tolist()          # centre of a symmetric cell
    [0.0, 0.0]
    """
    labels = bounded_ids(validate_labels(labels))  # find_objects is sized by the largest id
    truncation = validate_number(truncation, "truncation", low=0, low_inclusive=False)
    kernel_size = _validate_kernel_size(kernel_size)
    derivative, smoothing = _smoothed_difference_kernels(kernel_size)
    radius = kernel_size // 2
    ndim = labels.ndim

    # Zero padding makes "beyond the image" background and lets every
    # enlarged bounding box fit.
    padded = np.pad(labels, radius)
    grad = np.zeros((ndim,) + padded.shape, dtype=np.float64)
    for index, box in enumerate(ndi.find_objects(padded)):
        if box is None:
            continue
        box = tuple(slice(s.start - radius, s.stop + radius) for s in box)
        cell = padded[box] == index + 1
        sdf = _truncated_sdf(cell, truncation)
        for axis in range(ndim):
            g = ndi.correlate1d(sdf, derivative, axis=axis, mode="nearest")
            for other in range(ndim):
                if other != axis:
                    g = ndi.correlate1d(g, smoothing, axis=other, mode="nearest")
            grad[axis][box][cell] = g[cell]
    inner = tuple(slice(radius, radius + s) for s in labels.shape)
    grad = grad[(slice(None),) + inner]
    if normalize:
        return _unit_vectors(grad, labels > 0)
    return np.where(labels > 0, grad, 0.0).astype(np.float32)


# --------------------------------------------------------------------------
# 3D flows from 2D slices
# --------------------------------------------------------------------------

def _slice_flows(flow_fn, plane):
    """Call a 2D flow function on one slice and check what it returns."""
    if not np.any(plane):
        return np.zeros((2,) + plane.shape, dtype=np.float32)
    out = np.asarray(flow_fn(plane))
    if out.shape != (2,) + plane.shape:
        raise ValueError(
            f"flow_fn must return an array of shape {(2,) + plane.shape} for a 2D slice, "
            f"got {out.shape}"
        )
    if not np.all(np.isfinite(out)):
        # _unit_vectors would turn NaN into zero flows: pixels that never move.
        raise ValueError("flow_fn returned NaN or infinite flows for a 2D slice")
    return out


def flows_from_slices(labels_3d, flow_fn=heat_flows):
    """3D flows assembled from 2D flows of the three orthogonal slice stacks.

    Parameters
    ----------
    labels_3d : (Z, Y, X) array of int
        3D label image, 0 = background.
    flow_fn : callable, optional
        2D flow construction ``flow_fn(labels_2d) -> (2, *labels_2d.shape)``
        with the conventions of this module, e.g. :func:`heat_flows`
        (default), :func:`edt_flows` or :func:`centroid_flows`.

    Returns
    -------
    flows : (3, Z, Y, X) ndarray of float32
        Components (dz, dy, dx), unit length inside cells where the averaged
        vector is non-zero, 0 on the background.

    Notes
    -----
    This is how Cellpose builds 3D flows from a 2D model [1]_ (Table 7):
    ``flow_fn`` is applied to every YX slice (giving dy, dx), every ZX slice
    (dz, dx) and every ZY slice (dz, dy). Each 3D component is thus estimated
    in two slice orientations; the two estimates are averaged and the
    resulting vector is scaled to unit length. Each slice is processed
    independently, so a cell's cross-sections get their own sources; for
    convex cells the averaged flows still lead to one sink per cell.

    References
    ----------
    .. [1] Le & Nguyen, *Cellpose-SAM* (course report), Table 7 (``do_3D=True``).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((5, 5, 5), dtype=int)
    >>> labels[1:4, 1:4, 1:4] = 1
    >>> f = flows_from_slices(labels, flow_fn=centroid_flows)
    >>> f[:, 1, 2, 2].tolist()       # bottom face flows up in z
    [1.0, 0.0, 0.0]
    >>> float(np.abs(f[:, 0]).max())   # background plane
    0.0
    """
    labels_3d = validate_labels(labels_3d, "labels_3d", ndims=(3,))
    if not callable(flow_fn):
        raise TypeError(f"flow_fn must be callable, got {type(flow_fn).__name__}")
    nz, ny, nx = labels_3d.shape
    total = np.zeros((3,) + labels_3d.shape, dtype=np.float64)
    for z in range(nz):                    # YX planes: (dy, dx)
        f = _slice_flows(flow_fn, labels_3d[z])
        total[1, z] += f[0]
        total[2, z] += f[1]
    for y in range(ny):                    # ZX planes: (dz, dx)
        f = _slice_flows(flow_fn, labels_3d[:, y, :])
        total[0, :, y, :] += f[0]
        total[2, :, y, :] += f[1]
    for x in range(nx):                    # ZY planes: (dz, dy)
        f = _slice_flows(flow_fn, labels_3d[:, :, x])
        total[0, :, :, x] += f[0]
        total[1, :, :, x] += f[1]
    # Averaging two estimates halves every component; unit scaling absorbs it.
    return _unit_vectors(total, labels_3d > 0)


# --------------------------------------------------------------------------
# perturbed flows (what a loss should and should not forgive)
# --------------------------------------------------------------------------

def rotate_flows(flows, degrees, where=None):
    """Turn 2D flow vectors by an angle, at chosen pixels.

    Parameters
    ----------
    flows : (2, M, N) array of float
        Flow field, component 0 along rows (dy) and 1 along columns (dx).
    degrees : float or (M, N) array of float
        Angle of the turn; a positive angle turns (dy, dx) = (0, 1) towards
        (-1, 0), i.e. counter-clockwise in an image shown with rows downwards.
    where : (M, N) array of bool, optional
        Pixels to turn (default: all).

    Returns
    -------
    turned : (2, M, N) ndarray of float32

    Examples
    --------
    >>> import numpy as np
    >>> f = np.zeros((2, 1, 2)); f[1] = 1.0          # unit vectors along +col
    >>> np.round(rotate_flows(f, 90, where=np.array([[True, False]])), 6).tolist()
    [[[-1.0, 0.0]], [[0.0, 1.0]]]
    """
    from ._validate import validate_field

    flows = validate_field(flows, "flows", ndims=(3,))
    if flows.shape[0] != 2:
        raise ValueError(f"flows must be a 2D flow field of shape (2, M, N), got {flows.shape}")
    a = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    if a.ndim not in (0, 2) or (a.ndim == 2 and a.shape != flows.shape[1:]):
        raise ValueError(f"degrees must be a number or an array of shape {flows.shape[1:]}, "
                         f"got shape {a.shape}")
    if where is None:
        where = np.ones(flows.shape[1:], dtype=bool)
    where = np.asarray(where, dtype=bool)
    if where.shape != flows.shape[1:]:
        raise ValueError(f"where must have shape {flows.shape[1:]}, got {where.shape}")
    turned = np.stack([np.cos(a) * flows[0] - np.sin(a) * flows[1],
                       np.sin(a) * flows[0] + np.cos(a) * flows[1]])
    return np.where(where, turned, flows).astype(np.float32)


def flow_mse(pred, true, mask):
    """Mean over ``mask`` of the squared vector error ``|pred - true|^2``.

    Examples
    --------
    >>> import numpy as np
    >>> flow_mse(np.ones((2, 1, 2)), np.zeros((2, 1, 2)), np.array([[True, False]]))
    2.0
    """
    from ._validate import validate_field

    pred = validate_field(pred, "pred", ndims=(3, 4))
    true = validate_field(true, "true", ndims=(3, 4))
    if pred.shape != true.shape:
        raise ValueError(f"pred and true must have the same shape, got {pred.shape} and {true.shape}")
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != pred.shape[1:] or not mask.any():
        raise ValueError(f"mask must be a non-empty boolean array of shape {pred.shape[1:]}")
    return float(np.sum((pred - true) ** 2, axis=0)[mask].mean())


def equal_mse_perturbations(flows, labels, n_pixels, seed=0):
    """Four perturbations of a 2D flow field with (nearly) the same mean squared error.

    Parameters
    ----------
    flows : (2, M, N) array of float
        The ideal flows of ``labels`` (e.g. :func:`heat_flows`).
    labels : (M, N) array of int
        Label image, 0 = background.
    n_pixels : int
        Pixels turned by the "scattered" and "vortex" perturbations.
    seed : int
        Seed of the random choices.

    Returns
    -------
    perturbed : dict of str -> (2, M, N) ndarray of float32
        In this order:

        - ``"noise"``: Gaussian noise on every foreground pixel, scaled so
          that its MSE equals that of the vortex;
        - ``"rotation 30 deg"``: every vector turned by 30 degrees;
        - ``"scattered"``: ``n_pixels`` random foreground pixels with nonzero
          vectors, turned by +90 or -90 degrees (random sign);
        - ``"vortex"``: the ``n_pixels`` nonzero-vector pixels nearest their
          cell's source (:func:`fieldseg_core.fields.source_pixels`), turned
          by +90 degrees: a whirlpool around every sink.

    Notes
    -----
    A quarter turn of a unit vector has squared error 2, so "scattered" and
    "vortex" have the same MSE over the foreground by construction (for unit
    flows), and the noise is scaled to the vortex's exactly. A 30 degree turn
    of unit vectors has squared error :math:`2 - 2\\cos 30° \\approx 0.27` per
    pixel, which equals the others when ``n_pixels`` is about 13 % of the
    foreground (chapter 6 takes the number of cell-border pixels, which is
    close to that).
    Chapter 6 uses these to show that the integration-aware loss of Peters
    ranks errors of equal MSE by their effect on the trajectories.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((20, 20), dtype=int); labels[2:18, 2:18] = 1
    >>> f = heat_flows(labels)
    >>> p = equal_mse_perturbations(f, labels, n_pixels=30)
    >>> fg = labels > 0
    >>> round(flow_mse(p["noise"], f, fg), 6) == round(flow_mse(p["vortex"], f, fg), 6)
    True
    """
    from ._validate import validate_field
    from .fields import source_pixels

    labels = validate_labels(labels, ndims=(2,))
    flows = validate_field(flows, "flows", ndims=(3,))
    if flows.shape != (2,) + labels.shape:
        raise ValueError(f"flows must have shape {(2,) + labels.shape}, got {flows.shape}")
    fg = labels > 0
    movable = fg & (np.hypot(*flows) > 0)           # a zero vector cannot be turned
    n_pixels = validate_number(n_pixels, "n_pixels", low=1, high=int(movable.sum()), integer=True)
    rng = np.random.default_rng(validate_number(seed, "seed", low=0, integer=True))

    ids, src = source_pixels(labels)
    source_of = np.zeros((int(labels.max()) + 1, 2))
    source_of[ids] = src
    dist = np.hypot(*(np.indices(labels.shape) - np.moveaxis(source_of[labels], -1, 0)))
    vortex = np.zeros_like(fg)
    vortex.flat[np.argsort(np.where(movable, dist, np.inf), axis=None, kind="stable")[:n_pixels]] = True
    scattered = np.zeros_like(fg)
    scattered.flat[rng.choice(np.flatnonzero(movable), n_pixels, replace=False)] = True

    out = {"vortex": rotate_flows(flows, 90, vortex),
           "scattered": rotate_flows(flows, rng.choice([-90, 90], size=fg.shape), scattered),
           "rotation 30 deg": rotate_flows(flows, 30, fg)}
    target = flow_mse(out["vortex"], flows, fg)
    bumps = rng.standard_normal(flows.shape) * fg
    scale = np.sqrt(target / np.sum(bumps ** 2, axis=0)[fg].mean())
    out["noise"] = (flows + bumps * scale).astype(np.float32)
    return {k: out[k] for k in ("noise", "rotation 30 deg", "scattered", "vortex")}


__all__ += ["rotate_flows", "flow_mse", "equal_mse_perturbations"]
