"""The landmark error model: estimated from residuals, applied at a yaw, mirrored for left turns."""
import numpy as np
import pytest

from facerecon.errors import ModelError
from facerecon.landmarks.error_model import LandmarkErrorModel, estimate_error_model


def _planted(n=600, points=6, seed=0):
    """Residuals with a bias that grows with yaw on point 0 and a large noise on point 1 (far side)."""
    rng = np.random.default_rng(seed)
    mirror = np.array([1, 0, 2, 3, 5, 4])  # 0 <-> 1 and 4 <-> 5 are mirror pairs
    yaw = rng.uniform(-70, 70, n)
    r = rng.normal(0, 0.01, (n, points, 2))
    right = yaw >= 0
    # on a right-turned face point 0 is biased +x by yaw/1000 and point 1 is noisy
    r[right, 0, 0] += yaw[right] / 1000
    r[right, 1] *= 5
    # a left-turned face shows the mirror image: point 1 biased -x, point 0 noisy
    r[~right, 1, 0] -= -yaw[~right] / 1000
    r[~right, 0] *= 5
    r[::50] += 0.5  # gross failures the robust estimate must ignore
    return r, yaw, mirror


def test_estimation_recovers_planted_bias_and_noise_from_both_sides():
    r, yaw, mirror = _planted()
    model, counts = estimate_error_model(r, yaw, mirror)
    assert counts.sum() == len(yaw)
    bias, sigma = model.at(45.0)
    assert bias[0, 0] == pytest.approx(0.045, abs=0.004)
    assert abs(bias[2, 0]) < 0.003
    assert sigma[1] == pytest.approx(0.05, rel=0.2) and sigma[2] == pytest.approx(0.01, rel=0.2)
    # a face turned left gets the mirror image of the model
    bias_l, sigma_l = model.at(-45.0)
    assert bias_l[1, 0] == pytest.approx(-0.045, abs=0.004)
    assert sigma_l[0] == pytest.approx(0.05, rel=0.2) and sigma_l[1] == pytest.approx(0.01, rel=0.2)


def test_correct_removes_the_bias_in_pixels():
    r, yaw, mirror = _planted()
    model, _ = estimate_error_model(r, yaw, mirror)
    points = np.zeros((6, 2))
    corrected, sigma_px = model.correct(points, 45.0, face_size=200.0)
    assert corrected[0, 0] == pytest.approx(-0.045 * 200, abs=1.0)
    assert sigma_px.shape == (6,) and (sigma_px > 0).all()


def test_an_empty_bin_is_an_error():
    r, yaw, mirror = _planted()
    keep = np.abs(yaw) < 30
    with pytest.raises(ModelError, match="no face"):
        estimate_error_model(r[keep], yaw[keep], mirror)


@pytest.mark.parametrize("name", ["mediapipe478_v2", "mediapipe478"])
def test_the_packaged_models_load_and_weight_far_side_points_down(name):
    model = LandmarkErrorModel.load(name)
    from facerecon.landmarks.schemes import MEDIAPIPE_SILHOUETTE

    _, frontal = model.at(0.0)
    _, turned = model.at(55.0)
    assert frontal.shape == (478,) and np.isfinite(frontal).all()
    # on a face turned 55 degrees the outline points are noisier than on a frontal one
    assert np.median(turned[MEDIAPIPE_SILHOUETTE]) > np.median(frontal[MEDIAPIPE_SILHOUETTE])
    # and its noise is correlated: most of the variance lies in the low-rank factors
    assert model.has_covariance
    d, u = model.covariance_at(-35.0, face_size=200.0)
    assert d.shape == (478, 2) and u.shape[:2] == (478, 2) and (d > 0).all() and np.isfinite(u).all()
    assert (u ** 2).sum() > d.sum()


def test_factor_analysis_recovers_a_planted_low_rank_covariance():
    from facerecon.landmarks.error_model import estimate_noise_factors

    rng = np.random.default_rng(1)
    m, k, n = 60, 4, 3000
    # smooth factors (a contour sliding) over independent noise of varying size
    x = np.linspace(0, 1, m)
    u_true = np.stack([np.sin((j + 1) * np.pi * x) * (0.05 / (j + 1)) for j in range(k)], 1)
    d_true = rng.uniform(0.005, 0.02, m) ** 2
    r = rng.normal(size=(n, k)) @ u_true.T + rng.normal(size=(n, m)) * np.sqrt(d_true)
    d, u = estimate_noise_factors(r, k, floor=1e-3)  # n >> m: the floor need not bind
    cov, true = np.diag(d) + u @ u.T, np.diag(d_true) + u_true @ u_true.T
    assert np.linalg.norm(cov - true) < 0.05 * np.linalg.norm(true)
    np.testing.assert_allclose(d, d_true, rtol=0.3)
    # the same span: the planted factors project onto the learned ones
    q, _ = np.linalg.qr(u)
    assert np.linalg.norm(u_true - q @ (q.T @ u_true)) < 0.05 * np.linalg.norm(u_true)
    with pytest.raises(ModelError, match="rank"):
        estimate_noise_factors(r[:3], k)


def test_the_covariance_interpolates_between_bins_and_mirrors_for_left_turns():
    r, yaw, mirror = _planted()
    model, _ = estimate_error_model(r, yaw, mirror, rank=2)
    d, u = model.covariance_at(45.0, face_size=100.0)
    assert d.shape == (6, 2) and u.shape == (6, 2, 4)
    cov = np.diag(d.ravel()) + u.reshape(12, -1) @ u.reshape(12, -1).T
    # point 1 is the noisy one on right turns (std 0.05 face sizes per axis, here 5 px)
    assert np.sqrt(cov[2, 2]) == pytest.approx(5.0, rel=0.3) and np.sqrt(cov[4, 4]) == pytest.approx(1.0, rel=0.3)
    k, t = model._between(45.0)
    both = (1 - t) * (np.diag(model.diagonal[k].ravel()) + model.factors[k].reshape(12, -1) @ model.factors[k].reshape(12, -1).T) \
        + t * (np.diag(model.diagonal[k + 1].ravel()) + model.factors[k + 1].reshape(12, -1) @ model.factors[k + 1].reshape(12, -1).T)
    np.testing.assert_allclose(cov, both * 100.0 ** 2, rtol=1e-9)
    d_l, u_l = model.covariance_at(-45.0, face_size=100.0)
    cov_l = np.diag(d_l.ravel()) + u_l.reshape(12, -1) @ u_l.reshape(12, -1).T
    flip = np.repeat(mirror, 2) * 2 + np.tile([0, 1], 6)
    sign = np.tile([-1.0, 1.0], 6)
    np.testing.assert_allclose(cov_l, (cov[np.ix_(flip, flip)] * np.outer(sign, sign)), rtol=1e-9)
    plain, _ = estimate_error_model(r, yaw, mirror)
    with pytest.raises(ModelError, match="covariance"):
        plain.covariance_at(10.0)


def test_an_unknown_error_model_name_is_a_model_error():
    with pytest.raises(ModelError, match="no landmark error model named 'dlib68'"):
        LandmarkErrorModel.load("dlib68")
