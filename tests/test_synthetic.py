"""Tests for fieldseg_core.synthetic: seeded synthetic cells and images."""

import doctest
import itertools
import math

import numpy as np
import pytest
from scipy import ndimage
from skimage.measure import regionprops

from fieldseg_core import synthetic
from fieldseg_core.synthetic import (
    KINDS,
    SCENARIOS,
    CellShape,
    benchmark_scene,
    nonconvex_cells,
    random_cells,
    rasterize_cells,
    render_image,
    scenario,
)

SHAPES = {2: (128, 128), 3: (40, 80, 80)}
# Radii small enough for every kind to fit 8 cells at zero overlap.
SMALL = {2: (5, 8), 3: (4, 6)}


def touching_pairs(labels):
    """Set of (i, j), i < j, of distinct cells sharing a face."""
    pairs = set()
    for axis in range(labels.ndim):
        a = np.moveaxis(labels, axis, 0)
        x, y = a[:-1], a[1:]
        m = (x != y) & (x > 0) & (y > 0)
        pairs |= set(zip(np.minimum(x[m], y[m]).tolist(), np.maximum(x[m], y[m]).tolist()))
    return pairs


def n_components(mask):
    return ndimage.label(mask)[1]  # face connectivity


def analytic_size(cell):
    """Area (2D) or volume (3D) of a cell from its parameters."""
    d = cell.ndim
    if cell.primitive == "ellipsoid":
        return (math.pi if d == 2 else 4 / 3 * math.pi) * float(np.prod(cell.semi_axes))
    rho, half = cell.radius, cell.half_length
    # Capsule, and (by Pappus) a tube swept along an arc of the same length.
    if d == 2:
        return math.pi * rho ** 2 + 4 * half * rho
    return 4 / 3 * math.pi * rho ** 3 + 2 * half * math.pi * rho ** 2


# --------------------------------------------------------------------------- reproducibility

@pytest.mark.parametrize("ndim", [2, 3])
def test_random_cells_bit_reproducible(ndim):
    a = random_cells(SHAPES[ndim], 8, kind="mixed", radius_range=SMALL[ndim], seed=5)
    b = random_cells(SHAPES[ndim], 8, kind="mixed", radius_range=SMALL[ndim], seed=5)
    c = random_cells(SHAPES[ndim], 8, kind="mixed", radius_range=SMALL[ndim], seed=6)
    assert a.dtype == b.dtype == np.int32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_render_and_scenario_bit_reproducible():
    labels = random_cells((64, 64), 4, seed=0, radius_range=(5, 8))
    np.testing.assert_array_equal(render_image(labels, seed=3), render_image(labels, seed=3))
    assert not np.array_equal(render_image(labels, seed=3), render_image(labels, seed=4))
    (im1, lab1), (im2, lab2) = scenario("ex1", seed=2), scenario("ex1", seed=2)
    np.testing.assert_array_equal(im1, im2)
    np.testing.assert_array_equal(lab1, lab2)
    assert not np.array_equal(lab1, scenario("ex1", seed=3)[1])


# --------------------------------------------------------------------------- counts and topology

@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("kind", KINDS)
def test_exact_count_ids_and_single_component(kind, ndim):
    radius = (3, 4) if (kind == "line" and ndim == 3) else SMALL[ndim]
    labels, cells = random_cells(SHAPES[ndim], 8, kind=kind, radius_range=radius, overlap=0.5,
                                 seed=1, return_cells=True)
    assert labels.shape == SHAPES[ndim] and labels.dtype == np.int32
    np.testing.assert_array_equal(np.unique(labels), np.arange(9))
    assert len(cells) == 8
    if kind != "mixed":
        assert {c.kind for c in cells} == {kind}
    for idx, box in enumerate(ndimage.find_objects(labels), start=1):
        assert n_components(labels[box] == idx) == 1


@pytest.mark.parametrize("kind", ["line", "crescent", "mixed"])
def test_cells_stay_single_components_under_heavy_overlap(kind):
    # Thin or bent cells crossing each other cut neighbours apart; only the
    # largest piece of each cell may remain.
    for seed in range(3):
        labels = random_cells((128, 128), 15, kind=kind, radius_range=(6, 10), overlap=0.9,
                              placement="clustered", seed=seed)
        np.testing.assert_array_equal(np.unique(labels), np.arange(16))
        for idx, box in enumerate(ndimage.find_objects(labels), start=1):
            assert n_components(labels[box] == idx) == 1


