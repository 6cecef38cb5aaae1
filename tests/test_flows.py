"""Tests for fieldseg_core.flows: flow constructions from label images."""

import numpy as np
import pytest

from fieldseg_core import flows as F
from fieldseg_core.flows import (
    centroid_flows,
    edt_flows,
    flows_from_slices,
    heat_flows,
    tsdf_flows,
)

GRADIENT_FLOWS = [heat_flows, edt_flows, tsdf_flows]
ALL_FLOWS = [centroid_flows] + GRADIENT_FLOWS


# --------------------------------------------------------------------------
# scenes (built here, independent of fieldseg_core.synthetic)
# --------------------------------------------------------------------------

def test_scenes_are_touching_and_connected(scene2d, scene3d):
    from scipy import ndimage as ndi

    for lab in (scene2d, scene3d):
        ids = np.unique(lab)[1:]
        assert all(ndi.label(lab == i)[1] == 1 for i in ids)
        # some pair of different cells shares a face
        assert any(np.any((a > 0) & (b > 0) & (a != b))
                   for a, b in (face_pairs(lab, ax) for ax in range(lab.ndim)))


def face_pairs(lab, axis):
    lo = [slice(None)] * lab.ndim
    hi = [slice(None)] * lab.ndim
    lo[axis], hi[axis] = slice(None, -1), slice(1, None)
    return lab[tuple(lo)], lab[tuple(hi)]


# --------------------------------------------------------------------------
# unit length inside, zero outside
# --------------------------------------------------------------------------

@pytest.mark.parametrize("flow_fn", ALL_FLOWS)
@pytest.mark.parametrize("which", ["scene2d", "scene3d"])
def test_unit_inside_zero_outside(flow_fn, which, request):
    lab = request.getfixturevalue(which)
    f = flow_fn(lab)
    assert f.shape == (lab.ndim,) + lab.shape
    assert f.dtype == np.float32
    assert np.all(f[:, lab == 0] == 0)
    norm = np.sqrt((f.astype(np.float64) ** 2).sum(0))[lab > 0]
    nonzero = norm > 0
    np.testing.assert_allclose(norm[nonzero], 1.0, atol=1e-6)
    # documented zero vectors (sinks; for the distance field also flat
    # stretches of the discrete ridge) are rare in every cell
    zeros_per_cell = np.bincount(lab[lab > 0][~nonzero], minlength=lab.max() + 1)[1:]
    sizes = np.bincount(lab.ravel())[1:]
    allowed = np.maximum(3, 0.03 * sizes) if flow_fn is edt_flows else 3
    assert np.all(zeros_per_cell <= allowed)


@pytest.mark.parametrize("flow_fn", ALL_FLOWS)
def test_ids_with_gaps_give_same_flows_as_consecutive_ids(flow_fn, scene2d):
    sparse_ids = np.array([0, 7, 8, 1000, 3, 55, 9, 12], dtype=np.int64)
    np.testing.assert_allclose(flow_fn(sparse_ids[scene2d]), flow_fn(scene2d), atol=1e-5)


# --------------------------------------------------------------------------
# same-cell finite differences (reference implementation with loops)
# --------------------------------------------------------------------------

def reference_same_cell_gradient(field, labels):
    grad = np.zeros((labels.ndim,) + labels.shape)
    for idx in np.ndindex(labels.shape):
        if labels[idx] == 0:
            continue
        for axis in range(labels.ndim):
            diffs = []
            for sign in (-1, 1):
                nb = list(idx)
                nb[axis] += sign
                if 0 <= nb[axis] < labels.shape[axis] and labels[tuple(nb)] == labels[idx]:
                    diffs.append(sign * (field[tuple(nb)] - field[idx]))
            grad[(axis,) + idx] = np.mean(diffs) if diffs else 0.0
    return grad


@pytest.mark.parametrize("shape", [(9, 11), (5, 6, 7)])
def test_same_cell_gradient_matches_reference(shape):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=shape)
    field = rng.normal(size=shape)
    got = F._same_cell_gradient(field, labels)
    np.testing.assert_allclose(got, reference_same_cell_gradient(field, labels), atol=1e-12)


def test_heat_flows_equal_normalised_gradient_of_diffusion_field(scene2d):
    from fieldseg_core.fields import diffusion_field

    field = diffusion_field(scene2d)
    g = reference_same_cell_gradient(field, scene2d)
    n = np.sqrt((g ** 2).sum(0))
    expected = np.where(n > 0, g / np.where(n > 0, n, 1), 0)
    np.testing.assert_allclose(heat_flows(scene2d), expected, atol=1e-5)


