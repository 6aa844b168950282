"""The command line: outputs and documented exit codes (0 ok, 2 usage, 3 no face, 4 input, 5 model)."""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facerecon.cli import main


def test_reconstruct_example_writes_outputs(ict_dir, tmp_path, capsys):
    assert main(["reconstruct", "--example", "astronaut", "-o", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary[0]["image"] == "astronaut" and "mesh.glb" in summary[0]["files"]
    assert (tmp_path / "overlay.png").is_file()


def test_no_face_exits_3(ict_dir, tmp_path, capsys):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(blank)
    assert main(["reconstruct", str(blank), "-o", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert "no face" in err and "Traceback" not in err


def test_missing_and_unreadable_files_exit_4(ict_dir, tmp_path, capsys):
    assert main(["reconstruct", str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "out")]) == 4
    assert "file not found" in capsys.readouterr().err
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    assert main(["reconstruct", str(empty), "-o", str(tmp_path / "out")]) == 4


def test_usage_errors_exit_2(capsys):
    assert main(["reconstruct", "-o", "x"]) == 2
    assert main(["reconstruct", "a.jpg", "-o", "x", "--mode", "slow"]) == 2
    assert main([]) == 2


def test_missing_model_exits_5(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACERECON_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["reconstruct", "--example", "astronaut", "-o", str(tmp_path / "o"), "--offline"]) == 5
    assert "facerecon models fetch ict" in capsys.readouterr().err


def test_a_bad_image_does_not_lose_the_good_ones(ict_dir, tmp_path, capsys):
    from skimage import data

    good = tmp_path / "good.png"
    Image.fromarray(data.astronaut()).save(good)
    code = main(["reconstruct", str(tmp_path / "missing.png"), str(good), "-o", str(tmp_path / "out")])
    assert code == 4
    assert (tmp_path / "out" / "good" / "mesh.obj").is_file()


def test_same_person_passes_detail_and_warns_that_metric_is_for_single_photos(monkeypatch, capsys):
    import facerecon.commands.person as person

    seen = {}
    monkeypatch.setattr(person, "person_command", lambda *a, **kw: seen.update(args=a, kw=kw) or 0)
    assert main(["reconstruct", "a.jpg", "b.jpg", "--same-person", "--mode", "full", "--detail", "-o", "out"]) == 0
    assert seen["kw"]["detail"] is True and seen["args"][0] == ["a.jpg", "b.jpg"]
    assert main(["reconstruct", "a.jpg", "b.jpg", "--same-person", "--metric", "-o", "out"]) == 0
    assert seen["kw"]["detail"] is False and "--metric is for single photos" in capsys.readouterr().err
    assert main(["reconstruct", "a.jpg", "b.jpg", "--same-person", "--detail", "-o", "out"]) == 0
    assert "--detail needs --mode full" in capsys.readouterr().err


def test_the_console_entry_point_flushes_and_ends_with_main_s_code(monkeypatch):
    import io

    from facerecon import cli

    class Ended(Exception):
        pass

    out = io.StringIO()
    written = []

    def fake_exit(code):
        written.append(out.getvalue())
        raise Ended(code)

    def fake_main():
        print("a line still in the buffer", file=sys.stdout, end="")
        return 4

    monkeypatch.setattr(cli, "main", fake_main)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(cli.os, "_exit", fake_exit)
    with pytest.raises(Ended) as ended:
        cli.run()
    assert ended.value.args == (4,) and written == ["a line still in the buffer"]


def test_the_cli_process_exits_with_the_command_s_code_and_its_whole_output(tmp_path):
    import subprocess

    from facerecon.cli import build_parser

    src = str(Path(__file__).resolve().parents[1] / "src")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    missing = subprocess.run([sys.executable, "-m", "facerecon.cli", "reconstruct", str(tmp_path / "missing.png"),
                              "-o", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=120)
    assert missing.returncode == 4 and "missing.png" in missing.stderr
    # stdout is a pipe here (block-buffered): the process must flush it before it ends
    helped = subprocess.run([sys.executable, "-m", "facerecon.cli", "--help"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert helped.returncode == 0
    assert helped.stdout.split() == build_parser().format_help().split()


def test_a_fast_reconstruction_in_a_fresh_process_ends_and_runs_no_numba_kernel(tmp_path):
    """The whole command in its own process, as a user runs it (a hang here once came from two threads
    importing OpenCV at once); a fast-mode run and its save never import numba (its one-shot renders
    take the torch kernels, the kernels compile on first call, the identity metric does not import
    the NoW metrics): no kernel is compiled or loaded from the cache."""
    import subprocess

    src = str(Path(__file__).resolve().parents[1] / "src")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    script = (
        "import gc, sys\n"
        "from facerecon.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print('numba imported', 'numba' in sys.modules)\n"
        "from numba.core.dispatcher import Dispatcher\n"
        "used = sorted(d.py_func.__name__ for d in gc.get_objects() if isinstance(d, Dispatcher) and d.overloads)\n"
        "print('exit', code, 'kernels', used)\n")
    done = subprocess.run([sys.executable, "-c", script, "reconstruct", "--example", "astronaut",
                           "-o", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=600)
    assert "numba imported False" in done.stdout and "exit 0 kernels []" in done.stdout, done.stdout + done.stderr
    assert (tmp_path / "out" / "params.json").is_file() and (tmp_path / "out" / "albedo.png").is_file()
