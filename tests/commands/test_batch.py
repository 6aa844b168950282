"""`facerecon batch`: naming, the manifest, failures CSV, a run killed midway and resumed, local
processes (fake and real work) and a local Ray cluster."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facerecon.cli import main
from facerecon.commands.batch import MANIFEST, Manifest, BatchItem, batch_command, find_images
from facerecon.errors import UsageError

from . import batch_fakes

REPO = Path(__file__).resolve().parents[2]


def _photos(folder: Path, n: int, bad: tuple[str, ...] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        Image.new("RGB", (24, 16), (10 * k, 40, 90)).save(folder / f"p{k:02d}.png")
    for name in bad:
        (folder / name).write_text("not a photo")
    return folder


def _results(out: Path) -> dict[str, dict]:
    return {p.parent.relative_to(out).as_posix(): json.loads(p.read_text()) for p in out.rglob("params.json")}


def _leftovers(out: Path) -> list[str]:
    return [p.name for p in out.rglob(".*") if p.name != ".gitkeep"]


def test_find_images_names_outputs_and_skips_hidden(tmp_path):
    for rel in ("a.jpg", "a.png", "b.JPEG", "sub/c.webp", ".hidden/d.png", "notes.txt", "e.tif"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    items = find_images(tmp_path)
    assert items == [BatchItem("a.jpg", "a_jpg"), BatchItem("a.png", "a_png"), BatchItem("b.JPEG", "b"),
                     BatchItem("e.tif", "e"), BatchItem("sub/c.webp", "sub/c")]


def test_an_output_folder_inside_the_input_is_not_read_as_input(tmp_path):
    inp = _photos(tmp_path / "in", 2)
    _photos(inp / "out" / "p00", 1)  # e.g. a result's overlay.png
    assert [it.source for it in find_images(inp, exclude=inp / "out")] == ["p00.png", "p01.png"]


def test_a_missing_folder_or_one_without_photos_is_a_typed_error(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "nope"), "-o", str(tmp_path / "out")]) == 4
    assert "folder not found" in capsys.readouterr().err
    assert main(["batch", str(tmp_path), "-o", str(tmp_path / "out")]) == 4
    assert "no image files" in capsys.readouterr().err
    assert main(["batch", str(tmp_path), "-o", str(tmp_path / "out"), "--workers", "0"]) == 2


def test_failures_go_to_the_csv_and_never_stop_the_run(tmp_path):
    inp = _photos(tmp_path / "in", 3, bad=("broken.jpg",))
    Image.new("RGB", (8, 8)).save(inp / "noface.png")
    out = tmp_path / "out"
    code = batch_command(str(inp), str(out), workers=2, worker=batch_fakes.FAKE)
    assert code == 4  # the first failure in name order: broken.jpg, unreadable
    assert sorted(_results(out)) == ["p00", "p01", "p02"]
    rows = list(csv.DictReader((out / "failures.csv").open()))
    assert [(r["image"], r["exit_code"]) for r in rows] == [("broken.jpg", "4"), ("noface.png", "3")]
    assert "not an image" in rows[0]["error"] and "no face" in rows[1]["error"]
    manifest = json.loads((out / MANIFEST).read_text())
    assert sorted(manifest["done"]) == ["p00.png", "p01.png", "p02.png"]
    assert sorted(manifest["failed"]) == ["broken.jpg", "noface.png"]
    finished = sorted(v["finished_s"] for v in manifest["done"].values())
    assert finished[0] > 0 and len(set(finished)) == 3  # when each finished, from the run's start
    assert "finished_s" not in manifest["failed"]["broken.jpg"]
    assert _leftovers(out) == []


def test_a_rerun_skips_what_is_done_and_refuses_another_mode(tmp_path, capsys):
    inp = _photos(tmp_path / "in", 2)
    out = tmp_path / "out"
    assert batch_command(str(inp), str(out), workers=1, worker=batch_fakes.FAKE) == 0
    before = _results(out)
    assert batch_command(str(inp), str(out), workers=1, worker=batch_fakes.FAKE) == 0
    assert _results(out) == before
    assert "2 of 2 photo(s) already done" in capsys.readouterr().err
    with pytest.raises(UsageError, match="mode 'fast'"):
        batch_command(str(inp), str(out), mode="full", worker=batch_fakes.FAKE)


def test_a_manifest_of_something_else_is_refused(tmp_path):
    (tmp_path / MANIFEST).write_text("[1, 2]")
    with pytest.raises(UsageError, match="not a facerecon batch manifest"):
        Manifest(tmp_path, "fast")


def test_killed_midway_and_resumed_gives_every_output_once(tmp_path):
    inp = _photos(tmp_path / "in", 12)
    out = tmp_path / "out"
    code = ("import sys\nfrom facerecon.commands.batch import batch_command\nfrom tests.commands import batch_fakes\n"
            f"sys.exit(batch_command({str(inp)!r}, {str(out)!r}, workers=2, worker=batch_fakes.FAKE))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    done_at_kill: dict = {}
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            done_at_kill = json.loads((out / MANIFEST).read_text())["done"]
        except (OSError, ValueError):
            pass
        if len(done_at_kill) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no handler runs: the worst case
    proc.wait(30)
    assert 3 <= len(done_at_kill) < 12, "the run was not stopped midway"
    workers = {v["pid"] for v in done_at_kill.values()}
    time.sleep(1.0)
    assert not [p for p in workers if _alive(p)], "worker processes outlived the killed batch"
    manifest_at_kill = json.loads((out / MANIFEST).read_text())
    kept = {k: _results(out)[v["out"]] for k, v in manifest_at_kill["done"].items()}

    assert batch_command(str(inp), str(out), workers=2, worker=batch_fakes.FAKE) == 0
    results = _results(out)
    assert sorted(results) == [f"p{k:02d}" for k in range(12)]
    assert sorted(r["image"] for r in results.values()) == [f"p{k:02d}.png" for k in range(12)]
    for source, params in kept.items():  # what was done before the kill was not redone
        assert results[Path(source).stem] == params
    assert _leftovers(out) == []
    assert sorted(json.loads((out / MANIFEST).read_text())["done"]) == [f"p{k:02d}.png" for k in range(12)]
    assert not (out / "failures.csv").exists()


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it is not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_batch_on_a_local_ray_cluster(tmp_path):
    from tests.browser.ecosystem import required

    if required():
        import ray  # noqa: F401  (CI installs the extra: a missing Ray fails there)
    else:
        pytest.importorskip("ray", reason="the optional extra facerecon[ray] is not installed")
    inp = _photos(tmp_path / "in", 4, bad=("broken.png",))
    out = tmp_path / "out"
    code = batch_command(str(inp), str(out), workers=2, worker=batch_fakes.FAKE, ray_address="local")
    assert code == 4
    assert sorted(_results(out)) == ["p00", "p01", "p02", "p03"]
    assert [r["image"] for r in csv.DictReader((out / "failures.csv").open())] == ["broken.png"]
    pids = {v["pid"] for v in json.loads((out / MANIFEST).read_text())["done"].values()}
    assert len(pids) >= 1 and os.getpid() not in pids  # the work ran in Ray's actor processes


def test_real_reconstruction_with_two_local_workers(tmp_path, ict_dir):
    from skimage import data

    inp = tmp_path / "in"
    inp.mkdir()
    photo = data.astronaut()
    Image.fromarray(photo).save(inp / "astronaut.jpg", quality=92)
    Image.fromarray(np.ascontiguousarray(photo[:, ::-1])).save(inp / "mirrored.png")
    out = tmp_path / "out"
    assert batch_command(str(inp), str(out), workers=2, mode="fast") == 0
    for name in ("astronaut", "mirrored"):
        files = sorted(p.name for p in (out / name).iterdir())
        assert files == ["albedo.png", "landmarks.json", "mesh.glb", "mesh.mtl", "mesh.obj", "mesh.ply",
                         "overlay.png", "params.json"]
        assert json.loads((out / name / "params.json").read_text())["mode"] == "fast"
    done = json.loads((out / MANIFEST).read_text())["done"]
    assert set(done) == {"astronaut.jpg", "mirrored.png"}
    assert all(v["landmark_rms_px"] < 10 and v["worker_peak_rss_mb"] > 100 for v in done.values())


def test_limit_threads_sets_the_face_mesh_threads_by_the_detectors_own_variable(monkeypatch):
    from facerecon.commands import batch
    from facerecon.landmarks.mediapipe_detector import THREADS_VAR

    assert batch.MESH_THREADS_VAR == THREADS_VAR
    for var in (*batch._THREAD_VARS, THREADS_VAR):
        # set first, so that monkeypatch restores the variable's original state (absent, too):
        # limit_threads writes os.environ itself, and a NUMBA_NUM_THREADS left behind makes a later
        # numba compile in this process fail ("Cannot set NUMBA_NUM_THREADS ... once the threads
        # have been launched")
        monkeypatch.setenv(var, "1")
        monkeypatch.delenv(var)
    # only the environment is looked at: this process's own pools stay as they are
    monkeypatch.setattr("threadpoolctl.threadpool_limits", lambda n: None)
    monkeypatch.setattr("torch.set_num_threads", lambda n: None)
    batch.limit_threads(1)
    assert os.environ[THREADS_VAR] == "1"
    batch.limit_threads(4)
    assert os.environ[THREADS_VAR] == "2"
