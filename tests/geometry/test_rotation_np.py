import numpy as np
import pytest
import torch

from facerecon.geometry.rotation import (axis_angle_to_matrix, axis_angle_to_matrix_np, matrix_to_axis_angle_np,
                                         matrix_to_euler_deg, matrix_to_euler_deg_np)


@pytest.mark.parametrize("aa", [[0.0, 0, 0], [1e-13, 0, 0], [0.3, -0.2, 0.1], [0, np.pi - 1e-6, 0], [1.0, 1.0, 1.0]])
def test_numpy_rotations_match_torch_and_round_trip(aa):
    aa = np.array(aa)
    r = axis_angle_to_matrix_np(aa)
    np.testing.assert_allclose(r, axis_angle_to_matrix(torch.as_tensor(aa)).numpy(), atol=1e-9)
    np.testing.assert_allclose(axis_angle_to_matrix_np(matrix_to_axis_angle_np(r)), r, atol=1e-6)


def test_numpy_euler_matches_torch():
    aa = np.array([0.2, 0.5, -0.1])
    r = axis_angle_to_matrix_np(aa)
    np.testing.assert_allclose(matrix_to_euler_deg_np(r), matrix_to_euler_deg(torch.as_tensor(r)).numpy(), atol=1e-9)
