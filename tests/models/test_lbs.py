import numpy as np
import torch
from scipy.spatial.transform import Rotation

from facerecon.geometry.rotation import axis_angle_to_matrix as rodrigues
from facerecon.models import Skeleton, skin


def test_rodrigues_matches_scipy_and_is_smooth_at_zero():
    aa = torch.randn(20, 3, dtype=torch.float64)
    expected = Rotation.from_rotvec(aa.numpy()).as_matrix()
    np.testing.assert_allclose(rodrigues(aa).numpy(), expected, atol=1e-10)
    zero = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    rodrigues(zero).sum().backward()
    assert torch.isfinite(zero.grad).all()


def _chain_skeleton(num_verts: int) -> Skeleton:
    # two joints: root at the origin, child at vertex mean; vertices right of x=0 follow the child
    reg = torch.zeros(2, num_verts, dtype=torch.float64)
    reg[0, 0] = 1.0
    reg[1, 1] = 1.0
    weights = torch.zeros(num_verts, 2, dtype=torch.float64)
    weights[:, 0] = 1.0
    weights[2:, 0] = 0.0
    weights[2:, 1] = 1.0
    return Skeleton(reg, torch.tensor([-1, 0]), weights, torch.zeros(9, num_verts * 3, dtype=torch.float64), ("root", "jaw"))


def test_skin_rest_pose_is_identity_and_child_rotates_about_its_joint():
    rest = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0], [1.0, 1.0, 0]]], dtype=torch.float64)
    sk = _chain_skeleton(4)
    torch.testing.assert_close(skin(rest, torch.zeros(1, 2, 3, dtype=torch.float64), sk), rest)
    pose = torch.zeros(1, 2, 3, dtype=torch.float64)
    pose[0, 1, 2] = np.pi / 2  # child joint at (1,0,0) rotates 90 degrees about z
    out = skin(rest, pose, sk)
    torch.testing.assert_close(out[0, :2], rest[0, :2])
    torch.testing.assert_close(out[0, 2], torch.tensor([1.0, 1.0, 0], dtype=torch.float64))
    torch.testing.assert_close(out[0, 3], torch.tensor([0.0, 0.0, 0], dtype=torch.float64))
