"""Square face crops for the photometric fit, with the matching change of pixel coordinates."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class FaceCrop:
    """A square window of an image, resampled to `size` x `size`.

    Crop pixel coordinates are (original - (x0, y0)) * scale.
    """

    x0: int
    y0: int
    side: int
    size: int

    @property
    def scale(self) -> float:
        return self.size / self.side

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) original px -> crop px."""
        return (np.asarray(points, dtype=np.float64) - [self.x0, self.y0]) * self.scale

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) crop px -> original px."""
        return np.asarray(points, dtype=np.float64) / self.scale + [self.x0, self.y0]


def face_crop(points: np.ndarray, size: int, scale: float = 1.5) -> FaceCrop:
    """A square crop centred on the landmarks' box, `scale` times its larger side. `points` (L, 2) px."""
    lo, hi = points.min(0), points.max(0)
    centre = (lo + hi) / 2
    side = max(int(math.ceil(scale * float((hi - lo).max()))), 8)
    x0 = int(math.floor(centre[0] - side / 2))
    y0 = int(math.floor(centre[1] - side / 2))
    return FaceCrop(x0, y0, side, int(size))


def crop_image(image: np.ndarray, crop: FaceCrop) -> torch.Tensor:
    """(H, W, C) float image -> (1, size, size, C) tensor; outside the image repeats the border."""
    h, w = image.shape[:2]
    ys = np.clip(np.arange(crop.y0, crop.y0 + crop.side), 0, h - 1)
    xs = np.clip(np.arange(crop.x0, crop.x0 + crop.side), 0, w - 1)
    window = image[ys[:, None], xs[None, :]]
    t = torch.from_numpy(np.ascontiguousarray(window, dtype=np.float32))
    t = t.reshape(crop.side, crop.side, -1).permute(2, 0, 1)[None]
    if crop.side != crop.size:
        t = F.interpolate(t, size=(crop.size, crop.size), mode="bilinear", align_corners=False,
                          antialias=crop.side > crop.size)
    return t.permute(0, 2, 3, 1).contiguous()