def test_mixed_draws_disks_ellipses_and_rods():
    _, cells = random_cells((256, 256), 30, kind="mixed", radius_range=(4, 6), seed=0,
                            return_cells=True)
    assert {c.kind for c in cells} == {"disk", "ellipse", "rod"}


def test_zero_cells_gives_background():
    labels = random_cells((32, 32), 0)
    assert labels.shape == (32, 32) and not labels.any()


# --------------------------------------------------------------------------- geometry

@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("kind", ["disk", "ellipse", "rod", "line", "crescent"])
def test_rasterised_size_matches_analytic_shape(kind, ndim):
    # Disjoint cells (overlap 0) keep their whole raster, whose pixel count
    # approximates the continuous area / volume of the implicit shape.
    radius = (3, 4) if (kind == "line" and ndim == 3) else SMALL[ndim]
    labels, cells = random_cells(SHAPES[ndim], 5, kind=kind, radius_range=radius, overlap=0.0,
                                 seed=2, return_cells=True)
    counts = np.bincount(labels.ravel())[1:]
    expected = np.array([analytic_size(c) for c in cells])
    np.testing.assert_allclose(counts, expected, rtol=0.06)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("kind", ["disk", "ellipse", "rod", "crescent"])
def test_equivalent_radius_gives_the_cell_size(kind, ndim):
    # radius_range is an equivalent radius: area pi r^2, volume 4/3 pi r^3.
    _, cells = random_cells(SHAPES[ndim], 5, kind=kind, radius_range=SMALL[ndim],
                            aspect_range=(1.0, 3.0), overlap=0.5, seed=8, return_cells=True)
    for cell in cells:
        r = cell.equivalent_radius
        assert SMALL[ndim][0] <= r <= SMALL[ndim][1]
        ball = math.pi * r ** 2 if ndim == 2 else 4 / 3 * math.pi * r ** 3
        assert analytic_size(cell) == pytest.approx(ball, rel=1e-9)


def test_aspect_ratio_of_ellipses_measured_by_regionprops_2d():
    labels, cells = random_cells((200, 200), 10, kind="ellipse", radius_range=(8, 12),
                                 aspect_range=(2.0, 4.0), overlap=0.0, seed=0, return_cells=True)
    for prop, cell in zip(regionprops(labels), cells):
        measured = prop.axis_major_length / prop.axis_minor_length
        assert 2.0 * 0.95 <= measured <= 4.0 * 1.05
        assert measured == pytest.approx(cell.aspect, rel=0.05)


def test_aspect_ratio_of_ellipsoids_measured_by_regionprops_3d():
    labels, cells = random_cells((60, 90, 90), 6, kind="ellipse", radius_range=(6, 9),
                                 aspect_range=(1.5, 2.5), overlap=0.0, seed=1, return_cells=True)
    for prop, cell in zip(regionprops(labels), cells):
        measured = prop.axis_major_length / prop.axis_minor_length
        assert measured == pytest.approx(cell.aspect, rel=0.05)


def test_crescents_are_nonconvex_and_ellipses_convex():
    crescents = random_cells((160, 160), 6, kind="crescent", radius_range=(6, 9), overlap=0.0,
                             seed=3)
    ellipses = random_cells((160, 160), 6, kind="ellipse", radius_range=(6, 9), overlap=0.0,
                            seed=3)
    assert max(p.solidity for p in regionprops(crescents)) < 0.9
    assert min(p.solidity for p in regionprops(ellipses)) > 0.9


def test_cells_lie_inside_the_image():
    labels, cells = random_cells((100, 100), 6, kind="rod", radius_range=(8, 10), overlap=0.3,
                                 seed=4, return_cells=True)
    for cell in cells:
        assert np.all(cell.centre - cell.half_extent >= 0)
        assert np.all(cell.centre + cell.half_extent <= 99)


