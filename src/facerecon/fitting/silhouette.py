"""The silhouette term of the full fit (ReDA-style): the rendered face's outline against the photo's.

Landmarks pin a turned face's profile only coarsely (MediaPipe's outline points slide along it), and
shading says little about it; where the face meets the background (forehead, nose and chin of a
turned head, the cheek of a profile) the outline is an observation of its own. Targets, in the
photo's pixels (`silhouette_targets`):

- outside (H, W): background, 1 - the person probability of `landmarks.segmentation.PersonSegmenter`
  (hair, neck and clothes count as person: the face may lie anywhere on them);
- inside (H, W): where the face must be *and* the person meets the background: the detected
  landmarks' convex hull, on person pixels, within `band` px of background.

Loss (`silhouette_loss`): the area of the rendered face's coverage over background plus the area of
`inside` it leaves uncovered, divided by the render's side (so about "pixels of outline error"). The
coverage is the renderer's antialiased alpha, whose gradient moves silhouette vertices; only the
outline moves, interior pixels have no gradient. The term (registered as "silhouette", a loss form)
reads the targets cropped to each level from `LossInputs.extras["crops"]["silhouette"]`
(1, S, S, 2: inside, outside), which the full fit makes from `extras["image_maps"]["silhouette"]`.
"""
from __future__ import annotations

import numpy as np
from torch import Tensor

from ..errors import UsageError
from ..render import render_mesh
from .terms import LossInputs, register_term

TERM = "silhouette"
MAP = "silhouette"


def silhouette_targets(person: np.ndarray, points: np.ndarray, band_fraction: float = 0.04) -> np.ndarray:
    """(H, W, 2) float32 [inside, outside] targets from a person probability and the landmarks.

    Args:
        person: (H, W) person probability in [0, 1] (e.g. `PersonSegmenter.segment`).
        points: (L, 2) detected landmarks in px (x right, y down); their convex hull is the face.
        band_fraction: how close to background (as a fraction of the points' box diagonal) a hull
            pixel must be to count as the face's visible outline.
    """
    from scipy import ndimage

    person, pts = checked_targets_inputs(person, points)
    background = person < 0.5
    hull = hull_mask(pts, person.shape)
    band = max(1.0, band_fraction * float(np.linalg.norm(np.ptp(pts, axis=0))))
    near = ndimage.distance_transform_edt(~background) <= band if background.any() else np.zeros_like(hull)
    inside = hull & ~background & near
    return np.stack([inside.astype(np.float32), 1.0 - np.clip(person, 0.0, 1.0)], axis=-1)


def checked_targets_inputs(person: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(person (H, W) float32, points (L, 2) float64) checked: a finite map and >= 3 finite points.

    Raises:
        UsageError: naming which input is wrong.
    """
    person = np.asarray(person, dtype=np.float32)
    pts = np.asarray(points, dtype=np.float64)
    if person.ndim != 2 or not np.isfinite(person).all():
        raise UsageError(f"person must be a finite (H, W) probability map, got shape {person.shape}")
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3 or not np.isfinite(pts).all():
        raise UsageError(f"points must be finite (L, 2) with L >= 3, got shape {pts.shape}")
    return person, pts


def hull_mask(points: np.ndarray, shape: tuple[int, int], origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """(H, W) bool: the pixels whose centres lie in the convex hull of `points` (px, x right, y down),
    for an image window of `shape` whose top-left pixel is (row, col) = `origin`; all False when the
    points are degenerate (collinear)."""
    from scipy.spatial import ConvexHull
    from skimage.draw import polygon

    hull = np.zeros(shape, bool)
    try:
        corners = points[ConvexHull(points).vertices]
    except Exception:  # degenerate (collinear) points: no face area, no attraction
        return hull
    rr, cc = polygon(corners[:, 1] - 0.5 - origin[0], corners[:, 0] - 0.5 - origin[1], shape=shape)
    hull[rr, cc] = True
    return hull


def silhouette_loss(alpha: Tensor, inside: Tensor, outside: Tensor) -> Tensor:
    """Outline error of a coverage map: (sum(alpha * outside) + sum((1 - alpha) * inside)) / side.

    alpha, inside, outside: (B, S, S) in [0, 1]. Returns a scalar (pixels of outline error, summed
    over the batch)."""
    if alpha.shape != inside.shape or alpha.shape != outside.shape or alpha.dim() != 3:
        raise UsageError(f"alpha, inside and outside must be the same (B, S, S), got {tuple(alpha.shape)}, "
                         f"{tuple(inside.shape)}, {tuple(outside.shape)}")
    side = float(alpha.shape[-1])
    return ((alpha * outside).sum() + ((1.0 - alpha) * inside).sum()) / side


def _loss(x: LossInputs) -> Tensor | None:
    crops = (x.extras or {}).get("crops") or {}
    target = crops.get(MAP)
    if target is None:
        return None
    alpha = render_mesh(x.vertices, x.render_triangles, x.camera, antialias=True).alpha
    target = target.to(dtype=alpha.dtype, device=alpha.device)
    if tuple(target.shape[1:3]) != tuple(alpha.shape[1:]):
        raise UsageError(f"silhouette targets are {tuple(target.shape[1:3])} px but the render is "
                         f"{tuple(alpha.shape[1:])}")
    return silhouette_loss(alpha, target[..., 0].expand_as(alpha), target[..., 1].expand_as(alpha))


register_term(TERM, loss=_loss)
