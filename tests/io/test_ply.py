"""PLY writer and reader: round trips, the reader's errors, and the registry's export (winding
consistent once a reader welds coincident vertices)."""
from __future__ import annotations

import numpy as np
import pytest

from facerecon.errors import ModelError
from facerecon.io import read_ply, write_ply

from .meshes import ict_export_mesh, seamed_quad

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




def test_trimesh_reads_the_same_ply(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    v, t, _, _ = seamed_quad()
    write_ply(tmp_path / "m.ply", v, t, colors=np.full((4, 3), 0.5))
    ply = trimesh.load(tmp_path / "m.ply", process=False)
    np.testing.assert_allclose(ply.vertices, v.astype(np.float32), atol=1e-6)
    np.testing.assert_array_equal(ply.faces, t)


def test_export_ply_winding_is_consistent_once_welded(tmp_path, ict_model):
    """trimesh's default load welds coincident vertices; ICT's eyelash cards then disagree on 5
    edges. The exporter leaves those 10 triangles out, so the welded mesh is consistent."""
    trimesh = pytest.importorskip("trimesh")
    mesh = ict_export_mesh(ict_model)
    assert not trimesh.Trimesh(mesh.vertices, mesh.triangles, process=True).is_winding_consistent
    path = mesh.export(tmp_path / "mesh.ply")
    loaded = trimesh.load(path)  # process=True: merges vertices
    assert loaded.is_winding_consistent
    v, t, colors = read_ply(path)
    assert len(v) == len(np.unique(mesh.triangles)) and len(t) == len(mesh.triangles) - 10
    assert (colors == 153).all()