# --------------------------------------------------------------------------
# locality and symmetry
# --------------------------------------------------------------------------

@pytest.mark.parametrize("flow_fn", ALL_FLOWS)
@pytest.mark.parametrize("which", ["scene2d", "scene3d"])
def test_removing_a_touching_neighbour_leaves_flows_unchanged(flow_fn, which, request):
    lab = request.getfixturevalue(which)
    f = flow_fn(lab)
    for removed in np.unique(lab)[1:3]:
        reduced = np.where(lab == removed, 0, lab)
        # the removed cell touches at least one remaining cell
        grown = np.zeros_like(lab, bool)
        for ax in range(lab.ndim):
            grown |= np.roll(lab == removed, 1, ax) | np.roll(lab == removed, -1, ax)
        assert np.any(grown & (reduced > 0))
        g = flow_fn(reduced)
        keep = reduced > 0
        # heat flows come from an iterative solve: tiny differences only
        np.testing.assert_allclose(g[:, keep], f[:, keep], atol=1e-4)


@pytest.mark.parametrize("flow_fn", [heat_flows, edt_flows, tsdf_flows, centroid_flows])
@pytest.mark.parametrize("which", ["scene2d", "scene3d"])
def test_flip_negates_component(flow_fn, which, request):
    lab = request.getfixturevalue(which)
    f = flow_fn(lab)
    for axis in range(lab.ndim):
        flipped = flow_fn(np.flip(lab, axis))
        expected = np.flip(f, axis + 1).copy()
        expected[axis] *= -1
        # the heat source is the pixel nearest the centroid; a tie there could
        # move the sink, so allow a handful of differing pixels
        bad = np.abs(flipped - expected).max(0) > 1e-4
        assert bad.sum() <= 3


# --------------------------------------------------------------------------
# construction-specific checks
# --------------------------------------------------------------------------

def test_centroid_flows_point_at_centroid(scene2d):
    f = centroid_flows(scene2d).astype(np.float64)
    for cid in np.unique(scene2d)[1:]:
        coords = np.argwhere(scene2d == cid).astype(float)
        to_centre = coords.mean(0) - coords
        v = f[:, scene2d == cid].T
        dist = np.linalg.norm(to_centre, axis=1)
        np.testing.assert_allclose(v * dist[:, None], to_centre, atol=1e-5)


def test_centroid_flows_zero_exactly_at_integer_centroid():
    lab = np.zeros((7, 7), int)
    lab[1:6, 2:5] = 3                      # centroid (3, 3) is a pixel
    f = centroid_flows(lab)
    assert f[:, 3, 3].tolist() == [0.0, 0.0]
    assert np.count_nonzero(np.linalg.norm(f, axis=0)) == (lab > 0).sum() - 1


def test_non_convex_cell_centroid_leaves_cell_heat_stays():
    from fieldseg_core.dynamics import follow_flows

    yy, xx = np.mgrid[:48, :48]
    r = np.hypot(yy - 24, xx - 24)
    crescent = ((r < 20) & (r > 9) & (xx < 30)).astype(int)   # centroid in the hole
    centroid = np.argwhere(crescent).mean(0).round().astype(int)
    assert crescent[tuple(centroid)] == 0
    mask = crescent > 0
    ends_c = np.rint(follow_flows(centroid_flows(crescent), mask, device="cpu")).astype(int)
    ends_h = np.rint(follow_flows(heat_flows(crescent), mask, device="cpu")).astype(int)
    assert np.mean(crescent[tuple(ends_c.T)] == 0) > 0.5
    assert np.all(crescent[tuple(ends_h.T)] == 1)


def test_heat_flows_lead_to_source():
    from fieldseg_core.fields import source_pixels

    lab = np.zeros((30, 30), int)
    lab[5:25, 8:20] = 1
    f = heat_flows(lab)
    _, src = source_pixels(lab)
    src = np.asarray(src)[0]
    coords = np.argwhere(lab > 0)
    to_src = src - coords
    dot = (f[:, lab > 0].T * to_src).sum(1)
    far = np.linalg.norm(to_src, axis=1) > 0
    assert np.all(dot[far] > 0)


def test_edt_flows_point_away_from_nearest_border():
    lab = np.zeros((30, 40), int)
    lab[5:25, 5:35] = 1
    f = edt_flows(lab)
    # pixels on the top border row (away from the corners) flow straight down
    assert np.all(f[:, 5, 10:30].T == [1.0, 0.0])
    assert np.all(f[:, 24, 10:30].T == [-1.0, 0.0])


