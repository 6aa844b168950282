"""Closed-form camera starts from 2D-3D landmark pairs (eos: `estimate_orthographic_projection_linear`)."""
from __future__ import annotations

import numpy as np

from ..geometry.rotation import matrix_to_axis_angle_np


def estimate_orthographic_projection_linear(model_points: np.ndarray, image_points: np.ndarray,
                                            weights: np.ndarray | None = None):
    """Scaled-orthographic camera from 2D-3D correspondences (affine least squares, then the nearest rotation).

    Args:
        model_points: (L, 3) mm. image_points: (L, 2) px. weights: (L,).

    Returns:
        (R (3, 3), s px/mm, t (2,) px) with u = s (R x)_x + t_x, v = -s (R x)_y + t_y.
    """
    w = np.ones(len(model_points)) if weights is None else weights
    keep = w > 0
    x = model_points[keep]
    p = image_points[keep]
    sw = np.sqrt(w[keep])[:, None]
    a = np.concatenate([x, np.ones((len(x), 1))], 1) * sw
    sol, *_ = np.linalg.lstsq(a, p * sw, rcond=None)  # (4, 2)
    r1, r2 = sol[:3, 0], -sol[:3, 1]
    s = (np.linalg.norm(r1) + np.linalg.norm(r2)) / 2
    m = np.stack([r1, r2, np.cross(r1, r2)])
    uu, _, vt = np.linalg.svd(m)
    r = uu @ vt
    if np.linalg.det(r) < 0:
        r = uu @ np.diag([1, 1, -1]) @ vt
    return r, float(s), sol[3]


def estimate_initial_pose(model_points: np.ndarray, image_points: np.ndarray, weights: np.ndarray, focal: float,
                          principal: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """A pinhole pose from the scaled-orthographic one: the depth that gives its scale at `focal`.

    Args:
        model_points: (L, 3) mm. image_points: (L, 2) px. weights: (L,). focal: px. principal: (2,) px.

    Returns:
        (rotation (3,) axis-angle, translation (3,) mm, log focal).
    """
    r, s, t2 = estimate_orthographic_projection_linear(model_points, image_points, weights)
    dist = focal / max(s, 1e-6)
    centre = (model_points[weights > 0] @ r.T).mean(0)
    uc = s * centre[0] + t2[0]
    vc = -s * centre[1] + t2[1]
    trans = np.array([(uc - principal[0]) * dist / focal - centre[0],
                      -(vc - principal[1]) * dist / focal - centre[1],
                      -dist - centre[2]])
    return matrix_to_axis_angle_np(r), trans, float(np.log(focal))