def test_bounding_radius_and_half_extent_contain_the_cell():
    for kind, seed in itertools.product(["ellipse", "rod", "crescent"], range(3)):
        labels, cells = random_cells((40, 80, 80), 4, kind=kind, radius_range=(5, 7),
                                     overlap=0.0, seed=seed, return_cells=True)
        for idx, cell in enumerate(cells, start=1):
            pts = np.argwhere(labels == idx)
            assert np.linalg.norm(pts - cell.centre, axis=1).max() <= cell.bounding_radius
            assert np.all(np.abs(pts - cell.centre) <= cell.half_extent + 1e-9)


# --------------------------------------------------------------------------- overlap factor

@pytest.mark.parametrize("kind", ["ellipse", "rod", "crescent"])
def test_overlap_zero_keeps_cells_disjoint(kind):
    labels, cells = random_cells((160, 160), 8, kind=kind, radius_range=(6, 9), overlap=0.0,
                                 seed=0, return_cells=True)
    bound = np.array([c.bounding_radius for c in cells])
    centres = np.array([c.centre for c in cells])
    dist = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    i, j = np.triu_indices(len(cells), 1)
    assert np.all(dist[i, j] >= bound[i] + bound[j])
    # No pixel was contested: each label is exactly that cell drawn alone.
    for idx, cell in enumerate(cells, start=1):
        np.testing.assert_array_equal(labels == idx, rasterize_cells(labels.shape, [cell]) == 1)


def test_overlap_zero_measured_centroid_distances_respect_bound():
    labels, cells = random_cells((160, 160), 10, kind="ellipse", radius_range=(6, 9),
                                 overlap=0.0, seed=7, return_cells=True)
    centroids = np.array([p.centroid for p in regionprops(labels)])
    bound = np.array([c.bounding_radius for c in cells])
    dist = np.linalg.norm(centroids[:, None] - centroids[None], axis=-1)
    i, j = np.triu_indices(len(cells), 1)
    # Symmetric shapes: the pixel centroid is within a pixel of the centre.
    assert np.all(dist[i, j] >= bound[i] + bound[j] - 1.0)


@pytest.mark.parametrize("placement", ["uniform", "clustered"])
@pytest.mark.parametrize("overlap", [0.3, 0.8])
def test_overlap_bound_holds_for_every_pair(overlap, placement):
    _, cells = random_cells((128, 128), 12, kind="mixed", radius_range=(6, 10), overlap=overlap,
                            placement=placement, seed=3, return_cells=True)
    bound = np.array([c.bounding_radius for c in cells])
    centres = np.array([c.centre for c in cells])
    dist = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    i, j = np.triu_indices(len(cells), 1)
    assert np.all(dist[i, j] >= (1 - overlap) * (bound[i] + bound[j]))


def test_higher_overlap_gives_more_touching_pairs():
    def total_pairs(overlap):
        return sum(len(touching_pairs(random_cells((128, 128), 12, radius_range=(6, 10),
                                                   overlap=overlap, seed=s)))
                   for s in range(6))
    low, mid, high = total_pairs(0.0), total_pairs(0.4), total_pairs(0.9)
    assert low <= mid < high


def test_clustered_placement_touches_more_than_uniform():
    def total_pairs(placement):
        return sum(len(touching_pairs(random_cells((256, 256), 12, radius_range=(8, 12),
                                                   overlap=0.5, placement=placement, seed=s)))
                   for s in range(4))
    assert total_pairs("clustered") > total_pairs("uniform")


def test_every_cell_keeps_min_area_fraction_under_extreme_overlap():
    labels, cells = random_cells((96, 96), 12, kind="mixed", radius_range=(8, 12), overlap=0.95,
                                 placement="clustered", min_area_fraction=0.3, seed=1,
                                 return_cells=True)
    kept = np.bincount(labels.ravel(), minlength=13)[1:]
    own = np.array([np.count_nonzero(rasterize_cells(labels.shape, [c])) for c in cells])
    assert np.all(kept >= 0.3 * own)
    assert np.any(kept < own)  # overlaps were actually resolved


def test_rasterize_gives_contested_pixels_to_nearest_normalised_centre():
    # Two equal disks: the split is the perpendicular bisector of the centres.
    a = CellShape("disk", np.array([20.0, 15.0]), np.eye(2), semi_axes=np.array([10.0, 10.0]))
    b = CellShape("disk", np.array([20.0, 28.5]), np.eye(2), semi_axes=np.array([10.0, 10.0]))
    labels = rasterize_cells((40, 44), [a, b])
    cols = np.nonzero(labels)[1]
    np.testing.assert_array_equal(labels[labels > 0], np.where(cols < 21.75, 1, 2))
    assert (1, 2) in touching_pairs(labels)


