"""`landmarks_command`, the logic behind `facerecon landmarks IMAGE --out lm.json [--overlay lm.png]`."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from facerecon.commands.landmarks import landmarks_command


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory):
    from skimage import data

    path = tmp_path_factory.mktemp("cmd") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def test_writes_json_and_overlay(astronaut_png, tmp_path, capfd):
    out, overlay = tmp_path / "lm.json", tmp_path / "sub" / "lm.png"
    assert landmarks_command(astronaut_png, out, overlay) == 0
    doc = json.loads(out.read_text())
    assert doc["scheme"] == "mediapipe478" and len(doc["points"]) == 478 and len(doc["box"]) == 4
    assert doc["width"] == 512 and doc["height"] == 512 and 0.5 < doc["score"] <= 1
    assert doc["ibug68"]["scheme"] == "ibug68" and len(doc["ibug68"]["points"]) == 68
    assert len(doc["faces"]) == 1 and doc["faces"][0]["points"] == doc["points"]
    assert len(doc["points3d"][0]) == 3
    drawn = np.asarray(Image.open(overlay))
    assert drawn.shape == (512, 512, 3) and not np.array_equal(drawn, np.asarray(Image.open(astronaut_png)))
    assert capfd.readouterr().err == ""


def test_no_face_exits_3_with_one_line(tmp_path, capfd):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (320, 240), (128, 128, 128)).save(blank)
    assert landmarks_command(blank, tmp_path / "lm.json") == 3
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "no face" in err and "Traceback" not in err
    assert not (tmp_path / "lm.json").exists()


@pytest.mark.parametrize("kind", ["missing", "empty", "truncated", "text"])
def test_unreadable_input_exits_4(tmp_path, capfd, kind, astronaut_png):
    path = tmp_path / "in.jpg"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        Image.open(astronaut_png).save(path, quality=90)
        path.write_bytes(path.read_bytes()[:5000])
    elif kind == "text":
        path.write_text("not an image\n")
    assert landmarks_command(path, tmp_path / "lm.json") == 4
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "Traceback" not in err


def test_unknown_backend_exits_2(astronaut_png, tmp_path, capfd):
    assert landmarks_command(astronaut_png, tmp_path / "lm.json", backend="openface") == 2
    assert "unknown landmark backend" in capfd.readouterr().err
