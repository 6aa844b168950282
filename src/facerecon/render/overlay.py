"""Pictures for people: a shaded mesh blended over a photo, dots at 2D points. Plain arrays in, uint8 out."""
from __future__ import annotations

import numpy as np
import torch

from .cameras import Camera
from .renderer import render_mesh
from .shading import SHLight


def shaded_overlay(photo: np.ndarray, vertices: np.ndarray, triangles: np.ndarray, camera: Camera,
                   opacity: float = 0.65, gray: float = 0.75) -> np.ndarray:
    """The mesh in flat grey under a default light, blended over the photo.

    Args:
        photo: (H, W, 3) float RGB in [0, 1], the size of `camera.image_size`.
        vertices: (V, 3) model-space mm; triangles: (F, 3); camera: batch 1.
        opacity: the mesh's weight where it covers the photo.

    Returns:
        (H, W, 3) uint8.
    """
    v = torch.as_tensor(np.asarray(vertices, dtype=np.float32)[None])
    sh = SHLight.ambient_directional(1).coefficients
    with torch.no_grad():
        out = render_mesh(v, torch.as_tensor(np.asarray(triangles)), camera, colors=torch.full_like(v, gray), sh=sh,
                          antialias=True)
    shaded = out.image[0].clamp(0, 1).numpy()
    alpha = out.alpha[0].numpy()[..., None] * opacity
    blended = photo * (1 - alpha) + shaded * alpha
    return (np.clip(blended, 0, 1) * 255 + 0.5).astype(np.uint8)


def draw_dots(image: np.ndarray, points: np.ndarray, rgb: tuple[int, int, int], radius_scale: float = 1.0) -> np.ndarray:
    """A copy of uint8 `image` (H, W, 3) with a disc at each finite (u, v) of `points` (N, 2) px."""
    from skimage.draw import disk

    out = image.copy()
    r = max(1.0, 0.004 * max(image.shape[:2]) * radius_scale)
    for u, v in points:
        if np.isfinite(u) and np.isfinite(v):
            rr, cc = disk((v - 0.5, u - 0.5), r, shape=image.shape[:2])
            out[rr, cc] = rgb
    return out
