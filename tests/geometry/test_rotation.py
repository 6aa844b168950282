import math

import pytest
import torch

from facerecon.geometry.rotation import (
    axis_angle_to_matrix,
    axis_angle_to_rotation_6d,
    euler_deg_to_matrix,
    matrix_to_axis_angle,
    matrix_to_euler_deg,
    matrix_to_rotation_6d,
    rotation_6d_to_axis_angle,
    rotation_6d_to_matrix,
)

from ..render.helpers import assert_grad_matches


def _random_axis_angle(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=-1)
    return axis * torch.rand(n, 1, generator=g, dtype=torch.float64) * (math.pi - 1e-3)


def test_axis_angle_matches_a_known_rotation():
    r = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    torch.testing.assert_close(r @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
                               torch.tensor([0.0, 1, 0], dtype=torch.float64))


def test_matrices_are_rotations_and_round_trip():
    aa = _random_axis_angle(64)
    r = axis_angle_to_matrix(aa)
    eye = torch.eye(3, dtype=torch.float64).expand_as(r)
    torch.testing.assert_close(r @ r.transpose(1, 2), eye)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(64, dtype=torch.float64))
    torch.testing.assert_close(matrix_to_axis_angle(r), aa)
    torch.testing.assert_close(rotation_6d_to_matrix(matrix_to_rotation_6d(r)), r)
    torch.testing.assert_close(rotation_6d_to_axis_angle(axis_angle_to_rotation_6d(aa)), aa)


def test_round_trip_near_zero_and_near_pi():
    small = torch.tensor([[1e-9, -2e-9, 3e-9], [0.0, 0.0, 0.0], [0.0, 0.0, math.pi - 1e-7]], dtype=torch.float64)
    torch.testing.assert_close(matrix_to_axis_angle(axis_angle_to_matrix(small)), small, atol=1e-6, rtol=0)


@pytest.mark.parametrize("aa", [[0.0, 0.0, 0.0], [1e-5, -2e-5, 1e-5], [0.3, -0.2, 0.5]])
def test_axis_angle_gradient_is_finite_and_correct(aa):
    x = torch.tensor(aa, dtype=torch.float64, requires_grad=True)
    w = torch.arange(9, dtype=torch.float64).reshape(3, 3)
    assert_grad_matches(lambda: (axis_angle_to_matrix(x) * w).sum(), x)


def test_matrix_to_axis_angle_gradient():
    x = _random_axis_angle(1, seed=3)[0].clone().requires_grad_(True)
    assert_grad_matches(lambda: (matrix_to_axis_angle(axis_angle_to_matrix(x)) * torch.tensor([1.0, 2, 3])).sum(), x)


def test_euler_convention_and_round_trip():
    # yaw about +y: +z (the face's forward) turns toward +x
    r = euler_deg_to_matrix(torch.tensor([90.0, 0, 0], dtype=torch.float64))
    torch.testing.assert_close(r @ torch.tensor([0.0, 0, 1], dtype=torch.float64),
                               torch.tensor([1.0, 0, 0], dtype=torch.float64))
    # pitch about +x: +z turns toward -y (the face looks down); roll about +z: +x turns toward +y
    r = euler_deg_to_matrix(torch.tensor([0.0, 90, 0], dtype=torch.float64))
    torch.testing.assert_close(r @ torch.tensor([0.0, 0, 1], dtype=torch.float64),
                               torch.tensor([0.0, -1, 0], dtype=torch.float64))
    r = euler_deg_to_matrix(torch.tensor([0.0, 0, 90], dtype=torch.float64))
    torch.testing.assert_close(r @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
                               torch.tensor([0.0, 1, 0], dtype=torch.float64))
    # order: R = Ry(yaw) Rx(pitch) Rz(roll)
    ypr = torch.tensor([[30.0, -20.0, 10.0], [-70.0, 45.0, -120.0], [170.0, 5.0, 60.0]], dtype=torch.float64)
    composed = (euler_deg_to_matrix(ypr * torch.tensor([1.0, 0, 0])) @ euler_deg_to_matrix(ypr * torch.tensor(
        [0.0, 1, 0])) @ euler_deg_to_matrix(ypr * torch.tensor([0.0, 0, 1])))
    torch.testing.assert_close(euler_deg_to_matrix(ypr), composed)
    torch.testing.assert_close(matrix_to_euler_deg(euler_deg_to_matrix(ypr)), ypr)


def test_euler_at_gimbal_lock_reproduces_the_matrix():
    r = euler_deg_to_matrix(torch.tensor([25.0, 90.0, 40.0], dtype=torch.float64))
    torch.testing.assert_close(euler_deg_to_matrix(matrix_to_euler_deg(r)), r)


def test_batched_shapes():
    aa = torch.zeros(2, 5, 3)
    assert axis_angle_to_matrix(aa).shape == (2, 5, 3, 3)
    assert matrix_to_euler_deg(axis_angle_to_matrix(aa)).shape == (2, 5, 3)
    assert matrix_to_rotation_6d(axis_angle_to_matrix(aa)).shape == (2, 5, 6)
