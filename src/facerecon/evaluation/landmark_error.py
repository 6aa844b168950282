"""2D landmark errors for 68-point annotations (300W, AFLW2000-3D style).

For predicted and ground-truth points of one image, the per-point error is the Euclidean distance
in pixels; its mean over the points is the mean pixel error, and the normalised mean error (NME)
divides that mean by a face size taken from the ground truth:
- inter-ocular: distance between the outer eye corners, 68-point landmarks 36 and 45 (300W);
- box diagonal: diagonal of the bounding box of the ground-truth points.
Functions take (N, 2) points or batches (..., N, 2) and return one value per image (shape (...)).
Average those over a data set; the iBUG `.pts` files are read by `files.read_pts`.
"""
from __future__ import annotations

import numpy as np

from ..errors import UsageError

OUTER_EYE_CORNERS_68 = (36, 45)


def _pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape or p.ndim < 2 or p.shape[-1] != 2:
        raise UsageError(f"pred and gt must both have shape (..., N, 2), got {p.shape} and {g.shape}")
    return p, g


def _normalised(error: np.ndarray, size: np.ndarray, what: str) -> np.ndarray:
    if (size <= 0).any():
        raise UsageError(f"the ground truth has a zero {what}: cannot normalise")
    return error / size


def mean_pixel_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Mean over points of the Euclidean distance, in pixels: (..., N, 2) x2 -> (...)."""
    p, g = _pair(pred, gt)
    return np.linalg.norm(p - g, axis=-1).mean(axis=-1)


def inter_ocular_distance(gt: np.ndarray) -> np.ndarray:
    """Distance between the outer eye corners (36, 45) of 68 points: (..., 68, 2) -> (...)."""
    g = np.asarray(gt, dtype=np.float64)
    if g.ndim < 2 or g.shape[-2:] != (68, 2):
        raise UsageError(f"inter-ocular normalisation needs 68 points, shape (..., 68, 2), got {g.shape}")
    i, j = OUTER_EYE_CORNERS_68
    return np.linalg.norm(g[..., i, :] - g[..., j, :], axis=-1)


def box_diagonal(gt: np.ndarray) -> np.ndarray:
    """Diagonal of the bounding box of the points: (..., N, 2) -> (...)."""
    g = np.asarray(gt, dtype=np.float64)
    return np.linalg.norm(g.max(axis=-2) - g.min(axis=-2), axis=-1)


def nme_inter_ocular(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Mean pixel error / inter-ocular (outer corners) distance of gt: (..., 68, 2) x2 -> (...)."""
    return _normalised(mean_pixel_error(pred, gt), inter_ocular_distance(gt), "inter-ocular distance")


def nme_box_diagonal(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Mean pixel error / diagonal of gt's bounding box: (..., N, 2) x2 -> (...)."""
    return _normalised(mean_pixel_error(pred, gt), box_diagonal(gt), "bounding box")
