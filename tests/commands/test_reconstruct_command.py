"""`facerecon reconstruct`: early input checks without heavy imports, whole-or-nothing results,
SIGTERM mid-run, --skip-existing."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from facerecon.commands.reconstruct import save_whole
from facerecon.errors import OutputError

SRC = Path(__file__).resolve().parents[2] / "src"
HEAVY = ("torch", "mediapipe", "numba", "facerecon.pipeline", "facerecon.models")


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _modules_after(argv: list[str]) -> tuple[int, list[str], str]:
    """Run the CLI in a fresh interpreter; its exit code, the modules it imported, its stderr."""
    code = ("import json, sys\nfrom facerecon.cli import main\ncode = main(%r)\n"
            "sys.stdout.write('\\nMODULES ' + json.dumps(sorted(sys.modules)))\nsys.exit(code)") % (argv,)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120)
    modules = json.loads(proc.stdout.rsplit("MODULES ", 1)[1])
    return proc.returncode, modules, proc.stderr


@pytest.mark.parametrize("argv, exit_code", [
    (["--help"], 0),
    (["reconstruct", "missing.png", "-o", "out"], 4),
    (["reconstruct", "--mode", "full", "a.png", "b.jpg", "-o", "out"], 4),
    (["landmarks", "missing.png", "--out", "lm.json"], 4),
])
def test_help_and_missing_files_import_nothing_heavy(tmp_path, monkeypatch, argv, exit_code):
    monkeypatch.chdir(tmp_path)
    code, modules, err = _modules_after(argv)
    assert code == exit_code
    assert not [m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY]
    if exit_code == 4:
        assert "file not found" in err and "Traceback" not in err


def test_not_an_image_by_content_is_refused_before_loading(tmp_path):
    fake = tmp_path / "photo.jpg"
    fake.write_text("<html>a saved web page, not a photo</html>")
    code, modules, err = _modules_after(["reconstruct", str(fake), "-o", str(tmp_path / "out")])
    assert code == 4 and "not an image" in err and "torch" not in modules


class _FakeReconstruction:
    """Writes a few files like Reconstruction.save; optionally fails half-way."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def save(self, folder):
        folder = Path(folder)
        (folder / "mesh.obj").write_text("v 0 0 0\n")
        if self.fail:
            raise KeyboardInterrupt
        (folder / "mesh.glb").write_bytes(b"glTF")
        (folder / "params.json").write_text("{}")
        return {"obj": folder / "mesh.obj", "glb": folder / "mesh.glb", "params": folder / "params.json"}


def test_save_whole_renames_a_complete_folder_into_place(tmp_path):
    paths = save_whole(_FakeReconstruction(), tmp_path / "out")
    assert sorted(p.name for p in paths.values()) == ["mesh.glb", "mesh.obj", "params.json"]
    assert all(p.parent == tmp_path / "out" and p.is_file() for p in paths.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_interrupted_save_leaves_nothing_and_keeps_the_old_result(tmp_path):
    save_whole(_FakeReconstruction(), tmp_path / "out")
    with pytest.raises(KeyboardInterrupt):
        save_whole(_FakeReconstruction(fail=True), tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mesh.glb", "mesh.obj", "params.json"]


def test_a_place_where_no_folder_can_be_made_is_an_output_error(tmp_path, monkeypatch):
    # as mkdir in /proc answers: ENOENT although the parent exists
    real = Path.mkdir

    def refuse(self, *args, **kwargs):
        if self.name.startswith(".out.partial-"):
            raise FileNotFoundError(2, "No such file or directory", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(OutputError, match="no folder can be made in") as info:
        save_whole(_FakeReconstruction(), tmp_path / "out")
    assert info.value.exit_code == 7 and sorted(tmp_path.iterdir()) == []


def test_save_into_a_folder_with_other_files_keeps_them(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    save_whole(_FakeReconstruction(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mesh.glb", "mesh.obj", "notes.txt", "params.json"]


def test_sigterm_mid_run_leaves_only_whole_results_and_skip_existing_continues(ict_dir, tmp_path):
    from skimage import data

    names = []
    for i in range(6):
        p = tmp_path / f"p{i}.jpg"
        Image.fromarray(data.astronaut()).save(p)
        names.append(str(p))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "facerecon.cli", "reconstruct", *names, "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.monotonic() + 300
    while not (out / "p0" / "params.json").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted by SIGTERM" in lines[0] and "--skip-existing" in lines[0], err
    present = sorted(out.iterdir())
    assert present and len(present) < 6
    for folder in present:  # no hidden .partial folder, no half-written result
        assert not folder.name.startswith("."), folder
        assert (folder / "params.json").is_file() and (folder / "mesh.glb").is_file()
    first = (out / "p0" / "params.json").stat().st_mtime_ns

    rerun = subprocess.run(cmd + ["--skip-existing", "--json"], capture_output=True, text=True, env=_env(),
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert sum("skipped" in s for s in summary) == len(present)
    assert sorted(p.name for p in out.iterdir()) == [f"p{i}" for i in range(6)]
    assert (out / "p0" / "params.json").stat().st_mtime_ns == first
    assert "W0000" not in rerun.stderr and "XNNPACK" not in rerun.stderr  # MediaPipe's native logs
    params = json.loads((out / "p5" / "params.json").read_text())
    assert params["mode"] == "fast"
    files = next(s for s in summary if s.get("image") == names[5])["files"]
    assert "mesh.glb" in files and "params.json" in files


@pytest.mark.parametrize("argv", [
    ["reconstruct", "photo.png", "-o", "a_file"],
    ["reconstruct", "photo.png", "-o", "a_file/inside"],
    ["reconstruct", "photo.png", "photo.png", "--same-person", "-o", "a_file"],
    ["batch", "photos", "-o", "a_file"],
    ["landmarks", "photo.png", "--out", "a_file/lm.json"],
])
def test_an_output_that_cannot_be_a_folder_exits_7_before_any_model_loads(tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (64, 64), (128, 100, 90)).save("photo.png")
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (64, 64)).save(tmp_path / "photos" / "p.png")
    (tmp_path / "a_file").write_text("a file where the results' folder would go")
    code, modules, err = _modules_after(argv)
    assert code == 7 and "a_file" in err and "Traceback" not in err
    assert not [m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY]
    assert (tmp_path / "a_file").read_text().startswith("a file")  # untouched


def test_one_photo_whose_folder_is_taken_by_a_file_does_not_stop_the_others(ict_dir, tmp_path, capsys):
    from facerecon.cli import main

    Image.new("RGB", (64, 64)).save(tmp_path / "blank.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "blank").write_text("in the way")
    code = main(["reconstruct", "--example", "astronaut", str(tmp_path / "blank.png"), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 7 and "blank: exists and is not a folder" in err
    assert (out / "astronaut" / "params.json").is_file()
