"""Gaze: each eyeball's rotation from MediaPipe's iris centres, for models with eyeballs (ICT).

An eye is its eyeball's centre c (a least-squares sphere through the `eyeball_<side>` region), its
rest axis a0 (from c to the centre of the iris disc: the `M_Iris<Side>` vertices within
`IRIS_DISC_DEPTH_MM` of the frontmost, as the model looks down +z at rest)
and the iris centre's distance r from c. Looking by yaw theta (about model +y, positive toward +x,
the subject's left) and pitch phi (about model +x, positive up), the iris centre is
c + r Ry(theta) Rx(-phi) a0. `fit_gaze` finds the two angles per eye that put its projected iris
centre on the detected one (MediaPipe 468 right eye, 473 left eye; ICT's left eye is at +x) by
Gauss-Newton with a weak prior toward straight ahead, and turns them into ARKit's eyeLook* weights
(in/out/up/down, each angle over `LOOK_RANGE_DEG`, clipped to [0, 1]).

Units: mm and degrees, model space (docs/conventions.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FitError, UsageError
from ..models import MorphableModel
from .state import FaceState

IRIS_CENTRES = {"right": 468, "left": 473}  # MediaPipe's iris centre points
SIDE_SIGN = {"left": 1.0, "right": -1.0}  # ICT's left eye is at +x
IRIS_DISC_DEPTH_MM = 3.0  # the iris disc: iris vertices within this of the frontmost (the rest gaze is +z)
# the eye rotation (deg) that is a full ARKit eyeLook* weight
LOOK_RANGE_DEG = {"in": 30.0, "out": 30.0, "up": 25.0, "down": 30.0}


@dataclass
class Eye:
    """One eyeball at rest: centre (3,) mm, unit rest axis (3,), iris centre distance from the centre (mm),
    and the vertex ids that turn with it (eyeball and iris)."""

    centre: np.ndarray
    axis: np.ndarray
    radius: float
    vertices: np.ndarray


@dataclass
class Gaze:
    """Fitted eye rotations.

    Attributes:
        angles_deg: {"left": (yaw, pitch), "right": (yaw, pitch)} in degrees, model space (yaw toward
            +x, the subject's left; pitch up).
        directions: {"left": (3,), "right": (3,)} unit gaze directions in camera space.
        arkit: the eight eyeLook{Down,In,Out,Up}{Left,Right} weights in [0, 1].
        residual_px: {"left": px, "right": px} distance of the projected iris centre from the detected one.
    """

    angles_deg: dict
    directions: dict
    arkit: dict
    residual_px: dict

    def to_dict(self) -> dict:
        """JSON-ready."""
        r = lambda x: round(float(x), 4)  # noqa: E731
        return {"angles_deg": {k: {"yaw": r(v[0]), "pitch": r(v[1])} for k, v in self.angles_deg.items()},
                "directions_camera": {k: [r(x) for x in v] for k, v in self.directions.items()},
                "arkit": {k: r(v) for k, v in self.arkit.items()},
                "residual_px": {k: r(v) for k, v in self.residual_px.items()},
                "convention": "yaw toward the subject's left (+x), pitch up, degrees, model space"}


def _rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Ry(yaw) Rx(-pitch): turns +z toward +x by yaw and toward +y by pitch."""
    t, p = np.radians(yaw_deg), np.radians(pitch_deg)
    ry = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    return ry @ rx


def _sphere_centre(points: np.ndarray) -> np.ndarray:
    """Least-squares sphere centre of (N, 3) points: |p|^2 = 2 p.c + (r^2 - |c|^2)."""
    a = np.c_[2 * points, np.ones(len(points))]
    sol = np.linalg.lstsq(a, (points ** 2).sum(1), rcond=None)[0]
    return sol[:3]


def eyes(model: MorphableModel, vertices: np.ndarray) -> dict[str, Eye]:
    """The two eyes of `vertices` (V, 3) of `model` (its full topology); `UsageError` without eyeballs."""
    v = np.asarray(vertices, dtype=np.float64)
    if v.shape != (model.num_vertices, 3):
        raise UsageError(f"vertices must have shape ({model.num_vertices}, 3), got {v.shape}")
    out = {}
    for side in ("left", "right"):
        region, group = f"eyeball_{side}", f"M_Iris{side.capitalize()}"
        if region not in model.regions or group not in model.triangle_groups:
            raise UsageError(f"model {model.name!r} has no eyeballs (region {region!r}, group {group!r}): no gaze")
        ball = model.regions[region].cpu().numpy()
        iris = np.unique(model.triangles.cpu().numpy()[model.triangle_groups[group].cpu().numpy()])
        c = _sphere_centre(v[ball])
        rel = v[iris] - c
        front = rel[:, 2] >= rel[:, 2].max() - IRIS_DISC_DEPTH_MM  # the iris disc: the front of the iris
        tip = rel[front].mean(0)
        out[side] = Eye(c, tip / np.linalg.norm(tip), float(np.linalg.norm(tip)), np.union1d(ball, iris))
    return out


def iris_centre(eye: Eye, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """(3,) the iris centre of `eye` turned by (yaw, pitch), model space."""
    return eye.centre + eye.radius * (_rotation(yaw_deg, pitch_deg) @ eye.axis)


def rotate_eyes(model: MorphableModel, vertices: np.ndarray, angles_deg: dict) -> np.ndarray:
    """(V, 3) `vertices` with each eye's vertices turned about its centre by {"left": (yaw, pitch), ...}."""
    v = np.array(vertices, dtype=np.float64)
    for side, eye in eyes(model, v).items():
        if side in angles_deg:
            r = _rotation(*angles_deg[side])
            v[eye.vertices] = (v[eye.vertices] - eye.centre) @ r.T + eye.centre
    return v


def arkit_eye_weights(angles_deg: dict) -> dict[str, float]:
    """ARKit's eyeLook{Down,In,Out,Up}{Left,Right} from {"left": (yaw, pitch), "right": (yaw, pitch)}.

    In/out: toward the nose / away from it (the left eye looks out toward +x, the right one in)."""
    out = {}
    for side, (yaw, pitch) in angles_deg.items():
        name = side.capitalize()
        outward = SIDE_SIGN[side] * yaw
        out[f"eyeLookOut{name}"] = float(np.clip(outward / LOOK_RANGE_DEG["out"], 0, 1))
        out[f"eyeLookIn{name}"] = float(np.clip(-outward / LOOK_RANGE_DEG["in"], 0, 1))
        out[f"eyeLookUp{name}"] = float(np.clip(pitch / LOOK_RANGE_DEG["up"], 0, 1))
        out[f"eyeLookDown{name}"] = float(np.clip(-pitch / LOOK_RANGE_DEG["down"], 0, 1))
    return dict(sorted(out.items()))


def fit_gaze(model: MorphableModel, vertices: np.ndarray, state: FaceState, points: np.ndarray,
             prior_deg: float = 30.0, noise_px: float = 1.0, iterations: int = 10) -> Gaze:
    """Both eyes' (yaw, pitch) from MediaPipe's (478, 2) points (px, the state's image).

    Args:
        model: the full model (with eyeballs). vertices: (V, 3) the fitted shape, model space.
        state: the one-image fitted state. points: (478, 2) detected points.
        prior_deg: std of the zero-mean prior on each angle. noise_px: std of a detected iris centre.

    Raises:
        UsageError: bad shapes or a model without eyeballs. FitError: the iris centres are not finite.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape != (478, 2):
        raise UsageError(f"gaze needs MediaPipe's (478, 2) points, got {pts.shape}")
    found = eyes(model, vertices)
    rot = state.params.rotation_matrix(0)
    angles, dirs, resid = {}, {}, {}
    for side, eye in found.items():
        target = pts[IRIS_CENTRES[side]]
        if not np.isfinite(target).all():
            raise FitError(f"the {side} iris centre is not finite: cannot fit the gaze")
        x = np.zeros(2)

        def residual(a: np.ndarray) -> np.ndarray:
            proj = state.project(iris_centre(eye, a[0], a[1])[None])[0]
            return np.r_[(proj - target) / noise_px, a / prior_deg]

        for _ in range(iterations):
            r = residual(x)
            jac = np.stack([(residual(x + h) - r) / 1e-3 for h in np.eye(2) * 1e-3], 1)
            step = np.linalg.solve(jac.T @ jac, -jac.T @ r)
            x = np.clip(x + step, -60.0, 60.0)
            if np.abs(step).max() < 1e-4:
                break
        angles[side] = (float(x[0]), float(x[1]))
        dirs[side] = rot @ (_rotation(x[0], x[1]) @ eye.axis)
        resid[side] = float(np.linalg.norm(residual(x)[:2]) * noise_px)
    return Gaze(angles, dirs, arkit_eye_weights(angles), resid)
