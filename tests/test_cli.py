"""The command line: outputs and documented exit codes (0 ok, 2 usage, 3 no face, 4 input, 5 model)."""
import json

import numpy as np
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