def test_tsdf_gradient_is_unit_ramp_slope_and_zero_on_plateau():
    lab = np.zeros((80, 80), int)
    lab[10:70, 10:70] = 1
    raw = tsdf_flows(lab, truncation=10, kernel_size=11, normalize=False)
    # within 4 px of a straight border the window sees the exact ramp -> slope 1
    np.testing.assert_allclose(raw[:, 10:15, 30:50], np.stack([np.ones((5, 20)), np.zeros((5, 20))]),
                               atol=1e-9)
    # window entirely >= truncation deep: exactly zero (row 25 = depth 15.5 - 5)
    assert np.all(raw[:, 25:55, 25:55] == 0)
    assert np.all(raw[:, 15:25, 40][0] > 0)
    unit = tsdf_flows(lab)
    np.testing.assert_array_equal(unit[:, 25:55, 25:55], 0)


def test_tsdf_points_inward_on_disk():
    yy, xx = np.mgrid[:60, :60]
    r = np.hypot(yy - 30, xx - 30)
    lab = (r < 22).astype(int)
    f = tsdf_flows(lab)
    ring = (r > 14) & (r < 22)
    inward = np.stack([30 - yy, 30 - xx])[:, ring] / r[ring]
    cos = (f[:, ring] * inward).sum(0)
    assert cos.min() > 0.95


def test_tsdf_kernel_properties():
    d, g = F._smoothed_difference_kernels(11)
    offsets = np.arange(-5, 6)
    np.testing.assert_allclose(d, -d[::-1])
    np.testing.assert_allclose((d * offsets).sum(), 1.0)
    np.testing.assert_allclose(g.sum(), 1.0)
    assert np.argmax(g) == 5


# --------------------------------------------------------------------------
# 3D from slices
# --------------------------------------------------------------------------

def test_flows_from_slices_on_box_with_centroid_flows():
    lab = np.zeros((7, 7, 7), int)
    lab[1:6, 1:6, 1:6] = 1
    f = flows_from_slices(lab, flow_fn=centroid_flows)
    # corner (1, 1, 1): each slice estimate is (1, 1)/sqrt2 -> average is diagonal
    np.testing.assert_allclose(f[:, 1, 1, 1], np.ones(3) / np.sqrt(3), atol=1e-6)
    # face centre (1, 3, 3): only dz survives
    np.testing.assert_allclose(f[:, 1, 3, 3], [1, 0, 0], atol=1e-7)
    assert np.all(f[:, lab == 0] == 0)


def test_flows_from_slices_heat_unit_and_recovers_cells(scene3d):
    from fieldseg_core.dynamics import masks_from_flows

    f = flows_from_slices(scene3d)
    n = np.linalg.norm(f, axis=0)
    assert np.all(n[scene3d == 0] == 0)
    assert np.mean(np.abs(n[scene3d > 0] - 1) < 1e-5) > 0.99
    out = masks_from_flows(f, scene3d > 0, device="cpu")
    assert_same_partition(out, scene3d)


def test_flows_from_slices_checks_flow_fn():
    lab = np.zeros((4, 5, 6), int)
    lab[1:3, 1:4, 1:5] = 1
    with pytest.raises(TypeError, match="flow_fn"):
        flows_from_slices(lab, flow_fn="heat")
    with pytest.raises(ValueError, match="flow_fn"):
        flows_from_slices(lab, flow_fn=lambda l: np.zeros((3,) + l.shape))
    with pytest.raises(ValueError, match="labels_3d"):
        flows_from_slices(lab[0])


def assert_same_partition(pred, true):
    """Foreground identical and a one-to-one map between predicted and true ids."""
    np.testing.assert_array_equal(pred > 0, true > 0)
    fg = true > 0
    pairs = np.unique(np.stack([pred[fg], true[fg]]), axis=1)
    assert pairs.shape[1] == len(np.unique(true[fg])) == len(np.unique(pred[fg]))


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------

@pytest.mark.parametrize("flow_fn", ALL_FLOWS)
def test_bad_labels_raise(flow_fn):
    with pytest.raises(TypeError, match="labels"):
        flow_fn(np.ones((5, 5), dtype=float))
    with pytest.raises(ValueError, match="labels"):
        flow_fn(np.ones(5, dtype=int))
    with pytest.raises(ValueError, match="labels"):
        flow_fn(-np.ones((5, 5), dtype=int))


