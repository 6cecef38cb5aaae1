"""Tests for fieldseg_core.data: targets, flip-aware augmentation, the synthetic dataset, tiling."""

import numpy as np
import pytest
import torch
from skimage.measure import regionprops

from fieldseg_core.data import (
    SDF_TRUNCATION,
    SyntheticCells,
    augment,
    make_target,
    predict_tiled,
    random_augment,
    spatial_transform,
    tile_starts,
    target_channels,
)
from fieldseg_core.fields import FIELDS, signed_distance_field, source_pixels
from fieldseg_core.flows import heat_flows
from fieldseg_core.synthetic import random_cells

REPRESENTATIONS = ("poisson", "diffusion", "edt", "flows", "sdf")
# The seven non-trivial symmetries of the square: (flip_axes, quarter turns).
SYMMETRIES = [((0,), 0), ((1,), 0), ((), 1), ((), 2), ((), 3), ((0,), 1), ((1,), 1)]


@pytest.fixture(scope="module")
def scene():
    """Touching ellipses on a square image."""
    labels = random_cells((48, 48), 5, kind="ellipse", radius_range=(5, 8), overlap=0.4,
                          seed=3, placement="clustered")
    return labels


def _touching(labels):
    a, b = labels[:, :-1], labels[:, 1:]
    c, d = labels[:-1], labels[1:]
    return bool(((a != b) & (a > 0) & (b > 0)).any() or ((c != d) & (c > 0) & (d > 0)).any())


# --------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------

@pytest.mark.parametrize("representation", REPRESENTATIONS)
def test_target_shape_dtype_and_channels(scene, representation):
    target = make_target(scene, representation)
    assert target.dtype == np.float32
    assert target.shape == (target_channels(representation),) + scene.shape
    assert np.isfinite(target).all()


@pytest.mark.parametrize("name", ["poisson", "diffusion", "edt"])
def test_scalar_target_is_the_field(scene, name):
    np.testing.assert_array_equal(make_target(scene, name)[0], FIELDS[name](scene))


def test_flow_target_is_heat_flows_plus_probability(scene):
    target = make_target(scene, "flows")
    np.testing.assert_array_equal(target[:2], heat_flows(scene))
    np.testing.assert_array_equal(target[2], (scene > 0).astype(np.float32))


def test_sdf_target_is_truncated_separated_distance(scene):
    target = make_target(scene, "sdf")[0]
    np.testing.assert_array_equal(target, np.clip(signed_distance_field(scene), -10, 10))
    assert target.min() == -SDF_TRUNCATION          # the scene has far background
    # Touching cells are separated: a zero crossing between every pair of neighbours.
    assert _touching(scene) and not _touching(np.where(target > 0, scene, 0))


def test_sdf_target_of_an_empty_image_is_defined():
    assert (make_target(np.zeros((5, 6), int), "sdf") == -SDF_TRUNCATION).all()


def test_target_3d_flows_have_four_channels():
    labels = np.zeros((5, 7, 7), int)
    labels[1:4, 1:6, 1:6] = 2
    assert make_target(labels, "flows").shape == (4, 5, 7, 7)


def test_make_target_rejects_bad_input(scene):
    with pytest.raises(ValueError, match="representation"):
        make_target(scene, "cellpose")
    with pytest.raises(TypeError, match="labels"):
        make_target(scene.astype(float), "edt")


# --------------------------------------------------------------------------
# augmentation
# --------------------------------------------------------------------------

def _source_image(labels):
    """Image holding each cell's id at its source pixel (the sink of its heat flows)."""
    ids, coords = source_pixels(labels)
    out = np.zeros(labels.shape, int)
    out[tuple(coords.T)] = ids
    return out