def test_rasterize_keeps_largest_component_only():
    # A thin rod across a big disk cuts it in two; the smaller piece is dropped.
    disk = CellShape("disk", np.array([30.0, 30.0]), np.eye(2), semi_axes=np.array([20.0, 20.0]))
    rod = CellShape("rod", np.array([26.0, 30.0]), np.array([[0.0, 1.0], [1.0, 0.0]]),
                    radius=1.0, half_length=26.0)
    labels = rasterize_cells((61, 61), [disk, rod])
    assert n_components(labels == 1) == 1
    assert np.all(labels[np.nonzero(np.arange(61) < 25)[0], 30] != 1)  # small side gone
    assert labels[45, 30] == 1


# --------------------------------------------------------------------------- images

def test_render_image_basic_properties_2d_and_3d():
    for shape in [(96, 96), (24, 64, 64)]:
        labels = random_cells(shape, 6, radius_range=(5, 8), seed=0)
        image = render_image(labels, seed=1)
        assert image.dtype == np.float32 and image.shape == labels.shape
        assert np.all(np.isfinite(image))
        assert image[labels > 0].mean() > image[labels == 0].mean()
        lo, hi = np.percentile(image, [0.5, 99.5])
        assert lo == pytest.approx(0.0, abs=1e-5) and hi == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("snr", [4.0, 25.0])
def test_render_image_noise_has_requested_snr(snr):
    labels = np.ones((256, 256), np.int32)
    image = render_image(labels, seed=0, snr=snr, blur_sigma=0, texture=0, illumination=0,
                         border_contrast=0, normalize=False)
    assert image.mean() / image.std() == pytest.approx(snr, rel=0.05)


def test_render_image_noiseless_levels_and_dark_borders():
    labels = np.zeros((20, 30), np.int32)
    labels[5:15, 5:15], labels[5:15, 15:25] = 1, 2
    image = render_image(labels, seed=0, snr=None, blur_sigma=0, texture=0, illumination=0,
                         background=0.1, border_contrast=0.5, brightness_range=(0.8, 0.8),
                         normalize=False)
    np.testing.assert_allclose(image[labels == 0], 0.1, rtol=1e-6)
    np.testing.assert_allclose(image[10, 10], 0.9, rtol=1e-6)  # interior: 0.1 + 0.8
    np.testing.assert_allclose(image[10, [14, 15]], 0.5, rtol=1e-6)  # shared border dimmed
    np.testing.assert_allclose(image[5, 10], 0.5, rtol=1e-6)  # outer border dimmed


def test_render_image_illumination_is_a_linear_ramp():
    labels = np.zeros((40, 50), np.int32)
    image = render_image(labels, seed=2, snr=None, blur_sigma=0, illumination=0.4,
                         background=1.0, normalize=False).astype(float)
    assert image.max() == pytest.approx(1.4, rel=1e-5)
    assert image.min() == pytest.approx(0.6, rel=1e-5)
    for axis in (0, 1):
        np.testing.assert_allclose(np.diff(image, n=2, axis=axis), 0, atol=1e-5)


def test_render_image_handles_gapped_and_huge_ids():
    labels = np.zeros((30, 30), np.int64)
    labels[2:10, 2:10], labels[15:25, 15:25] = 7, 2 ** 40
    gapped = labels.copy()
    gapped[gapped == 2 ** 40] = 9
    kw = dict(seed=0, snr=None, texture=0, illumination=0, blur_sigma=0, normalize=False)
    np.testing.assert_array_equal(render_image(labels, **kw), render_image(gapped, **kw))


# --------------------------------------------------------------------------- presets

