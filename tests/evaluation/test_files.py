import numpy as np
import pytest

from facerecon.errors import ImageError, UsageError
from facerecon.evaluation.files import read_landmarks, read_mesh, read_pts, write_pts

from .meshes import icosphere

OBJ = """# a quad, a triangle with v/vt/vn and one with negative indices
v 0 0 0
v 1 0 0
v 1 1 0 0.5 0.5 0.5
v 0 1 0
vt 0 0
vn 0 0 1
f 1 2 3 4
f 1/1/1 3/1/1 4/1/1
v 2 2 2
f -1 -4 -3
"""


def test_obj_polygons_are_fan_triangulated(tmp_path):
    (tmp_path / "m.obj").write_text(OBJ)
    v, f = read_mesh(tmp_path / "m.obj")
    assert v.shape == (5, 3) and v[2].tolist() == [1.0, 1.0, 0.0]
    np.testing.assert_array_equal(f, [[0, 1, 2], [0, 2, 3], [0, 2, 3], [4, 1, 2]])


def _ply_header(fmt, n_v, n_f, extra_vertex=""):
    return (
        f"ply\nformat {fmt} 1.0\ncomment test\nelement vertex {n_v}\nproperty float x\nproperty float y\n"
        f"property float z\n{extra_vertex}element face {n_f}\nproperty list uchar int vertex_indices\nend_header\n"
    ).encode()


@pytest.mark.parametrize("order, fmt", [("<", "binary_little_endian"), (">", "binary_big_endian")])
def test_binary_ply(tmp_path, order, fmt):
    v, f = icosphere(80.0, 1)
    vert = np.zeros(len(v), dtype=[("x", order + "f4"), ("y", order + "f4"), ("z", order + "f4"), ("q", "u1")])
    vert["x"], vert["y"], vert["z"] = v.T
    face = np.zeros(len(f), dtype=[("n", "u1"), ("i", order + "i4", (3,))])
    face["n"], face["i"] = 3, f
    path = tmp_path / "m.ply"
    path.write_bytes(_ply_header(fmt, len(v), len(f), "property uchar q\n") + vert.tobytes() + face.tobytes())
    v2, f2 = read_mesh(path)
    np.testing.assert_allclose(v2, v.astype(np.float32))
    np.testing.assert_array_equal(f2, f)


def test_binary_ply_with_mixed_polygons(tmp_path):
    v = np.arange(15, dtype="<f4").reshape(5, 3)
    faces = bytes([4]) + np.array([0, 1, 2, 3], "<i4").tobytes()
    faces += bytes([3]) + np.array([1, 2, 4], "<i4").tobytes()
    (tmp_path / "m.ply").write_bytes(_ply_header("binary_little_endian", 5, 2) + v.tobytes() + faces)
    _, f = read_mesh(tmp_path / "m.ply")
    np.testing.assert_array_equal(f, [[0, 1, 2], [0, 2, 3], [1, 2, 4]])


def test_ascii_ply(tmp_path):
    body = "0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n3 0 2 3\n"
    (tmp_path / "m.ply").write_bytes(_ply_header("ascii", 4, 2) + body.encode())
    v, f = read_mesh(tmp_path / "m.ply")
    assert v.shape == (4, 3)
    np.testing.assert_array_equal(f, [[0, 1, 2], [0, 2, 3], [0, 2, 3]])


def test_ply_written_by_trimesh(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    v, f = icosphere(80.0, 2)
    trimesh.Trimesh(v, f, process=False).export(tmp_path / "m.ply")
    v2, f2 = read_mesh(tmp_path / "m.ply")
    np.testing.assert_allclose(v2, v, atol=1e-4)
    np.testing.assert_array_equal(f2, f)


@pytest.mark.parametrize(
    "name, content",
    [
        ("bad.obj", "v 0 0 zero\n"),
        ("bad.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n"),
        ("empty.obj", "# nothing\n"),
        ("bad.ply", "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\nend_header\n0 0\n"),
        ("bad.ply", "not a ply at all"),
        ("mesh.stl", "solid"),
    ],
)
def test_corrupt_meshes_are_image_errors(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    with pytest.raises(ImageError, match=name):
        read_mesh(tmp_path / name)
    with pytest.raises(ImageError, match="not found"):
        read_mesh(tmp_path / "missing.obj")


def test_landmark_files(tmp_path):
    lm = np.random.default_rng(0).normal(size=(7, 3))
    np.save(tmp_path / "a.npy", lm)
    np.savetxt(tmp_path / "a.txt", lm)
    points = "".join(f'  <point x="{x!r}" y="{y!r}" z="{z!r}" name="{k}" active="1"/>\n' for k, (x, y, z) in enumerate(lm.tolist()))
    (tmp_path / "a.pp").write_text(f"<!DOCTYPE PickedPoints>\n<PickedPoints>\n{points}</PickedPoints>\n")
    for suffix in ("npy", "txt", "pp"):
        np.testing.assert_allclose(read_landmarks(tmp_path / f"a.{suffix}", 7), lm, rtol=1e-15)
    with pytest.raises(ImageError, match="expected 6"):
        read_landmarks(tmp_path / "a.txt", 6)
    (tmp_path / "b.txt").write_text("1 2 3\n4 5\n")
    with pytest.raises(ImageError):
        read_landmarks(tmp_path / "b.txt")


def test_pts_round_trip(tmp_path):
    pts = np.random.default_rng(1).uniform(0, 500, size=(68, 2))
    write_pts(tmp_path / "a.pts", pts)
    text = (tmp_path / "a.pts").read_text().splitlines()
    assert text[:3] == ["version: 1", "n_points: 68", "{"] and text[-1] == "}" and len(text) == 72
    np.testing.assert_array_equal(read_pts(tmp_path / "a.pts"), pts)
    write_pts(tmp_path / "b.pts", pts, one_based=True)
    np.testing.assert_allclose(read_pts(tmp_path / "b.pts", one_based=True), pts, atol=1e-12)
    with pytest.raises(UsageError):
        write_pts(tmp_path / "c.pts", np.zeros((68, 3)))


def test_pts_in_the_300w_layout(tmp_path):
    (tmp_path / "a.pts").write_text("version: 1\nn_points:  3\n{\n1.5 2.5\n3 4\n5.25 6\n}\n")
    np.testing.assert_array_equal(read_pts(tmp_path / "a.pts"), [[1.5, 2.5], [3, 4], [5.25, 6]])
    np.testing.assert_array_equal(read_pts(tmp_path / "a.pts", one_based=True), [[1, 2], [2.5, 3.5], [4.75, 5.5]])
    (tmp_path / "short.pts").write_text("version: 1\nn_points: 3\n{\n1 2\n3 4\n}\n")
    with pytest.raises(ImageError, match="short.pts"):
        read_pts(tmp_path / "short.pts")
