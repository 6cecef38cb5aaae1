"""Tests of fieldseg_core.fields: analytic solutions, invariants, bad input."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy import ndimage as ndi

from fieldseg_core.fields import (
    FIELDS,
    diffusion_field,
    edt_field,
    poisson_field,
    separate_touching,
    source_pixels,
)


def disk(shape, center, radius, value=1, out=None):
    grid = np.indices(shape)
    r2 = sum((g - c) ** 2 for g, c in zip(grid, center))
    out = np.zeros(shape, dtype=np.int32) if out is None else out
    out[r2 <= radius**2] = value
    return out


def touching_scene_2d():
    """Three touching disks (overlaps resolved by painting order), ids with gaps."""
    labels = disk((64, 80), (32, 22), 14, value=7)
    disk((64, 80), (32, 45), 13, value=3, out=labels)
    disk((64, 80), (14, 60), 9, value=12, out=labels)
    labels[50:58, 60:75] = 40  # a rectangle, on its own
    return labels


def touching_scene_3d():
    labels = disk((24, 40, 40), (12, 20, 12), 8, value=2)
    disk((24, 40, 40), (12, 20, 27), 8, value=5, out=labels)
    labels[2:5, 2:6, 30:38] = 9
    return labels


def laplacian_same_cell(u, labels):
    """Face-neighbour discrete Laplacian; neighbours outside the cell count as 0."""
    lab = np.pad(labels, 1)
    val = np.pad(u.astype(np.float64), 1)
    inner = (slice(1, -1),) * labels.ndim
    lap = np.zeros(labels.shape)
    for axis in range(labels.ndim):
        for shift in (-1, 1):
            nb_val = np.roll(val, shift, axis=axis)[inner]
            nb_lab = np.roll(lab, shift, axis=axis)[inner]
            lap += np.where(nb_lab == labels, nb_val, 0.0) - u
    return lap


def reference_poisson_lu(labels):
    """Per-cell sparse LU of the 5/7-point system, as Ruiz Vargas et al. describe it."""
    out = np.zeros(labels.shape)
    for cell_id in np.unique(labels[labels > 0]):
        inside = labels == cell_id
        idx = -np.ones(labels.shape, dtype=int)
        idx[inside] = np.arange(inside.sum())
        n = inside.sum()
        A = sp.lil_matrix((n, n))
        coords = np.argwhere(inside)
        for i, c in enumerate(coords):
            A[i, i] = 2 * labels.ndim
            for axis in range(labels.ndim):
                for step in (-1, 1):
                    nb = c.copy()
                    nb[axis] += step
                    if 0 <= nb[axis] < labels.shape[axis] and inside[tuple(nb)]:
                        A[i, idx[tuple(nb)]] = -1
        u = spla.spsolve(A.tocsc(), np.ones(n))
        out[inside] = u / u.max()
    return out


# --- analytic and reference solutions -------------------------------------------------


def test_poisson_residual_is_minus_one_before_normalisation():
    labels = touching_scene_2d()
    u = poisson_field(labels).astype(np.float64)
    lap = laplacian_same_cell(u, labels)
    for cell_id in np.unique(labels[labels > 0]):
        inside = labels == cell_id
        # u = u_raw / m with lap(u_raw) = -1, so lap(u) = -1/m with m = max(u_raw).
        m = -1.0 / lap[inside].mean()
        np.testing.assert_allclose(lap[inside] * m, -1.0, atol=2e-5)
        assert m > 1.0  # the raw peak of a cell this size is well above 1


def test_poisson_matches_per_cell_sparse_lu():
    labels = touching_scene_2d()[16:48, 8:60]
    np.testing.assert_allclose(poisson_field(labels), reference_poisson_lu(labels), atol=1e-6)


def test_poisson_3d_matches_per_cell_sparse_lu():
    labels = touching_scene_3d()[4:20, 10:30, 2:36]
    np.testing.assert_allclose(poisson_field(labels), reference_poisson_lu(labels), atol=1e-6)


@pytest.mark.parametrize("radius", [12, 25, 50])
def test_poisson_of_disk_is_paraboloid(radius):
    # Continuous solution (R^2 - r^2)/4: normalised 1 - r^2/R^2. The discrete
    # boundary sits about half a pixel beyond the last cell pixel; the staircase
    # boundary makes the error O(1/R), so the bound shrinks with the radius.
    size = 2 * radius + 5
    c = size // 2
    labels = disk((size, size), (c, c), radius)
    u = poisson_field(labels)
    r = np.hypot(*(np.indices(labels.shape) - c))
    R = radius + 0.5
    inside = labels > 0
    err = np.abs(u[inside] - (1 - r[inside] ** 2 / R**2))
    assert err.max() < 1.0 / radius and err.mean() < 0.35 / radius


def test_poisson_of_ball_is_paraboloid_3d():
    labels = disk((31, 31, 31), (15, 15, 15), 12)
    u = poisson_field(labels)
    r = np.sqrt(((np.indices(labels.shape) - 15) ** 2).sum(0))
    inside = labels > 0
    err = np.abs(u[inside] - (1 - r[inside] ** 2 / 12.5**2))
    assert err.max() < 0.9 / 12 and err.mean() < 0.35 / 12


@pytest.mark.parametrize("radius", [10, 24, 50])
def test_edt_of_disk_is_cone(radius):
    size = 2 * radius + 5
    c = size // 2
    labels = disk((size, size), (c, c), radius)
    u = edt_field(labels)
    r = np.hypot(*(np.indices(labels.shape) - c))
    inside = labels > 0
    R = radius + 1  # distance from the centre to the first outside pixel on an axis
    err = np.abs(u[inside] - (R - r[inside]) / R)
    assert err.max() < 1.2 / radius and err.mean() < 0.6 / radius


def test_edt_is_exact_euclidean_distance():
    labels = touching_scene_2d()
    u = edt_field(labels)
    for cell_id in np.unique(labels[labels > 0]):
        inside = labels == cell_id
        d = ndi.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1]
        np.testing.assert_allclose(u[inside], d[inside] / d[inside].max(), rtol=1e-6)


# --- diffusion ---------------------------------------------------------------------------


def test_diffusion_iteration_has_converged():
    # The distance to the fixed point follows tol: within a few tol, and clearly
    # not converged further than asked (an ignored tol fails one of the two).
    labels = touching_scene_2d()
    steady = diffusion_field(labels)
    errors = []
    for tol in (1e-2, 1e-3, 1e-4, 1e-6):
        error = np.abs(diffusion_field(labels, method="iterate", tol=tol) - steady).max()
        assert tol / 10 < error < 10 * tol
        errors.append(error)
    assert errors == sorted(errors, reverse=True)


def test_diffusion_iteration_cap_and_unreachable_tol():
    labels = touching_scene_2d()
    with pytest.warns(RuntimeWarning, match="max_iter=5"):
        diffusion_field(labels, method="iterate", tol=1e-6, max_iter=5)
    with pytest.raises(ValueError, match="tol"):
        diffusion_field(labels, method="iterate", tol=1e-17)
    # an explicit cap bounds the work: a tiny tol then runs exactly max_iter steps
    with pytest.warns(RuntimeWarning, match="max_iter=3"):
        three = diffusion_field(labels, method="iterate", tol=1e-300, max_iter=3)
    with pytest.warns(RuntimeWarning):
        np.testing.assert_array_equal(
            three, diffusion_field(labels, method="iterate", tol=1e-3, max_iter=3))


def test_separate_touching_keeps_one_pixel_wide_cells():
    labels = np.zeros((7, 9), dtype=int)
    labels[1:6, 1] = 3            # one pixel wide, next to a larger id
    labels[1:6, 2:7] = 8
    out = separate_touching(labels)
    np.testing.assert_array_equal(out[:, 1], labels[:, 1])   # cell 3 kept whole
    assert np.all(out[1:6, 2] == 0)                           # cell 8 gave up the gap
    np.testing.assert_array_equal(out[1:6, 3:7], 8)
    # a cell two pixels wide still yields its layer, as the rule says
    labels[1:6, 0] = 3
    out = separate_touching(labels)
    np.testing.assert_array_equal(out[1:6, :7], np.tile([3, 0, 8, 8, 8, 8, 8], (5, 1)))


def test_diffusion_steady_is_limit_of_iteration():
    labels = touching_scene_2d()
    steady = diffusion_field(labels)
    iterated = diffusion_field(labels, method="iterate", tol=1e-7)
    np.testing.assert_allclose(iterated, steady, atol=1e-4)


def test_diffusion_steady_is_fixed_point_of_averaging_step():
    # u* = M (u* + e_s) per cell, up to the per-cell normalisation constant.
    labels = touching_scene_2d()
    u = diffusion_field(labels).astype(np.float64)
    ids, src = source_pixels(labels)
    for cell_id, s in zip(ids, src):
        inside = labels == cell_id
        masked = np.where(inside, u, 0.0)
        avg = ndi.uniform_filter(masked, size=3, mode="constant")  # 3x3 mean, 0 outside
        # With u = u_raw / m: u = avg(u) + (1/m) * avg(e_s), avg(e_s) = 1/9 on the source's 3x3.
        e = np.zeros(labels.shape)
        e[tuple(s)] = 1.0
        e_avg = ndi.uniform_filter(e, size=3, mode="constant")
        resid = (u - avg)[inside]
        scale = resid.sum() / e_avg[inside].sum()  # = 1/m
        assert scale > 0
        np.testing.assert_allclose(resid, scale * e_avg[inside], atol=1e-6)


@pytest.mark.parametrize("method", ["steady", "iterate"])
def test_diffusion_peaks_at_source(method):
    labels = touching_scene_2d()
    u = diffusion_field(labels, method=method, tol=1e-4)
    ids, src = source_pixels(labels)
    for cell_id, s in zip(ids, src):
        inside = labels == cell_id
        assert u[tuple(s)] == 1.0
        assert (u[inside] == 1.0).sum() == 1


def test_diffusion_is_sharper_than_poisson():
    # Discretely harmonic away from the source: mass concentrates at the peak.
    labels = disk((41, 41), (20, 20), 18)
    inside = labels > 0
    assert diffusion_field(labels)[inside].mean() < poisson_field(labels)[inside].mean()


def test_source_pixel_of_nonconvex_cell_lies_inside():
    labels = np.zeros((30, 30), dtype=int)
    labels[5:25, 5:9] = 1  # a C shape whose centroid is outside it
    labels[5:9, 5:25] = 1
    labels[21:25, 5:25] = 1
    ids, src = source_pixels(labels)
    assert labels[tuple(src[0])] == 1
    # The source sits on the arm's inner edge. By the discrete maximum principle
    # (u(x) is a sub-unit-weight average of its neighbours wherever the source is
    # not among them) the peak is in the source's 3x3 neighbourhood.
    peak = np.unravel_index(np.argmax(diffusion_field(labels)), labels.shape)
    assert np.abs(np.subtract(peak, src[0])).max() <= 1


# --- invariants shared by every field -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIELDS))
@pytest.mark.parametrize("scene", [touching_scene_2d, touching_scene_3d])
def test_field_invariants(name, scene):
    labels = scene()
    u = FIELDS[name](labels)
    assert u.shape == labels.shape and u.dtype in (np.float32, np.float64)
    assert np.all(u[labels == 0] == 0)
    assert np.all(u[labels > 0] > 0)
    for cell_id in np.unique(labels[labels > 0]):
        assert u[labels == cell_id].max() == 1.0


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_touching_neighbour_does_not_change_field(name):
    labels = touching_scene_2d()
    alone = np.where(labels == 3, labels, 0)
    np.testing.assert_allclose(FIELDS[name](labels)[labels == 3], FIELDS[name](alone)[labels == 3], atol=1e-6)


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_field_independent_of_id_values(name):
    labels = touching_scene_2d()
    relabelled = np.zeros_like(labels)
    for new, old in enumerate([40, 3, 12, 7], start=1):
        relabelled[labels == old] = new * 1000
    np.testing.assert_allclose(FIELDS[name](labels), FIELDS[name](relabelled), atol=1e-6)


@pytest.mark.parametrize("name", sorted(FIELDS))
@pytest.mark.parametrize("shape", [(16, 16), (5, 8, 8)])
def test_all_background_gives_zero_field(name, shape):
    u = FIELDS[name](np.zeros(shape, dtype=np.uint8))
    assert u.shape == shape and not u.any()


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_one_pixel_cell_gets_one(name):
    labels = np.zeros((5, 5), dtype=int)
    labels[2, 2] = 4
    labels[0, 0] = 1  # a one-pixel cell in the corner, cut by the border
    u = FIELDS[name](labels)
    assert u[2, 2] == 1.0 and u[0, 0] == 1.0 and u.sum() == 2.0


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_bad_labels_raise(name):
    f = FIELDS[name]
    with pytest.raises(TypeError, match="labels"):
        f(np.ones((4, 4), dtype=float))
    with pytest.raises(ValueError, match="negative"):
        f(-np.ones((4, 4), dtype=int))
    with pytest.raises(ValueError, match="2D or 3D"):
        f(np.ones(4, dtype=int))
    with pytest.raises(ValueError, match="2D or 3D"):
        f(np.ones((2, 2, 2, 2), dtype=int))
    with pytest.raises(ValueError, match="empty"):
        f(np.zeros((0, 4), dtype=int))


def test_bad_parameters_raise():
    labels = touching_scene_2d()
    with pytest.raises(ValueError, match="method"):
        diffusion_field(labels, method="explicit")
    with pytest.raises(ValueError, match="tol"):
        diffusion_field(labels, method="iterate", tol=0)
    with pytest.raises(TypeError, match="max_iter"):
        diffusion_field(labels, method="iterate", max_iter=2.5)
    with pytest.raises(ValueError, match="rtol"):
        poisson_field(labels, rtol=0)


def test_iteration_cap_warns():
    labels = disk((41, 41), (20, 20), 18)
    with pytest.warns(RuntimeWarning, match="did not reach"):
        diffusion_field(labels, method="iterate", max_iter=5)


# --- signed distance (the SDF paper) ------------------------------------------------


def test_signed_distance_is_exact_and_changes_sign_at_the_border():
    from fieldseg_core.fields import signed_distance_field

    labels = disk((41, 41), (20, 20), 12)
    phi = signed_distance_field(labels)
    mask = labels > 0
    np.testing.assert_allclose(phi[mask], ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1][mask])
    np.testing.assert_allclose(phi[~mask], -ndi.distance_transform_edt(~mask)[~mask])
    # |grad phi| ~ 1 (Eikonal) away from the centre and the staircase border
    gy, gx = np.gradient(phi.astype(float))
    r = np.hypot(*(np.indices(labels.shape) - 20))
    ring = (r > 4) & (r < 9)
    assert np.abs(np.hypot(gy, gx)[ring] - 1).mean() < 0.05


def test_signed_distance_separates_touching_cells():
    from fieldseg_core.fields import separate_touching, signed_distance_field

    labels = touching_scene_2d()
    gap = separate_touching(labels)
    # every cell keeps its identity and loses only border pixels
    assert set(np.unique(gap)) == set(np.unique(labels))
    assert np.all((gap == labels) | (gap == 0))
    # no two different cells touch any more (3x3 neighbourhood)
    mx = ndi.maximum_filter(gap, size=3, mode="constant")
    assert not np.any((gap > 0) & (mx > gap))
    phi = signed_distance_field(labels)
    assert np.all(phi[gap > 0] >= 1) and np.all(phi[gap == 0] <= -1)
    # without separation the touching border stays positive
    assert (signed_distance_field(labels, separate=False) > 0).sum() == (labels > 0).sum()


def test_signed_distance_truncation_and_bad_input():
    from fieldseg_core.fields import signed_distance_field

    labels = touching_scene_3d()
    phi = signed_distance_field(labels, truncation=3)
    assert phi.max() == 3 and phi.min() == -3 and phi.dtype == np.float32
    assert np.all(signed_distance_field(np.zeros((4, 4), int), truncation=2) == -2)
    with pytest.raises(ValueError, match="truncation"):
        signed_distance_field(np.zeros((4, 4), int))
    with pytest.raises(ValueError, match="truncation"):
        signed_distance_field(labels, truncation=-1)
