"""Frames without a face: short gaps are interpolated from the tracked frames on either side, long
ones are left empty (never filled with made-up values).

A gap of at most `MAX_GAP_FRAMES` frames (a third of a second at 30 fps: a blink of occlusion, a
hand passing) between two tracked frames is filled by linear interpolation in time of the
expression and translation and by spherical linear interpolation of the rotation; its frames are
marked "interpolated". Longer gaps, and gaps at the start or end of the clip, stay "lost" (NaN).
"""
from __future__ import annotations

import numpy as np

from ..geometry.rotation import axis_angle_to_matrix_np, matrix_to_axis_angle_np

MAX_GAP_FRAMES = 10
TRACKED, INTERPOLATED, LOST = "tracked", "interpolated", "lost"


def slerp_axis_angle(r0: np.ndarray, r1: np.ndarray, s: float) -> np.ndarray:
    """The rotation a fraction `s` of the way from r0 to r1 (both (3,) axis-angle), along the shortest arc."""
    m0 = axis_angle_to_matrix_np(r0)
    delta = matrix_to_axis_angle_np(axis_angle_to_matrix_np(r1) @ m0.T)
    return matrix_to_axis_angle_np(axis_angle_to_matrix_np(s * delta) @ m0)


def fill_gaps(timestamps: np.ndarray, status: list[str], arrays: dict[str, np.ndarray],
              max_gap: int = MAX_GAP_FRAMES) -> list[str]:
    """Interpolate short gaps in place (see the module docstring).

    Args:
        timestamps: (T,) seconds. status: per frame TRACKED or LOST.
        arrays: "expression" (T, E), "rotation" (T, 3), "translation" (T, 3), NaN on lost frames;
            the gaps' rows are written.
        max_gap: the longest gap (frames) that is filled.

    Returns:
        The new status list (TRACKED, INTERPOLATED or LOST per frame).
    """
    out = list(status)
    tracked = [i for i, s in enumerate(status) if s == TRACKED]
    for a, b in zip(tracked[:-1], tracked[1:]):
        if b - a <= 1 or b - a - 1 > max_gap:
            continue
        for i in range(a + 1, b):
            s = (timestamps[i] - timestamps[a]) / max(timestamps[b] - timestamps[a], 1e-12)
            for name in ("expression", "translation"):
                arrays[name][i] = (1 - s) * arrays[name][a] + s * arrays[name][b]
            arrays["rotation"][i] = slerp_axis_angle(arrays["rotation"][a], arrays["rotation"][b], s)
            out[i] = INTERPOLATED
    return out
