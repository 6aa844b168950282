"""tracking.smoothing: the temporal term's residual and Jacobian, the one-euro filter, the RTS smoother."""
from __future__ import annotations

import numpy as np

from facerecon.fitting.terms import TERMS, GaussNewtonInputs
from facerecon.tracking import TEMPORAL_TERM, OneEuroFilter
from facerecon.tracking.smoothing import noise_variances, rts_smooth


def _inputs(expression, rotation, translation, previous):
    return GaussNewtonInputs(np.zeros(0), expression, rotation, translation, 0.0, 0.0, [], None, None,
                             {"previous": previous, "temporal_sigma": (0.1, 0.01, 2.0)})


def test_temporal_term_is_registered_and_zero_at_the_previous_values():
    term = TERMS[TEMPORAL_TERM]
    prev = (np.full(4, 0.2), np.array([0.1, -0.2, 0.05]), np.array([1.0, 2.0, -500.0]))
    res = term.residual(_inputs(*[p.copy() for p in prev], prev), True)
    np.testing.assert_allclose(res.r, 0.0, atol=1e-12)
    assert res.jacobian.shape == (10,) and res.columns == slice(0, 10)
    assert term.residual(_inputs(*[p.copy() for p in prev], None), True) is None


def test_temporal_residual_matches_its_jacobian_near_the_previous_frame():
    prev = (np.full(4, 0.2), np.array([0.1, -0.2, 0.05]), np.array([1.0, 2.0, -500.0]))
    step = np.r_[0.01, -0.02, 0.0, 0.03, 1e-4, -2e-4, 3e-4, 0.5, -0.2, 0.1]
    from facerecon.geometry.rotation import axis_angle_to_matrix_np, matrix_to_axis_angle_np

    rot = matrix_to_axis_angle_np(axis_angle_to_matrix_np(step[4:7]) @ axis_angle_to_matrix_np(prev[1]))
    res = TERMS[TEMPORAL_TERM].residual(_inputs(prev[0] + step[:4], rot, prev[2] + step[7:], prev), True)
    np.testing.assert_allclose(res.r, res.jacobian * step, rtol=1e-3, atol=1e-6)


def test_one_euro_filter_smooths_noise_and_follows_a_step():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(1.0, 0.3)
    t = np.arange(200) / 30
    noisy = 1.0 + rng.normal(0, 0.05, (200, 2))
    out = np.array([f(x, s) for x, s in zip(noisy, t)])
    assert np.std(np.diff(out[50:], axis=0)) < 0.3 * np.std(np.diff(noisy[50:], axis=0))
    f.reset()
    step = np.array([f(np.array([0.0 if k < 30 else 1.0]), k / 30)[0] for k in range(90)])
    assert step[-1] > 0.95 and step[29] == 0.0


def test_noise_variances_measure_the_noise_and_the_motion_of_a_smooth_signal():
    rng = np.random.default_rng(1)
    t = np.arange(3000) / 30
    motion = np.stack([np.sin(2 * np.pi * t / 1.5), 0.2 * np.sin(2 * np.pi * t / 3.0 + 1)], 1)
    r2, q2 = noise_variances(motion + rng.normal(0, [0.02, 0.005], motion.shape))
    np.testing.assert_allclose(np.sqrt(r2), [0.02, 0.005], rtol=0.1)
    np.testing.assert_allclose(q2, np.mean(np.diff(motion, axis=0) ** 2, axis=0), rtol=0.2)


def test_rts_smoother_removes_noise_without_lag():
    rng = np.random.default_rng(2)
    t = np.arange(300) / 30
    truth = np.stack([np.sin(2 * np.pi * t / 2.0), np.full_like(t, 0.3)], 1)  # a moving and a still channel
    noisy = truth + rng.normal(0, 0.05, truth.shape)
    out = rts_smooth(noisy)
    err_raw, err_out = np.abs(noisy - truth).mean(0), np.abs(out - truth).mean(0)
    assert (err_out < 0.7 * err_raw).all(), (err_raw, err_out)
    assert err_out[1] < 0.5 * err_raw[1]  # a still channel is smoothed hard
    lags = [int(np.argmax([np.dot(out[k:, 0], truth[: len(t) - k, 0]) for k in range(6)]))]
    assert lags == [0]  # forward-backward: no lag (a causal filter this smooth trails by frames)
    np.testing.assert_array_equal(rts_smooth(noisy[:2]), noisy[:2])
