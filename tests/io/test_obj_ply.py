"""OBJ / PLY writers: round trips through our readers and, when installed, through trimesh."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from facerecon.errors import ModelError, UsageError
from facerecon.io import read_obj_mesh, read_ply, vertex_normals, write_obj, write_ply
from facerecon.models.obj_reader import read_obj


def seamed_quad():
    """Two triangles sharing the edge 0-2, with different UVs on each side of it (a UV seam)."""
    vertices = np.array([[0.0, 0.0, 0.0], [10.5, 0.0, 1.25], [10.0, 10.0, -3.0], [-0.000001, 12.0, 123.456789]])
    triangles = np.array([[0, 1, 2], [0, 2, 3]])
    uv = np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.6, 0.6], [1.0, 1.0], [0.6, 1.0]])
    uv_triangles = np.array([[0, 1, 2], [3, 4, 5]])
    return vertices, triangles, uv, uv_triangles


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


@pytest.mark.parametrize("binary", [True, False])
def test_ply_round_trip(tmp_path, binary):
    rng = np.random.default_rng(0)
    v = rng.normal(0, 50, (40, 3))
    t = rng.integers(0, 40, (70, 3))
    colors = rng.uniform(-0.1, 1.1, (40, 3))
    write_ply(tmp_path / "m.ply", v, t, colors=colors, binary=binary)
    rv, rt, rc = read_ply(tmp_path / "m.ply")
    np.testing.assert_array_equal(rv, v.astype(np.float32))
    np.testing.assert_array_equal(rt, t)
    np.testing.assert_array_equal(rc, np.rint(np.clip(colors, 0, 1) * 255).astype(np.uint8))
    header = (tmp_path / "m.ply").read_bytes()[:200]
    assert (b"binary_little_endian" in header) == binary


def test_ply_without_colors(tmp_path):
    v, t, _, _ = seamed_quad()
    write_ply(tmp_path / "m.ply", v, t)
    rv, rt, rc = read_ply(tmp_path / "m.ply")
    assert rc is None and rv.shape == (4, 3)
    np.testing.assert_array_equal(rt, t)


def test_read_ply_rejects_truncated_and_foreign_files(tmp_path):
    v, t, _, _ = seamed_quad()
    write_ply(tmp_path / "m.ply", v, t)
    data = (tmp_path / "m.ply").read_bytes()
    (tmp_path / "cut.ply").write_bytes(data[:-10])
    with pytest.raises(ModelError, match="truncated"):
        read_ply(tmp_path / "cut.ply")
    (tmp_path / "x.ply").write_bytes(b"not a ply")
    with pytest.raises(ModelError, match="not a PLY"):
        read_ply(tmp_path / "x.ply")


def test_vertex_normals_follow_counter_clockwise_winding():
    v, t, _, _ = seamed_quad()
    flat = v.copy()
    flat[:, 2] = 0
    n = vertex_normals(flat, t)
    np.testing.assert_allclose(n, np.tile([0.0, 0.0, 1.0], (4, 1)), atol=1e-12)
    np.testing.assert_allclose(vertex_normals(flat, t[:, ::-1]), -n, atol=1e-12)
    lonely = vertex_normals(np.vstack([flat, [[5, 5, 5]]]), t)
    np.testing.assert_allclose(lonely[4], [0, 0, 1])


def test_trimesh_reads_the_same_obj_and_ply(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    v, t, uv, ut = seamed_quad()
    write_obj(tmp_path / "m.obj", v, t, uv, ut, texture_png="albedo.png")
    write_ply(tmp_path / "m.ply", v, t, colors=np.full((4, 3), 0.5))
    obj = trimesh.load(tmp_path / "m.obj", process=False)
    # trimesh splits OBJ vertices at UV seams: compare corner by corner.
    np.testing.assert_allclose(obj.vertices[obj.faces], v[t], atol=5e-7)
    np.testing.assert_allclose(obj.visual.uv[obj.faces], uv[ut], atol=5e-7)
    ply = trimesh.load(tmp_path / "m.ply", process=False)
    np.testing.assert_allclose(ply.vertices, v.astype(np.float32), atol=1e-6)
    np.testing.assert_array_equal(ply.faces, t)


def test_ict_head_obj_round_trip(tmp_path, ict_head):
    v, t = ict_head.mean.numpy(), ict_head.triangles.numpy()
    write_obj(tmp_path / "head.obj", v, t, ict_head.uv, ict_head.uv_triangles, texture_png="head.png")
    mesh = read_obj(tmp_path / "head.obj")
    np.testing.assert_allclose(mesh.vertices, v, rtol=0, atol=5e-7)
    np.testing.assert_array_equal(mesh.triangles, t)
    np.testing.assert_array_equal(mesh.uv_triangles, ict_head.uv_triangles.numpy())
