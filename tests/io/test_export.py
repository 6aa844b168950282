"""The exporter registry: formats, bytes without a path, unknown types, adding a format."""
from __future__ import annotations

import numpy as np
import pytest

from facerecon.errors import UsageError
from facerecon.io import EXPORTERS, Mesh, export_mesh, read_glb, read_ply, supported_formats, write_mesh
from facerecon.io.export import MULTI_FILE

from .meshes import ict_export_mesh, seamed_quad


def test_supported_formats():
    assert supported_formats() == ["glb", "obj", "ply"] and MULTI_FILE <= set(EXPORTERS)


@pytest.mark.parametrize("file_type", ["ply", "glb", ".GLB"])
def test_bytes_without_a_path_equal_the_written_file(tmp_path, file_type):
    v, t, uv, ut = seamed_quad()
    mesh = Mesh(v, t, uv, ut, texture=np.full((4, 4, 3), 0.5))
    data = mesh.export(file_type=file_type)
    assert isinstance(data, bytes)
    ext = file_type.lower().lstrip(".")
    path = mesh.export(tmp_path / f"m.{ext}")
    assert path.read_bytes() == data and sorted(p.name for p in tmp_path.iterdir()) == [f"m.{ext}"]


def test_unknown_format_and_missing_extension(tmp_path):
    v, t, _, _ = seamed_quad()
    with pytest.raises(UsageError, match="unknown mesh format 'stl'; supported: glb, obj, ply"):
        export_mesh(Mesh(v, t), "stl")
    with pytest.raises(UsageError, match="no extension"):
        write_mesh(Mesh(v, t), tmp_path / "mesh")
    assert write_mesh(Mesh(v, t), tmp_path / "mesh", file_type="ply").is_file()


def test_a_new_format_is_one_registry_entry(tmp_path, monkeypatch):
    monkeypatch.setitem(EXPORTERS, "xyz", lambda mesh, stem: {f"{stem}.xyz": mesh.vertices.tobytes()})
    v, t, _, _ = seamed_quad()
    assert "xyz" in supported_formats()
    path = Mesh(v, t).export(tmp_path / "points.xyz")
    assert np.frombuffer(path.read_bytes()).reshape(-1, 3).tolist() == v.tolist()


def test_ict_head_in_every_format(tmp_path, ict_model):
    """The exported head: GLB in metres from the neutral base with the ARKit targets and weights,
    PLY in mm of the posed vertices; both without the unused vertices."""
    mesh = ict_export_mesh(ict_model, jaw=0.5)
    used = np.unique(mesh.triangles)
    paths = {ext: mesh.export(tmp_path / f"mesh.{ext}") for ext in supported_formats()}
    glb = read_glb(paths["glb"])
    np.testing.assert_allclose(glb["positions"].max(axis=0) * 1000, mesh.base_vertices[used].max(axis=0), rtol=1e-6)
    assert glb["target_names"] == list(mesh.morph_targets) and len(glb["target_names"]) == 56
    assert glb["weights"][glb["target_names"].index("jawOpen")] == 0.5
    v, _, _ = read_ply(paths["ply"])
    np.testing.assert_allclose(v, mesh.vertices[used], rtol=1e-6, atol=1e-4)
