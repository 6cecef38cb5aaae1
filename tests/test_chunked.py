"""Tests for fieldseg_core.chunked: block-wise segmentation equals the single pass, in 2D and 3D."""

import threading

import numpy as np
import pytest
from scenes import voronoi_ellipses

from fieldseg_core.chunked import labels_path, open_image, segment_chunked
from fieldseg_core.data import make_target
from fieldseg_core.fields import poisson_field
from fieldseg_core.metrics import average_precision
from fieldseg_core.predict import ideal_output, to_instances
from fieldseg_core.segment import watershed_from_field

CHUNK_2D, MARGIN_2D = 64, 28
CHUNK_3D = (20, 32, 32)


def _scene(shape, fixed, n_random, radius_range, seed):
    """Touching ellipses, some centred on block corners and borders, the rest random."""
    rng = np.random.default_rng(seed)
    centres = list(fixed) + [tuple(int(v) for v in rng.integers(0, shape)) for _ in range(n_random)]
    radii = [tuple(rng.uniform(*radius_range, size=len(shape))) for _ in centres]
    return voronoi_ellipses(shape, centres, radii)


@pytest.fixture(scope="module")
def scene2d():
    fixed = [(64, 64), (64, 128), (128, 64), (128, 128), (30, 64), (64, 100), (128, 20)]
    return _scene((160, 176), fixed, 24, (7, 12), seed=0)


@pytest.fixture(scope="module")
def scene3d():
    fixed = [(20, 32, 32), (20, 32, 10), (20, 10, 32), (8, 32, 50)]
    return _scene((40, 64, 64), fixed, 14, (5, 8), seed=1)


