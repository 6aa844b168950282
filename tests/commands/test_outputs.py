"""commands.outputs: output folders checked before work, write failures as OutputError (exit 7)."""
from __future__ import annotations

import errno
import os

import pytest

from facerecon.commands import outputs
from facerecon.commands.outputs import check_output_file, check_output_folder, output_error, writing_outputs
from facerecon.errors import OutputError


def test_a_folder_that_exists_or_can_be_made_passes_and_nothing_is_created(tmp_path):
    assert check_output_folder(tmp_path) == tmp_path
    deep = tmp_path / "a" / "b" / "c"
    assert check_output_folder(deep) == deep and not (tmp_path / "a").exists()


def test_a_file_in_the_way_is_named(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="exists and is not a folder") as err:
        check_output_folder(tmp_path / "f")
    assert err.value.exit_code == 7
    with pytest.raises(OutputError, match="is a file, so no folder can be made inside it"):
        check_output_folder(tmp_path / "f" / "g" / "h")


def test_a_folder_the_user_cannot_write_is_named(tmp_path, monkeypatch):
    real = os.access
    monkeypatch.setattr(outputs.os, "access", lambda p, mode: False if os.fspath(p) == os.fspath(tmp_path) else real(p, mode))
    with pytest.raises(OutputError, match="no permission to write in"):
        check_output_folder(tmp_path / "new")


def test_an_output_file_needs_a_file_name_and_a_writable_folder(tmp_path):
    assert check_output_file(tmp_path / "x" / "lm.json") == tmp_path / "x" / "lm.json"
    with pytest.raises(OutputError, match="is a folder"):
        check_output_file(tmp_path)
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        check_output_file(tmp_path / "f" / "lm.json")


def test_write_failures_become_output_errors_and_others_pass_through(tmp_path):
    with pytest.raises(OutputError, match=r"cannot write /full/disk/mesh.glb: No space left on device"):
        with writing_outputs():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/full/disk/mesh.glb")
    with pytest.raises(FileNotFoundError):  # reading a missing input is not an output problem
        with writing_outputs():
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", "in.png")
    err = output_error(OSError(errno.EROFS, "Read-only file system"))
    assert str(err) == "cannot write the output: Read-only file system" and err.exit_code == 7
