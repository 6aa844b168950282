import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from facerecon.evaluation.alignment import Similarity, refine_to_scan
from facerecon.evaluation.distance import scan_to_mesh_distance

from .meshes import face_patch, random_similarity, sample_surface


def test_similarity_inverse_and_composition():
    a, b = random_similarity(1), random_similarity(2)
    x = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(a.inverse().apply(a.apply(x)), x, atol=1e-10)
    np.testing.assert_allclose(a.after(b).apply(x), a.apply(b.apply(x)), atol=1e-10)
    homogeneous = np.c_[x, np.ones(5)] @ a.matrix.T
    np.testing.assert_allclose(homogeneous[:, :3], a.apply(x), atol=1e-10)


@pytest.mark.parametrize("with_scale", [True, False])
def test_refinement_recovers_a_small_perturbation(with_scale):
    vertices, triangles = face_patch()
    scan = sample_surface(vertices, triangles, 4000)
    perturbation = Similarity(
        1.02 if with_scale else 1.0, Rotation.from_rotvec(np.deg2rad([2.0, -1.5, 1.0])).as_matrix(),
        np.array([1.5, -2.0, 1.0]),
    )
    result = refine_to_scan(scan, vertices, triangles, perturbation, with_scale=with_scale)
    assert result.surface.distances.max() < 1e-3
    np.testing.assert_allclose(result.transform.matrix, np.eye(4), atol=1e-4)
    np.testing.assert_allclose(
        result.surface.distances, scan_to_mesh_distance(scan, result.transform.apply(vertices), triangles).distances,
        atol=1e-9,
    )


def test_refinement_never_makes_the_error_worse():
    vertices, triangles = face_patch()
    other = vertices + np.c_[np.zeros((len(vertices), 2)), 3 * np.sin(vertices[:, 0] / 9.0)]
    scan = sample_surface(other, triangles, 3000, seed=5)
    for seed in range(3):
        start = random_similarity(seed, angle_deg=3.0, scale_range=(0.97, 1.03), shift=3.0)
        before = scan_to_mesh_distance(scan, start.apply(vertices), triangles).distances
        after = refine_to_scan(scan, vertices, triangles, start).surface.distances
        assert np.mean(after**2) <= np.mean(before**2)
        assert np.mean(after) <= np.mean(before)


def test_refinement_keeps_an_exact_start():
    vertices, triangles = face_patch(n=21)
    scan = sample_surface(vertices, triangles, 500)
    result = refine_to_scan(scan, vertices, triangles, Similarity.identity())
    assert result.iterations == 0
    assert result.surface.distances.max() < 1e-9
