"""Tests for flows.rotate_flows, flows.flow_mse and flows.equal_mse_perturbations."""

import numpy as np
import pytest

from fieldseg_core import fields, flows


def test_rotate_hand_values():
    f = np.zeros((2, 2, 2))
    f[1] = 1.0                                    # (dy, dx) = (0, 1)
    out = flows.rotate_flows(f, 90)
    assert out[:, 0, 0] == pytest.approx([-1.0, 0.0], abs=1e-7)
    out = flows.rotate_flows(f, 30)
    assert out[:, 0, 0] == pytest.approx([-0.5, np.sqrt(3) / 2])
    assert flows.rotate_flows(f, 360) == pytest.approx(f, abs=1e-6)
    where = np.array([[True, False], [False, False]])
    out = flows.rotate_flows(f, 180, where)
    assert out[:, 0, 0] == pytest.approx([0.0, -1.0], abs=1e-7)
    assert out[:, 1, 1].tolist() == [0.0, 1.0]


def test_rotate_per_pixel_angles_and_input_untouched():
    f = np.ones((2, 1, 2))
    angles = np.array([[90.0, -90.0]])
    copy = f.copy()
    out = flows.rotate_flows(f, angles)
    assert out[:, 0, 0] == pytest.approx([-1.0, 1.0])
    assert out[:, 0, 1] == pytest.approx([1.0, -1.0])
    assert np.array_equal(f, copy)
    with pytest.raises(ValueError, match="degrees"):
        flows.rotate_flows(f, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="flows"):
        flows.rotate_flows(np.zeros((3, 2, 2)), 10)


def test_flow_mse():
    a = np.zeros((2, 2, 2))
    b = np.zeros((2, 2, 2))
    b[:, 0, 0] = [3.0, 4.0]
    mask = np.array([[True, True], [False, False]])
    assert flows.flow_mse(b, a, mask) == pytest.approx(12.5)
    with pytest.raises(ValueError, match="mask"):
        flows.flow_mse(a, b, np.zeros((2, 2), bool))


def test_equal_mse_perturbations():
    labels = np.zeros((40, 40), dtype=int)
    labels[4:20, 4:36] = 1
    labels[20:36, 4:36] = 2
    f = flows.heat_flows(labels)
    fg = labels > 0
    n = 60
    p = flows.equal_mse_perturbations(f, labels, n_pixels=n, seed=3)
    assert list(p) == ["noise", "rotation 30 deg", "scattered", "vortex"]
    # a quarter turn of a unit vector has squared error 2
    assert flows.flow_mse(p["vortex"], f, fg) == pytest.approx(2 * n / fg.sum(), rel=1e-5)
    assert flows.flow_mse(p["scattered"], f, fg) == pytest.approx(2 * n / fg.sum(), rel=1e-5)
    assert flows.flow_mse(p["noise"], f, fg) == pytest.approx(2 * n / fg.sum(), rel=1e-5)
    assert flows.flow_mse(p["rotation 30 deg"], f, fg) == pytest.approx(2 - 2 * np.cos(np.pi / 6), rel=1e-4)
    # the vortex turns the n pixels nearest each source, nothing else
    changed = np.any(p["vortex"] != f, axis=0)
    assert changed.sum() == n
    ids, src = fields.source_pixels(labels)
    src_of = np.zeros((3, 2))
    src_of[ids] = src
    dist = np.hypot(*(np.indices(labels.shape) - np.moveaxis(src_of[labels], -1, 0)))
    assert dist[changed].max() <= dist[fg & ~changed & (np.hypot(*f) > 0)].min()
    # background untouched, same seed same result
    assert all(np.all(v[:, ~fg] == 0) for v in p.values())
    again = flows.equal_mse_perturbations(f, labels, n_pixels=n, seed=3)
    assert all(np.array_equal(p[k], again[k]) for k in p)
    with pytest.raises(ValueError, match="n_pixels"):
        flows.equal_mse_perturbations(f, labels, n_pixels=0)