@pytest.mark.parametrize("flips,k", SYMMETRIES)
def test_flow_augmentation_is_equivariant(flips, k):
    """augment(flows(labels)) == flows(augment(labels)), cell by cell.

    Heat flows are built from the diffusion field of a source at the cell
    pixel nearest the centroid. When two pixels are equally near, the source
    is the first in raster order, which a flip or rotation changes; such a
    cell gets a different (equally valid) flow field. Every other step
    (Poisson-type solve, same-cell gradient, normalisation) commutes with the
    symmetries, so on cells whose source pixel moves with the transform the
    flows must agree to solver precision -- and those are compared.
    """
    compared = total = 0
    for seed in range(3):
        labels = random_cells((40, 40), 4, kind="mixed", radius_range=(5, 8), overlap=0.4,
                              seed=seed, placement="clustered")
        moved = spatial_transform(labels, flips, k)
        _, augmented = augment(np.zeros(labels.shape, np.float32), make_target(labels, "flows"),
                               "flows", flip_axes=flips, rot90=k)
        recomputed = make_target(moved, "flows")
        np.testing.assert_array_equal(augmented[2], recomputed[2])
        moved_source = spatial_transform(_source_image(labels), flips, k)
        new_source = _source_image(moved)
        for cell in np.unique(moved[moved > 0]):
            total += 1
            inside = moved == cell
            if not np.array_equal(moved_source == cell, new_source == cell):
                continue            # source tie broken differently after the transform
            compared += 1
            np.testing.assert_allclose(augmented[:2, inside], recomputed[:2, inside], atol=1e-4)
    assert compared >= 0.6 * total and compared >= 6


def test_flows_without_the_sign_fix_would_not_match(scene):
    # The comparison above can fail: merely moving the flow components is wrong.
    flows = make_target(scene, "flows")[:2]
    moved = spatial_transform(flows, (1,), 0)
    recomputed = make_target(spatial_transform(scene, (1,), 0), "flows")[:2]
    assert np.abs(moved[1] - recomputed[1]).max() > 1.0


@pytest.mark.parametrize("representation", ["poisson", "edt", "sdf"])
@pytest.mark.parametrize("flips,k", SYMMETRIES)
def test_scalar_augmentation_commutes_with_the_target(scene, representation, flips, k):
    _, augmented = augment(np.zeros(scene.shape), make_target(scene, representation),
                           representation, flip_axes=flips, rot90=k)
    recomputed = make_target(spatial_transform(scene, flips, k), representation)
    np.testing.assert_allclose(augmented, recomputed, atol=1e-5)


def test_flow_vector_of_one_pixel_by_hand():
    target = np.zeros((3, 3, 4), np.float32)
    target[:, 0, 1] = [0.6, 0.8, 1.0]   # (d/drow, d/dcol, probability) at (0, 1)
    _, t = augment(np.zeros((3, 4)), target, "flows", flip_axes=(0,))
    np.testing.assert_allclose(t[:, 2, 1], [-0.6, 0.8, 1.0])
    # quarter turn: pixel (r, c) -> (W-1-c, r) = (2, 0); (v_r, v_c) -> (-v_c, v_r)
    _, t = augment(np.zeros((3, 4)), target, "flows", rot90=1)
    assert t.shape == (3, 4, 3)
    np.testing.assert_allclose(t[:, 2, 0], [-0.8, 0.6, 1.0])


def test_augmentation_group_identities(scene):
    target = make_target(scene, "flows")
    image = np.random.default_rng(0).random(scene.shape).astype(np.float32)
    im4, t4 = image, target
    for _ in range(4):
        im4, t4 = augment(im4, t4, "flows", rot90=1)
    np.testing.assert_array_equal(t4, target)
    np.testing.assert_array_equal(im4, image)
    # a half turn is the flip of both axes
    np.testing.assert_array_equal(augment(image, target, "flows", rot90=2)[1],
                                  augment(image, target, "flows", flip_axes=(0, 1))[1])


def test_random_augment_is_one_of_the_symmetries_and_reproducible(scene):
    target = make_target(scene, "flows")
    image = np.random.default_rng(1).random((1,) + scene.shape).astype(np.float32)
    seen = set()
    for seed in range(12):
        im, t = random_augment(image, target, "flows", rng=seed)
        im2, t2 = random_augment(image, target, "flows", rng=np.random.default_rng(seed))
        np.testing.assert_array_equal(t, t2)
        matches = [(f, k) for f in [(), (0,), (1,), (0, 1)] for k in range(4)
                   if np.array_equal(augment(image, target, "flows", f, k)[1], t)]
        assert matches and np.array_equal(augment(image, target, "flows", *matches[0])[0], im)
        seen.add(t.tobytes())
    assert len(seen) > 3


