"""Rotations: the one home of every conversion, in torch (batched, differentiable) and numpy.

Torch functions take any leading dimensions; the `_np` functions take one rotation in float64 for
the closed-form and Gauss-Newton stages.

- axis-angle `(..., 3)`: direction = axis, norm = angle in radians (the project's default).
- 6D `(..., 6)`: the first two *rows* of the matrix (Zhou et al. 2019, as in pytorch3d).
- Euler angles in degrees `(..., 3)` = (yaw, pitch, roll): yaw about +y, pitch about +x, roll about
  +z, each positive by the right-hand rule, composed as ``R = R_y(yaw) @ R_x(pitch) @ R_z(roll)``
  (roll is applied first, yaw last). For a head facing +z: positive yaw turns it toward +x (its
  left, the viewer's right), positive pitch makes it look down, positive roll lifts its left side.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# Below this squared angle, sin(t)/t and (1-cos t)/t^2 use their Taylor series (exact to float64).
_SMALL_ANGLE2 = 1e-6


def _skew(v: Tensor) -> Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrices [v]x."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(v.shape[:-1] + (3, 3))


def axis_angle_to_matrix(axis_angle: Tensor) -> Tensor:
    """Rodrigues' formula. (..., 3) radians -> (..., 3, 3); smooth (and its gradient finite) at 0."""
    t2 = (axis_angle * axis_angle).sum(-1)[..., None, None]
    small = t2 < _SMALL_ANGLE2
    t2_safe = torch.where(small, torch.ones_like(t2), t2)
    t = t2_safe.sqrt()
    a = torch.where(small, 1 - t2 / 6 + t2 * t2 / 120, torch.sin(t) / t)
    b = torch.where(small, 0.5 - t2 / 24 + t2 * t2 / 720, (1 - torch.cos(t)) / t2_safe)
    k = _skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a * k + b * (k @ k)


def _matrix_to_quaternion(m: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 4) unit quaternion (w, x, y, z), w >= 0; numerically robust everywhere."""
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # Four candidate solutions, each well conditioned where its leading component is large.
    q_abs = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1
    ).clamp_min(1e-12).sqrt()
    cands = torch.stack(
        [
            torch.stack([q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20], -1),
            torch.stack([m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21], -1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2], -1),
        ],
        -2,
    ) / (2 * q_abs[..., None].clamp_min(0.1))
    best = q_abs.argmax(-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def matrix_to_axis_angle(matrix: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle with angle in [0, pi]."""
    q = _matrix_to_quaternion(matrix)
    v = q[..., 1:]
    s2 = (v * v).sum(-1, keepdim=True)
    small = s2 < _SMALL_ANGLE2
    s = torch.where(small, torch.ones_like(s2), s2).sqrt()
    angle = 2 * torch.atan2(s, q[..., :1])
    # angle / sin(angle/2) = 2 atan(s/w) / s -> 2 / w * (1 - s^2 / (3 w^2)) as s -> 0
    w = q[..., :1]
    factor = torch.where(small, 2 / w * (1 - s2 / (3 * w * w)), angle / s)
    return v * factor


def rotation_6d_to_matrix(d6: Tensor) -> Tensor:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt; the 6 numbers are the first two rows (pytorch3d)."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-2)


