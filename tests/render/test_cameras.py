import pytest
import torch

from facerecon.errors import UsageError
from facerecon.render.cameras import PinholeCamera, WeakPerspectiveCamera
from facerecon.geometry.rotation import euler_deg_to_matrix, matrix_to_axis_angle

from .helpers import assert_grad_matches


def _f64(x):
    return torch.tensor(x, dtype=torch.float64)


def test_pinhole_projection_follows_the_conventions():
    cam = PinholeCamera(torch.zeros(1, 3, dtype=torch.float64), _f64([[0.0, 0.0, -500.0]]), _f64([1000.0]),
                        _f64([[100.0, 80.0]]), (160, 200))
    pts = _f64([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 100.0]])[None]
    s = cam.to_screen(pts)[0]
    # the origin lands on the principal point, +x to the right, +y up (smaller v), +z nearer
    torch.testing.assert_close(s[0], _f64([100.0, 80.0, 500.0]))
    torch.testing.assert_close(s[1], _f64([120.0, 80.0, 500.0]))
    torch.testing.assert_close(s[2], _f64([100.0, 60.0, 500.0]))
    torch.testing.assert_close(s[3, 2], _f64(400.0))
    torch.testing.assert_close(cam.project(pts), s[None, :, :2])
    assert cam.is_perspective


def test_weak_perspective_projection():
    rot = matrix_to_axis_angle(euler_deg_to_matrix(_f64([[90.0, 0.0, 0.0]])))
    cam = WeakPerspectiveCamera(rot, _f64([2.0]), _f64([[50.0, 60.0]]), (120, 100))
    s = cam.to_screen(_f64([[[0.0, 0.0, 10.0], [0.0, 5.0, 0.0]]]))[0]
    # yaw 90: +z goes to +x; depth is -z' (here 0), +y goes up
    torch.testing.assert_close(s[0], _f64([70.0, 60.0, 0.0]), atol=1e-9, rtol=0)
    torch.testing.assert_close(s[1], _f64([50.0, 50.0, 0.0]), atol=1e-9, rtol=0)
    assert not cam.is_perspective


def test_points_behind_the_camera_stay_finite():
    cam = PinholeCamera.looking_at_origin(100.0, (64, 64), dtype=torch.float64)
    s = cam.to_screen(_f64([[[1.0, 1.0, 100.0], [1.0, 1.0, 200.0]]]))
    assert torch.isfinite(s).all()
    assert (s[0, :, 2] <= 0).all()


def test_camera_gradients():
    rot = _f64([[0.1, -0.2, 0.05]]).requires_grad_(True)
    trans = _f64([[3.0, -2.0, -400.0]]).requires_grad_(True)
    focal = _f64([800.0]).requires_grad_(True)
    pts = torch.randn(1, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 30
    w = torch.randn(1, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def loss():
        return (PinholeCamera(rot, trans, focal, _f64([[32.0, 32.0]]), (64, 64)).to_screen(pts) * w).sum()

    for x in (rot, trans, focal):
        assert_grad_matches(loss, x)


def test_batch_broadcast_and_bad_shapes():
    cam = PinholeCamera.looking_at_origin(300.0, (32, 48), batch=1)
    assert cam.to_screen(torch.zeros(4, 7, 3)).shape == (4, 7, 3)
    with pytest.raises(UsageError):
        PinholeCamera(torch.zeros(3), torch.zeros(1, 3), torch.ones(1), torch.zeros(1, 2), (8, 8))
    with pytest.raises(UsageError):
        WeakPerspectiveCamera(torch.zeros(1, 3), torch.ones(1), torch.zeros(1, 3), (8, 8))
    with pytest.raises(UsageError):
        cam.to_screen(torch.zeros(7, 3))