@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenarios_give_documented_count_and_shape(name):
    spec = SCENARIOS[name]
    assert set(spec) >= {"description", "shape", "n_cells", "kind", "overlap"}
    for seed in (0, 11, 20):
        image, labels = scenario(name, seed=seed)
        assert labels.shape == image.shape == tuple(spec["shape"])
        assert image.dtype == np.float32 and np.all(np.isfinite(image))
        np.testing.assert_array_equal(np.unique(labels), np.arange(spec["n_cells"] + 1))
        assert image[labels > 0].mean() > image[labels == 0].mean()
        # the painting model: each cell keeps >= min_area_fraction of its own area
        params = {k: spec[k] for k in synthetic._GENERATOR_KEYS}
        _, cells = random_cells(seed=seed, return_cells=True, **params)
        own = [np.count_nonzero(rasterize_cells(spec["shape"], [c])) for c in cells]
        kept = np.bincount(labels.ravel(), minlength=len(cells) + 1)[1:]
        assert np.all(kept >= spec["min_area_fraction"] * np.array(own))


def test_scenarios_follow_table_4():
    # behaviour, not constants: the scenarios differ only in the columns of
    # Table 4 (count, shape, aspect, overlap); every other knob is shared.
    counts = {name: SCENARIOS[name]["n_cells"] for name in SCENARIOS}
    assert counts["ex5"] == max(counts.values())            # "high density"
    assert counts["ex6"] == min(counts.values())            # "sparse"
    overlaps = {n: SCENARIOS[n]["overlap"] for n in SCENARIOS if n.startswith("ex")}
    assert max(overlaps, key=overlaps.get) == "ex7"         # "extreme overlap"
    assert SCENARIOS["ex5"]["kind"] == "disk" and SCENARIOS["ex6"]["kind"] == "line"
    for spec in SCENARIOS.values():
        for k, v in synthetic.SCENE_KNOBS.items():
            assert spec[k] == v


def test_high_overlap_presets_occlude_more_than_low_overlap_ones():
    # painted-over area share grows with the overlap factor of Table 4
    def hidden(name):
        spec = SCENARIOS[name]
        params = {k: spec[k] for k in synthetic._GENERATOR_KEYS}
        shares = []
        for seed in range(4):
            labels, cells = random_cells(seed=seed, return_cells=True, **params)
            own = sum(np.count_nonzero(rasterize_cells(spec["shape"], [c])) for c in cells)
            shares.append(1 - np.count_nonzero(labels) / own)
        return np.mean(shares)
    assert hidden("ex7") > max(hidden("ex3"), 0.02)


# --------------------------------------------------------------------------- painting

def _painted(overlap, seed=0, **kw):
    args = dict(shape=(128, 128), n_cells=8, kind="disk", radius_range=(8, 12),
                overlap=overlap, seed=seed, placement="clustered", occlusion="paint",
                return_cells=True)
    args.update(kw)
    return random_cells(**args)


@pytest.mark.parametrize("ndim", [2, 3])
def test_overlap_zero_paints_nothing_over_anything(ndim):
    shape = SHAPES[ndim]
    labels, cells = random_cells(shape, 8, kind="ellipse", radius_range=SMALL[ndim], overlap=0.0,
                                 seed=2, occlusion="paint", placement="clustered",
                                 return_cells=True)
    for i, c in enumerate(cells, start=1):
        own = rasterize_cells(shape, [c]) > 0
        np.testing.assert_array_equal(labels == i, own)     # every cell whole


def test_painting_gives_each_pixel_to_the_last_cell_covering_it():
    labels, cells = _painted(0.9, seed=5)
    expect = np.zeros(labels.shape, np.int32)
    for i, c in enumerate(cells, start=1):
        expect[rasterize_cells(labels.shape, [c]) > 0] = i
    np.testing.assert_array_equal(labels, expect)


def test_fragments_keep_their_id_and_partition_keeps_one_component():
    fragmented = 0
    for seed in range(10):
        labels, cells = _painted(0.95, seed=seed, kind="rod", aspect_range=(3, 5))
        ids = np.unique(labels[labels > 0])
        np.testing.assert_array_equal(ids, np.arange(1, len(cells) + 1))
        fragmented += sum(n_components(labels == i) > 1 for i in ids)
        part = random_cells((128, 128), 8, kind="rod", radius_range=(8, 12), aspect_range=(3, 5),
                            overlap=0.95, seed=seed, placement="clustered")
        assert all(n_components(part == i) == 1 for i in range(1, 9))
    assert fragmented > 0      # painting does split cells, and they keep their id


