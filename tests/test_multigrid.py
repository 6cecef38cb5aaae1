"""Tests of fieldseg_core._multigrid: the preconditioners behind the scalar fields."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from fieldseg_core import synthetic
from fieldseg_core._multigrid import (
    AuxiliaryPreconditioner,
    CellGraph,
    MultigridPreconditioner,
    _aggregate,
    _sum_by_aggregate,
    solve_spd,
)


def scene(ndim):
    shape = (96, 96) if ndim == 2 else (24, 40, 40)
    radius = (9, 13) if ndim == 2 else (5, 7)
    return synthetic.random_cells(shape, 12, kind="ellipse", radius_range=radius, overlap=0.4, seed=3)


def hierarchy(graph, A, **kwargs):
    # coarse_size small enough that these small scenes still get several levels
    return MultigridPreconditioner(A, graph.coords(), graph.cell, graph.shape, coarse_size=200,
                                   **kwargs)


def assert_symmetric_operator(M, n, seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(n), rng.standard_normal(n)
    np.testing.assert_allclose(x @ (M @ y), y @ (M @ x), rtol=1e-10)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("smoothed_levels", [None, 1, 0])
def test_multigrid_preconditioner_is_symmetric_and_converges(ndim, smoothed_levels):
    graph = CellGraph(scene(ndim))
    A = graph.operator(1, diagonal=2.0 * ndim)
    M = hierarchy(graph, A, smoothed_levels=smoothed_levels)
    assert len(M.levels) >= 2
    plain = [level.agg is not None for level in M.levels]
    expected = len(M.levels) * [False] if smoothed_levels is None else (
        [i >= smoothed_levels for i in range(len(M.levels))])
    assert plain == expected
    assert_symmetric_operator(M, graph.n)
    b = np.random.default_rng(1).random(graph.n)
    x, n_iter = solve_spd(A, b, M, rtol=1e-10)
    np.testing.assert_allclose(x, spla.spsolve(A.tocsc(), b), rtol=1e-8, atol=1e-10)
    # Unpreconditioned CG needs ~O(diameter) iterations; a broken coarse
    # correction (wrong scaling, wrong transfer) falls back towards that.
    _, plain_cg = solve_spd(A, b, None, rtol=1e-10)
    assert n_iter <= 18 and n_iter < plain_cg / 2


def test_plain_aggregation_operator_is_the_galerkin_product():
    graph = CellGraph(scene(2))
    A = graph.operator(1, diagonal=4.0)
    agg, *_ = _aggregate(graph.coords(), graph.cell, graph.shape)
    nc = int(agg.max()) + 1
    T = sp.csr_matrix((np.ones(graph.n), (np.arange(graph.n), agg)), shape=(graph.n, nc))
    reference = (T.T @ A @ T).toarray()
    np.testing.assert_array_equal(_sum_by_aggregate(A, agg, nc).toarray(), reference)


@pytest.mark.parametrize("ndim", [2, 3])
def test_preconditioners_keep_cells_apart(ndim):
    # Block diagonal: a vector on one cell is mapped to a vector on that cell.
    labels = scene(ndim)
    graph = CellGraph(labels)
    A = graph.operator(1, diagonal=2.0 * ndim)
    one_cell = (graph.cell == graph.cell[graph.n // 2]).astype(float)
    for M in (hierarchy(graph, A), hierarchy(graph, A, smoothed_levels=0)):
        out = M @ one_cell
        assert np.all(out[one_cell == 0] == 0) and np.all(out[one_cell == 1] != 0)


@pytest.mark.parametrize("ndim", [2, 3])
def test_auxiliary_preconditioner_solves_the_box_operator(ndim):
    # The 3**ndim neighbourhood operator of diffusion_field, preconditioned by
    # the face-neighbour Laplacian's hierarchy: symmetric, and CG reaches the
    # direct solution of the assembled matrix in few iterations.
    graph = CellGraph(scene(ndim))
    size = 3**ndim
    B = graph.neighbourhood_operator(diagonal=size - 1.0)
    table = graph.neighbours(ndim)
    rows = np.repeat(np.arange(graph.n), table.shape[1])
    keep = table.ravel() >= 0
    adjacency = sp.csr_matrix((np.ones(keep.sum()), (rows[keep], table.ravel()[keep])),
                              shape=(graph.n, graph.n))
    dense = (size - 1.0) * sp.identity(graph.n) - adjacency
    rng = np.random.default_rng(2)
    v = rng.standard_normal(graph.n)
    np.testing.assert_allclose(B @ v, dense @ v, atol=1e-12)

    poisson = graph.operator(1, diagonal=2.0 * ndim)
    M = AuxiliaryPreconditioner(B, np.full(graph.n, size - 1.0), hierarchy(graph, poisson, n_smooth=1),
                                scale=3.0 ** (ndim - 1))
    assert_symmetric_operator(M, graph.n)
    b = rng.random(graph.n)
    x, n_iter = solve_spd(B, b, M, rtol=1e-10)
    np.testing.assert_allclose(x, spla.spsolve(dense.tocsc(), b), rtol=1e-8, atol=1e-10)
    _, plain_cg = solve_spd(B, b, None, rtol=1e-10)
    assert n_iter <= 18 and n_iter < plain_cg / 2
