"""The one state type of a fitted face: `FaceState` = `FaceParams` + `Camera` + `Appearance`.

Every field has a leading batch axis B over *images*. One photo is B = 1. Several photos of one
person share the identity (and albedo): those fields then have a leading axis of 1 while the
per-image fields (expression, pose, camera, light) have B rows, as in eos's multi-image fitting. A
video is the same over frames. Fields are numpy arrays (float64) or torch tensors; `to_torch()` and
`to_numpy()` convert the whole state, so a fit can run in torch and hand back plain arrays.

Units and frames as in docs/conventions.md: mm, axis-angle rotations model -> camera, pixels with
the origin at the top-left corner.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ..errors import UsageError
from ..geometry.rotation import axis_angle_to_matrix_np, matrix_to_euler_deg_np
from ..render import PinholeCamera, WeakPerspectiveCamera

CAMERA_KINDS = ("pinhole", "weak_perspective")


def _map(obj, fn: Callable[[Any], Any]):
    """A copy of dataclass `obj` with `fn` applied to every array/tensor field (None kept)."""
    changes = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, (np.ndarray, torch.Tensor)):
            changes[f.name] = fn(value)
    return dataclasses.replace(obj, **changes)


def _rows(value, index: int):
    """Row `index` of a batched field, kept 2-D (shared fields with one row give that row)."""
    if value is None:
        return None
    return value[index:index + 1] if value.shape[0] > 1 else value[:1]


def _to_numpy(x):
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def _concat(values: list):
    if values[0] is None:
        return None
    if isinstance(values[0], torch.Tensor):
        return torch.cat(values, 0)
    return np.concatenate(values, 0)


@dataclass
class FaceParams:
    """Shape and pose of the face in each image.

    Attributes:
        identity: (B or 1, K) identity coefficients in standard deviations (1 row: shared).
        expression: (B, E) expression weights (ICT blendshapes in [0, 1]; PCA models in std).
        rotation: (B, 3) axis-angle, model -> camera.
        translation: (B, 3) mm.
        joint_pose: (B, J, 3) axis-angle per joint for articulated models (FLAME), or None.
    """

    identity: Any
    expression: Any
    rotation: Any
    translation: Any
    joint_pose: Any = None

    @property
    def batch_size(self) -> int:
        return int(self.expression.shape[0])

    def pose_deg(self) -> np.ndarray:
        """(B, 3) (yaw, pitch, roll) in degrees, R = Ry(yaw) Rx(pitch) Rz(roll)."""
        rot = _to_numpy(self.rotation)
        return np.array([matrix_to_euler_deg_np(axis_angle_to_matrix_np(r)) for r in rot])

    def rotation_matrix(self, index: int = 0) -> np.ndarray:
        """(3, 3) model -> camera rotation of image `index` (float64)."""
        return axis_angle_to_matrix_np(_to_numpy(self.rotation)[index])


@dataclass
class Camera:
    """The camera of each image.

    Attributes:
        focal: (B,) px (pinhole) or the scale in px/mm (weak perspective).
        principal: (B, 2) px: the principal point (pinhole) or the 2D translation (weak perspective).
        image_size: (H, W), the same for every image of a batch.
        kind: "pinhole" or "weak_perspective".
    """

    focal: Any
    principal: Any
    image_size: tuple[int, int]
    kind: str = "pinhole"

    def __post_init__(self) -> None:
        if self.kind not in CAMERA_KINDS:
            raise UsageError(f"camera kind must be one of {CAMERA_KINDS}, got {self.kind!r}")

    def fov_x_deg(self, index: int = 0) -> float:
        """Horizontal field of view of a pinhole camera, degrees."""
        return math.degrees(2 * math.atan(self.image_size[1] / (2 * float(_to_numpy(self.focal)[index]))))


@dataclass
class Appearance:
    """Colour of the face: albedo (shared across images) and light (per image).

    Attributes:
        albedo: (B or 1, V, 3) linear RGB per vertex of the fitted model/view, or None (not fitted).
        sh: (B, 9, 3) SH light in camera space (docs/conventions.md), or None (not fitted).
    """

    albedo: Any = None
    sh: Any = None


@dataclass
class FaceState:
    """Everything that places a face in its images: parameters, camera, appearance.

    `FaceState.single(...)` builds a one-image state from unbatched arrays; `image(i)` takes one image
    out of a batch (shared fields included); `stack(states, share_identity=True)` joins one-image
    states into a several-photo state.
    """

    params: FaceParams
    camera: Camera
    appearance: Appearance = field(default_factory=Appearance)

    def __post_init__(self) -> None:
        b = self.params.batch_size
        rows = {"rotation": self.params.rotation.shape[0], "translation": self.params.translation.shape[0],
                "focal": self.camera.focal.shape[0], "principal": self.camera.principal.shape[0]}
        if self.appearance.sh is not None:
            rows["sh"] = self.appearance.sh.shape[0]
        bad = {k: n for k, n in rows.items() if n != b}
        if bad:
            raise UsageError(f"every per-image field needs {b} rows (one per image), got {bad}")
        for name, value in (("identity", self.params.identity), ("albedo", self.appearance.albedo)):
            if value is not None and value.shape[0] not in (1, b):
                raise UsageError(f"{name} needs 1 row (shared) or {b} rows, got {value.shape[0]}")

    # ---------------------------------------------------------------- construction
    @classmethod
    def single(cls, identity, expression, rotation, translation, focal: float, principal, image_size,
               sh=None, albedo=None, kind: str = "pinhole") -> "FaceState":
        """A one-image state (B = 1) from unbatched numpy arrays: identity (K,), expression (E,),
        rotation (3,), translation (3,), focal, principal (2,), sh (9, 3) or None, albedo (V, 3) or None."""
        row = lambda a: None if a is None else np.asarray(a, dtype=np.float64)[None]  # noqa: E731
        return cls(FaceParams(row(identity), row(expression), row(rotation), row(translation)),
                   Camera(np.array([float(focal)]), row(principal), (int(image_size[0]), int(image_size[1])), kind),
                   Appearance(row(albedo), row(sh)))

    @classmethod
    def stack(cls, states: list["FaceState"], share_identity: bool = True) -> "FaceState":
        """Join one-or-more-image states into one batch; with `share_identity` the identity and albedo
        of the first state become the shared ones (one row)."""
        if not states:
            raise UsageError("stack needs at least one state")
        sizes = {s.camera.image_size for s in states}
        if len(sizes) > 1:
            raise UsageError(f"a batch has one image size; got {sorted(sizes)} (resize or fit separately)")
        p = [s.params for s in states]
        a = [s.appearance for s in states]
        identity = p[0].identity[:1] if share_identity else _concat([x.identity for x in p])
        albedo = a[0].albedo if (share_identity or a[0].albedo is None) else _concat([x.albedo for x in a])
        return cls(
            FaceParams(identity, _concat([x.expression for x in p]), _concat([x.rotation for x in p]),
                       _concat([x.translation for x in p]), _concat([x.joint_pose for x in p])),
            Camera(_concat([s.camera.focal for s in states]), _concat([s.camera.principal for s in states]),
                   states[0].camera.image_size, states[0].camera.kind),
            Appearance(None if albedo is None else albedo[:1] if share_identity else albedo,
                       _concat([x.sh for x in a])),
        )

    # ---------------------------------------------------------------- access
    @property
    def num_images(self) -> int:
        return self.params.batch_size

    @property
    def shares_identity(self) -> bool:
        """True when several images share one identity row."""
        return self.num_images > 1 and self.params.identity.shape[0] == 1

    def image(self, index: int) -> "FaceState":
        """The one-image state (B = 1) of image `index`, shared fields included."""
        if not -self.num_images <= index < self.num_images:
            raise UsageError(f"image index {index} out of range for {self.num_images} images")
        index %= self.num_images
        p, c, a = self.params, self.camera, self.appearance
        return FaceState(
            FaceParams(_rows(p.identity, index), _rows(p.expression, index), _rows(p.rotation, index),
                       _rows(p.translation, index), _rows(p.joint_pose, index)),
            Camera(_rows(c.focal, index), _rows(c.principal, index), c.image_size, c.kind),
            Appearance(_rows(a.albedo, index), _rows(a.sh, index)),
        )

    def to_numpy(self) -> "FaceState":
        """The same state with every field a float64 numpy array."""
        return FaceState(_map(self.params, _to_numpy), _map(self.camera, _to_numpy), _map(self.appearance, _to_numpy))

    def to_torch(self, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> "FaceState":
        """The same state with every field a torch tensor of `dtype` on `device`."""
        fn = lambda x: torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x,  # noqa: E731
                                       dtype=dtype, device=device)
        return FaceState(_map(self.params, fn), _map(self.camera, fn), _map(self.appearance, fn))

    def replace(self, **changes) -> "FaceState":
        """A copy with fields of params/camera/appearance replaced by name, e.g. `replace(expression=e, sh=s)`."""
        parts = {"params": self.params, "camera": self.camera, "appearance": self.appearance}
        for name, value in changes.items():
            owner = next((k for k, part in parts.items() if name in {f.name for f in dataclasses.fields(part)}), None)
            if owner is None:
                raise UsageError(f"FaceState has no field {name!r}")
            parts[owner] = dataclasses.replace(parts[owner], **{name: value})
        return FaceState(**parts)

    def pinhole(self, index: int = 0, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                scale: float = 1.0) -> PinholeCamera | WeakPerspectiveCamera:
        """The render camera of image `index` (batch 1); `scale` resizes the image (0.5: half size)."""
        one = self.image(index).to_numpy()
        h, w = self.camera.image_size
        size = (max(1, int(round(h * scale))), max(1, int(round(w * scale))))
        t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
        if self.camera.kind == "weak_perspective":
            return WeakPerspectiveCamera(t(one.params.rotation), t(one.camera.focal * scale),
                                         t(one.camera.principal * scale), size)
        return PinholeCamera(t(one.params.rotation), t(one.params.translation), t(one.camera.focal * scale),
                             t(one.camera.principal * scale), size)

    def camera_points(self, points: np.ndarray, index: int = 0) -> np.ndarray:
        """(N, 3) model-space points of image `index` -> camera space (mm)."""
        one = self.image(index).to_numpy()
        return np.asarray(points, dtype=np.float64) @ one.params.rotation_matrix().T + one.params.translation[0]

    def project(self, points: np.ndarray, index: int = 0) -> np.ndarray:
        """(N, 3) model-space points -> (N, 2) pixels in image `index` (pinhole)."""
        y = self.camera_points(points, index)
        one = self.image(index).to_numpy()
        f, c = one.camera.focal[0], one.camera.principal[0]
        z = np.maximum(-y[:, 2], 1e-9)
        return np.stack([c[0] + f * y[:, 0] / z, c[1] - f * y[:, 1] / z], 1)

    def is_finite(self) -> bool:
        """False when any field holds NaN or inf."""
        parts = (self.params, self.camera, self.appearance)
        for part in parts:
            for f in dataclasses.fields(part):
                value = getattr(part, f.name)
                if isinstance(value, (np.ndarray, torch.Tensor)) and not np.isfinite(_to_numpy(value)).all():
                    return False
        return True