def matrix_to_rotation_6d(matrix: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 6): the first two rows."""
    return matrix[..., :2, :].reshape(matrix.shape[:-2] + (6,))


def _rot(angle: Tensor, axis: int) -> Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    o, i = torch.zeros_like(c), torch.ones_like(c)
    if axis == 0:
        rows = [i, o, o, o, c, -s, o, s, c]
    elif axis == 1:
        rows = [c, o, s, o, i, o, -s, o, c]
    else:
        rows = [c, -s, o, s, c, o, o, o, i]
    return torch.stack(rows, -1).reshape(angle.shape + (3, 3))


def euler_deg_to_matrix(yaw_pitch_roll: Tensor) -> Tensor:
    """(..., 3) degrees (yaw, pitch, roll) -> (..., 3, 3) = R_y(yaw) @ R_x(pitch) @ R_z(roll)."""
    yaw, pitch, roll = torch.deg2rad(yaw_pitch_roll).unbind(-1)
    return _rot(yaw, 1) @ _rot(pitch, 0) @ _rot(roll, 2)


def matrix_to_euler_deg(matrix: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 3) degrees (yaw, pitch, roll), pitch in [-90, 90], inverse of the above.

    At gimbal lock (|pitch| = 90) roll is set to 0 and the whole turn about y goes to yaw.
    """
    sin_pitch = (-matrix[..., 1, 2]).clamp(-1.0, 1.0)
    pitch = torch.asin(sin_pitch)
    locked = (matrix[..., 1, 0].abs() + matrix[..., 1, 1].abs()) < 1e-6
    yaw = torch.where(
        locked,
        torch.atan2(-matrix[..., 2, 0], matrix[..., 0, 0]),
        torch.atan2(matrix[..., 0, 2], matrix[..., 2, 2]),
    )
    roll = torch.where(locked, torch.zeros_like(pitch), torch.atan2(matrix[..., 1, 0], matrix[..., 1, 1]))
    return torch.rad2deg(torch.stack([yaw, pitch, roll], -1))


def axis_angle_to_rotation_6d(axis_angle: Tensor) -> Tensor:
    """(..., 3) -> (..., 6)."""
    return matrix_to_rotation_6d(axis_angle_to_matrix(axis_angle))


def rotation_6d_to_axis_angle(d6: Tensor) -> Tensor:
    """(..., 6) -> (..., 3)."""
    return matrix_to_axis_angle(rotation_6d_to_matrix(d6))


def axis_angle_to_matrix_np(axis_angle: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) to a rotation matrix (3, 3), float64 (first order below 1e-12 rad)."""
    aa = np.asarray(axis_angle, dtype=np.float64)
    theta = float(np.linalg.norm(aa))
    if theta < 1e-12:
        return np.eye(3) + _skew_np(aa)
    k = _skew_np(aa / theta)
    return np.eye(3) + np.sin(theta) * k + (1 - np.cos(theta)) * (k @ k)


def matrix_to_axis_angle_np(matrix: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) to axis-angle (3,), stable near 0 and pi."""
    r = np.asarray(matrix, dtype=np.float64)
    cos = np.clip((np.trace(r) - 1) / 2, -1.0, 1.0)
    theta = np.arccos(cos)
    vee = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    if theta < 1e-7:
        return vee / 2
    if np.pi - theta < 1e-4:
        # near pi the antisymmetric part vanishes: take the axis from the symmetric part
        m = (r + np.eye(3)) / 2
        i = int(np.argmax(np.diag(m)))
        axis = m[:, i] / np.sqrt(max(m[i, i], 1e-12))
        return axis / np.linalg.norm(axis) * theta
    return theta / (2 * np.sin(theta)) * vee


def matrix_to_euler_deg_np(matrix: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of one (3, 3) matrix, R = R_y(yaw) @ R_x(pitch) @ R_z(roll)
    (the numpy twin of `matrix_to_euler_deg`, away from gimbal lock)."""
    r = np.asarray(matrix, dtype=np.float64)
    pitch = np.arcsin(np.clip(-r[1, 2], -1, 1))
    yaw = np.arctan2(r[0, 2], r[2, 2])
    roll = np.arctan2(r[1, 0], r[1, 1])
    return float(np.degrees(yaw)), float(np.degrees(pitch)), float(np.degrees(roll))


def _skew_np(v: np.ndarray) -> np.ndarray:
    return np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])


__all__ = [
    "axis_angle_to_matrix_np",
    "matrix_to_axis_angle_np",
    "matrix_to_euler_deg_np",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "rotation_6d_to_matrix",
    "matrix_to_rotation_6d",
    "axis_angle_to_rotation_6d",
    "rotation_6d_to_axis_angle",
    "euler_deg_to_matrix",
    "matrix_to_euler_deg",
]
