import json
import shutil

import numpy as np
import pytest
import torch

from facerecon.errors import ModelError
from facerecon.models.ict import load_ict_folder, load_ict_npz, save_ict_npz


def test_npz_loader_converts_cm_to_mm(ict_dir, ict_model):
    raw = np.load(ict_dir / "ict_facekit_light.npz")
    np.testing.assert_allclose(ict_model.mean.numpy(), raw["neutral"] * 10, rtol=1e-6)
    assert ict_model.expression_names[26] == "jawOpen"
    assert "M_Teeth" in ict_model.triangle_groups
    assert ict_model.landmarks68 is not None and len(ict_model.landmarks68) == 68


def test_raw_folder_matches_npz(ict_dir, ict_model):
    folder = load_ict_folder(ict_dir / "raw")
    assert folder.num_identity == 1 and folder.expression_names == ("jawOpen",)
    torch.testing.assert_close(folder.mean, ict_model.mean)
    assert torch.equal(folder.triangles, ict_model.triangles)
    assert torch.equal(folder.uv_triangles, ict_model.uv_triangles)
    torch.testing.assert_close(folder.identity_basis[0], ict_model.identity_basis[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(folder.expression_basis[0], ict_model.expression_basis[26], atol=1e-5, rtol=0)
    assert torch.equal(folder.landmarks68.triangle_ids, ict_model.landmarks68.triangle_ids)


def test_raw_folder_incomplete_is_refused_when_complete_is_required(ict_dir):
    with pytest.raises(ModelError, match="identity001.obj: file not found"):
        load_ict_folder(ict_dir / "raw", require_complete=True)


def test_npz_round_trip(tmp_path, ict_dir):
    model = load_ict_folder(ict_dir / "raw")
    save_ict_npz(model, tmp_path / "m.npz")
    again = load_ict_npz(tmp_path / "m.npz")
    torch.testing.assert_close(again.mean, model.mean)
    torch.testing.assert_close(again.expression_basis, model.expression_basis)
    assert torch.equal(again.triangles, model.triangles)
    assert again.regions.keys() >= {"face", "head_and_neck", "teeth"}
    assert set(again.triangle_groups) == set(model.triangle_groups)


def test_truncated_npz_gives_model_error(tmp_path, ict_dir):
    data = (ict_dir / "ict_facekit_light.npz").read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError, match="truncated.npz"):
        load_ict_npz(bad)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(ModelError, match="junk.npz"):
        load_ict_npz(junk)


def test_npz_with_inconsistent_basis_is_refused(tmp_path, ict_dir):
    with np.load(ict_dir / "ict_facekit_light.npz") as d:
        arrays = {k: d[k] for k in d.files}
    arrays["expression_basis"] = arrays["expression_basis"][:, :100]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ModelError, match="expression_basis has shape"):
        load_ict_npz(tmp_path / "bad.npz")
    del arrays["landmarks68"]
    np.savez(tmp_path / "nolm.npz", **arrays)
    with pytest.raises(ModelError, match="missing arrays"):
        load_ict_npz(tmp_path / "nolm.npz")


def test_malformed_obj_in_folder(tmp_path, ict_dir):
    folder = tmp_path / "FaceXModel"
    folder.mkdir()
    shutil.copy(ict_dir / "raw" / "vertex_indices.json", folder)
    (folder / "generic_neutral_mesh.obj").write_text("v 1 2 x\n")
    with pytest.raises(ModelError, match="malformed OBJ"):
        load_ict_folder(folder)
    index = json.loads((folder / "vertex_indices.json").read_text())
    assert "expressions" in index


def test_converted_cache_is_memory_mapped_and_equal(tmp_path, monkeypatch, ict_dir, ict_model):
    import torch

    from facerecon.models.ict import _cache_folder, load_ict_npz

    monkeypatch.setenv("FACERECON_CACHE_DIR", str(tmp_path / "cache"))
    src = ict_dir / "ict_facekit_light.npz"
    first = load_ict_npz(src)  # converts and writes the cache
    folder = _cache_folder(src)
    assert folder.is_dir() and (folder / "identity_basis.npy").is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left
    second = load_ict_npz(src)  # from the memory-mapped cache
    for m in (first, second):
        assert torch.equal(m.identity_basis, ict_model.identity_basis) and torch.equal(m.mean, ict_model.mean)
        assert m.expression_names == ict_model.expression_names and torch.equal(m.triangles, ict_model.triangles)
    # a copy with another mtime is another cache entry
    copy = tmp_path / "copy.npz"
    copy.write_bytes(src.read_bytes())
    assert _cache_folder(copy) != folder
    # a damaged entry falls back to the source
    (folder / "identity_basis.npy").write_bytes(b"broken")
    assert torch.equal(load_ict_npz(src).identity_basis, ict_model.identity_basis)