def test_painting_is_bit_reproducible_in_2d_and_3d():
    a = _painted(0.8, seed=3)[0]
    b = _painted(0.8, seed=3)[0]
    assert a.tobytes() == b.tobytes() and not np.array_equal(a, _painted(0.8, seed=4)[0])
    kw = dict(kind="ellipse", radius_range=(4, 6), overlap=0.8, seed=1, occlusion="paint",
              placement="clustered")
    assert random_cells((32, 48, 48), 8, **kw).tobytes() == \
        random_cells((32, 48, 48), 8, **kw).tobytes()


def test_largest_first_paints_small_cells_on_top():
    _, cells = _painted(0.5, seed=1, paint_order="largest_first")
    radii = [c.equivalent_radius for c in cells]
    assert radii == sorted(radii, reverse=True)


def test_some_preset_has_a_cell_whose_centroid_lies_outside_it():
    found = []
    for name in ("ex7", "stress20", "ex2"):
        for seed in range(10):
            labels = scenario(name, seed)[1]
            coords = np.nonzero(labels)
            ids = labels[coords]
            n = np.bincount(ids)
            cy = np.rint(np.bincount(ids, coords[0]) / np.maximum(n, 1)).astype(int)
            cx = np.rint(np.bincount(ids, coords[1]) / np.maximum(n, 1)).astype(int)
            outside = [i for i in range(1, n.size) if labels[cy[i], cx[i]] != i]
            found += [(name, seed, i) for i in outside]
    assert found


def test_painting_rejects_bad_choices():
    with pytest.raises(ValueError, match="occlusion"):
        random_cells((64, 64), 2, occlusion="glue")
    with pytest.raises(ValueError, match="paint_order"):
        random_cells((64, 64), 2, occlusion="paint", paint_order="tallest")
    with pytest.raises(ValueError, match="occlusion"):
        rasterize_cells((8, 8), [], occlusion="x")


@pytest.mark.parametrize("name, low, high", [("ex3", 4, 6), ("ex4", 5, 8)])
def test_elongated_scenarios_have_their_aspect_ratios(name, low, high):
    params = {k: SCENARIOS[name][k] for k in synthetic._GENERATOR_KEYS}
    _, cells = random_cells(seed=4, return_cells=True, **params)
    aspects = np.array([c.aspect for c in cells])
    assert np.all((aspects >= low) & (aspects <= high))


def test_benchmark_scene_2d():
    image, labels = benchmark_scene(2, seed=0)
    assert labels.shape == image.shape == (512, 512) and image.dtype == np.float32
    np.testing.assert_array_equal(np.unique(labels), np.arange(101))
    touching = {i for pair in touching_pairs(labels) for i in pair}
    assert len(touching) > 50  # most cells share a boundary


def test_benchmark_scene_3d():
    image, labels = benchmark_scene(3, seed=1)
    assert labels.shape == image.shape == (64, 128, 128) and image.dtype == np.float32
    np.testing.assert_array_equal(np.unique(labels), np.arange(101))
    touching = {i for pair in touching_pairs(labels) for i in pair}
    assert len(touching) > 50


@pytest.mark.parametrize("ndim, n_cells, low, high", [(2, 100, 0.78, 0.84), (3, 108, 0.55, 0.65)])
def test_dense_benchmark_scene(ndim, n_cells, low, high):
    # The scenes of the Cellpose/Omnipose comparison: denser than the standard ones.
    _, labels = benchmark_scene(ndim, seed=0, density="dense")
    _, standard = benchmark_scene(ndim, seed=0)
    np.testing.assert_array_equal(np.unique(labels), np.arange(n_cells + 1))
    foreground = (labels > 0).mean()
    assert low < foreground < high and foreground > (standard > 0).mean() + 0.1
    touching = {i for pair in touching_pairs(labels) for i in pair}
    assert len(touching) > n_cells // 2


