import json

import numpy as np
import pytest

from facerecon.commands.evaluate import eval_now_command

from tests.evaluation.meshes import icosphere, now_landmarks_on_sphere, random_similarity


def _write_obj(path, vertices, triangles):
    lines = [f"v {x!r} {y!r} {z!r}" for x, y, z in vertices.tolist()]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in triangles.tolist()]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def folders(tmp_path):
    """Two NoW pairs: "exact" (a rigidly moved copy of the scan) and "fat" (the same, grown by 2 %)."""
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    vertices, triangles = icosphere(80.0, 2)
    lm = now_landmarks_on_sphere()
    for name, seed in (("exact", 1), ("fat", 2)):
        pose = random_similarity(seed, scale_range=(1.0, 1.0))
        _write_obj(gt / f"{name}.obj", vertices, triangles)
        np.savetxt(gt / f"{name}_lmks.txt", lm)
        grow = 1.02 if name == "fat" else 1.0
        _write_obj(pred / f"{name}.obj", pose.apply(vertices * grow), triangles)
        np.save(pred / f"{name}_lmks.npy", pose.apply(lm * grow))
    return pred, gt


def test_table_and_json(folders, capsys):
    pred, gt = folders
    assert eval_now_command(pred, gt, as_json=False) == 0
    table = capsys.readouterr().out
    assert "median" in table and "exact" in table and "fat" in table and "all (pooled)" in table

    assert eval_now_command(pred, gt, as_json=True) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scans"]["exact"]["mean"] < 1e-4
    assert report["scans"]["fat"]["mean"] < 1e-4  # the scale absorbs the growth
    assert report["all"]["points"] == report["scans"]["exact"]["points"] + report["scans"]["fat"]["points"]


def test_metrical_variant_sees_the_growth(folders, capsys):
    pred, gt = folders
    assert eval_now_command(pred, gt, as_json=True, metrical=True) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["metrical"] is True
    assert report["scans"]["fat"]["mean"] > 0.1 > report["scans"]["exact"]["mean"]


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda pred, gt: (gt / "fat_lmks.txt").unlink(), "fat_lmks.txt"),
        (lambda pred, gt: (pred / "exact_lmks.npy").unlink(), "no predicted landmarks for exact"),
        (lambda pred, gt: (gt / "exact.obj").unlink(), "no ground-truth scan exact"),
        (lambda pred, gt: (pred / "fat.obj").write_text("v 1 2\n"), "fat.obj"),
        (lambda pred, gt: (gt / "fat_lmks.txt").write_text("1 2 3\n"), "expected 7 landmarks"),
        (lambda pred, gt: (gt / "fat_lmks.txt").write_text("\n".join(["1000 0 0"] * 7)), "crop"),
    ],
)
def test_missing_or_corrupt_files_exit_4(folders, capsys, breakage, message):
    pred, gt = folders
    breakage(pred, gt)
    assert eval_now_command(pred, gt, as_json=False) == 4
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


def test_missing_folder_exits_4(tmp_path, capsys):
    assert eval_now_command(tmp_path / "nope", tmp_path, as_json=False) == 4
    assert "not found" in capsys.readouterr().err
