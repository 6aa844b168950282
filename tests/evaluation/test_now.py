import numpy as np
import pytest

from facerecon.errors import UsageError
from facerecon.evaluation.now import NOW_LANDMARKS_68, crop_scan, face_crop_sphere, now_errors, summarize

from .meshes import face_patch, icosphere, now_landmarks_on_sphere, random_similarity, sample_surface


def _patch_landmarks(vertices):
    xy = np.array([(-45, 35), (-15, 35), (15, 35), (45, 35), (0, -10), (-25, -40), (25, -40)], float)
    return vertices[[np.argmin(((vertices[:, :2] - p) ** 2).sum(1)) for p in xy]]


def test_landmark_indices_are_the_seven_protocol_points():
    assert NOW_LANDMARKS_68 == (36, 39, 42, 45, 33, 48, 54)


def test_crop_sphere_follows_the_protocol():
    lm = np.array([[-45, 35, 0], [-15, 35, 0], [15, 35, 0], [45, 35, 0], [0, -10, 0], [-25, -40, 0], [25, -40, 0]], float)
    centre, radius = face_crop_sphere(lm)
    # nose bridge (0, 35, 0), nose bottom (0, -10, 0): centre 0.3 of the way up, radius 1.4 (90 + 45) / 2
    np.testing.assert_allclose(centre, [0.0, 3.5, 0.0])
    assert radius == pytest.approx(94.5)
    points = np.array([[0.0, 3.5, 94.4], [0.0, 3.5 - 94.6, 0.0], [10.0, 10.0, 10.0]])
    np.testing.assert_array_equal(crop_scan(points, lm), [0, 2])


def test_mesh_against_itself_scores_zero_under_any_similarity():
    vertices, triangles = icosphere(80.0, 3)
    lm = now_landmarks_on_sphere()
    pred = random_similarity(3)
    result = now_errors(pred.apply(vertices), triangles, pred.apply(lm), vertices, lm)
    assert result.distances.max() < 1e-6
    np.testing.assert_allclose(result.aligned_pred_vertices, vertices, atol=1e-6)
    np.testing.assert_allclose(result.transform.matrix, pred.inverse().matrix, atol=1e-8)
    assert len(result.scan_indices) == len(result.distances) < len(vertices)


def test_metrical_variant_does_not_rescale():
    vertices, triangles = icosphere(80.0, 3)
    lm = now_landmarks_on_sphere()
    rigid = random_similarity(4, scale_range=(1.0, 1.0))
    exact = now_errors(rigid.apply(vertices), triangles, rigid.apply(lm), vertices, lm, scale=False)
    assert exact.distances.max() < 1e-6 and exact.transform.scale == 1.0
    scaled = random_similarity(4, scale_range=(1.1, 1.1))
    off = now_errors(scaled.apply(vertices), triangles, scaled.apply(lm), vertices, lm, scale=False)
    assert off.transform.scale == 1.0 and np.median(off.distances) > 1.0


def test_one_mm_offset_scores_one_mm():
    vertices, triangles = icosphere(80.0, 4)
    scan = sample_surface(*icosphere(81.0, 4), 20000, seed=1)
    lm = now_landmarks_on_sphere(80.0)
    landmark_only = now_errors(vertices, triangles, lm, scan, lm, scale=False, refine=False)
    np.testing.assert_allclose(landmark_only.distances, 1.0, atol=0.01)
    # The refinement may absorb part of a uniform inflation (here by moving the sphere into the
    # cropped cap); it must never score worse.
    refined = now_errors(vertices, triangles, lm, scan, lm, scale=False)
    assert refined.distances.mean() <= landmark_only.distances.mean()


def test_refinement_corrects_noisy_landmarks():
    vertices, triangles = face_patch()
    scan = sample_surface(vertices, triangles, 5000, seed=2)
    lm = _patch_landmarks(vertices)
    noisy = lm + np.random.default_rng(0).normal(scale=2.0, size=lm.shape)
    landmark_only = now_errors(vertices, triangles, noisy, scan, lm, refine=False)
    refined = now_errors(vertices, triangles, noisy, scan, lm)
    assert np.median(landmark_only.distances) > 0.3
    assert refined.distances.max() < 1e-3
    np.testing.assert_allclose(refined.transform.matrix, np.eye(4), atol=1e-4)


def test_summarize_pools_all_points():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([10.0])
    s = summarize([a, b])
    assert s == pytest.approx({"median": 2.5, "mean": 4.0, "std": np.std([1, 2, 3, 10])})
    with pytest.raises(UsageError):
        summarize([])


def test_bad_input_is_a_usage_error():
    vertices, triangles = icosphere(80.0, 1)
    lm = now_landmarks_on_sphere()
    with pytest.raises(UsageError):
        now_errors(vertices, triangles, lm[:6], vertices, lm)
    with pytest.raises(UsageError, match="crop"):
        now_errors(vertices, triangles, lm, vertices + 1000.0, lm)
