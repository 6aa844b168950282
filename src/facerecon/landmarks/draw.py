"""Overlays of landmarks on a photo, for people to look at."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import FaceLandmarks, as_uint8_rgb
from .schemes import IBUG68, MEDIAPIPE478, MEDIAPIPE_IRIS, MEDIAPIPE_SILHOUETTE

_COLOURS = {MEDIAPIPE478: (0, 200, 255), IBUG68: (255, 40, 40)}


def draw_landmarks(image: np.ndarray, faces: Sequence[FaceLandmarks], radius: float | None = None,
                   numbers: bool = False, boxes: bool = True) -> np.ndarray:
    """Draw faces' landmarks on a copy of `image`.

    MediaPipe points are cyan (silhouette points yellow, irises green), iBUG-68 points red.

    Args:
        image: (H, W, 3) float RGB in [0, 1] or uint8.
        faces: faces of either scheme.
        radius: dot radius in pixels (default: from the face size).
        numbers: write each point's index next to it.
        boxes: draw the detector's box.

    Returns:
        (H, W, 3) uint8.
    """
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(as_uint8_rgb(image).copy())
    draw = ImageDraw.Draw(canvas)
    for face in faces:
        size = max(face.box[2] - face.box[0], face.box[3] - face.box[1], 1.0)
        r = radius if radius is not None else max(1.0, size / 250.0 * (2.0 if face.scheme == IBUG68 else 1.0))
        colours = np.tile(np.array(_COLOURS[face.scheme]), (len(face.points), 1))
        if face.scheme == MEDIAPIPE478:
            colours[MEDIAPIPE_SILHOUETTE] = (255, 230, 0)
            colours[MEDIAPIPE_IRIS] = (0, 255, 80)
        if boxes:
            draw.rectangle([float(v) for v in face.box], outline=(255, 255, 255), width=max(1, int(size / 200)))
        for i, (u, v) in enumerate(face.points):
            # PIL puts integer coordinates at pixel centres; ours are at +0.5
            x, y = u - 0.5, v - 0.5
            draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(c) for c in colours[i]))
            if numbers:
                draw.text((x + r + 1, y - r - 1), str(i), fill=(255, 255, 255))
    return np.asarray(canvas)
