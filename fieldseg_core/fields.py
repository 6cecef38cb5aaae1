"""Per-cell scalar fields: Poisson, diffusion and Euclidean distance.

Each function turns an integer label image (2D or 3D, 0 = background, ids may
have gaps) into one floating-point field of the same shape. The field is built
independently in every cell and then divided by that cell's maximum, so that

- it is exactly 0 on background,
- every cell pixel is > 0 and every cell's maximum is exactly 1,
- touching cells never influence each other.

The image border counts as outside every cell (as if the image were padded with
background), so a cell cut by the border has its field go to zero there.

These are the regression targets of Ruiz Vargas et al., *Single tensor cell
segmentation using scalar field representations*: a
network predicts one such field and the watershed of
:func:`fieldseg_core.segment.watershed_from_field` turns it into instances.

References
----------
.. [1] K. I. Ruiz Vargas, G. G. Galdino, T. I. Ren, A. L. Cunha, "Single tensor
   cell segmentation using scalar field representations", sec. 2.1.
.. [2] L. Gorelick, M. Galun, E. Sharon, R. Basri, A. Brandt, "Shape
   representation and classification using the Poisson equation", IEEE TPAMI
   28(12), 2006.
.. [3] C. Stringer, T. Wang, M. Michaelos, M. Pachitariu, "Cellpose: a
   generalist algorithm for cellular segmentation", Nat. Methods 18, 2021.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage as ndi

from ._labels import bounded_ids, compact_ids
from ._multigrid import AuxiliaryPreconditioner, CellGraph, MultigridPreconditioner, solve_spd
from ._validate import validate_labels, validate_number

__all__ = [
    "poisson_field",
    "diffusion_field",
    "edt_field",
    "source_pixels",
    "normalize_per_cell",
    "separate_touching",
    "signed_distance_field",
    "FIELDS",
]


def normalize_per_cell(values, cells):
    """Divide node values by the maximum of their cell.

    Parameters
    ----------
    values : ndarray, shape (n,)
        Positive, finite values, one per foreground pixel.
    cells : ndarray of int, shape (n,)
        Cell id of each value (non-negative; gaps and huge ids allowed).

    Returns
    -------
    ndarray of float64, shape (n,)
        ``values / max(values of the same cell)``, in (0, 1].

    Raises
    ------
    ValueError
        If the shapes differ or are not 1D, or a value is not finite and > 0
        (a cell whose maximum is 0 or negative has no normalisation).
    TypeError
        If ``values`` is not real or ``cells`` not integer.

    Examples
    --------
    >>> import numpy as np
    >>> normalize_per_cell(np.array([1., 2., 3., 6.]), np.array([5, 5, 9, 9])).tolist()
    [0.5, 1.0, 0.5, 1.0]
    """
    values = np.asarray(values)
    if values.dtype == bool or not (np.issubdtype(values.dtype, np.floating)
                                    or np.issubdtype(values.dtype, np.integer)):
        raise TypeError(f"values must be a real-valued array, got dtype {values.dtype}")
    cells = np.asarray(cells)
    if not np.issubdtype(cells.dtype, np.integer):
        raise TypeError(f"cells must be an integer array of cell ids, got dtype {cells.dtype}")
    if values.ndim != 1 or cells.shape != values.shape:
        raise ValueError(f"values and cells must be 1D arrays of one shape, got {values.shape} "
                         f"and {cells.shape}")
    if values.size and not (np.all(np.isfinite(values)) and values.min() > 0):
        raise ValueError("values must be finite and > 0 (each cell is divided by its maximum)")
    if cells.size and cells.min() < 0:
        raise ValueError(f"cells must not contain negative ids, found {cells.min()}")
    return _normalize_per_cell(values.astype(np.float64, copy=False), cells)


def _normalize_per_cell(values, cells):
    """:func:`normalize_per_cell` without the checks, for the solvers' own output."""
    _, inverse = compact_ids(cells)
    maxima = np.full(inverse.max() + 1 if inverse.size else 0, -np.inf)
    np.maximum.at(maxima, inverse, values)
    return values / maxima[inverse]


