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


def test_settling_step_hand_values():
    x = np.array([0.0, 3.0, 5.0, 6.0, 6.5, 6.5])
    traj = np.stack([x, np.zeros(6)], -1)[:, None, :]
    assert dynamics.settling_step(traj, radius=1.0, share=1.0) == 3      # |5 - 6.5| > 1, |6 - 6.5| <= 1
    assert dynamics.settling_step(traj, radius=0.0, share=1.0) == 4
    # two points: the second settles only at the end; share 0.5 needs one of them
    y = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 9.0])
    traj2 = np.concatenate([traj, np.stack([y, np.zeros(6)], -1)[:, None, :]], axis=1)
    assert dynamics.settling_step(traj2, radius=1.0, share=1.0) == 5
    assert dynamics.settling_step(traj2, radius=1.0, share=0.5) == 3
    # a point that leaves and comes back: the late excursion counts
    z = np.array([0.0, 0.0, 5.0, 0.0, 0.0])
    assert dynamics.settling_step(np.stack([z, z], -1)[:, None, :], radius=1.0, share=1.0) == 3
    with pytest.raises(ValueError, match="share"):
        dynamics.settling_step(traj, share=0)


def test_end_points_outside():
    labels = np.array([[1, 1, 0], [2, 2, 0]])
    starts = np.argwhere(labels > 0).astype(float)
    assert dynamics.end_points_outside(labels, starts) == 0
    ends = starts.copy()
    ends[0] = [1.0, 0.0]        # a pixel of cell 1 ends in cell 2
    ends[3] = [1.0, 2.0]        # a pixel of cell 2 ends on the background
    assert dynamics.end_points_outside(labels, ends) == 2
    with pytest.raises(ValueError, match="ends"):
        dynamics.end_points_outside(labels, ends[:2])
