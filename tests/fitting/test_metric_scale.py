import numpy as np
import pytest

from facerecon.errors import FitError, UsageError
from facerecon.fitting.metric_scale import estimate_metric_scale, iris_diameters_px, model_size_std


def _points(diameter_px=(20.0, 20.0), squash=1.0, angle=0.3):
    pts = np.zeros((478, 2))
    for c0, d, centre in ((468, diameter_px[0], (200.0, 200.0)), (473, diameter_px[1], (300.0, 200.0))):
        pts[c0] = centre
        for k in range(4):
            t = angle + k * np.pi / 2
            pts[c0 + 1 + k] = np.array(centre) + d / 2 * np.array([np.cos(t) * squash, np.sin(t)])
    return pts


def test_iris_diameter_is_the_major_axis_whatever_the_foreshortening():
    np.testing.assert_allclose(iris_diameters_px(_points()), [20.0, 20.0], rtol=1e-9)
    np.testing.assert_allclose(iris_diameters_px(_points(squash=0.5)), [20.0, 20.0], rtol=1e-9)
    with pytest.raises(UsageError):
        iris_diameters_px(np.zeros((468, 2)))


@pytest.mark.parametrize("true_scale", [0.85, 1.0, 1.15])
def test_scale_from_a_known_iris(true_scale):
    # a fit whose face is too small by `true_scale`: its eyes sit at depth z / true_scale, where the
    # real 11.7 mm iris at depth z projects to 11.7 f / z px
    f, z = 1000.0, 500.0
    d_px = 11.7 * f / z
    out = estimate_metric_scale(_points((d_px, d_px)), np.array([z, z]) / true_scale, f, prior_std=1.0,
                                focal_known=True, detector_log_std=0.0)
    assert out.iris_scale == pytest.approx(true_scale, rel=1e-6)
    assert out.scale == pytest.approx(true_scale, rel=0.01)
    assert out.std > 0 and out.std < out.prior_std


def test_the_prior_pulls_toward_one_and_narrows_the_std():
    f, z = 1000.0, 500.0
    d = 11.7 * f / z
    weak = estimate_metric_scale(_points((d, d)), np.array([z, z]) / 1.2, f, prior_std=0.05)
    assert 1.0 < weak.scale < 1.2 and weak.std < min(weak.iris_std, 0.05 * weak.scale)


def test_unmeasurable_irises_raise():
    with pytest.raises(FitError):
        estimate_metric_scale(_points((0.5, 0.5)), np.array([500.0, 500.0]), 1000.0, prior_std=0.05)


def test_model_size_std_is_a_few_percent(ict_model):
    assert 0.01 < model_size_std(ict_model) < 0.15
