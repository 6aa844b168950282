"""MediaPipe's landmark error model: per point, its bias and noise against the true surface point,
as a function of |yaw|, learned from synthetic renders (`scripts/make_landmark_error_model.py`) with the
detector's default test-time augmentation (`MediaPipeDetector(augment=True)`).

Units are fractions of the face size (the box diagonal of the points). The fits use it to de-bias
the detected points and to weight each one by its own noise: far-side points of a turned face, whose
detections slide toward the visible outline, get a large sigma and so little weight.

MediaPipe's errors are strongly correlated across neighbouring points (a whole contour slides), so
the model also holds, per bin, a low-rank + diagonal covariance of the de-biased residual vector
(the 2L coordinates x0, y0, x1, ...): Sigma = diag(d) + U U^T, U of rank k (`estimate_noise_factors`,
factor analysis). `covariance_at` gives it at a yaw for the fast fit's whitening.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np

from ..errors import ModelError

# the packaged models by name (a detector's `error_model`): MediaPipe's 478 points on ICT-FaceKit,
# from the legacy face mesh (v1) and from the Face Landmarker task's (v2)
ERROR_MODEL_FILES = {"mediapipe478": "landmark_error_mediapipe_ict.npz",
                     "mediapipe478_v2": "landmark_error_mediapipe_v2_ict.npz"}
DEFAULT_ERROR_MODEL = "mediapipe478_v2"
BIN_EDGES_DEG = (0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 75.0)
DEFAULT_RANK = 16


@dataclass(frozen=True)
class LandmarkErrorModel:
    """Bias and noise of each of L detector points in |yaw| bins (faces turned right; left mirrored).

    Attributes:
        bin_edges_deg: (N + 1,) |yaw| bin edges. bias: (N, L, 2) median residual detected - true,
            in face sizes (image x right, y down). sigma: (N, L) per-axis noise std, face sizes.
        mirror: (L,) the point each point becomes in the mirror image.
        factors: (N, L, 2, k) the low-rank part U of each bin's residual covariance, face sizes, or
            None. diagonal: (N, L, 2) its diagonal part d (variances, face sizes^2), or None.
    """

    bin_edges_deg: np.ndarray
    bias: np.ndarray
    sigma: np.ndarray
    mirror: np.ndarray
    factors: np.ndarray | None = None
    diagonal: np.ndarray | None = None

    @classmethod
    def load(cls, name: str = DEFAULT_ERROR_MODEL) -> "LandmarkErrorModel":
        """A packaged model by name (`ERROR_MODEL_FILES`; a detector's `error_model` attribute)."""
        if name not in ERROR_MODEL_FILES:
            raise ModelError(f"no landmark error model named {name!r}; known: {sorted(ERROR_MODEL_FILES)}")
        file = ERROR_MODEL_FILES[name]
        try:
            with resources.files("facerecon.data").joinpath(file).open("rb") as fh:
                data = np.load(fh)
                has_cov = "factors" in data.files and "diagonal" in data.files
                return cls(data["bin_edges_deg"].astype(np.float64), data["bias"].astype(np.float64),
                           data["sigma"].astype(np.float64), data["mirror"].astype(np.int64),
                           data["factors"].astype(np.float64) if has_cov else None,
                           data["diagonal"].astype(np.float64) if has_cov else None)
        except FileNotFoundError:
            raise ModelError(f"the landmark error model {file} is missing from facerecon/data; "
                             "run scripts/make_landmark_error_model.py") from None

    def _between(self, yaw_deg: float) -> tuple[int, float]:
        """The bin k and weight t such that the model at `yaw_deg` is (1 - t) bin k + t bin k + 1."""
        edges = self.bin_edges_deg
        centres = (edges[:-1] + edges[1:]) / 2
        a = float(np.clip(abs(yaw_deg), centres[0], centres[-1]))
        k = int(np.clip(np.searchsorted(centres, a) - 1, 0, len(centres) - 2))
        return k, (a - centres[k]) / (centres[k + 1] - centres[k])

    def at(self, yaw_deg: float) -> tuple[np.ndarray, np.ndarray]:
        """(bias (L, 2), sigma (L,)) in face sizes for a face at `yaw_deg` (signed; linear between bin
        centres, clamped at the ends)."""
        k, t = self._between(yaw_deg)
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

    @property
    def has_covariance(self) -> bool:
        return self.factors is not None and self.diagonal is not None

    def covariance_at(self, yaw_deg: float, face_size: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """The residual covariance at `yaw_deg` as (d (L, 2), U (L, 2, 2k)): Sigma = diag(d) + U U^T
        over the raveled (x, y) coordinates, scaled to `face_size` (px: d in px^2, U in px).

        Between bin centres the covariance is interpolated linearly, which stacks both bins' factors
        (weighted by sqrt(1 - t) and sqrt(t)), so the rank doubles.

        Raises:
            ModelError: the packaged model has no covariance (an old file; re-run the script).
        """
        if not self.has_covariance:
            raise ModelError("this landmark error model has no noise covariance; re-run "
                             "scripts/make_landmark_error_model.py")
        k, t = self._between(yaw_deg)
        d = (1 - t) * self.diagonal[k] + t * self.diagonal[k + 1]
        u = np.concatenate([np.sqrt(1 - t) * self.factors[k], np.sqrt(t) * self.factors[k + 1]], axis=2)
        if yaw_deg < 0:
            d = d[self.mirror]
            u = u[self.mirror] * np.array([-1.0, 1.0])[:, None]
        return d * face_size ** 2, u * face_size


def estimate_noise_factors(residuals: np.ndarray, rank: int, iterations: int = 100,
                           floor: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Factor analysis of centred residual vectors: Sigma ~ diag(d) + U U^T (maximum likelihood,
    by the fixed point of sklearn's FactorAnalysis: U from the top eigenvectors of
    diag(d)^-1/2 S diag(d)^-1/2, then d = diag(S - U U^T)).

    Args:
        residuals: (n, m) residual vectors with their bias removed.
        rank: k, the number of factors (at most min(n, m) - 1).
        iterations: fixed-point iterations.
        floor: d is kept at least this fraction of each coordinate's sample variance (with n < m the
            sample covariance is singular and the ML d would fall to zero on some coordinates).

    Returns:
        (d (m,), U (m, k)). Faces whose residual is a gross failure (RMS over 4 x the median face's)
        are left out, and each coordinate is clipped at 4 robust stds first.
    """
    r = np.asarray(residuals, dtype=np.float64)
    n, m = r.shape
    if not 0 < rank < min(n, m):
        raise ModelError(f"a rank-{rank} noise model needs more than {rank} faces and coordinates; got {n} faces "
                         f"of {m} coordinates")
    rms = np.sqrt((r ** 2).mean(1))
    keep = rms <= 4 * np.median(rms)
    if keep.sum() <= rank:
        keep[:] = True
    r = r[keep]
    scale = 1.4826 * np.median(np.abs(r), axis=0) + 1e-12
    r = np.clip(r, -4 * scale, 4 * scale)
    x = r / np.sqrt(len(r))  # S = x^T x, about the (median) bias; never formed: n is often < m
    var = (x ** 2).sum(0)
    lo = np.maximum(floor * var, 1e-12)
    d = var.copy()
    u = np.zeros((m, rank))
    for _ in range(iterations):
        root = np.sqrt(d)
        _, sv, vt = np.linalg.svd(x / root, full_matrices=False)
        u = root[:, None] * vt[:rank].T * np.sqrt(np.maximum(sv[:rank] ** 2 - 1.0, 0.0))
        new = np.maximum(var - (u ** 2).sum(1), lo)
        done = np.max(np.abs(new - d) / np.maximum(var, 1e-12)) < 1e-6
        d = new
        if done:
            break
    return d, u


def estimate_error_model(residuals: np.ndarray, yaw_deg: np.ndarray, mirror: np.ndarray,
                         bin_edges_deg=BIN_EDGES_DEG, rank: int | None = None) -> tuple[LandmarkErrorModel, np.ndarray]:
    """Estimate the model from detector residuals.

    Args:
        residuals: (N, L, 2) detected - true point of N faces, in face sizes (image axes).
        yaw_deg: (N,) signed yaw of each face; faces turned left (< 0) are mirrored onto the right.
        mirror: (L,) the mirror map of the points.
        bin_edges_deg: |yaw| bin edges.
        rank: also estimate each bin's rank-`rank` + diagonal covariance of the de-biased residual
            vectors (`estimate_noise_factors`); None: no covariance.

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
    factors = None if rank is None else np.zeros((nb,) + r.shape[1:] + (rank,))
    diagonal = None if rank is None else np.zeros((nb,) + r.shape[1:])
    a = np.abs(yaw)
    for b in range(nb):
        sel = (a >= edges[b]) & ((a < edges[b + 1]) if b < nb - 1 else (a <= edges[b + 1]))
        counts[b] = sel.sum()
        if counts[b] == 0:
            raise ModelError(f"no face with |yaw| in [{edges[b]:g}, {edges[b + 1]:g}): render more faces")
        bias[b] = np.median(r[sel], axis=0)
        sigma[b] = np.median(np.linalg.norm(r[sel] - bias[b], axis=2), axis=0) / 1.1774
        if rank is not None:
            d, u = estimate_noise_factors((r[sel] - bias[b]).reshape(counts[b], -1), rank)
            diagonal[b] = d.reshape(r.shape[1:])
            factors[b] = u.reshape(r.shape[1:] + (rank,))
    return LandmarkErrorModel(edges, bias, sigma, np.asarray(mirror, dtype=np.int64), factors, diagonal), counts