def _source_nodes(graph):
    """Node index of each cell's source: the cell pixel nearest its centroid.

    Ties are broken by the lowest raveled position, so the choice is
    deterministic. Returns ``(cell_ids, node_indices)`` sorted by cell id.
    """
    ids, inverse = compact_ids(graph.cell)
    coords = graph.coords().astype(np.float64)
    counts = np.bincount(inverse).astype(np.float64)
    centroid = np.stack(
        [np.bincount(inverse, weights=c) / counts for c in coords.T], axis=1
    )
    d2 = ((coords - centroid[inverse]) ** 2).sum(axis=1)
    nearest = np.full(ids.size, np.inf)
    np.minimum.at(nearest, inverse, d2)
    # Nodes are in raveled order, so a cell's first candidate is the lowest
    # raveled position among its nearest pixels.
    candidates = np.flatnonzero(d2 == nearest[inverse])
    _, first = np.unique(inverse[candidates], return_index=True)
    return ids, candidates[first]


def source_pixels(labels):
    """Source pixel of every cell: the cell pixel nearest the cell's centroid.

    For a convex cell this is (a pixel next to) the centroid; for a non-convex
    cell, whose centroid may lie outside it, it is still inside the cell.

    Parameters
    ----------
    labels : (M, N[, P]) array of int
        Label image, 0 = background.

    Returns
    -------
    ids : ndarray of int, shape (k,)
        Cell ids in increasing order.
    coords : ndarray of int, shape (k, ndim)
        Grid coordinates of each cell's source pixel.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((5, 7), dtype=int)
    >>> labels[1:4, 1:4] = 3
    >>> ids, coords = source_pixels(labels)
    >>> ids.tolist(), coords.tolist()
    ([3], [[2, 2]])
    """
    labels = validate_labels(labels)
    graph = CellGraph(labels)
    if graph.n == 0:
        return np.zeros(0, dtype=labels.dtype), np.zeros((0, labels.ndim), dtype=np.int64)
    ids, nodes = _source_nodes(graph)
    return ids, graph.coords()[nodes]


def _multigrid(graph, A, n_smooth=2):
    # In 3D the smoothed-aggregation coarse operators fill in fast (7 -> ~26 ->
    # ~76 entries per row), and their products took most of the set-up; plain
    # aggregation below the first level was faster overall (the Poisson solve
    # on the dense benchmark volume: 0.84 -> 0.67 s), although CG takes a few
    # more iterations (9 -> 11). In 2D full smoothed aggregation stays faster.
    smoothed_levels = None if len(graph.shape) == 2 else 1
    return MultigridPreconditioner(A, graph.coords(), graph.cell, graph.shape, n_smooth=n_smooth,
                                   smoothed_levels=smoothed_levels)


