"""The skin region of a face in an image, for a photometric loss."""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.draw import polygon as raster_polygon

from ..errors import UsageError
from .base import FaceLandmarks
from .schemes import MEDIAPIPE478, MEDIAPIPE_IRIS, outline


def face_region_mask(landmarks: FaceLandmarks, image_size: tuple[int, int], hole_margin: float = 0.01) -> np.ndarray:
    """Pixels of the face's skin: the convex hull of the landmarks minus the eyes and the mouth.

    The hull of MediaPipe's points runs from the chin to the top of the forehead; the hull of the
    iBUG 68 points stops at the brows. The holes are the eye openings (the lid margins) and the
    opening of the mouth (the inner lip contour, so the lips stay in the mask), each grown by
    `hole_margin` times the face width so lashes and lip edges stay out.

    Args:
        landmarks: one face, either scheme.
        image_size: (H, W) of the image the landmarks are in.
        hole_margin: growth of the eye and mouth holes, as a fraction of the face width.

    Returns:
        (H, W) bool; True for a pixel whose centre is on the skin.
    """
    h, w = (int(s) for s in image_size)
    if h < 1 or w < 1:
        raise UsageError(f"image_size must be (H, W) with H, W >= 1, got {image_size}")
    pts = np.asarray(landmarks.points, dtype=np.float64)
    skin_pts = np.delete(pts, MEDIAPIPE_IRIS, axis=0) if landmarks.scheme == MEDIAPIPE478 else pts
    mask = np.zeros((h, w), dtype=bool)
    try:
        from scipy.spatial import ConvexHull  # lazily: scipy.spatial is slow to import

        hull = skin_pts[ConvexHull(skin_pts).vertices]
    except Exception:  # degenerate (collinear) points: no area
        return mask
    _fill(mask, hull, True)
    holes = np.zeros_like(mask)
    for name in ("eye_right", "eye_left", "mouth"):
        _fill(holes, pts[outline(landmarks.scheme, name)], True)
    width = float(skin_pts[:, 0].max() - skin_pts[:, 0].min())
    grow = int(round(hole_margin * width))
    if grow > 0 and holes.any():
        # dilate only around the holes: a full-image dilation costs seconds on a 12 Mpx photo
        rows, cols = np.nonzero(holes)
        r0, r1 = max(rows.min() - grow, 0), min(rows.max() + grow + 1, h)
        c0, c1 = max(cols.min() - grow, 0), min(cols.max() + grow + 1, w)
        holes[r0:r1, c0:c1] = ndimage.binary_dilation(holes[r0:r1, c0:c1], structure=_disk(grow))
    return mask & ~holes


def _fill(mask: np.ndarray, poly: np.ndarray, value: bool) -> None:
    # pixel (i, j) has its centre at (u, v) = (j + 0.5, i + 0.5): shift to index coordinates
    rr, cc = raster_polygon(poly[:, 1] - 0.5, poly[:, 0] - 0.5, shape=mask.shape)
    mask[rr, cc] = value


def _disk(r: int) -> np.ndarray:
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= r * r