def _blocks_touched(labels, chunk):
    """For every cell, the number of blocks of shape ``chunk`` it has pixels in."""
    chunk = np.broadcast_to(chunk, labels.ndim)
    coords = np.nonzero(labels)
    block = np.ravel_multi_index(tuple(c // k for c, k in zip(coords, chunk)),
                                 tuple(-(-n // k) for n, k in zip(labels.shape, chunk)))
    pairs = np.unique(np.stack([labels[coords], block]), axis=1)
    return np.bincount(pairs[0])[1:]


def _same_partition(a, b):
    """Same cells, whatever their numbers: the (a, b) label pairs form a bijection."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return (len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]
            and bool(((pairs[0] == 0) == (pairs[1] == 0)).all()))


def test_scene_has_cells_across_borders_and_corners(scene2d, scene3d):
    touched = _blocks_touched(scene2d, CHUNK_2D)
    assert (touched >= 2).sum() >= 8 and (touched == 4).sum() >= 4
    touched = _blocks_touched(scene3d, CHUNK_3D)
    assert (touched >= 2).sum() >= 6 and (touched >= 4).sum() >= 3


def test_chunked_matches_single_pass_2d(scene2d):
    field = poisson_field(scene2d)
    single = watershed_from_field(field)
    calls, lock = [], threading.Lock()

    def counted(block):
        with lock:
            calls.append(block.shape)
        return watershed_from_field(block)

    chunked = segment_chunked(field, None, counted, chunk_size=CHUNK_2D, margin=MARGIN_2D)
    assert chunked.dtype == np.int32 and chunked.shape == field.shape
    assert chunked.max() == single.max() == scene2d.max()
    np.testing.assert_array_equal(average_precision(single, chunked, thresholds=(0.9,)), [1.0])
    assert _same_partition(single, chunked)
    assert len(calls) == 9  # 3 x 3 blocks, each segmented once
    # Without the merge every cut cell stays in pieces: the seams the merge removes.
    pieces = segment_chunked(field, None, "poisson", chunk_size=CHUNK_2D, margin=MARGIN_2D,
                             merge=False)
    assert pieces.max() == _blocks_touched(single, CHUNK_2D).sum() > single.max()


def test_chunked_matches_single_pass_3d(scene3d):
    field = poisson_field(scene3d)
    single = watershed_from_field(field)
    chunked = segment_chunked(field, None, "poisson", chunk_size=CHUNK_3D, margin=(16, 18, 18))
    assert chunked.max() == single.max() == scene3d.max()
    np.testing.assert_array_equal(average_precision(single, chunked, thresholds=(0.9,)), [1.0])
    assert _same_partition(single, chunked)


def test_chunked_flows_match_single_pass(scene2d):
    output = ideal_output(make_target(scene2d, "flows"), "flows")
    single = to_instances(output, "flows")
    chunked = segment_chunked(output, None, "flows", chunk_size=CHUNK_2D, margin=MARGIN_2D)
    assert chunked.max() == single.max()
    assert _same_partition(single, chunked)


def test_zarr_and_tiff_round_trip(scene2d, tmp_path):
    import tifffile
    import zarr

    field = poisson_field(scene2d).astype(np.float32)
    expected = segment_chunked(field, None, "poisson", chunk_size=CHUNK_2D, margin=MARGIN_2D)
    src = tmp_path / "slide.zarr"
    src_z = zarr.create_array(store=str(src), shape=field.shape, chunks=(50, 50), dtype=np.float32)
    src_z[:] = field
    written = segment_chunked(src, tmp_path / "out", "poisson", chunk_size=CHUNK_2D,
                              margin=MARGIN_2D, num_workers=2)
    assert written == tmp_path / "out" / "slide_labels.zarr"
    np.testing.assert_array_equal(zarr.open_array(str(written), mode="r")[:], expected)
    with pytest.raises(ValueError, match="overwrite"):
        segment_chunked(src, tmp_path / "out", "poisson", chunk_size=CHUNK_2D, margin=MARGIN_2D)
    tif = tmp_path / "stack.tif"
    tifffile.imwrite(tif, field)
    assert isinstance(open_image(tif).compute(), np.ndarray)
    written = segment_chunked(tif, tmp_path / "labels.tif", "poisson", chunk_size=CHUNK_2D,
                              margin=MARGIN_2D)
    np.testing.assert_array_equal(tifffile.imread(written), expected)
    assert list(tmp_path.glob("fieldseg_chunked_*")) == []


def test_labels_path():
    assert labels_path("a/b/cells.zarr", "o") == labels_path("cells.tif", "o")
    assert labels_path(np.zeros(3), "o").name == "image_labels.zarr"


def test_bad_arguments(scene2d):
    field = poisson_field(scene2d)
    with pytest.raises(ValueError, match="margin must be <= chunk_size"):
        segment_chunked(field, None, "poisson", chunk_size=16, margin=20)
    with pytest.raises(ValueError, match="segmenter"):
        segment_chunked(field, None, "magic")
    with pytest.raises(TypeError, match="segmenter"):
        segment_chunked(field, None, 3)
    with pytest.raises(ValueError, match="2D or 3D"):
        segment_chunked(np.zeros((2, 2, 2, 2)), None, "poisson")
    with pytest.raises(ValueError, match="chunk_size"):
        segment_chunked(field, None, "poisson", chunk_size=(64, 64, 64))
    with pytest.raises(ValueError, match="spatial shape"):
        segment_chunked(field, None, lambda b: np.zeros((2, 2), int), chunk_size=80, margin=8)
    with pytest.raises(ValueError, match="iou_threshold"):
        segment_chunked(field, None, "poisson", iou_threshold=0.2)
    with pytest.raises(ValueError, match="path"):
        segment_chunked("missing.zarr", None, "poisson")
    copy = field.copy()
    segment_chunked(field, None, "poisson", chunk_size=CHUNK_2D, margin=MARGIN_2D)
    np.testing.assert_array_equal(field, copy)  # input untouched


def test_model_segmenter_matches_single_pass():
    """The default U-Net (fixed statistics at inference): blocks on its pooling grid with a
    margin beyond its receptive field give the single pass's instances."""
    import torch

    from fieldseg_core.models import build_model, downsampling_factor, receptive_field_margin
    from fieldseg_core.predict import predict_instances, predict_representation
    from fieldseg_core.synthetic import random_cells, render_image

    torch.manual_seed(0)
    model = build_model("poisson", widths=(4, 8)).eval()
    chunk = margin = 64
    assert margin % downsampling_factor(model) == 0 and receptive_field_margin(model) < margin // 4
    labels = random_cells((160, 160), 40, radius_range=(5, 8), seed=0)
    image = render_image(labels, seed=0).astype(np.float32)
    # An untrained network: thresholds from its own output give a few dozen segments.
    out = predict_representation(model, image)[0]
    params = dict(eps=float(np.quantile(out, 0.7)), h=0.05 * float(out.max() - out.min()))
    single = predict_instances(model, image, **params)
    chunked = segment_chunked(image, None, model, chunk_size=chunk, margin=margin, device="cpu",
                              **params)
    assert chunked.dtype == np.int32 and single.max() >= 10
    assert chunked.max() == single.max()
    np.testing.assert_array_equal(average_precision(single, chunked, thresholds=(0.9,)), [1.0])


def test_face_matching_and_merge_table_by_hand():
    from fieldseg_core.chunked import _face_matches, _merge_table

    a = np.array([[1, 1, 2, 2]])
    b = np.array([[5, 5, 5, 6]])
    # IoU(1, 5) = 2/3 matches; IoU(2, 6) = 1/2 and IoU(2, 5) = 1/4 do not.
    np.testing.assert_array_equal(_face_matches(a, b, 0.5), [[1], [5]])
    # Pieces 1~5 and 5~9 form one cell; 7 only appears in a margin, so its match is dropped.
    owned = [np.array([1, 2]), np.array([5]), np.array([9])]
    matches = [np.array([[1], [5]]), np.array([[5, 2], [9, 7]])]
    ids, new = _merge_table(owned, matches)
    assert dict(zip(ids.tolist(), new.tolist())) == {1: 1, 2: 2, 5: 1, 9: 1}


def test_zero_margin_merges_nothing(scene2d):
    field = poisson_field(scene2d)
    merged = segment_chunked(field, None, "poisson", chunk_size=CHUNK_2D, margin=0)
    pieces = segment_chunked(field, None, "poisson", chunk_size=CHUNK_2D, margin=0, merge=False)
    assert merged.max() == pieces.max() > scene2d.max()
