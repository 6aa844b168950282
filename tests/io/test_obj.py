"""OBJ writer: round trips through our reader and trimesh, compact numbers, MTL paths, and the
registry's export (normals, smoothing, no unused vertices, no trimesh warnings)."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from facerecon.errors import UsageError
from facerecon.io import Mesh, read_obj_mesh, vertex_normals, write_obj
from facerecon.geometry.meshfiles import read_obj

from .meshes import ict_export_mesh, seamed_quad

def test_obj_round_trip_keeps_positions_uvs_and_seams(tmp_path):
    v, t, uv, ut = seamed_quad()
    write_obj(tmp_path / "m.obj", v, t, uv, ut)
    mesh = read_obj(tmp_path / "m.obj")
    np.testing.assert_allclose(mesh.vertices, v, rtol=0, atol=5e-7)
    np.testing.assert_array_equal(mesh.triangles, t)
    np.testing.assert_allclose(mesh.uv, uv, rtol=0, atol=5e-7)
    np.testing.assert_array_equal(mesh.uv_triangles, ut)
    rv, rt = read_obj_mesh(tmp_path / "m.obj")
    np.testing.assert_array_equal(rv, mesh.vertices)
    np.testing.assert_array_equal(rt, t)
    assert not (tmp_path / "m.mtl").exists()


def test_obj_numbers_are_compact(tmp_path):
    write_obj(tmp_path / "m.obj", [[1.0, 0.0, -2.5], [100.0, -0.125, 3.0000004], [0, 1, 0]], [[0, 1, 2]])
    lines = (tmp_path / "m.obj").read_text().splitlines()
    assert [ln for ln in lines if ln.startswith("v ")] == ["v 1 0 -2.5", "v 100 -0.125 3", "v 0 1 0"]
    assert "f 1 2 3" in lines


def test_obj_texture_writes_mtl_with_a_relative_name(tmp_path):
    v, t, uv, ut = seamed_quad()
    (tmp_path / "tex").mkdir()
    normals = vertex_normals(v, t)
    write_obj(tmp_path / "head.obj", v, t, uv, ut, normals=normals, texture_png=tmp_path / "tex" / "albedo.png",
              material_name="skin")
    text = (tmp_path / "head.obj").read_text()
    assert "mtllib head.mtl" in text and "usemtl skin" in text
    assert "f 1/1/1 2/2/2 3/3/3" in text and "f 1/4/1 3/5/3 4/6/4" in text
    mtl = (tmp_path / "head.mtl").read_text()
    assert "newmtl skin" in mtl and "map_Kd tex/albedo.png" in mtl
    mesh = read_obj(tmp_path / "head.obj")
    assert mesh.materials == ["skin"] and (mesh.triangle_material == 0).all()
    np.testing.assert_array_equal(mesh.uv_triangles, ut)


def test_obj_normals_without_uv(tmp_path):
    v, t, _, _ = seamed_quad()
    write_obj(tmp_path / "m.obj", v, t, normals=vertex_normals(v, t))
    text = (tmp_path / "m.obj").read_text()
    assert text.count("\nvn ") == 4 and "f 1//1 2//2 3//3" in text
    np.testing.assert_array_equal(read_obj_mesh(tmp_path / "m.obj")[1], t)


def test_obj_accepts_tensors(tmp_path):
    v, t, uv, ut = seamed_quad()
    write_obj(tmp_path / "m.obj", torch.from_numpy(v).float(), torch.from_numpy(t), torch.from_numpy(uv),
              torch.from_numpy(ut))
    np.testing.assert_allclose(read_obj_mesh(tmp_path / "m.obj")[0], v, atol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(triangles=[[0, 1, 4]]), "indices must be in"),
    (dict(vertices=np.zeros((3, 2))), "vertices must have shape"),
    (dict(vertices=[[0, 0, np.nan], [1, 0, 0], [0, 1, 0]]), "NaN"),
    (dict(uv=np.zeros((3, 2))), "given together"),
    (dict(triangles=[[0.0, 1.0, 2.0]]), "integer"),
])
def test_obj_rejects_bad_input(tmp_path, kwargs, match):
    args = dict(vertices=np.eye(3), triangles=[[0, 1, 2]]) | kwargs
    with pytest.raises(UsageError, match=match):
        write_obj(tmp_path / "m.obj", **args)


def test_ict_head_obj_round_trip(tmp_path, ict_head):
    v, t = ict_head.mean.numpy(), ict_head.triangles.numpy()
    write_obj(tmp_path / "head.obj", v, t, ict_head.uv, ict_head.uv_triangles, texture_png=tmp_path / "head.png")
    mesh = read_obj(tmp_path / "head.obj")
    np.testing.assert_allclose(mesh.vertices, v, rtol=0, atol=5e-7)
    np.testing.assert_array_equal(mesh.triangles, t)
    np.testing.assert_array_equal(mesh.uv_triangles, ict_head.uv_triangles.numpy())


def test_trimesh_reads_the_same_obj(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    v, t, uv, ut = seamed_quad()
    write_obj(tmp_path / "m.obj", v, t, uv, ut, texture_png=tmp_path / "albedo.png")
    obj = trimesh.load(tmp_path / "m.obj", process=False)
    # trimesh splits OBJ vertices at UV seams: compare corner by corner.
    np.testing.assert_allclose(obj.vertices[obj.faces], v[t], atol=5e-7)
    np.testing.assert_allclose(obj.visual.uv[obj.faces], uv[ut], atol=5e-7)


def test_mtl_path_is_relative_to_the_mtl_not_the_working_directory(tmp_path, monkeypatch):
    v, t, uv, ut = seamed_quad()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out" / "face").mkdir(parents=True)
    write_obj("out/face/mesh.obj", v, t, uv, ut, texture_png="out/face/albedo.png")
    assert "map_Kd albedo.png\n" in (tmp_path / "out/face/mesh.mtl").read_text()
    write_obj("out/face/mesh.obj", v, t, uv, ut, texture_png="out/albedo.png")
    assert "map_Kd ../albedo.png\n" in (tmp_path / "out/face/mesh.mtl").read_text()


def test_export_obj_is_clean(tmp_path, ict_model, caplog):
    """The exported ICT head: vn normals and `s 1`, the MTL naming the texture beside it, no unused
    vertices (the hidden eye groups' 760), and trimesh loads it without a warning."""
    trimesh = pytest.importorskip("trimesh")
    mesh = ict_export_mesh(ict_model)
    used = np.unique(mesh.triangles)
    assert len(used) == len(mesh.vertices) - 760
    path = mesh.export(tmp_path / "out" / "mesh.obj")
    assert sorted(p.name for p in path.parent.iterdir()) == ["albedo.png", "mesh.mtl", "mesh.obj"]
    text = path.read_text()
    assert text.count("\nv ") == len(used) and text.count("\nvn ") == len(used) and "\ns 1\n" in text
    assert "mtllib mesh.mtl\n" in text and "usemtl face\n" in text
    assert "map_Kd albedo.png\n" in (path.parent / "mesh.mtl").read_text()
    back = read_obj(path)
    np.testing.assert_allclose(back.vertices, mesh.vertices[used], atol=5e-7)
    np.testing.assert_array_equal(back.vertices[back.triangles], back.vertices[np.searchsorted(used, mesh.triangles)])
    with caplog.at_level(logging.DEBUG, logger="trimesh"):
        loaded = trimesh.load(path, process=False)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]
    assert loaded.visual.material.image.size == (64, 64)
    # the file's vn are the area-weighted normals, corner by corner
    expected = vertex_normals(mesh.vertices, mesh.triangles)[mesh.triangles]
    np.testing.assert_allclose(loaded.vertex_normals[loaded.faces], expected, atol=2e-6)


def test_export_obj_bytes_match_the_files(tmp_path):
    v, t, uv, ut = seamed_quad()
    mesh = Mesh(v, t, uv, ut, texture=np.full((4, 4, 3), 0.5))
    files = mesh.export(file_type="obj")
    assert list(files) == ["mesh.obj", "mesh.mtl", "mesh_albedo.png"]
    mesh.export(tmp_path / "mesh.obj")
    for name, data in files.items():
        assert (tmp_path / name).read_bytes() == data
    untextured = Mesh(v, t).export(file_type="obj")
    assert list(untextured) == ["mesh.obj"] and b"mtllib" not in untextured["mesh.obj"]
