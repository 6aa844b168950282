import json
import os
import shutil

import pytest

from facerecon.cli import main
from facerecon.errors import ModelError
from facerecon.models import fetch_model, find_model, load_model, manager


def test_find_through_model_dir(ict_dir):
    assert find_model("ict") == ict_dir / "ict_facekit_light.npz"


def test_missing_model_names_what_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("FACERECON_MODEL_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(ModelError, match="facerecon models fetch ict"):
        load_model("ict")
    with pytest.raises(ModelError, match="flame.is.tue.mpg.de"):
        load_model("flame")
    with pytest.raises(ModelError, match="cannot be downloaded"):
        fetch_model("bfm2017")


def test_unknown_names_and_formats(tmp_path):
    with pytest.raises(ModelError, match="not a known model name"):
        load_model("nope")
    weird = tmp_path / "model.xyz"
    weird.write_text("hello")
    with pytest.raises(ModelError, match="unknown model format"):
        load_model(weird)


def _fake_upstream(tmp_path, ict_dir):
    """A local folder laid out like FaceXModel/ with 2 identities and one expression."""
    up = tmp_path / "upstream"
    up.mkdir()
    raw = ict_dir / "raw"
    for name in ("generic_neutral_mesh.obj", "ICTFaceModelMaterial.mtl", "jawOpen.obj"):
        os.symlink(raw / name, up / name)
    for i in range(100):
        os.symlink(raw / "identity000.obj", up / f"identity{i:03d}.obj")
    index = json.loads((raw / "vertex_indices.json").read_text())
    index["expressions"] = ["jawOpen"]
    (up / "vertex_indices.json").write_text(json.dumps(index))
    return up


def test_fetch_downloads_converts_and_is_found_in_cache(tmp_path, ict_dir, monkeypatch):
    up = _fake_upstream(tmp_path, ict_dir)
    monkeypatch.delitem(manager.ICT_SHA256, "vertex_indices.json")  # our fake index differs
    monkeypatch.setenv("FACERECON_MODEL_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    seen = []
    path = fetch_model("ict", base_url=up.as_uri(), progress=seen.append)
    assert path == tmp_path / "cache" / "facerecon" / "ict-facekit-light" / "ict_facekit_light.npz"
    assert "identity099.obj" in seen
    model = load_model("ict")
    assert model.num_identity == 100 and model.expression_names == ("jawOpen",)


def test_fetch_refuses_a_file_whose_hash_differs(tmp_path, ict_dir, monkeypatch):
    up = _fake_upstream(tmp_path, ict_dir)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(ModelError, match="SHA-256"):
        fetch_model("ict", base_url=up.as_uri())


def test_fetch_offline_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(ModelError, match="--from"):
        fetch_model("ict", base_url=(tmp_path / "nowhere").as_uri())


def test_cli_models_list_and_path(ict_dir, capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "ict" in out and str(ict_dir) in out
    assert main(["models", "path", "ict"]) == 0
    assert main(["models", "path", "nope"]) == 2


def test_cli_models_missing_exit_code(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACERECON_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["models", "path", "flame"]) == 5
    assert "flame.is.tue.mpg.de" in capsys.readouterr().err


def test_cli_fetch_from_local_folder(tmp_path, ict_dir, monkeypatch):
    up = _fake_upstream(tmp_path, ict_dir)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["models", "fetch", "ict", "--from", str(up)]) == 0
    assert (tmp_path / "cache" / "facerecon" / "ict-facekit-light" / "ict_facekit_light.npz").is_file()
    shutil.rmtree(tmp_path / "cache")
