"""tracking.gaps and tracking.identity's keyframe choice (pure arrays, no model)."""
from __future__ import annotations

import numpy as np

from facerecon.tracking import fill_gaps, select_keyframes
from facerecon.tracking.gaps import INTERPOLATED, LOST, TRACKED, slerp_axis_angle


def _arrays(n):
    return {"expression": np.full((n, 2), np.nan), "rotation": np.full((n, 3), np.nan),
            "translation": np.full((n, 3), np.nan)}


def test_short_gaps_are_interpolated_long_ones_and_ends_stay_lost():
    n = 20
    status = [TRACKED] * n
    for i in (0, 5, 6, 7, *range(10, 16)):
        status[i] = LOST
    a = _arrays(n)
    t = np.arange(n) / 10
    for i, s in enumerate(status):
        if s == TRACKED:
            a["expression"][i] = [i, 2 * i]
            a["rotation"][i] = [0, 0.01 * i, 0]
            a["translation"][i] = [i, 0, -500]
    out = fill_gaps(t, status, a, max_gap=4)
    assert out[5:8] == [INTERPOLATED] * 3 and out[0] == LOST and out[10:16] == [LOST] * 6
    np.testing.assert_allclose(a["expression"][6], [6, 12])
    np.testing.assert_allclose(a["rotation"][6], [0, 0.06, 0], atol=1e-12)
    assert np.isnan(a["expression"][12]).all()


def test_slerp_takes_the_short_way():
    r0, r1 = np.array([0, 0, 3.0]), np.array([0, 0, -3.0])  # 0.28 rad apart through pi
    mid = slerp_axis_angle(r0, r1, 0.5)
    assert abs(abs(mid[2]) - np.pi) < 1e-6


def test_keyframes_start_frontal_and_spread_over_poses():
    poses = np.array([[30, 0], [1, 1], [-30, 0], [2, 0], [0, 20], [29, 1]], dtype=float)
    picks = select_keyframes(poses, 3)
    assert picks[0] == 1 and set(picks[1:]) <= {0, 2, 4, 5} and len(set(picks)) == 3
    assert select_keyframes(np.zeros((4, 2)), 3) == [0]


def test_frame_landmarks_grow_in_one_array_with_empty_rows():
    from facerecon.tracking.track import FrameLandmarks

    store = FrameLandmarks(3, capacity=2)
    rows = [np.full((3, 2), float(k)) if k % 3 else None for k in range(7)]
    for r in rows:
        store.append(r)
    assert len(store) == 7 and store.array.shape == (7, 3, 2) and store.array.dtype == np.float32
    for k, r in enumerate(rows):
        assert (store[k] is None) if r is None else np.array_equal(store[k], r)
    assert np.isnan(store.array[0]).all() and store.array.base is not None  # a view of the one block
