"""Batched cameras: model space (mm) -> camera space -> screen (u, v, depth).

Conventions (docs/conventions.md): the camera looks down -z with +y up; ``x_cam = R x + t``;
(u, v) are pixel coordinates with the origin at the top-left corner of the image and pixel centres
at +0.5. ``to_screen`` returns (u, v, depth), the input of :func:`facerecon.render.rasterize`.
A camera's tensors may have batch 1 and broadcast against a batch of points.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from facerecon.errors import UsageError

from ..geometry.rotation import axis_angle_to_matrix

# Depth below which a point counts as on or behind the camera plane: its (u, v) are then computed
# with this depth instead, to stay finite; the rasteriser drops triangles touching such points.
MIN_DEPTH = 1e-6


def _check_image_size(image_size: tuple[int, int]) -> tuple[int, int]:
    if len(image_size) != 2 or min(int(image_size[0]), int(image_size[1])) < 1:
        raise UsageError(f"image_size must be (H, W) with H, W >= 1, got {image_size!r}")
    return int(image_size[0]), int(image_size[1])


def _check_points(points: Tensor) -> None:
    if points.dim() != 3 or points.shape[-1] != 3:
        raise UsageError(f"points must have shape (B, N, 3), got {tuple(points.shape)}")


@dataclass
class PinholeCamera:
    """Perspective camera.

    rotation (B, 3) axis-angle, translation (B, 3) mm, focal (B,) px, principal (B, 2) px (cx, cy),
    image_size (H, W). Projection: u = cx + f x / (-z), v = cy - f y / (-z) in camera space.
    """

    rotation: Tensor
    translation: Tensor
    focal: Tensor
    principal: Tensor
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        self.image_size = _check_image_size(self.image_size)
        for name, shape in (("rotation", 3), ("translation", 3), ("principal", 2)):
            t = getattr(self, name)
            if t.dim() != 2 or t.shape[-1] != shape:
                raise UsageError(f"PinholeCamera.{name} must have shape (B, {shape}), got {tuple(t.shape)}")
        if self.focal.dim() != 1:
            raise UsageError(f"PinholeCamera.focal must have shape (B,), got {tuple(self.focal.shape)}")

    is_perspective = True

    @classmethod
    def looking_at_origin(
        cls,
        distance: float,
        image_size: tuple[int, int],
        fov_deg: float = 12.0,
        batch: int = 1,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> "PinholeCamera":
        """A frontal camera on the +z axis at `distance` mm, principal point at the image centre,
        with vertical field of view `fov_deg`."""
        h, w = _check_image_size(image_size)
        focal = 0.5 * h / math.tan(math.radians(fov_deg) / 2)
        kw = {"dtype": dtype, "device": device}
        return cls(
            rotation=torch.zeros(batch, 3, **kw),
            translation=torch.tensor([[0.0, 0.0, -distance]], **kw).repeat(batch, 1),
            focal=torch.full((batch,), focal, **kw),
            principal=torch.tensor([[w / 2, h / 2]], **kw).repeat(batch, 1),
            image_size=(h, w),
        )

    @property
    def rotation_matrix(self) -> Tensor:
        """(B, 3, 3)"""
        return axis_angle_to_matrix(self.rotation)

    def transform(self, points: Tensor) -> Tensor:
        """(B, N, 3) model space -> (B, N, 3) camera space, x_cam = R x + t."""
        _check_points(points)
        return points @ self.rotation_matrix.transpose(-1, -2) + self.translation[:, None, :]

    def to_screen(self, points: Tensor) -> Tensor:
        """(B, N, 3) model space -> (B, N, 3) (u, v, depth), depth = -z_cam > 0 in front (mm).

        Points with depth <= MIN_DEPTH get finite but meaningless (u, v); their depth marks them.
        """
        return self.camera_to_screen(self.transform(points))

    def camera_to_screen(self, cam: Tensor) -> Tensor:
        """(B, N, 3) camera space (the output of `transform`) -> (B, N, 3) (u, v, depth)."""
        depth = -cam[..., 2]
        safe = torch.where(depth > MIN_DEPTH, depth, torch.full_like(depth, MIN_DEPTH))
        f = self.focal[:, None]
        u = self.principal[:, None, 0] + f * cam[..., 0] / safe
        v = self.principal[:, None, 1] - f * cam[..., 1] / safe
        return torch.stack([u, v, depth], -1)

    def project(self, points: Tensor) -> Tensor:
        """(B, N, 3) model space -> (B, N, 2) pixel coordinates (u, v)."""
        return self.to_screen(points)[..., :2]


@dataclass
class WeakPerspectiveCamera:
    """Scaled orthographic camera (DECA's, in pixels).

    rotation (B, 3) axis-angle, scale (B,) px/mm, translation (B, 2) px, image_size (H, W).
    Projection: (x', y', z') = R x, u = s x' + tx, v = -s y' + ty. Depth is -z' in mm: it only
    orders surfaces (it may be negative) and nothing is clipped by it.
    """

    rotation: Tensor
    scale: Tensor
    translation: Tensor
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        self.image_size = _check_image_size(self.image_size)
        if self.rotation.dim() != 2 or self.rotation.shape[-1] != 3:
            raise UsageError(f"WeakPerspectiveCamera.rotation must be (B, 3), got {tuple(self.rotation.shape)}")
        if self.translation.dim() != 2 or self.translation.shape[-1] != 2:
            raise UsageError(
                f"WeakPerspectiveCamera.translation must be (B, 2), got {tuple(self.translation.shape)}"
            )
        if self.scale.dim() != 1:
            raise UsageError(f"WeakPerspectiveCamera.scale must be (B,), got {tuple(self.scale.shape)}")

    is_perspective = False

    @property
    def rotation_matrix(self) -> Tensor:
        """(B, 3, 3)"""
        return axis_angle_to_matrix(self.rotation)

    def transform(self, points: Tensor) -> Tensor:
        """(B, N, 3) model space -> (B, N, 3) rotated points R x (camera axes, mm)."""
        _check_points(points)
        return points @ self.rotation_matrix.transpose(-1, -2)

    def to_screen(self, points: Tensor) -> Tensor:
        """(B, N, 3) model space -> (B, N, 3) (u, v, depth = -z')."""
        return self.camera_to_screen(self.transform(points))

    def camera_to_screen(self, cam: Tensor) -> Tensor:
        """(B, N, 3) rotated points (the output of `transform`) -> (B, N, 3) (u, v, depth)."""
        s = self.scale[:, None]
        u = s * cam[..., 0] + self.translation[:, None, 0]
        v = -s * cam[..., 1] + self.translation[:, None, 1]
        return torch.stack([u, v, -cam[..., 2]], -1)

    def project(self, points: Tensor) -> Tensor:
        """(B, N, 3) model space -> (B, N, 2) pixel coordinates (u, v)."""
        return self.to_screen(points)[..., :2]


Camera = PinholeCamera | WeakPerspectiveCamera  # what render_mesh accepts