def test_nonconvex_cells_scene():
    labels = nonconvex_cells()
    np.testing.assert_array_equal(labels, nonconvex_cells())
    np.testing.assert_array_equal(np.unique(labels), np.arange(5))
    props = {p.label: p for p in regionprops(labels)}
    assert props[1].solidity < 0.8  # the crescent is clearly non-convex
    assert props[2].axis_major_length / props[2].axis_minor_length > 2.5
    assert (3, 4) in touching_pairs(labels)
    assert len(touching_pairs(labels)) == 1
    big = nonconvex_cells((150, 180))
    assert big.shape == (150, 180) and big.max() == 4


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs, match", [
    (dict(n_cells=-1), "n_cells"),
    (dict(overlap=1.0), "overlap"),
    (dict(overlap=-0.1), "overlap"),
    (dict(radius_range=(5, 2)), "radius_range"),
    (dict(radius_range=(0, 2)), "radius_range"),
    (dict(aspect_range=(0.5, 2)), "aspect_range"),
    (dict(seed=-1), "seed"),
    (dict(min_area_fraction=0.0), "min_area_fraction"),
    (dict(placement="grid"), "placement"),
    (dict(shape=(64,)), "shape"),
    (dict(shape=(8, 8, 8, 8)), "shape"),
    (dict(shape=(64, 0)), "shape"),
])
def test_random_cells_rejects_bad_arguments(kwargs, match):
    args = dict(shape=(64, 64), n_cells=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        random_cells(**args)


def test_random_cells_rejects_wrong_types():
    with pytest.raises(TypeError, match="n_cells"):
        random_cells((64, 64), 2.5)
    with pytest.raises(TypeError, match="seed"):
        random_cells((64, 64), 2, seed=1.0)


def test_unknown_kind_and_scenario_list_valid_names():
    with pytest.raises(ValueError) as err:
        random_cells((64, 64), 2, kind="blob")
    assert all(k in str(err.value) for k in KINDS)
    with pytest.raises(ValueError) as err:
        scenario("ex8")
    assert all(name in str(err.value) for name in SCENARIOS)


def test_impossible_requests_raise_instead_of_returning_fewer_cells():
    with pytest.raises(ValueError, match="could not place all 40 cells"):
        random_cells((64, 64), 40, radius_range=(8, 10), overlap=0.0, max_tries=300)
    with pytest.raises(ValueError, match="does not fit"):
        random_cells((20, 20), 1, kind="line", radius_range=(10, 12))


def test_other_functions_reject_bad_input():
    with pytest.raises(TypeError, match="labels"):
        render_image(np.zeros((8, 8), float))
    with pytest.raises(ValueError, match="labels"):
        render_image(np.zeros((2, 2, 2, 2), int))
    with pytest.raises(ValueError, match="snr"):
        render_image(np.zeros((8, 8), int), snr=0)
    with pytest.raises(ValueError, match="illumination"):
        render_image(np.zeros((8, 8), int), illumination=1.0)
    with pytest.raises(ValueError, match="ndim"):
        benchmark_scene(4)
    with pytest.raises(ValueError, match="density"):
        benchmark_scene(2, density="sparse")
    with pytest.raises(ValueError, match="shape"):
        nonconvex_cells((20, 20))
    disk = CellShape("disk", np.zeros(3), np.eye(3), semi_axes=np.ones(3))
    with pytest.raises(ValueError, match="cells"):
        rasterize_cells((8, 8), [disk])
    with pytest.raises(TypeError, match="CellShape"):
        rasterize_cells((8, 8), [np.zeros(2)])
    with pytest.raises(ValueError, match="kind"):
        CellShape("blob", np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="semi_axes"):
        CellShape("ellipse", np.zeros(2), np.eye(2), semi_axes=np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="radius"):
        CellShape("rod", np.zeros(2), np.eye(2), half_length=3.0)


def test_docstring_examples_run():
    result = doctest.testmod(synthetic, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_scenario_occlusion_override_keeps_the_layout():
    # Same cells, other occlusion model: same union, every partition cell one piece.
    from scipy import ndimage as ndi

    _, painted = synthetic.scenario("ex7", seed=1)
    _, parted = synthetic.scenario("ex7", seed=1, occlusion="partition")
    assert np.array_equal(painted > 0, parted > 0)
    assert not np.array_equal(painted, parted)
    for k in range(1, int(parted.max()) + 1):
        assert ndi.label(parted == k)[1] == 1
    with pytest.raises(ValueError, match="occlusion"):
        synthetic.scenario("ex1", occlusion="glue")
