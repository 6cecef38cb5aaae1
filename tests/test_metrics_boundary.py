"""Tests for metrics.boundary_f1 against hand-counted outlines."""

import numpy as np
import pytest

from fieldseg_core.metrics import boundary_f1


def square(shape=(10, 10), box=(3, 7, 3, 7), value=1):
    y = np.zeros(shape, dtype=int)
    y[box[0]:box[1], box[2]:box[3]] = value
    return y


def test_identical_images_score_one():
    y = square()
    assert boundary_f1(y, y) == 1.0
    assert boundary_f1(y, y * 5) == 1.0          # ids do not matter


def test_shift_by_two_hand_counted():
    # true outline: 12 pixels of the 4x4 ring; shifted by 2 columns, 8 of the
    # 12 predicted outline pixels are within 1 px of the true outline and vice versa
    y = square()
    pred = np.roll(y, 2, axis=1)
    assert boundary_f1(y, pred, tolerance=1.0) == pytest.approx(2 / 3)
    # tolerance 0: only the 4 shared pixels (rows 3 and 6, cols 5-6) count
    assert boundary_f1(y, pred, tolerance=0.0) == pytest.approx(4 / 12)
    # tolerance 2 covers every pixel
    assert boundary_f1(y, pred, tolerance=2.0) == 1.0


def test_touching_cells_have_an_inner_border():
    one = square(shape=(10, 12), box=(3, 7, 2, 10))
    two = one.copy()
    two[3:7, 6:10] = 2                            # the same 4 x 8 region split in two
    # outline of one: rows 3 and 6 (2 x 8) plus columns 2 and 9 of rows 4-5 (2 x 2) = 20;
    # the split adds columns 5 and 6 of rows 4-5: 24. Precision 1, recall 20 / 24.
    p, r = 1.0, 20 / 24
    assert boundary_f1(two, one, tolerance=0.0) == pytest.approx(2 * p * r / (p + r))


def test_empty_conventions_and_symmetry():
    empty = np.zeros((6, 6), dtype=int)
    y = square(shape=(6, 6), box=(1, 5, 1, 5))
    assert boundary_f1(empty, empty) == 1.0
    assert boundary_f1(empty, y) == 0.0
    assert boundary_f1(y, empty) == 0.0
    pred = np.roll(y, 1, axis=0)
    assert boundary_f1(y, pred) == pytest.approx(boundary_f1(pred, y))


def test_3d_and_validation():
    y = np.zeros((6, 6, 6), dtype=int)
    y[1:5, 1:5, 1:5] = 1
    assert boundary_f1(y, y) == 1.0
    with pytest.raises(ValueError, match="tolerance"):
        boundary_f1(y, y, tolerance=-1)
    with pytest.raises(ValueError):
        boundary_f1(y, y[0])
    with pytest.raises(TypeError):
        boundary_f1(y.astype(float), y)
