import numpy as np
import pytest

from facerecon.errors import UsageError
from facerecon.evaluation.distance import (
    MeshDistanceIndex,
    scan_to_mesh_distance,
    scan_to_mesh_distance_brute_force,
)

from .meshes import face_patch, icosphere, sample_surface

TRIANGLE = (np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]), np.array([[0, 1, 2]]))


@pytest.mark.parametrize(
    "point, closest",
    [
        ((0.2, 0.2, 3.0), (0.2, 0.2, 0.0)),  # above the face
        ((0.2, 0.3, -2.0), (0.2, 0.3, 0.0)),  # below the face
        ((-1.0, -1.0, 1.0), (0.0, 0.0, 0.0)),  # vertex a region
        ((2.0, -1.0, 0.0), (1.0, 0.0, 0.0)),  # vertex b region
        ((-0.5, 3.0, 0.5), (0.0, 1.0, 0.0)),  # vertex c region
        ((0.5, -1.0, 0.0), (0.5, 0.0, 0.0)),  # edge ab
        ((1.0, 1.0, 0.0), (0.5, 0.5, 0.0)),  # edge bc
        ((-2.0, 0.25, 1.0), (0.0, 0.25, 0.0)),  # edge ca
        ((0.5, 0.5, 0.0), (0.5, 0.5, 0.0)),  # on the edge itself
        ((1.0, 0.0, 0.0), (1.0, 0.0, 0.0)),  # on a vertex
    ],
)
@pytest.mark.parametrize("fn", [scan_to_mesh_distance, scan_to_mesh_distance_brute_force])
def test_hand_computed_closest_points(fn, point, closest):
    r = fn(np.array([point]), *TRIANGLE)
    np.testing.assert_allclose(r.closest_points[0], closest, atol=1e-12)
    np.testing.assert_allclose(r.distances[0], np.linalg.norm(np.subtract(point, closest)), atol=1e-12)
    assert r.triangle_ids[0] == 0


def _check_against_brute_force(points, vertices, triangles):
    fast = scan_to_mesh_distance(points, vertices, triangles)
    slow = scan_to_mesh_distance_brute_force(points, vertices, triangles)
    np.testing.assert_allclose(fast.distances, slow.distances, rtol=0, atol=1e-9)
    # Ties between triangles may pick different ids; the points and distances must agree.
    np.testing.assert_allclose(np.linalg.norm(fast.closest_points - points, axis=1), fast.distances, atol=1e-9)
    own = vertices[triangles[fast.triangle_ids]]  # (P, 3, 3): the closest point lies on its triangle
    for k in range(0, len(points), max(1, len(points) // 50)):
        r = scan_to_mesh_distance_brute_force(fast.closest_points[k : k + 1], own[k], np.array([[0, 1, 2]]))
        assert r.distances[0] < 1e-9
    return fast


def test_random_triangle_soup_matches_brute_force():
    rng = np.random.default_rng(0)
    vertices = rng.normal(scale=20.0, size=(300, 3))
    triangles = rng.integers(0, 300, size=(400, 3))
    points = rng.normal(scale=30.0, size=(3000, 3))
    _check_against_brute_force(points, vertices, triangles)


def test_points_near_vertices_and_edges_match_brute_force():
    vertices, triangles = face_patch(n=21)
    rng = np.random.default_rng(1)
    edges = triangles[:, [0, 1]]
    t = rng.uniform(size=(len(edges), 1))
    on_edges = (1 - t) * vertices[edges[:, 0]] + t * vertices[edges[:, 1]]
    points = np.concatenate([vertices, on_edges])
    points = np.concatenate([points, points + rng.normal(scale=2.0, size=points.shape)])
    _check_against_brute_force(points, vertices, triangles)


def test_degenerate_triangles_match_brute_force():
    rng = np.random.default_rng(2)
    vertices = rng.normal(scale=10.0, size=(50, 3))
    vertices[40:] = vertices[0] + np.linspace(1, 5, 10)[:, None] * np.array([1.0, 2.0, -1.0])
    triangles = np.concatenate([
        rng.integers(0, 40, size=(30, 3)),
        np.array([[40, 41, 42], [43, 45, 49], [5, 5, 6], [7, 7, 7]]),  # collinear, needle, point
    ])
    points = np.concatenate([rng.normal(scale=15.0, size=(500, 3)), vertices[40:] + 0.1])
    _check_against_brute_force(points, vertices, triangles)


def test_mesh_against_itself_is_zero():
    vertices, triangles = icosphere(80.0, 3)
    samples = sample_surface(vertices, triangles, 2000)
    assert scan_to_mesh_distance(vertices, vertices, triangles).distances.max() < 1e-9
    r = scan_to_mesh_distance(samples, vertices, triangles)
    assert r.distances.max() < 1e-9
    np.testing.assert_allclose(r.closest_points, samples, atol=1e-9)


def test_offset_along_normals_is_one_mm():
    vertices, triangles = icosphere(80.0, 4)
    offset = sample_surface(*icosphere(81.0, 4), 5000, seed=3)
    d = scan_to_mesh_distance(offset, vertices, triangles).distances
    # Corresponding flat facets are parallel, 1 mm x (facet distance / radius) ~ 0.999 mm apart.
    np.testing.assert_allclose(d, 1.0, atol=0.01)


def test_hints_do_not_change_the_answer():
    vertices, triangles = face_patch(n=31)
    rng = np.random.default_rng(4)
    points = sample_surface(vertices, triangles, 2000) + rng.normal(scale=3.0, size=(2000, 3))
    index = MeshDistanceIndex(vertices, triangles)
    plain = index.query(points)
    hints = rng.integers(-1, len(triangles), size=len(points))
    hinted = index.query(points, hints)
    np.testing.assert_allclose(hinted.distances, plain.distances, atol=1e-12)


def test_empty_query_and_bad_input():
    vertices, triangles = TRIANGLE
    assert scan_to_mesh_distance(np.zeros((0, 3)), vertices, triangles).distances.shape == (0,)
    with pytest.raises(UsageError):
        scan_to_mesh_distance(np.zeros((4, 2)), vertices, triangles)
    with pytest.raises(UsageError):
        scan_to_mesh_distance(np.zeros((4, 3)), vertices, np.array([[0, 1, 3]]))
    with pytest.raises(UsageError):
        MeshDistanceIndex(vertices, triangles).query(np.zeros((2, 3)), hint_triangles=np.zeros(3, int))