def test_tsdf_bad_parameters():
    lab = np.ones((5, 5), int)
    with pytest.raises(ValueError, match="kernel_size"):
        tsdf_flows(lab, kernel_size=4)
    with pytest.raises(ValueError, match="kernel_size"):
        tsdf_flows(lab, kernel_size=1)
    with pytest.raises(TypeError, match="kernel_size"):
        tsdf_flows(lab, kernel_size=5.0)
    with pytest.raises(ValueError, match="truncation"):
        tsdf_flows(lab, truncation=0)


def test_empty_scene_gives_zero_flows():
    lab = np.zeros((6, 7), int)
    for fn in ALL_FLOWS:
        assert np.all(fn(lab) == 0)


# --------------------------------------------------------------------------
# the two readings of "normalised vectors pointing to the centroid"
# --------------------------------------------------------------------------

def _disk(radius=10, size=31):
    c = size // 2
    yy, xx = np.mgrid[:size, :size]
    return ((yy - c) ** 2 + (xx - c) ** 2 <= radius ** 2).astype(np.int32), c, yy, xx


def test_centroid_flows_unit_on_a_disk_match_the_closed_form():
    labels, c, yy, xx = _disk()
    f = F.centroid_flows(labels, normalisation="unit")
    inside = (labels > 0) & ((yy != c) | (xx != c))
    r = np.maximum(np.hypot(yy - c, xx - c), 1.0)   # the centre pixel is excluded
    np.testing.assert_allclose(f[0][inside], ((c - yy) / r)[inside], atol=1e-6)
    np.testing.assert_allclose(f[1][inside], ((c - xx) / r)[inside], atol=1e-6)
    assert f[:, c, c].tolist() == [0.0, 0.0] and not f[:, labels == 0].any()


def test_centroid_flows_max_distance_on_a_disk_match_the_closed_form():
    # the farthest pixel centres of a digital disk of radius 10 are at distance 10
    labels, c, yy, xx = _disk(radius=10)
    f = F.centroid_flows(labels, normalisation="max_distance")
    inside = labels > 0
    np.testing.assert_allclose(f[0][inside], ((c - yy) / 10.0)[inside], atol=1e-6)
    np.testing.assert_allclose(f[1][inside], ((c - xx) / 10.0)[inside], atol=1e-6)
    assert np.abs(np.hypot(f[0], f[1])).max() == pytest.approx(1.0)
    # two cells: each scaled by its own largest distance
    two = np.zeros((31, 62), np.int32)
    two[:, :31] = labels
    two[5:26, 31 + 5:31 + 26] = 2 * (_disk(radius=5, size=21)[0] > 0)
    g = F.centroid_flows(two, normalisation="max_distance")
    assert g[1, 15, 31 + 15 - 5] == pytest.approx(1.0)   # left edge of the small disk
    assert g[1, 15, 5] == pytest.approx(1.0)              # left edge of the large disk


def test_euler_steps_on_max_distance_flows_contract_geometrically():
    # v = (c - x) / D is linear, so N Euler steps of size s give
    # x_N - c = (1 - s / D)^N (x_0 - c) wherever bilinear sampling stays inside.
    from fieldseg_core.dynamics import follow_flows

    labels, c, yy, xx = _disk(radius=10)
    f = F.centroid_flows(labels, normalisation="max_distance")
    inner = (np.hypot(yy - c, xx - c) <= 8)
    for n in (1, 5, 30):
        end = follow_flows(f, inner, n_iter=n, step=1.0, device="cpu")
        start = np.argwhere(inner).astype(float)
        np.testing.assert_allclose(end - c, (start - c) * 0.9 ** n, atol=1e-4)


def test_euler_steps_on_unit_flows_reach_the_centre_in_distance_steps():
    from fieldseg_core.dynamics import follow_flows

    labels = np.zeros((1, 41), np.int32)
    labels[0, 5:36] = 1                                 # a segment, centroid at column 20
    f = F.centroid_flows(labels, normalisation="unit")
    end = follow_flows(f, labels > 0, n_iter=15, step=1.0, device="cpu")
    # every pixel walks one column per step until it reaches column 20, then stays within 1
    start = np.arange(5, 36)
    expect = np.where(np.abs(start - 20) <= 15, 20, start + 15 * np.sign(20 - start))
    assert np.all(np.abs(end[:, 1] - expect) <= 1.0)
    assert np.all(np.abs(end[:, 1] - 20) <= 1.0)


def test_centroid_flows_reject_an_unknown_normalisation():
    with pytest.raises(ValueError, match="normalisation"):
        F.centroid_flows(np.ones((3, 3), int), normalisation="sqrt")
