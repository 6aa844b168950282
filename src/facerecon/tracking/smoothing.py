"""Temporal smoothness for video tracking, three ways (benchmarks/bench_track.py compares them):

- `rts_smooth` (the default): a Rauch-Tung-Striebel smoother (a forward Kalman filter, then a
  backward pass: the track is offline, so every frame sees its past and its future, and the output
  has no lag) over each parameter of the per-frame fits, with a random-walk motion model. Its two
  variances per parameter are measured on the clip itself (`noise_variances`): the fit's own
  per-frame noise r^2 from the second differences x_t - (x_t-1 + x_t+1) / 2 (robustly, by MAD:
  var = 1.5 r^2 for white noise, the motion's curvature over two frames is far smaller), and the
  motion q^2 = mean first difference^2 - 2 r^2. So a still channel is smoothed hard and a moving
  one little, without a weight to tune.
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


def noise_variances(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel measurement noise r^2 and random-walk step q^2 of a track segment x (T, C), T >= 3."""
    d2 = x[1:-1] - (x[:-2] + x[2:]) / 2
    mad = 1.4826 * np.median(np.abs(d2 - np.median(d2, axis=0)), axis=0)
    r2 = np.maximum(mad ** 2 / 1.5, 1e-12)
    q2 = np.maximum(np.mean(np.diff(x, axis=0) ** 2, axis=0) - 2 * r2, 1e-4 * r2)
    return r2, q2


def rts_smooth(x: np.ndarray) -> np.ndarray:
    """x (T, C) smoothed per channel by the Rauch-Tung-Striebel smoother with variances from
    `noise_variances` (see the module docstring); segments of fewer than 3 frames are returned as they are."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 3:
        return x.copy()
    r2, q2 = noise_variances(x)
    xf, pf = np.empty_like(x), np.empty_like(x)
    mean, var = x[0].copy(), r2.copy()
    xf[0], pf[0] = mean, var
    for t in range(1, len(x)):
        var = var + q2
        gain = var / (var + r2)
        mean = mean + gain * (x[t] - mean)
        var = (1 - gain) * var
        xf[t], pf[t] = mean, var
    out = xf.copy()
    for t in range(len(x) - 2, -1, -1):
        c = pf[t] / (pf[t] + q2)
        out[t] = xf[t] + c * (out[t + 1] - xf[t])
    return out


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
