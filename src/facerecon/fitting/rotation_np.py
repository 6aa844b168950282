"""Small rotation helpers in numpy float64 for the closed-form / Gauss-Newton stages."""
from __future__ import annotations

import numpy as np


def rodrigues_np(aa: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) to a rotation matrix (3, 3)."""
    theta = float(np.linalg.norm(aa))
    if theta < 1e-12:
        k = np.array([[0, -aa[2], aa[1]], [aa[2], 0, -aa[0]], [-aa[1], aa[0], 0]])
        return np.eye(3) + k
    axis = aa / theta
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(theta) * k + (1 - np.cos(theta)) * (k @ k)


def so3_log(r: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) to axis-angle (3,), stable near 0 and pi."""
    cos = np.clip((np.trace(r) - 1) / 2, -1.0, 1.0)
    theta = np.arccos(cos)
    if theta < 1e-7:
        return np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]) / 2
    if np.pi - theta < 1e-4:
        # axis from the symmetric part
        m = (r + np.eye(3)) / 2
        axis = np.sqrt(np.maximum(np.diag(m), 0))
        i = int(np.argmax(axis))
        axis = m[:, i] / np.sqrt(max(m[i, i], 1e-12))
        return axis / np.linalg.norm(axis) * theta
    return theta / (2 * np.sin(theta)) * np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])


def euler_from_matrix_deg(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees with R = Ry(yaw) @ Rx(pitch) @ Rz(roll).

    Yaw turns about +y (positive: the face turns toward +x, the subject's left), pitch about +x
    (positive: the face tilts up), roll about +z.
    """
    # R = Ry(yaw) @ Rx(pitch) @ Rz(roll)
    pitch = np.arcsin(np.clip(-r[1, 2], -1, 1))
    yaw = np.arctan2(r[0, 2], r[2, 2])
    roll = np.arctan2(r[1, 0], r[1, 1])
    return float(np.degrees(yaw)), float(np.degrees(pitch)), float(np.degrees(roll))
