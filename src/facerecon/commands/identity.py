"""The optional identity-similarity post-step: after a reconstruction, does its textured render look
like the same person as the photo (dlib ResNet embeddings, when `facerecon[dlib]` is installed)?

It lives here, above the pipeline, because it uses an evaluation metric; the pipeline itself never
imports `evaluation`.
"""
from __future__ import annotations

import time

import numpy as np

from ..reconstruction import Reconstruction


class IdentityScorer:
    """Scores reconstructions with a face embedder, loaded on first use and reused.

    Args:
        embedder: an object with `embed(image, box) -> (D,)` (default: dlib's, when installed).
    """

    def __init__(self, embedder=None) -> None:
        self._embedder = embedder  # None: try dlib on first use; False: unavailable
        self._note = ""

    def __call__(self, rec: Reconstruction) -> dict:
        """Fill `rec.identity_similarity` ({"cosine": c, "backend": ...} or {"unavailable": why}) and
        its timing; returns the dict."""
        from ..evaluation.identity import DlibFaceEmbedder, identity_similarity
        from ..landmarks.dlib_detector import DlibMissingError

        t = time.perf_counter()
        if self._embedder is None:
            try:
                self._embedder = DlibFaceEmbedder()
            except DlibMissingError as exc:
                self._embedder, self._note = False, str(exc)
        if self._embedder is False:
            result = {"cosine": None, "unavailable": self._note}
        else:
            box = np.asarray(self.scaled_box(rec))
            sim = identity_similarity(self._embedder, rec.photo_float, rec.render_textured(), box)
            result = {"cosine": round(sim, 4) if np.isfinite(sim) else None, "backend": type(self._embedder).__name__}
        rec.identity_similarity = result
        rec.timings["identity_metric_s"] = time.perf_counter() - t
        return result

    @staticmethod
    def scaled_box(rec: Reconstruction) -> np.ndarray:
        """The detector's box in the kept photo copy's pixels."""
        return np.asarray(rec.landmarks.box, dtype=np.float64) * rec.photo_scale
