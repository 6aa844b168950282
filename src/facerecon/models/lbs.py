"""Linear blend skinning for articulated models (FLAME: global, neck, jaw, left eye, right eye).

Plain functions on tensors; `MorphableModel.vertices` calls `skin` when the model has a skeleton.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..geometry.rotation import axis_angle_to_matrix


@dataclass(frozen=True, eq=False)
class Skeleton:
    """Kinematic data of an articulated model.

    Attributes:
        joint_regressor: (J, V) joint locations as linear combinations of rest vertices.
        parents: (J,) long, parent joint of each joint, -1 for the root.
        weights: (V, J) skinning weights.
        pose_basis: (P, V * 3) pose-corrective offsets driven by (R_j - I) of the non-root joints,
            P = 9 * (J - 1); may be all zeros.
        joint_names: names of the J joints.
    """

    joint_regressor: Tensor
    parents: Tensor
    weights: Tensor
    pose_basis: Tensor
    joint_names: tuple[str, ...]

    @property
    def num_joints(self) -> int:
        return int(self.parents.shape[0])

    def to(self, device=None, dtype=None) -> "Skeleton":
        def conv(t: Tensor) -> Tensor:
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return Skeleton(conv(self.joint_regressor), self.parents.to(device), conv(self.weights),
                        conv(self.pose_basis), self.joint_names)


def skin(rest: Tensor, pose: Tensor, skeleton: Skeleton) -> Tensor:
    """Pose-corrective offsets and linear blend skinning.

    Args:
        rest: (B, V, 3) shaped vertices in the rest pose (identity and expression applied).
        pose: (B, J, 3) axis-angle per joint, joint 0 the root (global rotation about the root joint).
        skeleton: the model's `Skeleton`.

    Returns:
        (B, V, 3) posed vertices.
    """
    batch, num_verts, _ = rest.shape
    num_joints = skeleton.num_joints
    rot = axis_angle_to_matrix(pose.reshape(-1, 3)).reshape(batch, num_joints, 3, 3)
    eye = torch.eye(3, dtype=rest.dtype, device=rest.device)
    pose_feature = (rot[:, 1:] - eye).reshape(batch, -1)
    shaped = rest + (pose_feature @ skeleton.pose_basis).reshape(batch, num_verts, 3)

    joints = torch.einsum("jv,bvc->bjc", skeleton.joint_regressor, rest)
    parents = skeleton.parents.tolist()
    rel = joints.clone()
    for j in range(1, num_joints):
        rel[:, j] = joints[:, j] - joints[:, parents[j]]
    local = torch.cat([rot, rel[..., None]], dim=-1)  # (B, J, 3, 4)
    bottom = torch.tensor([0, 0, 0, 1], dtype=rest.dtype, device=rest.device).expand(batch, num_joints, 1, 4)
    local = torch.cat([local, bottom], dim=-2)  # (B, J, 4, 4)
    chain = [local[:, 0]]
    for j in range(1, num_joints):
        chain.append(chain[parents[j]] @ local[:, j])
    world = torch.stack(chain, dim=1)  # (B, J, 4, 4)
    # remove the rest-pose joint location so transforms act on rest vertices
    joint_h = torch.cat([joints, torch.zeros_like(joints[..., :1])], dim=-1)[..., None]
    world = world.clone()
    world[..., :, 3:] = world[..., :, 3:] - world @ joint_h
    blended = torch.einsum("vj,bjrc->bvrc", skeleton.weights, world)  # (B, V, 4, 4)
    homo = torch.cat([shaped, torch.ones_like(shaped[..., :1])], dim=-1)
    return torch.einsum("bvrc,bvc->bvr", blended[..., :3, :], homo)
