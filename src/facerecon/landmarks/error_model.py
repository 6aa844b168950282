"""MediaPipe's landmark error model: per point, its bias and noise against the true surface point,
as a function of |yaw|, learned from synthetic renders (`scripts/make_landmark_error_model.py`).

Units are fractions of the face size (the box diagonal of the points). The fits use it to de-bias
the detected points and to weight each one by its own noise: far-side points of a turned face, whose
detections slide toward the visible outline, get a large sigma and so little weight.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np

from ..errors import ModelError

ERROR_MODEL_FILE = "landmark_error_mediapipe_ict.npz"
BIN_EDGES_DEG = (0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 75.0)


@dataclass(frozen=True)
class LandmarkErrorModel:
    """Bias and noise of each of L detector points in |yaw| bins (faces turned right; left mirrored).

    Attributes:
        bin_edges_deg: (N + 1,) |yaw| bin edges. bias: (N, L, 2) median residual detected - true,
            in face sizes (image x right, y down). sigma: (N, L) per-axis noise std, face sizes.
        mirror: (L,) the point each point becomes in the mirror image.
    """

    bin_edges_deg: np.ndarray
    bias: np.ndarray
    sigma: np.ndarray
    mirror: np.ndarray

    @classmethod
    def load(cls) -> "LandmarkErrorModel":
        """The packaged model for MediaPipe's 478 points on ICT-FaceKit."""
        try:
            with resources.files("facerecon.data").joinpath(ERROR_MODEL_FILE).open("rb") as fh:
                data = np.load(fh)
                return cls(data["bin_edges_deg"].astype(np.float64), data["bias"].astype(np.float64),
                           data["sigma"].astype(np.float64), data["mirror"].astype(np.int64))
        except FileNotFoundError:
            raise ModelError(f"the landmark error model {ERROR_MODEL_FILE} is missing from facerecon/data; "
                             "run scripts/make_landmark_error_model.py") from None

    def at(self, yaw_deg: float) -> tuple[np.ndarray, np.ndarray]:
        """(bias (L, 2), sigma (L,)) in face sizes for a face at `yaw_deg` (signed; linear between bin
        centres, clamped at the ends)."""
        edges = self.bin_edges_deg
        centres = (edges[:-1] + edges[1:]) / 2
        a = float(np.clip(abs(yaw_deg), centres[0], centres[-1]))
        k = int(np.clip(np.searchsorted(centres, a) - 1, 0, len(centres) - 2))
        t = (a - centres[k]) / (centres[k + 1] - centres[k])
        bias = (1 - t) * self.bias[k] + t * self.bias[k + 1]
        sigma = (1 - t) * self.sigma[k] + t * self.sigma[k + 1]
        if yaw_deg < 0:  # the model is for faces turned right: mirror it
            bias = bias[self.mirror] * np.array([-1.0, 1.0])
            sigma = sigma[self.mirror]
        return bias, sigma

    def correct(self, points: np.ndarray, yaw_deg: float, face_size: float) -> tuple[np.ndarray, np.ndarray]:
        """De-biased points (L, 2) px and each point's noise std (L,) px at this yaw and face size."""
        bias, sigma = self.at(yaw_deg)
        return points - bias * face_size, sigma * face_size


def estimate_error_model(residuals: np.ndarray, yaw_deg: np.ndarray, mirror: np.ndarray,
                         bin_edges_deg=BIN_EDGES_DEG) -> tuple[LandmarkErrorModel, np.ndarray]:
    """Estimate the model from detector residuals.

    Args:
        residuals: (N, L, 2) detected - true point of N faces, in face sizes (image axes).
        yaw_deg: (N,) signed yaw of each face; faces turned left (< 0) are mirrored onto the right.
        mirror: (L,) the mirror map of the points.
        bin_edges_deg: |yaw| bin edges.

    Returns:
        (the model, (N_bins,) faces per bin). Per bin and point: the median residual (bias), and the
        per-axis std of an isotropic 2D Gaussian from the median distance to it (Rayleigh: the median
        is 1.1774 sigma), both robust to the detector's occasional gross failures.
    """
    r = np.asarray(residuals, dtype=np.float64).copy()
    yaw = np.asarray(yaw_deg, dtype=np.float64)
    left = yaw < 0
    r[left] = r[left][:, mirror] * np.array([-1.0, 1.0])
    edges = np.asarray(bin_edges_deg, dtype=np.float64)
    nb = len(edges) - 1
    bias = np.zeros((nb,) + r.shape[1:])
    sigma = np.zeros((nb, r.shape[1]))
    counts = np.zeros(nb, dtype=np.int64)
    a = np.abs(yaw)
    for b in range(nb):
        sel = (a >= edges[b]) & ((a < edges[b + 1]) if b < nb - 1 else (a <= edges[b + 1]))
        counts[b] = sel.sum()
        if counts[b] == 0:
            raise ModelError(f"no face with |yaw| in [{edges[b]:g}, {edges[b + 1]:g}): render more faces")
        bias[b] = np.median(r[sel], axis=0)
        sigma[b] = np.median(np.linalg.norm(r[sel] - bias[b], axis=2), axis=0) / 1.1774
    return LandmarkErrorModel(edges, bias, sigma, np.asarray(mirror, dtype=np.int64)), counts