def poisson_field(labels, rtol=1e-8):
    r"""Per-cell solution of the Poisson equation :math:`\Delta u = -1`, normalised.

    In every cell :math:`\Omega_k` solves the discrete problem

    .. math:: \sum_{y \in \mathcal{N}(x)} \bigl(u(y) - u(x)\bigr) = -1, \quad x \in \Omega_k,
              \qquad u = 0 \text{ outside } \Omega_k,

    with :math:`\mathcal{N}(x)` the :math:`2\cdot\mathrm{ndim}` face neighbours
    (the 5-point stencil in 2D, 7-point in 3D), then divides by the cell's
    maximum. A neighbour in another cell counts as outside, so touching cells do
    not couple.

    Parameters
    ----------
    labels : (M, N[, P]) array of int
        Label image, 0 = background; ids may have gaps.
    rtol : float, optional
        Relative residual at which the linear solve stops (default 1e-8, i.e.
        converged to far below float32 resolution).

    Returns
    -------
    field : ndarray of float32, same shape as ``labels``
        0 on background, in (0, 1] inside cells, each cell's maximum is 1.

    Notes
    -----
    The linear system :math:`A u = \mathbf{1}` with
    :math:`A = 2\,\mathrm{ndim}\, I - \mathrm{Adj}` (Adj: same-cell face
    neighbours) is symmetric positive definite and block diagonal, one block per
    cell. Ruiz Vargas et al. solves it with a sparse LU per cell; here all cells are
    solved in one conjugate-gradient solve preconditioned by an aggregation
    multigrid V-cycle (:mod:`fieldseg_core._multigrid`), which converges in
    about ten iterations whatever the cell size and avoids the fill-in that
    makes LU slow in 3D. A :class:`RuntimeError` is raised if the
    solve does not reach ``rtol``.

    For a disk of radius :math:`R` the continuous solution is
    :math:`(R^2 - r^2)/4`, so the normalised field is :math:`1 - r^2/R^2`.

    References
    ----------
    .. [1] Ruiz Vargas et al., sec. 2.1.2 (Poisson regression targets).
    .. [2] Gorelick et al., IEEE TPAMI 28(12), 2006.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((7, 7), dtype=int)
    >>> labels[1:6, 1:6] = 1
    >>> u = poisson_field(labels)
    >>> float(u[3, 3]), float(u[0, 0])
    (1.0, 0.0)
    >>> bool(u[1, 1] < u[2, 2] < u[3, 3])
    True
    """
    labels = validate_labels(labels)
    rtol = validate_number(rtol, "rtol", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    graph = CellGraph(labels)
    if graph.n == 0:
        return np.zeros(labels.shape, dtype=np.float32)
    A = graph.operator(1, diagonal=2.0 * labels.ndim)
    u, _ = solve_spd(A, np.ones(graph.n), _multigrid(graph, A), rtol=rtol)
    return graph.scatter(_normalize_per_cell(u, graph.cell))


def _source_indicator(graph):
    """Vector with 1 on every cell's source node, 0 elsewhere."""
    _, sources = _source_nodes(graph)
    e_s = np.zeros(graph.n)
    e_s[sources] = 1.0
    return e_s


def _diffusion_steady(graph, ndim, rtol):
    """Steady state of ``u <- M (u + e_s)``: solve ``(I - M) u = M e_s``.

    With ``size = 3**ndim`` and ``Adj`` the same-cell neighbour matrix,
    ``size * M = I + Adj`` and ``A = size * (I - M) = (size - 1) I - Adj``,
    so ``size * M v = size * v - A v`` needs only ``A``.
    """
    size = 3**ndim
    # A is an M-matrix, SPD because every cell has a pixel losing heat outside.
    A = graph.neighbourhood_operator(diagonal=size - 1.0)
    e_s = _source_indicator(graph)
    # The face-neighbour Laplacian of the same cells is spectrally equivalent
    # and far cheaper to coarsen than the 3**ndim stencil, so its multigrid
    # hierarchy gives the coarse levels; on smooth errors A is 3**(ndim - 1)
    # times it (sum of the squared offsets of the 3**ndim box, halved, per
    # axis). The fine level smooths with A itself: against smoothing with the
    # Laplacian, CG needs 7 instead of 15 iterations in 2D and 13 instead of
    # 17 in 3D on the benchmark scenes. One sweep per level: the cycle only
    # approximates A, so cheaper cycles beat the iterations a second saves.
    poisson = graph.operator(1, diagonal=2.0 * ndim)
    hierarchy = _multigrid(graph, poisson, n_smooth=1)
    preconditioner = AuxiliaryPreconditioner(A, np.full(graph.n, size - 1.0), hierarchy,
                                             scale=3.0 ** (ndim - 1), n_smooth=1)
    u, _ = solve_spd(A, size * e_s - A @ e_s, preconditioner, rtol=rtol)
    return u


def _diffusion_iterate(graph, ndim, tol, max_iter):
    """Explicit source-injection + averaging iteration with per-cell stopping."""
    size = 3**ndim
    A = graph.neighbourhood_operator(diagonal=size - 1.0)
    e_s = _source_indicator(graph)
    _, cell_index = compact_ids(graph.cell)
    n_cells = cell_index.max() + 1
    if max_iter is None:
        # Relaxation time grows with cell area; this bound is generous.
        max_iter = 50 * int(np.bincount(cell_index).max()) + 1000
    u = np.zeros(graph.n)
    active = np.ones(n_cells, dtype=bool)
    n_iter = np.zeros(n_cells, dtype=np.int64)
    for _ in range(max_iter):
        v = u + e_s
        step = (size * v - A @ v) / size - u  # M (u + e_s) - u
        step[~active[cell_index]] = 0.0  # converged cells stay frozen
        u += step
        n_iter += active
        change = np.sqrt(np.bincount(cell_index, weights=step * step, minlength=n_cells))
        active &= change >= tol
        if not active.any():
            break
    if active.any():
        warnings.warn(
            f"diffusion_field: {int(active.sum())} cell(s) did not reach tol={tol} "
            f"within max_iter={max_iter} iterations",
            RuntimeWarning,
            stacklevel=3,
        )
    return u, n_iter


def _connected_pieces(labels):
    """Label image whose cells are the connected pieces (3**ndim neighbourhood) of each cell.

    Ids come out compact (1..k), whatever the input ids.
    """
    from skimage.measure import label

    return label(labels, background=0, connectivity=labels.ndim)


def _check_reachable_tol(tol, graph):
    """Refuse a ``tol`` below the rounding noise of the per-cell update norm.

    Near the fixed point each update is a float64 difference of values of
    size ``max u``, so its norm over a cell of ``n`` pixels does not drop
    below about ``eps * max u * sqrt(n)``; ``max u`` grows like ``log n``
    (heat kernel of a point source). The floor below is 8 times that.
    """
    n_max = int(np.bincount(compact_ids(graph.cell)[1]).max())
    floor = 8.0 * np.finfo(np.float64).eps * np.sqrt(n_max) * (1.0 + np.log(n_max))
    if tol < floor:
        raise ValueError(
            f"tol must be >= {floor:.1e} for the largest cell ({n_max} pixels): a smaller "
            f"per-cell change is below float64 rounding and would never be reached, got {tol!r}"
        )


def diffusion_field(labels, tol=0.01, max_iter=None, method="steady", rtol=1e-8):
    r"""Per-cell heat-diffusion field from a source at the cell's centre, normalised.

    Ruiz Vargas et al. (sec. 2.1.1) builds this field by repeating, for all cells at once,

    .. math::
        u^{(t+1/2)} = u^{(t)} + \sum_k \mathbf{1}\{x = c_k\}, \qquad
        u^{(t+1)}(x) = \frac{1}{3^{d}} \sum_{y \in \mathcal{N}(x) \cap \Omega_k} u^{(t+1/2)}(y),

    where :math:`c_k` is the source (the cell pixel nearest the centroid,
    :func:`source_pixels`) and :math:`\mathcal{N}(x)` the :math:`3^d`
    neighbourhood of :math:`x` including :math:`x`. A cell stops when
    :math:`\|u_k^{(t+1)} - u_k^{(t)}\|_2 < \mathrm{tol}`. Each cell is then
    divided by its maximum.

    Parameters
    ----------
    labels : (M, N[, P]) array of int
        Label image, 0 = background; ids may have gaps.
    tol : float, optional
        Per-cell stopping threshold of ``method="iterate"`` (Ruiz Vargas et al. uses 0.01).
    max_iter : int, optional
        Iteration cap of ``method="iterate"``; default ``50 * (largest cell
        size) + 1000``, which bounds the work before the iteration starts. A
        :class:`RuntimeWarning` names the cells that did not converge.
        Without ``max_iter``, a ``tol`` below the float64 rounding of the
        update (about ``1e-16 * sqrt(size) * log(size)``) raises a
        :class:`ValueError` up front rather than running to the cap; with it,
        such a ``tol`` runs exactly ``max_iter`` steps.
    method : {"steady", "iterate"}
        ``"steady"`` (default) solves directly for the fixed point of the
        iteration; ``"iterate"`` runs the iteration above, as in Ruiz Vargas et al..
    rtol : float, optional
        Relative residual of the linear solve of ``method="steady"``.

    Returns
    -------
    field : ndarray of float32, same shape as ``labels``
        0 on background, in (0, 1] inside cells, each cell's maximum is 1.
        The maximum is at the source when the source's whole neighbourhood
        lies in the cell, and always within that neighbourhood (maximum
        principle: away from it every value is an average of its neighbours
        with weights summing to at most 1).

    Notes
    -----
    *Cells in several pieces.* A cell id present in several connected
    pieces (full :math:`3^d` connectivity) is diffused piece by piece: each
    piece gets its own source (its pixel nearest its own centroid) and is
    divided by its own maximum, so every piece is > 0 with maximum 1. One
    source for the whole cell would leave the pieces without it at 0, since
    no heat crosses the background between them.

    *Boundary convention.* The average always divides by :math:`3^d`;
    neighbours outside the cell (background, another cell, or beyond the image
    border) contribute 0. So no heat ever comes from a neighbouring cell, and
    heat that would flow out of the cell is lost: the cell is held at 0 just
    outside its border (an absorbing, Dirichlet-type condition). If instead one
    divided by the number of in-cell neighbours (an insulated, zero-flux
    boundary), the constantly injected heat could never leave and :math:`u`
    would grow without bound, with no steady state.

    *Why there is a steady state.* Write the update as
    :math:`u \leftarrow M(u + e_s)` with :math:`M` the masked averaging matrix.
    :math:`M` is symmetric and non-negative with row sums :math:`\le 1`, and
    strictly below 1 on pixels next to the border, which every finite cell has;
    it is irreducible on a connected cell, so its spectral radius is below 1.
    The iteration therefore converges geometrically, from any start, to the
    unique fixed point :math:`u^* = (I - M)^{-1} M e_s`. Away from the source
    :math:`u^*` equals its own neighbourhood mean (it is discretely harmonic),
    which gives the sharp peak at the source.

    ``method="steady"`` solves :math:`3^d (I - M) u = 3^d M e_s`, a symmetric
    positive-definite system, by multigrid-preconditioned conjugate gradients:
    this is the limit of the iteration as ``tol`` goes to 0 and is much
    faster. The iteration stopped at ``tol = 0.01`` is close to it but not
    identical (large cells relax slowly); chapter 2 of the book compares them.

    References
    ----------
    .. [1] Ruiz Vargas et al., sec. 2.1.1 (diffusion regression targets).
    .. [2] Stringer et al., Nat. Methods 18, 2021 (heat diffusion from the
       cell centre, Cellpose).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((9, 9), dtype=int)
    >>> labels[2:7, 2:7] = 1
    >>> u = diffusion_field(labels)
    >>> float(u[4, 4]), float(u[0, 0])
    (1.0, 0.0)
    >>> v = diffusion_field(labels, method="iterate", tol=1e-9)
    >>> bool(np.abs(u - v).max() < 1e-6)
    True
    """
    labels = validate_labels(labels)
    if method not in ("steady", "iterate"):
        raise ValueError(f"method must be 'steady' or 'iterate', got {method!r}")
    tol = validate_number(tol, "tol", low=0.0, low_inclusive=False)
    rtol = validate_number(rtol, "rtol", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    if max_iter is not None:
        max_iter = validate_number(max_iter, "max_iter", low=1, integer=True)
    graph = CellGraph(_connected_pieces(labels))
    if graph.n == 0:
        return np.zeros(labels.shape, dtype=np.float32)
    if method == "iterate" and max_iter is None:
        # With an explicit max_iter the caller has bounded the work (a tiny tol
        # then means "run exactly max_iter steps"); with the default cap an
        # unreachable tol would only run to it, for seconds to minutes.
        _check_reachable_tol(tol, graph)
    if method == "steady":
        u = _diffusion_steady(graph, labels.ndim, rtol)
    else:
        u, _ = _diffusion_iterate(graph, labels.ndim, tol, max_iter)
    return graph.scatter(_normalize_per_cell(u, graph.cell))


def edt_field(labels):
    """Per-cell Euclidean distance to the nearest pixel outside the cell, normalised.

    Parameters
    ----------
    labels : (M, N[, P]) array of int
        Label image, 0 = background; ids may have gaps.

    Returns
    -------
    field : ndarray of float32, same shape as ``labels``
        0 on background, in (0, 1] inside cells, each cell's maximum is 1.

    Notes
    -----
    "Outside" means background, any other cell, or beyond the image border, so
    a pixel on a cell's border has distance 1 and touching cells are measured
    independently. Each cell is processed on its bounding box padded by one
    pixel of background (:func:`scipy.ndimage.distance_transform_edt`); the
    distance is exact (Euclidean, not chamfer). For a disk of radius :math:`R`
    the normalised field is close to :math:`(R - r)/R`.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((1, 5), dtype=int)
    >>> labels[0, :] = 2
    >>> edt_field(labels).tolist()
    [[1.0, 1.0, 1.0, 1.0, 1.0]]
    >>> labels = np.zeros((7, 7), dtype=int)
    >>> labels[1:6, 1:6] = 1
    >>> (3 * edt_field(labels)[3, 1:6]).round(4).tolist()
    [1.0, 2.0, 3.0, 2.0, 1.0]
    """
    labels = bounded_ids(validate_labels(labels))  # find_objects is sized by the largest id
    out = np.zeros(labels.shape, dtype=np.float32)
    for index, box in enumerate(ndi.find_objects(labels)):
        if box is None:
            continue
        inside = np.pad(labels[box] == index + 1, 1)
        dist = ndi.distance_transform_edt(inside)[(slice(1, -1),) * labels.ndim]
        cell = inside[(slice(1, -1),) * labels.ndim]
        out[box][cell] = dist[cell] / dist.max()
    return out


def separate_touching(labels):
    """Background a one-pixel gap between touching cells.

    A cell pixel becomes background when one of its 3**ndim neighbours belongs
    to a cell with a *larger* id, so each shared border loses one layer of
    pixels (from the cell with the smaller id). A cell that this rule would
    erase completely (one pixel wide along a larger id) keeps its pixels, and
    its neighbours give up the pixels that touch it instead, so every cell
    keeps its identity and at least one pixel. The SDF paper separates
    touching cells like this before computing the signed distance of the
    binary mask.

    Parameters
    ----------
    labels : (M, N[, P]) array of int
        Label image, 0 = background.

    Returns
    -------
    ndarray
        Copy of ``labels`` with the gap pixels set to 0.

    Notes
    -----
    Only where two cells that are each too thin to give up a layer touch
    (both would vanish) do they stay in contact; both keep all their pixels.

    Examples
    --------
    >>> import numpy as np
    >>> separate_touching(np.array([[1, 1, 2, 2]])).tolist()
    [[1, 0, 2, 2]]
    >>> separate_touching(np.array([[1, 2, 2, 2]])).tolist()   # cell 1 is one pixel wide
    [[1, 0, 2, 2]]
    """
    labels = validate_labels(labels)
    full = ndi.generate_binary_structure(labels.ndim, labels.ndim)
    compact = bounded_ids(labels)  # the bincounts below are sized by the largest id
    cell = compact > 0
    largest_neighbour = ndi.maximum_filter(compact, footprint=full, mode="constant", cval=0)
    gap = cell & (largest_neighbour > compact)

    def erased(gap):
        # cells all of whose pixels are in the gap
        total = np.bincount(compact.ravel())
        lost = np.bincount(compact[gap], minlength=total.size)
        gone = lost == total
        gone[0] = False
        return gone[compact]

    protected = erased(gap)
    if protected.any():
        # The erased cells keep their pixels; their neighbours yield instead.
        gap = (gap & ~protected) | (ndi.binary_dilation(protected, full) & cell & ~protected)
        gap &= ~erased(gap)  # two such thin cells touching: both stay whole
    out = labels.copy()
    out[gap] = 0
    return out


def signed_distance_field(labels, separate=True, truncation=None):
    r"""Signed Euclidean distance to the boundary of the cell mask (the SDF paper).

    .. math::
        \phi(x) = \begin{cases} d(x, \partial\omega) & x \in \omega \\
                   -d(x, \partial\omega) & x \notin \omega \end{cases}

    with :math:`\omega` the union of all cells. Distances are measured between
    pixel centres: a cell pixel's value is its distance to the nearest
    non-cell pixel (>= 1) and a background pixel's is minus its distance to
    the nearest cell pixel (<= -1), so the zero level set lies between them.

    Parameters
    ----------
    labels : (M, N[, P]) array of int
        Label image, 0 = background.
    separate : bool
        First open a one-pixel gap between touching cells
        (:func:`separate_touching`), so that their shared border is a zero
        crossing of :math:`\phi` and the instances can be recovered.
    truncation : float, optional
        Clip :math:`\phi` to ``[-truncation, truncation]``.

    Returns
    -------
    phi : ndarray of float32
        Signed distance in pixels, positive inside cells. An all-background
        image gives ``-truncation`` everywhere when truncated, otherwise the
        negative distance is undefined and a ValueError is raised.

    Notes
    -----
    Unlike the fields above, :math:`\phi` is not normalised per cell: it is a
    geometric distance, and the SDF paper turns it into probabilities with a
    (learnable) sigmoid :math:`\sigma(\alpha\phi + \beta)`, whose soft
    boundary map :math:`\sigma(\phi)\sigma(-\phi)` peaks on the zero level set.

    References
    ----------
    .. [1] The SDF paper, *Boundary-aware instance segmentation with signed
       distance functions*, sec. 2 (Eq. 3) and preprocessing.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((7, 7), dtype=int)
    >>> labels[1:6, 1:6] = 1
    >>> signed_distance_field(labels)[3].tolist()
    [-1.0, 1.0, 2.0, 3.0, 2.0, 1.0, -1.0]
    """
    labels = validate_labels(labels)
    if truncation is not None:
        truncation = validate_number(truncation, "truncation", low=0.0, low_inclusive=False)
    mask = (separate_touching(labels) if separate else labels) > 0
    if not mask.any():
        if truncation is None:
            raise ValueError("labels has no cell pixels: the signed distance is undefined "
                             "without a truncation")
        return np.full(labels.shape, -truncation, dtype=np.float32)
    # The image border counts as outside the cells, as for the other fields.
    inside = ndi.distance_transform_edt(np.pad(mask, 1))[(slice(1, -1),) * labels.ndim]
    outside = ndi.distance_transform_edt(~mask)
    phi = np.where(mask, inside, -outside)
    if truncation is not None:
        phi = np.clip(phi, -truncation, truncation)
    return phi.astype(np.float32)


#: The scalar fields by name, for loops over representations.
FIELDS = {"poisson": poisson_field, "diffusion": diffusion_field, "edt": edt_field}
