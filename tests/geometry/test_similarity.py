import numpy as np
import pytest

from facerecon.errors import UsageError
from facerecon.geometry.similarity import umeyama

from ..evaluation.meshes import random_similarity


@pytest.mark.parametrize("seed", range(5))
def test_umeyama_recovers_a_known_similarity(seed):
    rng = np.random.default_rng(seed)
    source = rng.normal(scale=40.0, size=(7, 3))
    truth = random_similarity(seed, angle_deg=170.0)
    found = umeyama(source, truth.apply(source))
    assert found.scale == pytest.approx(truth.scale, rel=1e-12)
    np.testing.assert_allclose(found.rotation, truth.rotation, atol=1e-12)
    np.testing.assert_allclose(found.translation, truth.translation, atol=1e-9)


def test_umeyama_without_scale_recovers_a_rigid_transform():
    rng = np.random.default_rng(7)
    source = rng.normal(scale=40.0, size=(7, 3))
    truth = random_similarity(7, scale_range=(1.0, 1.0))
    found = umeyama(source, truth.apply(source), with_scale=False)
    assert found.scale == 1.0
    np.testing.assert_allclose(found.matrix, truth.matrix, atol=1e-9)


def test_umeyama_never_returns_a_reflection():
    rng = np.random.default_rng(8)
    source = rng.normal(size=(10, 3))
    found = umeyama(source, source * np.array([-1.0, 1.0, 1.0]))
    assert np.linalg.det(found.rotation) == pytest.approx(1.0)


def test_umeyama_rejects_bad_input():
    with pytest.raises(UsageError):
        umeyama(np.zeros((7, 3)), np.ones((7, 3)))
    with pytest.raises(UsageError):
        umeyama(np.ones((7, 3)), np.ones((6, 3)))


def test_umeyama_works_in_two_dimensions():
    rng = np.random.default_rng(3)
    source = rng.normal(size=(12, 2))
    c, s = np.cos(0.7), np.sin(0.7)
    target = 2.5 * source @ np.array([[c, -s], [s, c]]).T + np.array([4.0, -1.0])
    found = umeyama(source, target)
    np.testing.assert_allclose(found.apply(source), target, atol=1e-10)
    assert found.scale == pytest.approx(2.5)


def test_umeyama_rejects_non_finite_points():
    pts = np.ones((5, 3))
    pts[0, 0] = np.nan
    with pytest.raises(UsageError, match="NaN"):
        umeyama(pts, np.ones((5, 3)))
