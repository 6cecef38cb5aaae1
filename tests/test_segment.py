"""Tests of fieldseg_core.segment: labels -> field -> watershed round trips."""

import numpy as np
import pytest

from fieldseg_core.fields import FIELDS
from fieldseg_core.metrics import average_precision, iou_matrix, matching
from fieldseg_core.segment import field_markers, watershed_from_field


def touching_grid(shape, cell):
    """Tile the image with touching rectangular cells (convex), ids 1..k."""
    idx = np.indices(shape) // cell
    n_per_axis = [-(-s // cell) for s in shape]
    labels = np.ravel_multi_index(tuple(idx), n_per_axis) + 1
    return labels.astype(np.int32)


def touching_disks():
    """Nine disks on a jittered grid, overlapping neighbours split by nearest centre."""
    rng = np.random.default_rng(3)
    centres = np.array([(y, x) for y in (14, 38, 62) for x in (14, 38, 62)], float)
    centres += rng.uniform(-2, 2, centres.shape)
    grid = np.indices((76, 76)).reshape(2, -1).T
    d = np.linalg.norm(grid[:, None, :] - centres[None], axis=2)
    nearest = d.argmin(axis=1)
    labels = np.where(d.min(axis=1) <= 14, nearest + 1, 0)
    return labels.reshape(76, 76).astype(np.int32)


def per_cell_iou(truth, pred):
    """IoU of every true cell with its best predicted cell."""
    return iou_matrix(truth, pred).max(axis=1)


def same_partition(truth, pred):
    """The same cells, whatever their ids."""
    iou = iou_matrix(truth, pred)
    return iou.shape[0] == iou.shape[1] and bool(np.all(iou.max(axis=1) == 1.0))


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_watershed_recovers_touching_convex_cells_2d(name):
    labels = touching_disks()
    field = FIELDS[name](labels)
    pred = watershed_from_field(field)
    assert average_precision(labels, pred, 0.5)[0] == 1.0
    assert matching(labels, pred, 0.5)["tp"] == labels.max()
    # The split itself, with the true foreground: exact for Poisson and EDT; the
    # diffusion field's flat border may hand a pixel here and there to a neighbour.
    split = watershed_from_field(field, eps=1e-6, mask=labels > 0)
    if name == "diffusion":
        assert per_cell_iou(labels, split).min() >= 0.99
    else:
        assert same_partition(labels, split)


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_watershed_recovers_touching_boxes_3d(name):
    labels = touching_grid((16, 24, 24), 8)
    field = FIELDS[name](labels)
    assert average_precision(labels, watershed_from_field(field), 0.5)[0] == 1.0
    assert same_partition(labels, watershed_from_field(field, eps=1e-6, mask=labels > 0))


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_watershed_follows_the_field_between_unequal_cells(name):
    # A wide and a narrow cell: the border is 30 px from the wide cell's centre
    # and 10 px from the narrow one's, so a split by nearest marker (ignoring
    # the field) gets per-cell IoU 0.8; the watershed is off by a column at most.
    labels = np.zeros((30, 70), dtype=np.int32)
    labels[3:27, 3:43] = 1
    labels[3:27, 43:63] = 2
    field = FIELDS[name](labels)
    split = watershed_from_field(field, eps=1e-6, mask=labels > 0)
    assert per_cell_iou(labels, split).min() >= 0.95
    if name != "diffusion":
        assert per_cell_iou(labels, watershed_from_field(field)).min() >= 0.95


def test_large_h_merges_small_bumps():
    # Two humps of heights 1 and 0.6 over a saddle at 0.4: dynamic of the lower is 0.2.
    field = np.array([[0, 0.5, 1.0, 0.4, 0.6, 0.3, 0]])
    assert watershed_from_field(field, eps=0.05, h=0.1).max() == 2
    assert watershed_from_field(field, eps=0.05, h=0.3).max() == 1


def test_eps_sets_background():
    field = np.array([[0.0, 0.04, 0.2, 1.0, 0.2, 0.06, 0.0]])
    pred = watershed_from_field(field, eps=0.05, h=0.1)
    assert (pred > 0).tolist() == [[False, False, True, True, True, True, False]]
    pred = watershed_from_field(field, eps=0.1, h=0.1)
    assert (pred > 0).sum() == 3


def test_mask_restricts_foreground():
    labels = touching_disks()
    field = FIELDS["poisson"](labels)
    mask = np.zeros(labels.shape, bool)
    mask[:, :38] = True
    pred = watershed_from_field(field, mask=mask)
    assert not pred[:, 38:].any()


def test_flat_field_gives_no_instances():
    assert not watershed_from_field(np.zeros((8, 8))).any()


def test_markers_are_one_per_dome():
    labels = touching_disks()
    markers = field_markers(FIELDS["poisson"](labels), h=0.1)
    assert markers.max() == labels.max()
    # each marker sits inside exactly one true cell
    for k in range(1, markers.max() + 1):
        assert np.unique(labels[markers == k]).size == 1


def test_bad_input_raises():
    with pytest.raises(ValueError, match="field.*NaN"):
        watershed_from_field(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="field.*2D or 3D"):
        watershed_from_field(np.zeros(5))
    with pytest.raises(TypeError, match="field"):
        watershed_from_field(np.zeros((4, 4), dtype=complex))
    with pytest.raises(ValueError, match="h"):
        watershed_from_field(np.zeros((4, 4)), h=0)
    with pytest.raises(ValueError, match="mask"):
        watershed_from_field(np.zeros((4, 4)), mask=np.ones((3, 3), bool))
    with pytest.raises(TypeError, match="eps"):
        watershed_from_field(np.zeros((4, 4)), eps="0.1")


def test_sweep_matches_direct_calls_and_grid_order():
    from fieldseg_core.metrics import evaluate
    from fieldseg_core.segment import watershed_sweep

    labels = touching_disks()
    field = FIELDS["edt"](labels)
    rows = watershed_sweep(field, labels, eps_values=[0.05, 0.3], h_values=[0.05, 0.5])
    assert [(r["eps"], r["h"]) for r in rows] == [(0.05, 0.05), (0.05, 0.5), (0.3, 0.05), (0.3, 0.5)]
    for r in rows:
        direct = evaluate(labels, watershed_from_field(field, eps=r["eps"], h=r["h"]))
        assert all(r[k] == v for k, v in direct.items())
    # a larger eps shrinks every cell: foreground IoU drops, count stays
    assert rows[2]["iou"] < rows[0]["iou"] and rows[2]["n_pred"] == rows[0]["n_pred"]
