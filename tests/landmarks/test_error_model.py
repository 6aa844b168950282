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


def test_the_packaged_model_loads_and_weights_far_side_points_down():
    model = LandmarkErrorModel.load()
    from facerecon.landmarks.schemes import MEDIAPIPE_SILHOUETTE

    _, frontal = model.at(0.0)
    _, turned = model.at(55.0)
    assert frontal.shape == (478,) and np.isfinite(frontal).all()
    # on a face turned 55 degrees the outline points are noisier than on a frontal one
    assert np.median(turned[MEDIAPIPE_SILHOUETTE]) > np.median(frontal[MEDIAPIPE_SILHOUETTE])