def test_augment_rejects_bad_input(scene):
    target = make_target(scene, "flows")
    with pytest.raises(ValueError, match="target must have 3 channels"):
        augment(np.zeros(scene.shape), target[:2], "flows")
    with pytest.raises(ValueError, match="flip_axes"):
        augment(np.zeros(scene.shape), target, "flows", flip_axes=(2,))
    with pytest.raises(ValueError, match="same spatial shape"):
        augment(np.zeros((10, 10)), target, "flows")
    with pytest.raises(ValueError, match="representation"):
        augment(np.zeros(scene.shape), target, "vectors")
    with pytest.raises(TypeError, match="rot90"):
        augment(np.zeros(scene.shape), target, "flows", rot90=1.5)


# --------------------------------------------------------------------------
# dataset
# --------------------------------------------------------------------------

SMALL = dict(shape=(40, 40), n_cells_range=(2, 4), radius_range=(4, 7))


@pytest.mark.parametrize("representation", REPRESENTATIONS)
def test_dataset_item_shapes(representation):
    ds = SyntheticCells(2, representation, **SMALL)
    image, target = ds[0]
    assert isinstance(image, torch.Tensor) and image.dtype == torch.float32
    assert tuple(image.shape) == (1, 40, 40)
    assert tuple(target.shape) == (target_channels(representation), 40, 40)
    assert len(ds) == 2


def test_dataset_is_reproducible_and_order_independent():
    a = SyntheticCells(5, "flows", seed=7, **SMALL)
    b = SyntheticCells(5, "flows", seed=7, cache=False, **SMALL)
    first = a[3]
    for i in range(5):          # read everything in another order in b
        b[4 - i]
    for x, y in zip(first, b[3]):
        assert torch.equal(x, y)
    assert all(torch.equal(x, y) for x, y in zip(a[3], first))   # same item twice
    np.testing.assert_array_equal(a.labels(3), b.labels(3))


def test_dataset_seeds_and_items_differ():
    a = SyntheticCells(3, "edt", seed=0, **SMALL)
    b = SyntheticCells(3, "edt", seed=1, **SMALL)
    assert not torch.equal(a[0][0], b[0][0])
    assert not torch.equal(a[0][0], a[1][0])


def test_dataset_labels_match_the_augmented_target():
    ds = SyntheticCells(6, "flows", seed=2, **SMALL)
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        for i in range(6):
            _, target = ds[i]
            labels = ds.labels(i)
            np.testing.assert_array_equal(target[2].numpy(), (labels > 0).astype(np.float32))


def test_dataset_augmentation_changes_with_epoch_but_not_the_cells():
    ds = SyntheticCells(4, "edt", seed=5, **SMALL)
    plain = SyntheticCells(4, "edt", seed=5, augment=False, **SMALL)
    changed = False
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(4):
            labels, ref = ds.labels(i), plain.labels(i)
            # the same cells, possibly moved: the multiset of cell areas is kept
            assert sorted(np.bincount(labels.ravel())[1:]) == sorted(np.bincount(ref.ravel())[1:])
            changed |= not np.array_equal(labels, ref)
    assert changed


def test_dataset_kinds_select_the_cell_type():
    disks = SyntheticCells(3, "edt", kinds=("disk",), shape=(64, 64), n_cells_range=(3, 3),
                           radius_range=(6, 8), overlap=0.0, augment=False)
    lines = SyntheticCells(3, "edt", kinds=("line",), shape=(64, 64), n_cells_range=(2, 2),
                           radius_range=(6, 8), overlap=0.0, augment=False)
    for i in range(3):
        for cell in regionprops(disks.labels(i)):
            assert cell.axis_major_length < 1.4 * cell.axis_minor_length
        for cell in regionprops(lines.labels(i)):
            assert cell.axis_major_length > 3 * cell.axis_minor_length


def test_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match="representation"):
        SyntheticCells(2, "phase")
    with pytest.raises(ValueError, match="kinds"):
        SyntheticCells(2, "edt", kinds=("blob",))
    with pytest.raises(ValueError, match="n_cells_range"):
        SyntheticCells(2, "edt", n_cells_range=(5, 2))
    with pytest.raises(ValueError, match="n_images"):
        SyntheticCells(0, "edt")
    with pytest.raises(IndexError):
        SyntheticCells(2, "edt", **SMALL)[2]


