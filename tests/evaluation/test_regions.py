import numpy as np
import pytest

from facerecon.errors import UsageError
from facerecon.evaluation.regions import REALY_REGIONS, face_regions_from_landmarks, region_errors

from .meshes import face_patch, random_similarity


def _ellipse(centre, a, b, angles):
    return np.column_stack([centre[0] + a * np.cos(angles), centre[1] + b * np.sin(angles)])


def schematic_landmarks_2d() -> np.ndarray:
    """A 68-point iBUG layout in mm, +x to the subject's left, +y up, eyes at y = 35."""
    jaw = _ellipse((0, 30), 65, 100, np.linspace(np.pi, 2 * np.pi, 17))
    right_brow = np.column_stack([np.linspace(-55, -12, 5), [48, 51, 52, 51, 49]])
    left_brow = right_brow[::-1] * [-1, 1]
    bridge = np.column_stack([np.zeros(4), [35, 25, 15, 5]])
    nostrils = np.column_stack([[-14, -7, 0, 7, 14], [-10, -12, -13, -12, -10]])
    right_eye = np.array([[-45, 35], [-35, 39], [-25, 39], [-15, 35], [-25, 31], [-35, 31]])
    left_eye = np.array([[15, 35], [25, 39], [35, 39], [45, 35], [35, 31], [25, 31]])
    outer_lips = _ellipse((0, -40), 25, 10, np.r_[np.linspace(np.pi, 0, 7), np.linspace(0, -np.pi, 7)[1:-1]])
    inner_lips = _ellipse((0, -40), 18, 4, np.r_[np.linspace(np.pi, 0, 5), np.linspace(0, -np.pi, 5)[1:-1]])
    lm = np.concatenate([jaw, right_brow, left_brow, bridge, nostrils, right_eye, left_eye, outer_lips, inner_lips])
    assert lm.shape == (68, 2)
    return lm.astype(float)


@pytest.fixture(scope="module")
def face():
    """Face-patch vertices plus a back-of-head ring behind it, and 68 landmarks on the surface."""
    vertices, _ = face_patch(n=61)
    back = np.column_stack([np.linspace(-60, 60, 50), np.zeros(50), np.full(50, -120.0)])
    vertices = np.concatenate([vertices, back])
    lm2 = schematic_landmarks_2d()
    nearest = [np.argmin(((vertices[:, :2] - p) ** 2).sum(1) + 1e6 * (vertices[:, 2] < -50)) for p in lm2]
    return vertices, np.column_stack([lm2, vertices[nearest, 2]]), len(vertices) - 50


def _region_of(regions, vertices, xy):
    k = np.argmin(((vertices[:, :2] - xy) ** 2).sum(1))
    return [name for name, idx in regions.items() if k in idx]


def test_regions_are_disjoint_nonempty_and_in_place(face):
    vertices, lm, n_front = face
    regions = face_regions_from_landmarks(vertices, lm)
    assert tuple(regions) == REALY_REGIONS
    all_idx = np.concatenate(list(regions.values()))
    assert len(all_idx) == len(np.unique(all_idx))
    assert all(len(idx) > 10 for idx in regions.values())
    assert all_idx.max() < n_front  # nothing from the back of the head
    assert _region_of(regions, vertices, (0, 20)) == ["nose"]
    assert _region_of(regions, vertices, (0, -40)) == ["mouth"]
    assert _region_of(regions, vertices, (0, 70)) == ["forehead"]
    assert _region_of(regions, vertices, (-45, -15)) == ["cheeks"]
    assert _region_of(regions, vertices, (45, -15)) == ["cheeks"]
    assert _region_of(regions, vertices, (0, -70)) == []  # chin
    assert _region_of(regions, vertices, (-30, 35)) == []  # eye
    xy = vertices[:, :2]
    assert (np.abs(xy[regions["nose"], 0]) < 25).all()
    assert (xy[regions["forehead"], 1] > 52).all()
    assert (np.abs(xy[regions["cheeks"], 0]) > 25).all() and (xy[regions["cheeks"], 1] < 31).all()


def test_regions_do_not_depend_on_pose_or_scale(face):
    vertices, lm, _ = face
    pose = random_similarity(5, angle_deg=60.0, scale_range=(0.01, 0.01))  # also mm -> m
    moved = face_regions_from_landmarks(pose.apply(vertices), pose.apply(lm))
    for name, idx in face_regions_from_landmarks(vertices, lm).items():
        np.testing.assert_array_equal(moved[name], idx)


def test_region_errors_statistics():
    d = np.arange(10, dtype=float)
    out = region_errors(d, {"a": [0, 1, 2, 3], "b": [9], "empty": []})
    assert out["a"] == pytest.approx({"median": 1.5, "mean": 1.5, "std": np.std([0, 1, 2, 3]), "count": 4})
    assert out["b"]["count"] == 1 and out["b"]["median"] == 9.0
    assert out["empty"]["count"] == 0 and np.isnan(out["empty"]["mean"])
    with pytest.raises(UsageError):
        region_errors(d, {"a": [10]})


def test_region_errors_with_cropped_points():
    # Distances measured on vertices 5, 7, 9 of the ground truth only (e.g. after the NoW crop).
    out = region_errors(np.array([1.0, 2.0, 4.0]), {"r": [4, 5, 9]}, point_indices=np.array([5, 7, 9]))
    assert out["r"]["count"] == 2 and out["r"]["mean"] == 2.5


def test_landmarks_must_be_68(face):
    vertices, lm, _ = face
    with pytest.raises(UsageError):
        face_regions_from_landmarks(vertices, lm[:67])
