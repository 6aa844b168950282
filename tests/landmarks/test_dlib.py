"""The optional dlib backend: a clear error without the `dlib` extra, landmarks with it."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from facerecon.landmarks import create_detector
from facerecon.landmarks.dlib_detector import DlibMissingError

HAVE_DLIB = importlib.util.find_spec("dlib") is not None and \
    importlib.util.find_spec("face_recognition_models") is not None


@pytest.mark.skipif(HAVE_DLIB, reason="dlib is installed")
def test_missing_dlib_names_the_extra():
    with pytest.raises(DlibMissingError, match=r"pip install 'facerecon\[dlib\]'") as info:
        create_detector("dlib")
    assert info.value.exit_code == 2
    assert isinstance(info.value, ImportError)


@pytest.mark.skipif(not HAVE_DLIB, reason="needs the dlib extra: pip install 'facerecon[dlib]'")
def test_dlib_68_points_on_the_astronaut(astronaut, astronaut_face):
    with create_detector("dlib") as det:
        face = det.detect_largest(astronaut)
    assert face.scheme == "ibug68" and face.points.shape == (68, 2) and face.points3d is None
    # dlib and the MediaPipe-derived 68 points agree on the inner face to a few pixels
    mp68 = astronaut_face.to_ibug68().points
    assert np.median(np.linalg.norm(face.points[17:] - mp68[17:], axis=1)) < 5.0
