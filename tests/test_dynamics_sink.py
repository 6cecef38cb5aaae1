"""Tests for dynamics.velocity and dynamics.rates_at (linear fields have exact answers)."""

import numpy as np
import pytest
import torch

from fieldseg_core import dynamics


def linear_field(rates, centre, shape=(9, 9)):
    grid = np.indices(shape).astype(float)
    return -np.asarray(rates, float)[:, None, None] * (grid - np.asarray(centre, float)[:, None, None])


def test_velocity_reproduces_a_linear_field():
    F = linear_field([0.5, 1.5], [4.0, 4.0])
    pts = np.array([[1.3, 2.7], [4.0, 4.0], [6.9, 0.2]])
    expected = -np.array([0.5, 1.5]) * (pts - 4.0)
    assert dynamics.velocity(F, pts) == pytest.approx(expected)


def test_velocity_matches_one_euler_step():
    rng = np.random.default_rng(0)
    F = rng.standard_normal((2, 7, 8))
    pts = rng.uniform(0, 6, size=(5, 2))
    step = dynamics.euler_integrate(torch.from_numpy(F)[None], torch.from_numpy(pts)[None], 1, step=1e-3)
    assert dynamics.velocity(F, pts) == pytest.approx((step[0].numpy() - pts) / 1e-3, abs=1e-6)


def test_velocity_clamps_outside_the_grid():
    F = linear_field([1.0, 1.0], [4.0, 4.0])
    assert dynamics.velocity(F, np.array([[-5.0, 20.0]])) == pytest.approx(dynamics.velocity(F, np.array([[0.0, 8.0]])))


def test_rates_of_a_linear_field():
    F = linear_field([0.5, 1.5], [4.0, 4.0])
    assert dynamics.rates_at(F, np.array([4.2, 3.7])) == pytest.approx([-1.5, -0.5])


def test_rates_of_a_spiral_are_the_real_parts():
    # F = A (x - c) with A = [[-1, -2], [2, -1]]: eigenvalues -1 +- 2i
    grid = np.indices((9, 9)).astype(float) - 4.0
    F = np.stack([-grid[0] - 2 * grid[1], 2 * grid[0] - grid[1]])
    assert dynamics.rates_at(F, np.array([3.6, 4.3])) == pytest.approx([-1.0, -1.0])


def test_validation():
    F = linear_field([1.0, 1.0], [4.0, 4.0])
    with pytest.raises(ValueError, match="points"):
        dynamics.velocity(F, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="point"):
        dynamics.rates_at(F, np.zeros(3))
    with pytest.raises(ValueError, match="d"):
        dynamics.rates_at(F, np.zeros(2), d=0)
