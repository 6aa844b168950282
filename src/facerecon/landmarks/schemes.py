"""Landmark schemes: MediaPipe's 478-point face mesh and the iBUG 68-point layout, and the index
tables that connect them.

Left and right are the subject's: the subject's right eye is on the viewer's left in a frontal
photo (as in MediaPipe's `FACEMESH_RIGHT_EYE` and iBUG's points 36-41). iBUG 68 numbering follows
the 300-W / Multi-PIE convention, 0-based.

Every table here is an int64 numpy array of indices into a face's `points` of that scheme.
"""
from __future__ import annotations

import numpy as np

from ..errors import UsageError

MEDIAPIPE478 = "mediapipe478"
IBUG68 = "ibug68"
NUM_POINTS = {MEDIAPIPE478: 478, IBUG68: 68}


def _idx(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


# The 68 iBUG points as MediaPipe indices. Chosen on scikit-image's astronaut photo (see
# tests/landmarks/test_schemes.py and the overlay in the issue), with the contour points spaced by
# arc length along MediaPipe's contours as iBUG spaces them, and checked against ICT-FaceKit's own
# 68 landmarks (jaw point 0 at the height of the outer eye corner, inner-lip points about halfway
# between the mouth corner and the midline).
MEDIAPIPE_TO_IBUG68 = np.concatenate([
    # jaw 0-16: the face outline from the subject's right ear-level point (127, level with the outer
    # eye corner) down to the chin (152) and up to the left (356)
    _idx(127, 234, 132, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 361, 454, 356),
    # brows 17-21 (right, outer to inner) and 22-26 (left, inner to outer): the upper brow edge
    _idx(70, 63, 105, 66, 107),
    _idx(336, 296, 334, 293, 300),
    # nose 27-30: the bridge from between the eyes (168) to the tip (4, the most protruding point)
    _idx(168, 197, 5, 4),
    # nose 31-35: the lower border, right alar base (98) through the subnasale (2) to the left (327)
    _idx(98, 97, 2, 326, 327),
    # right eye 36-41: outer corner, upper lid (two), inner corner, lower lid (two)
    _idx(33, 160, 158, 133, 153, 144),
    # left eye 42-47: inner corner, upper lid (two), outer corner, lower lid (two)
    _idx(362, 385, 387, 263, 373, 380),
    # outer lip 48-59: right corner, upper lip through the cupid's bow (37, 0, 267) to the left
    # corner (291), then the lower lip back
    _idx(61, 39, 37, 0, 267, 269, 291, 321, 314, 17, 84, 91),
    # inner lip 60-67: right corner, upper inner lip, left corner, lower inner lip
    _idx(78, 81, 13, 311, 308, 402, 14, 178),
])

# MediaPipe's face silhouette ring (FACEMESH_FACE_OVAL, in order around the face, starting at the
# top of the forehead and going down the subject's left side). On a real face these are occluding
# contour points, not fixed surface points: fitting should slide them along the model's silhouette.
MEDIAPIPE_SILHOUETTE = _idx(
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
    149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)

# Iris points (refine_landmarks=True): centre then four points on the iris boundary, per eye.
# They lie on the eyeball, not on the face skin.
MEDIAPIPE_IRIS_RIGHT = _idx(468, 469, 470, 471, 472)
MEDIAPIPE_IRIS_LEFT = _idx(473, 474, 475, 476, 477)
MEDIAPIPE_IRIS = np.concatenate([MEDIAPIPE_IRIS_RIGHT, MEDIAPIPE_IRIS_LEFT])

# Closed contours (in order) used for masks and drawing.
MEDIAPIPE_EYE_RIGHT = _idx(33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
MEDIAPIPE_EYE_LEFT = _idx(263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
MEDIAPIPE_LIPS_OUTER = _idx(61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181,
                            91, 146)
MEDIAPIPE_LIPS_INNER = _idx(78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178,
                            88, 95)

# Upper/lower point pairs facing each other across an opening, for eye- and lip-closure losses:
# column 0 upper, column 1 lower, ordered from the outer (or right) corner inward.
EYELID_PAIRS: dict[str, dict[str, np.ndarray]] = {
    MEDIAPIPE478: {
        "right": np.array([(246, 7), (161, 163), (160, 144), (159, 145), (158, 153), (157, 154), (173, 155)],
                          dtype=np.int64),
        "left": np.array([(466, 249), (388, 390), (387, 373), (386, 374), (385, 380), (384, 381), (398, 382)],
                         dtype=np.int64),
    },
    IBUG68: {
        "right": np.array([(37, 41), (38, 40)], dtype=np.int64),
        "left": np.array([(44, 46), (43, 47)], dtype=np.int64),
    },
}
INNER_LIP_PAIRS: dict[str, np.ndarray] = {
    MEDIAPIPE478: np.array([(191, 95), (80, 88), (81, 178), (82, 87), (13, 14), (312, 317), (311, 402),
                            (310, 318), (415, 324)], dtype=np.int64),
    IBUG68: np.array([(61, 67), (62, 66), (63, 65)], dtype=np.int64),
}

# Closed outlines per scheme: the eyes and the inner mouth are holes of the skin region.
_OUTLINES: dict[str, dict[str, np.ndarray]] = {
    MEDIAPIPE478: {
        "face": MEDIAPIPE_SILHOUETTE,
        "eye_right": MEDIAPIPE_EYE_RIGHT,
        "eye_left": MEDIAPIPE_EYE_LEFT,
        "lips_outer": MEDIAPIPE_LIPS_OUTER,
        "mouth": MEDIAPIPE_LIPS_INNER,
    },
    IBUG68: {
        # jaw then brows, reversed so the polygon runs around the face without crossing itself
        "face": np.concatenate([np.arange(0, 17), np.arange(26, 16, -1)]),
        "eye_right": np.arange(36, 42),
        "eye_left": np.arange(42, 48),
        "lips_outer": np.arange(48, 60),
        "mouth": np.arange(60, 68),
    },
}


def check_scheme(scheme: str) -> str:
    """Return `scheme` if it is known, else raise `UsageError`."""
    if scheme not in NUM_POINTS:
        raise UsageError(f"unknown landmark scheme {scheme!r}; expected one of {sorted(NUM_POINTS)}")
    return scheme


def outline(scheme: str, name: str) -> np.ndarray:
    """Indices of a closed outline ("face", "eye_right", "eye_left", "lips_outer", "mouth") in order."""
    outlines = _OUTLINES[check_scheme(scheme)]
    if name not in outlines:
        raise UsageError(f"no outline {name!r}; expected one of {sorted(outlines)}")
    return outlines[name]


def eyelid_pairs(scheme: str) -> dict[str, np.ndarray]:
    """{"right": (K, 2), "left": (K, 2)} upper/lower eyelid point pairs of `scheme`."""
    return EYELID_PAIRS[check_scheme(scheme)]


def inner_lip_pairs(scheme: str) -> np.ndarray:
    """(K, 2) upper/lower inner-lip point pairs of `scheme`."""
    return INNER_LIP_PAIRS[check_scheme(scheme)]
