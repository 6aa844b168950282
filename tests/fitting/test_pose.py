import numpy as np
import pytest

from facerecon.fitting.pose import estimate_initial_pose, estimate_orthographic_projection_linear
from facerecon.geometry.rotation import axis_angle_to_matrix_np as rodrigues_np


def test_orthographic_estimate_recovers_rotation_and_scale():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 3)) * 40
    r = rodrigues_np(np.array([0.2, -0.4, 0.1]))
    p = np.stack([2.0 * (x @ r.T)[:, 0] + 100, -2.0 * (x @ r.T)[:, 1] + 80], 1)
    r_est, s, t = estimate_orthographic_projection_linear(x, p)
    np.testing.assert_allclose(r_est, r, atol=1e-9)
    assert s == pytest.approx(2.0) and t == pytest.approx([100, 80])


def test_initial_pose_places_the_points_in_front_of_the_camera_at_the_right_depth():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 3)) * 40
    rot, trans, focal = np.array([0.1, -0.3, 0.05]), np.array([10.0, -5.0, -800.0]), 1000.0
    y = x @ rodrigues_np(rot).T + trans
    p = np.stack([320 + focal * y[:, 0] / -y[:, 2], 240 - focal * y[:, 1] / -y[:, 2]], 1)
    r_est, t_est, log_f = estimate_initial_pose(x, p, np.ones(60), focal, np.array([320.0, 240.0]))
    np.testing.assert_allclose(rodrigues_np(r_est), rodrigues_np(rot), atol=0.02)
    assert t_est[2] == pytest.approx(trans[2], rel=0.05) and log_f == pytest.approx(np.log(focal))
