import numpy as np
import pytest

from facerecon.errors import UsageError
from facerecon.geometry.meshfiles import read_ply
from facerecon.io.maps import heat_colors, load_png16, save_ply_scalar, save_png16


def test_png16_round_trips_within_one_step(tmp_path):
    d = np.linspace(-1, 1, 64 * 64).reshape(64, 64)
    scale = save_png16(tmp_path / "d.png", d, -1.0, 1.0)
    back = load_png16(tmp_path / "d.png", scale)
    assert np.abs(back - d).max() <= scale.scale / 2 + 1e-12
    assert scale.to_dict() == {"offset": -1.0, "scale": 2.0 / 65535}


def test_png16_rejects_bad_input(tmp_path):
    with pytest.raises(UsageError):
        save_png16(tmp_path / "d.png", np.full((4, 4), np.nan), -1, 1)
    with pytest.raises(UsageError):
        save_png16(tmp_path / "d.png", np.zeros((4, 4)), 1, 1)


def test_ply_carries_the_scalar(tmp_path):
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=float)
    path = save_ply_scalar(tmp_path / "u.ply", v, np.array([[0, 1, 2]]), np.array([0.1, 0.2, 0.3]),
                           colors=heat_colors(np.array([0.1, 0.2, 0.3])))
    text = path.read_bytes()
    assert b"property float std" in text and b"property uchar red" in text
    verts, tris, _ = read_ply(path)
    np.testing.assert_allclose(verts, v)
    np.testing.assert_array_equal(tris, [[0, 1, 2]])
    with pytest.raises(UsageError):
        save_ply_scalar(tmp_path / "u.ply", v, np.array([[0, 1, 5]]), np.zeros(3))


def _normal_mapped_quad():
    from facerecon.io import Mesh

    from .meshes import checker_texture, seamed_quad

    v, f, uv, uvf = seamed_quad()
    bumpy = np.full((32, 32, 3), 0.5)
    bumpy[..., 2] = 1.0
    bumpy[8:24, 8:24, 0] = 0.7  # a tilted patch
    return Mesh(v, f, uv, uvf, texture=checker_texture(32), normal_map=bumpy, normal_map_file="normals.png")


def test_glb_carries_the_normal_map_as_normal_texture(tmp_path):
    import io

    from PIL import Image

    from facerecon.io import read_glb, validate_glb
    from facerecon.io.gltf import _image_bytes, _parse_container

    mesh = _normal_mapped_quad()
    path = mesh.export(tmp_path / "m.glb")  # the Khronos validator checks it too (tests/io/conftest.py)
    assert validate_glb(path) == []
    doc, binary = _parse_container(path.read_bytes(), [])
    mat = doc["materials"][0]
    base, normal = mat["pbrMetallicRoughness"]["baseColorTexture"]["index"], mat["normalTexture"]["index"]
    assert base != normal and len(doc["images"]) == 2
    from facerecon.io.gltf import _accessor_data

    attrs = doc["meshes"][0]["primitives"][0]["attributes"]
    tangent, nrm = _accessor_data(doc, binary, attrs["TANGENT"]), _accessor_data(doc, binary, attrs["NORMAL"])
    assert np.allclose(np.linalg.norm(tangent[:, :3], axis=1), 1, atol=1e-5)
    assert np.abs((tangent[:, :3] * nrm).sum(1)).max() < 1e-5 and set(np.abs(tangent[:, 3])) == {1.0}
    assert tangent[0, 0] > 0.5  # the quad's +u runs along +x
    img = np.asarray(Image.open(io.BytesIO(_image_bytes(doc, binary, doc["images"][doc["textures"][normal]["source"]]))))
    assert img.shape == (32, 32, 3) and img[16, 16, 0] == int(0.7 * 255 + 0.5)
    assert read_glb(path)["texture_png"] == mesh.texture_png()


def test_mtl_names_the_normal_map_and_it_is_written_beside(tmp_path):
    mesh = _normal_mapped_quad()
    mesh.export(tmp_path / "m.obj")
    mtl = (tmp_path / "m.mtl").read_text()
    assert "norm normals.png" in mtl and "map_Bump normals.png" in mtl and (tmp_path / "normals.png").is_file()
    mesh.normal_map = None
    files = mesh.export(file_type="obj")
    assert b"norm" not in files["mesh.mtl"] and "normals.png" not in files


def test_a_normal_map_needs_uvs():
    from facerecon.io import Mesh

    from .meshes import seamed_quad

    v, f, _, _ = seamed_quad()
    with pytest.raises(UsageError, match="normal map needs uv"):
        Mesh(v, f, normal_map=np.full((4, 4, 3), 0.5))


def test_uv_tangents_follow_u_and_flip_with_a_mirrored_layout():
    from facerecon.io.gltf import uv_tangents

    v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    n = np.tile([0.0, 0, 1], (3, 1))
    f = np.array([[0, 1, 2]])
    straight = uv_tangents(v, n, np.array([[0.0, 0], [1, 0], [0, 1]]), f)
    mirrored = uv_tangents(v, n, np.array([[0.0, 1], [1, 1], [0, 0]]), f)  # v runs down -y
    assert np.allclose(straight, [[1, 0, 0, 1]] * 3) and np.allclose(mirrored, [[1, 0, 0, -1]] * 3)
