"""The 478 -> 68 index map and the named point tables."""
from __future__ import annotations

import numpy as np
import pytest

from facerecon.errors import UsageError
from facerecon.landmarks import (
    EYELID_PAIRS,
    INNER_LIP_PAIRS,
    MEDIAPIPE_SILHOUETTE,
    MEDIAPIPE_TO_IBUG68,
    eyelid_pairs,
    inner_lip_pairs,
    load_canonical_face,
    outline,
)

# iBUG 68 left/right mirror: jaw, brows, nose bottom, eyes, lips (0-based)
IBUG68_MIRROR = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])


def test_ibug68_map_is_68_distinct_mediapipe_points():
    assert MEDIAPIPE_TO_IBUG68.shape == (68,)
    assert len(set(MEDIAPIPE_TO_IBUG68.tolist())) == 68
    assert MEDIAPIPE_TO_IBUG68.min() >= 0 and MEDIAPIPE_TO_IBUG68.max() < 468  # no iris point


def test_ibug68_map_respects_left_right_symmetry():
    # the MediaPipe mirror of iBUG point k is the MediaPipe index of iBUG's mirror of k
    mirror = load_canonical_face().mirror
    assert np.array_equal(mirror[MEDIAPIPE_TO_IBUG68], MEDIAPIPE_TO_IBUG68[IBUG68_MIRROR])


def test_silhouette_is_the_face_oval_ring():
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_FACE_OVAL

    ring = set(np.ravel(list(FACEMESH_FACE_OVAL)).tolist())
    assert set(MEDIAPIPE_SILHOUETTE.tolist()) == ring
    # consecutive entries are oval edges: the ring is in order
    edges = {tuple(sorted(e)) for e in FACEMESH_FACE_OVAL}
    for a, b in zip(MEDIAPIPE_SILHOUETTE, np.roll(MEDIAPIPE_SILHOUETTE, -1)):
        assert tuple(sorted((int(a), int(b)))) in edges


def test_jaw_points_are_on_the_silhouette():
    assert set(MEDIAPIPE_TO_IBUG68[:17].tolist()) <= set(MEDIAPIPE_SILHOUETTE.tolist())


def test_contour_pairs_agree_between_schemes():
    # the 68-point pairs are the 478-point pairs that both ends of the 68 map hit
    for side in ("right", "left"):
        mp_pairs = {tuple(p) for p in EYELID_PAIRS["mediapipe478"][side].tolist()}
        for up, low in eyelid_pairs("ibug68")[side]:
            assert (MEDIAPIPE_TO_IBUG68[up], MEDIAPIPE_TO_IBUG68[low]) in mp_pairs
    mp_lips = {tuple(p) for p in INNER_LIP_PAIRS["mediapipe478"].tolist()}
    for up, low in inner_lip_pairs("ibug68"):
        assert (MEDIAPIPE_TO_IBUG68[up], MEDIAPIPE_TO_IBUG68[low]) in mp_lips


def test_upper_points_are_above_lower_points_on_the_photo(astronaut_face):
    for scheme, face in (("mediapipe478", astronaut_face), ("ibug68", astronaut_face.to_ibug68())):
        v = face.points[:, 1]
        for pairs in list(eyelid_pairs(scheme).values()) + [inner_lip_pairs(scheme)]:
            assert (v[pairs[:, 0]] < v[pairs[:, 1]]).all(), scheme


def test_ibug68_points_sit_where_ibug_puts_them(astronaut_face):
    p = astronaut_face.to_ibug68().points
    u, v = p[:, 0], p[:, 1]
    # subject's right (iBUG 0-8, 17-21, 36-41, 48) is on the viewer's left
    assert u[0] < u[8] < u[16] and u[36] < u[39] < u[42] < u[45] and u[48] < u[54] and u[17] < u[26]
    # top to bottom: brows, eyes, nose tip, mouth, chin
    assert v[19] < v[37] < v[30] < v[51] < v[57] < v[8]
    assert v[27] < v[28] < v[29] < v[30] < v[33]
    # the jaw starts about level with the outer eye corners
    assert abs(v[0] - v[36]) < 0.1 * (v[8] - v[27])
    # the eye contour: corners left/right, lids above/below the corner line
    assert v[37] < v[41] and v[38] < v[40] and v[43] < v[47] and v[44] < v[46]


def test_outline_names():
    assert len(outline("ibug68", "face")) == 27
    assert len(outline("mediapipe478", "eye_left")) == 16
    with pytest.raises(UsageError):
        outline("ibug68", "ears")
    with pytest.raises(UsageError):
        outline("bfm", "face")
