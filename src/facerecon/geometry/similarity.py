"""Similarity transforms x -> s R x + t and their least-squares estimate from point pairs (Umeyama 1991)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError


@dataclass(frozen=True)
class Similarity:
    """x -> scale * rotation @ x + translation.

    Attributes:
        scale: positive float (1.0 for a rigid transform).
        rotation: (D, D) rotation matrix (det +1).
        translation: (D,).
    """

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    @classmethod
    def identity(cls, dim: int = 3) -> "Similarity":
        return cls(1.0, np.eye(dim), np.zeros(dim))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform points (N, D) -> (N, D)."""
        return self.scale * np.asarray(points, dtype=np.float64) @ self.rotation.T + self.translation

    def inverse(self) -> "Similarity":
        r_inv = self.rotation.T
        return Similarity(1.0 / self.scale, r_inv, -(r_inv @ self.translation) / self.scale)

    def after(self, first: "Similarity") -> "Similarity":
        """The transform that applies `first`, then `self`."""
        return Similarity(
            self.scale * first.scale,
            self.rotation @ first.rotation,
            self.scale * self.rotation @ first.translation + self.translation,
        )

    @property
    def matrix(self) -> np.ndarray:
        """(D + 1, D + 1) homogeneous matrix."""
        d = len(self.translation)
        m = np.eye(d + 1)
        m[:d, :d] = self.scale * self.rotation
        m[:d, d] = self.translation
        return m


def umeyama(source: np.ndarray, target: np.ndarray, with_scale: bool = True) -> Similarity:
    """Least-squares transform mapping corresponding points source -> target.

    Minimises sum_i |s R source_i + t - target_i|^2 over a rotation R (never a reflection),
    translation t and, if `with_scale`, a scale s > 0 (else s = 1).

    Args:
        source: (N, D), N >= D, not all coincident, finite.
        target: (N, D) corresponding points.
        with_scale: estimate the scale (similarity) or keep it 1 (rigid).

    Returns:
        Similarity with `apply(source) ~= target`.

    Raises:
        UsageError: shapes that do not correspond, NaN/inf, or degenerate points.
    """
    src = np.asarray(source, dtype=np.float64)
    tgt = np.asarray(target, dtype=np.float64)
    if src.ndim != 2 or src.shape[0] < src.shape[1]:
        raise UsageError(f"source points must have shape (N, D) with N >= D, got {src.shape}")
    if src.shape != tgt.shape:
        raise UsageError(f"source and target must correspond one to one, got {src.shape} and {tgt.shape}")
    if not (np.isfinite(src).all() and np.isfinite(tgt).all()):
        raise UsageError("source or target points contain NaN or inf")
    mu_s, mu_t = src.mean(axis=0), tgt.mean(axis=0)
    sc, tc = src - mu_s, tgt - mu_t
    var_s = (sc**2).sum() / len(src)
    if var_s <= 1e-300:
        raise UsageError("source points all coincide: the alignment is undefined")
    u, d, vt = np.linalg.svd(tc.T @ sc / len(src))
    signs = np.ones(src.shape[1])
    signs[-1] = np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0
    rotation = (u * signs) @ vt
    scale = float((d * signs).sum() / var_s) if with_scale else 1.0
    if scale <= 0.0:
        raise UsageError("the points are too degenerate to estimate a positive scale")
    return Similarity(scale, rotation, mu_t - scale * rotation @ mu_s)