# --------------------------------------------------------------------------
# tiling
# --------------------------------------------------------------------------

@pytest.mark.parametrize("length,tile,overlap", [(100, 32, 8), (64, 32, 0), (33, 32, 16),
                                                 (200, 64, 32), (10, 32, 8), (32, 32, 8)])
def test_tile_starts_cover_with_dynamic_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    stride = tile - overlap
    assert starts[0] == 0
    if length <= tile:
        assert starts == [0]
        return
    assert starts[-1] == length - tile                         # flush with the border
    assert len(starts) == 1 + -(-(length - tile) // stride)    # Peters's tile count
    gaps = np.diff(starts)
    assert (gaps <= stride).all() and (gaps > 0).all()        # overlap >= requested
    assert (gaps[:-1] == stride).all()                        # only the last one shifts


def test_tile_starts_by_hand():
    assert tile_starts(100, 32, 8) == [0, 24, 48, 68]
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 32, 32)


def _conv_net(radius, seed=0):
    torch.manual_seed(seed)
    layers = []
    for i in range(radius):      # each 3x3 convolution reaches one pixel further
        layers += [torch.nn.Conv2d(1 if i == 0 else 4, 4, 3, padding=1), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers).eval()


def _as_fn(net):
    def fn(crop):
        with torch.no_grad():
            return net(torch.from_numpy(np.ascontiguousarray(crop))[None].float())[0]
    return fn


def test_center_tiling_equals_untiled_prediction():
    image = np.random.default_rng(0).random((1, 45, 61)).astype(np.float32)
    fn = _as_fn(_conv_net(radius=4))            # receptive field reaches 4 px
    full = fn(image).numpy()
    tiled = predict_tiled(fn, image, tile=20, overlap=8, blend="center")
    assert tiled.shape == full.shape == (4, 45, 61)
    np.testing.assert_allclose(tiled, full, atol=1e-5)


def test_tiling_with_too_small_overlap_differs():
    # The same check fails when the receptive field exceeds overlap // 2.
    image = np.random.default_rng(0).random((1, 45, 61)).astype(np.float32)
    fn = _as_fn(_conv_net(radius=4))
    full = fn(image).numpy()
    tiled = predict_tiled(fn, image, tile=20, overlap=2, blend="center")
    assert np.abs(tiled - full).max() > 1e-3


def test_window_tiling_equals_untiled_away_from_overlaps():
    image = np.random.default_rng(1).random((1, 45, 61)).astype(np.float32)
    fn = _as_fn(_conv_net(radius=2))
    full = fn(image).numpy()
    tiled = predict_tiled(fn, image, tile=20, overlap=8, blend="window")
    covered = np.zeros((45, 61), int)
    for y in tile_starts(45, 20, 8):
        for x in tile_starts(61, 20, 8):
            covered[y:y + 20, x:x + 20] += 1
    single = covered == 1
    assert single.sum() > 300
    np.testing.assert_allclose(tiled[:, single], full[:, single], atol=1e-5)
    # a pointwise function is reproduced everywhere, weights and all
    np.testing.assert_allclose(predict_tiled(lambda c: c ** 2, image, 20, 8), image ** 2,
                               rtol=1e-6)


def test_tiling_with_one_tile_is_the_untiled_call():
    image = np.random.default_rng(2).random((30, 25)).astype(np.float32)
    fn = _as_fn(_conv_net(radius=3))
    out = predict_tiled(lambda c: fn(c[None]), image, tile=64, overlap=16)
    np.testing.assert_array_equal(out, fn(image[None]).numpy())


def test_predict_tiled_rejects_bad_input():
    image = np.zeros((30, 30), np.float32)
    with pytest.raises(ValueError, match="overlap"):
        predict_tiled(lambda c: c, image, tile=16, overlap=16)
    with pytest.raises(ValueError, match="fn must return"):
        predict_tiled(lambda c: c[:-1], image, tile=16, overlap=4)
    with pytest.raises(ValueError, match="blend"):
        predict_tiled(lambda c: c, image, tile=16, overlap=4, blend="max")
    with pytest.raises(TypeError, match="fn"):
        predict_tiled(None, image)
    with pytest.raises(ValueError, match="image"):
        predict_tiled(lambda c: c, np.zeros(5))
