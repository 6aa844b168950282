"""Temporal smoothness for video tracking, two ways (benchmarks/bench_track.py compares them):

- `temporal_smoothness`, an objective term of the fast fit (registered in `fitting.terms`, residual
  form): r = (x - x_prev) / sigma over the expression, rotation and translation blocks, where
  x_prev is the previous frame's fitted value, passed as `extras["previous"]` = (expression (E,),
  rotation (3,) axis-angle, translation (3,) mm) with the sigmas as `extras["temporal_sigma"]` =
  (expression, rotation rad, translation mm). The rotation residual is log(R R_prev^T) / sigma,
  whose Jacobian over the fit's left-multiplied rotation update is the identity near R_prev.
  The term weighs a frame-to-frame change of sigma as much as the landmark noise of one point.
- `OneEuroFilter`, Casiez et al. 2012's adaptive low-pass filter, applied after the per-frame fits:
  little smoothing when a signal moves fast (little lag), strong smoothing when it is still.
"""
from __future__ import annotations

import math

import numpy as np

from ..fitting.terms import TERMS, GaussNewtonInputs, Residual, register_term
from ..geometry.rotation import axis_angle_to_matrix_np, matrix_to_axis_angle_np

TEMPORAL_TERM = "temporal_smoothness"


def _temporal_residual(x: GaussNewtonInputs, with_jacobian: bool) -> Residual | None:
    previous = x.extras.get("previous")
    if previous is None:
        return None
    e_prev, r_prev, t_prev = previous
    s_e, s_r, s_t = x.extras["temporal_sigma"]
    d_rot = matrix_to_axis_angle_np(axis_angle_to_matrix_np(x.rotation) @ axis_angle_to_matrix_np(r_prev).T)
    r = np.concatenate([(x.expression - e_prev) / s_e, d_rot / s_r, (x.translation - t_prev) / s_t])
    if not with_jacobian:
        return Residual(r)
    diag = np.concatenate([np.full(len(x.expression), 1.0 / s_e), np.full(3, 1.0 / s_r), np.full(3, 1.0 / s_t)])
    # expression, rotation and translation are consecutive blocks of the parameter vector
    columns = slice(x.block("expression").start, x.block("translation").stop)
    return Residual(r, diag, columns=columns)


if TEMPORAL_TERM not in TERMS:
    register_term(TEMPORAL_TERM, residual=_temporal_residual)


class OneEuroFilter:
    """The 1-euro filter on a vector signal with timestamps (Casiez, Roussel, Vogel, CHI 2012).

    Args:
        min_cutoff_hz: cutoff frequency when the signal is still (lower: smoother, more lag).
        beta: how fast the cutoff rises with the signal's speed (higher: less lag when moving).
        d_cutoff_hz: cutoff of the speed estimate.
    """

    def __init__(self, min_cutoff_hz: float = 1.0, beta: float = 0.5, d_cutoff_hz: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff_hz), float(beta), float(d_cutoff_hz)
        self.reset()

    def reset(self) -> None:
        """Forget the past (after a gap in the track)."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """The filtered value of `x` (n,) observed at time `t` seconds."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        dt = float(t) - self._t
        dx = (x - self._x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self._dx), dt)
        self._x = a * x + (1 - a) * self._x
        self._t = float(t)
        return self._x.copy()
