"""GLB export: round trips (positions in metres, UV seams, dense and sparse morph targets, texture),
the structural validator on good and deliberately broken files, and trimesh as an independent reader."""
from __future__ import annotations

import io
import json
import re
import struct

import numpy as np
import pytest
from PIL import Image

from facerecon.errors import ModelError, UsageError
from facerecon.io import read_glb, split_uv_seams, validate_glb, write_glb

from .meshes import seamed_quad


def png_bytes(size: int = 8) -> bytes:
    rgb = (np.random.default_rng(1).uniform(0, 255, (size, size, 3))).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def grid_mesh(n: int = 12):
    """An n x n vertex grid (mm) with a UV seam down the middle column and three morph targets:
    one local (a corner), one global, one that moves nothing."""
    y, x = np.mgrid[0:n, 0:n].astype(np.float64)
    vertices = np.stack([x * 3.0, y * 3.0, np.sin(x) * 2.0], -1).reshape(-1, 3)
    quads = np.array([[r * n + c, r * n + c + 1, (r + 1) * n + c + 1, (r + 1) * n + c]
                      for r in range(n - 1) for c in range(n - 1)])
    triangles = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    # UV islands: columns < n/2 use uv = (x, y) / n, the others a shifted copy, so the middle
    # column's vertices get two UVs.
    uv = np.concatenate([vertices[:, :2] / (3 * n), vertices[:, :2] / (3 * n) + [0.01, 0.0]])
    left = (vertices[triangles, 0] / 3).min(axis=1) < n // 2
    uv_triangles = np.where(left[:, None], triangles, triangles + n * n)
    local = np.zeros_like(vertices)
    local[:5] = [0.0, 0.0, 4.0]
    targets = {"jawOpen": local, "smile": np.tile([0.5, -0.25, 0.125], (n * n, 1)), "unused": np.zeros_like(vertices)}
    return vertices, triangles, uv, uv_triangles, targets


@pytest.fixture
def grid():
    return grid_mesh()


def written(tmp_path, grid, name="m.glb", **kwargs):
    v, t, uv, ut, targets = grid
    path = tmp_path / name
    write_glb(path, v, t, uv, ut, texture_png_bytes=png_bytes(), morph_targets=targets,
              morph_weights=[0.75, 0.0, 0.25], **kwargs)
    return path


# ------------------------------------------------------------------------------------ round trips

@pytest.mark.parametrize("sparse", [False, True])
def test_round_trip_positions_uv_and_morph_targets(tmp_path, grid, sparse):
    v, t, uv, ut, targets = grid
    path = written(tmp_path, grid, sparse_targets=sparse)
    assert validate_glb(path) == []
    r = read_glb(path)
    vertex_map, uv_map, new_t = split_uv_seams(t, ut)
    # un-split through the index map, mm -> m
    np.testing.assert_array_equal(r["positions"], (v[vertex_map] / 1000).astype(np.float32))
    np.testing.assert_array_equal(r["indices"], new_t)
    # corner by corner, independently of the map: every triangle corner has its position and UV
    np.testing.assert_allclose(r["positions"][r["indices"]], v[t] / 1000, rtol=1e-7)
    np.testing.assert_allclose(r["uv"][r["indices"]], uv[ut], atol=1e-7)
    assert r["target_names"] == ["jawOpen", "smile", "unused"]
    assert r["weights"] == [0.75, 0.0, 0.25]
    for name, offsets in targets.items():
        np.testing.assert_array_equal(r["morph_targets"][name], (offsets[vertex_map] / 1000).astype(np.float32))
    np.testing.assert_allclose(np.linalg.norm(r["normals"], axis=1), 1, atol=1e-6)
    assert r["texture_png"] == png_bytes()


def test_sparse_targets_store_only_moved_vertices(tmp_path, grid):
    dense = written(tmp_path, grid, "dense.glb")
    sparse = written(tmp_path, grid, "sparse.glb", sparse_targets=True)
    gltf = read_glb(sparse)["gltf"]
    targets = gltf["meshes"][0]["primitives"][0]["targets"]
    counts = [gltf["accessors"][tg["POSITION"]]["sparse"]["count"] for tg in targets]
    assert counts[0] == 5 and counts[1] == len(read_glb(sparse)["positions"]) and counts[2] == 1
    assert all("bufferView" not in gltf["accessors"][tg["POSITION"]] for tg in targets)
    assert sparse.stat().st_size < dense.stat().st_size


def test_sparse_threshold_drops_small_offsets(tmp_path, grid):
    v, t, uv, ut, targets = grid
    targets = dict(targets, smile=targets["smile"] * 1e-3)
    write_glb(tmp_path / "m.glb", v, t, morph_targets=targets, sparse_targets=True, sparse_threshold_mm=0.01)
    r = read_glb(tmp_path / "m.glb")
    assert not r["morph_targets"]["smile"].any() and r["morph_targets"]["jawOpen"].any()
    assert validate_glb(tmp_path / "m.glb") == []


def test_seam_splits_vertices(tmp_path):
    v, t, uv, ut = seamed_quad()
    write_glb(tmp_path / "q.glb", v, t, uv, ut, morph_targets={"a": np.arange(12.0).reshape(4, 3)})
    r = read_glb(tmp_path / "q.glb")
    vertex_map, uv_map, _ = split_uv_seams(t, ut)
    # vertices 0 and 2 lie on the seam and are split in two; 1 and 3 are not
    np.testing.assert_array_equal(vertex_map, [0, 0, 1, 2, 2, 3])
    np.testing.assert_array_equal(uv_map, [0, 3, 1, 2, 4, 5])
    assert len(r["positions"]) == 6
    np.testing.assert_array_equal(r["positions"][0], r["positions"][1])
    np.testing.assert_allclose(r["uv"], uv[uv_map], atol=1e-7)
    np.testing.assert_allclose(r["morph_targets"]["a"], np.arange(12.0).reshape(4, 3)[vertex_map] / 1000, rtol=1e-7)
    # the split copies share one normal (computed before splitting), so the seam does not shade
    np.testing.assert_array_equal(r["normals"][0], r["normals"][1])


def test_without_uv_or_seams_keeps_the_vertex_order(tmp_path, grid):
    v, t, _, _, _ = grid
    write_glb(tmp_path / "plain.glb", v, t)
    r = read_glb(tmp_path / "plain.glb")
    np.testing.assert_array_equal(r["positions"], (v / 1000).astype(np.float32))
    assert r["uv"] is None and r["morph_targets"] == {} and r["texture_png"] is None
    assert validate_glb(tmp_path / "plain.glb") == []
    write_glb(tmp_path / "noseam.glb", v, t, v[:, :2] / 40, t)
    np.testing.assert_array_equal(read_glb(tmp_path / "noseam.glb")["positions"], (v / 1000).astype(np.float32))


def test_given_normals_are_used(tmp_path):
    v, t, _, _ = seamed_quad()
    normals = np.tile([0.0, 2.0, 0.0], (4, 1))
    write_glb(tmp_path / "n.glb", v, t, normals=normals)
    np.testing.assert_array_equal(read_glb(tmp_path / "n.glb")["normals"], np.tile([0.0, 1.0, 0.0], (4, 1)))


def test_document_layout(tmp_path, grid):
    path = written(tmp_path, grid)
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data)
    assert (magic, version, length) == (b"glTF", 2, len(data))
    json_len, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == 0x4E4F534A and json_len % 4 == 0
    gltf = json.loads(data[20:20 + json_len])
    mesh = gltf["meshes"][0]
    assert mesh["extras"]["targetNames"] == ["jawOpen", "smile", "unused"] and len(mesh["weights"]) == 3
    prim = mesh["primitives"][0]
    assert set(prim["attributes"]) == {"POSITION", "NORMAL", "TEXCOORD_0"}
    assert gltf["accessors"][prim["indices"]]["componentType"] == 5125
    material = gltf["materials"][prim["material"]]
    assert material["pbrMetallicRoughness"]["baseColorTexture"]["index"] == 0
    assert gltf["images"][0]["mimeType"] == "image/png" and gltf["nodes"][0]["mesh"] == 0
    assert all(v.get("byteOffset", 0) % 4 == 0 for v in gltf["bufferViews"])


@pytest.mark.parametrize("kwargs, match", [
    (dict(texture_png_bytes=b"\xff\xd8\xff\xe0jpeg"), "not a PNG"),
    (dict(morph_targets={"a": np.zeros((3, 3))}), "one per vertex \\(4\\), got 3"),
    (dict(morph_targets={"a": np.zeros((4, 3))}, morph_weights=[1.0, 2.0]), "2 morph weights for 1"),
    (dict(uv=np.zeros((4, 2))), "given together"),
    (dict(normals=np.zeros((2, 3))), "one per vertex"),
    (dict(texture_png_bytes=png_bytes()), "needs uv"),
])
def test_write_glb_rejects_bad_input(tmp_path, kwargs, match):
    v, t, _, _ = seamed_quad()
    with pytest.raises(UsageError, match=match):
        write_glb(tmp_path / "x.glb", v, t, **kwargs)


# ------------------------------------------------------------------------------------ validator

def _chunks(data: bytes) -> tuple[dict, bytes]:
    json_len = struct.unpack_from("<I", data, 12)[0]
    bin_len = struct.unpack_from("<I", data, 20 + json_len)[0]
    return json.loads(data[20:20 + json_len]), data[28 + json_len:28 + json_len + bin_len]


def _pack(gltf: dict, binary: bytes, json_pad: bytes = b" ") -> bytes:
    text = json.dumps(gltf).encode()
    text += json_pad * (-len(text) % 4)
    total = 28 + len(text) + len(binary)
    return (struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<II", len(text), 0x4E4F534A) + text
            + struct.pack("<II", len(binary), 0x004E4942) + binary)


def _first_view_of(gltf: dict, accessor: int) -> dict:
    return gltf["bufferViews"][gltf["accessors"][accessor]["bufferView"]]


def _index_out_of_range(gltf, binary):
    view = _first_view_of(gltf, gltf["meshes"][0]["primitives"][0]["indices"])
    start = view.get("byteOffset", 0)
    return gltf, binary[:start] + struct.pack("<I", 10**6) + binary[start + 4:]


def _accessor_past_view_end(gltf, binary):
    pos = gltf["meshes"][0]["primitives"][0]["attributes"]["NORMAL"]
    gltf["accessors"][pos]["byteOffset"] = 12
    return gltf, binary


def _position_without_min_max(gltf, binary):
    acc = gltf["accessors"][gltf["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]
    del acc["min"], acc["max"]
    return gltf, binary


def _target_without_min_max(gltf, binary):
    del gltf["accessors"][gltf["meshes"][0]["primitives"][0]["targets"][1]["POSITION"]]["max"]
    return gltf, binary


def _wrong_max(gltf, binary):
    acc = gltf["accessors"][gltf["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]
    acc["max"] = [m + 0.01 for m in acc["max"]]
    return gltf, binary


def _target_names_mismatch(gltf, binary):
    gltf["meshes"][0]["extras"]["targetNames"].pop()
    return gltf, binary


def _target_count_mismatch(gltf, binary):
    acc = gltf["accessors"][gltf["meshes"][0]["primitives"][0]["targets"][0]["POSITION"]]
    acc["count"] -= 1
    return gltf, binary


def _misaligned_offset(gltf, binary):
    gltf["accessors"][gltf["meshes"][0]["primitives"][0]["attributes"]["TEXCOORD_0"]]["byteOffset"] = 2
    return gltf, binary


def _view_past_buffer(gltf, binary):
    gltf["bufferViews"][-1]["byteLength"] += 64
    return gltf, binary


def _image_not_png(gltf, binary):
    view = gltf["bufferViews"][gltf["images"][0]["bufferView"]]
    start = view["byteOffset"]
    return gltf, binary[:start] + b"GIF89a.." + binary[start + 8:]


def _missing_material(gltf, binary):
    gltf["meshes"][0]["primitives"][0]["material"] = 3
    return gltf, binary


@pytest.mark.parametrize("mutate, match", [
    (_index_out_of_range, "index 1000000 out of range"),
    (_accessor_past_view_end, "past the end of bufferView"),
    (_position_without_min_max, "no min/max"),
    (_target_without_min_max, "target 1 POSITION: accessor .* no min/max"),
    (_wrong_max, "declared max"),
    (_target_names_mismatch, "2 extras.targetNames for 3 morph targets"),
    (_target_count_mismatch, "target 0: POSITION has"),
    (_misaligned_offset, "not a multiple of the component size"),
    (_view_past_buffer, "past the end of buffer 0"),
    (_image_not_png, "neither PNG nor JPEG"),
    (_missing_material, "material 3 does not exist"),
])
def test_validator_rejects_broken_documents(tmp_path, grid, mutate, match):
    gltf, binary = _chunks(written(tmp_path, grid).read_bytes())
    assert validate_glb(tmp_path / "m.glb") == []
    broken = tmp_path / "broken.glb"
    broken.write_bytes(_pack(*mutate(gltf, binary)))
    problems = validate_glb(broken)
    assert any(re.search(match, p) for p in problems), problems


def test_validator_rejects_broken_sparse_indices(tmp_path, grid):
    gltf, binary = _chunks(written(tmp_path, grid, sparse_targets=True).read_bytes())
    sparse = gltf["accessors"][gltf["meshes"][0]["primitives"][0]["targets"][0]["POSITION"]]["sparse"]
    start = gltf["bufferViews"][sparse["indices"]["bufferView"]]["byteOffset"]
    binary = binary[:start] + struct.pack("<H", 3) + binary[start + 2:]  # indices 3, 1, 2, ... not increasing
    (tmp_path / "broken.glb").write_bytes(_pack(gltf, binary))
    assert any("strictly increasing" in p for p in validate_glb(tmp_path / "broken.glb"))


@pytest.mark.parametrize("damage, match", [
    (lambda d: d[: len(d) - 100], "header length"),
    (lambda d: d[:10], "too short"),
    (lambda d: b"gLTF" + d[4:], "bad magic"),
    (lambda d: d[:4] + struct.pack("<I", 1) + d[8:], "version 1"),
    (lambda d: d + b"\0\0\0\0", "stray bytes|header length"),
])
def test_validator_rejects_broken_containers(tmp_path, grid, damage, match):
    data = written(tmp_path, grid).read_bytes()
    (tmp_path / "broken.glb").write_bytes(damage(data))
    problems = validate_glb(tmp_path / "broken.glb")
    assert any(re.search(match, p) for p in problems), problems


def test_validator_checks_padding(tmp_path, grid):
    gltf, binary = _chunks(written(tmp_path, grid).read_bytes())
    gltf["asset"]["extras"] = {"pad": ""}
    while len(json.dumps(gltf)) % 4 == 0:  # make the JSON need padding
        gltf["asset"]["extras"]["pad"] += "x"
    (tmp_path / "broken_pad.glb").write_bytes(_pack(gltf, binary, json_pad=b"\0"))
    assert any("space" in p for p in validate_glb(tmp_path / "broken_pad.glb"))
    gltf["buffers"][0]["byteLength"] = len(binary) - 2
    binary = binary[:-2] + b"\1\1"
    (tmp_path / "broken_binpad.glb").write_bytes(_pack(gltf, binary))
    assert any("padding must be zero" in p for p in validate_glb(tmp_path / "broken_binpad.glb"))


def test_read_glb_raises_on_garbage(tmp_path):
    (tmp_path / "broken_garbage.glb").write_bytes(b"definitely not a glb file at all")
    with pytest.raises(ModelError, match="not a readable GLB"):
        read_glb(tmp_path / "broken_garbage.glb")
    assert validate_glb(tmp_path / "broken_missing.glb")[0].startswith("cannot read")


# ------------------------------------------------------------------------------------ other readers

@pytest.mark.parametrize("sparse", [False, True])
def test_trimesh_reads_the_same_glb(tmp_path, grid, sparse):
    trimesh = pytest.importorskip("trimesh")
    v, t, uv, ut, _ = grid
    path = written(tmp_path, grid, sparse_targets=sparse)
    scene = trimesh.load(path, process=False)
    (mesh,) = scene.geometry.values()
    r = read_glb(path)
    np.testing.assert_allclose(mesh.vertices, r["positions"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(mesh.faces, r["indices"])
    # trimesh converts glTF UVs back to the OBJ convention too
    np.testing.assert_allclose(mesh.visual.uv[mesh.faces], uv[ut], atol=1e-6)
    np.testing.assert_allclose(mesh.vertices[mesh.faces] * 1000, v[t], rtol=1e-6, atol=1e-6)


def test_validator_accepts_a_glb_written_by_trimesh(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    box = trimesh.creation.box(extents=(0.1, 0.2, 0.3))
    uv = np.random.default_rng(0).uniform(0, 1, (len(box.vertices), 2))
    box.visual = trimesh.visual.TextureVisuals(uv=uv, image=Image.open(io.BytesIO(png_bytes())))
    box.export(tmp_path / "box.glb")
    assert validate_glb(tmp_path / "box.glb") == []
    r = read_glb(tmp_path / "box.glb")
    np.testing.assert_allclose(r["uv"], uv, atol=1e-6)
    assert r["texture_png"].startswith(b"\x89PNG")


def test_ict_head_glb_with_expression_targets(tmp_path, ict_head):
    head = ict_head
    v, t = head.mean.numpy(), head.triangles.numpy()
    targets = dict(zip(head.expression_names, head.expression_basis.numpy()))
    weights = np.zeros(head.num_expression)
    weights[head.expression_names.index("jawOpen")] = 0.5
    sizes = {}
    for sparse in (False, True):
        path = tmp_path / f"head_{'sparse' if sparse else 'dense'}.glb"
        write_glb(path, v, t, head.uv, head.uv_triangles, png_bytes(64), targets, weights, sparse_targets=sparse)
        assert validate_glb(path) == []
        sizes[sparse] = path.stat().st_size
        r = read_glb(path)
        assert len(r["target_names"]) == 53 and r["weights"][head.expression_names.index("jawOpen")] == 0.5
        np.testing.assert_allclose(r["positions"][r["indices"]], v[t] / 1000, rtol=1e-7)
        vertex_map, _, _ = split_uv_seams(t, head.uv_triangles.numpy())
        for name in ("jawOpen", "mouthSmile_L", "eyeBlink_R"):
            expected = (targets[name][vertex_map] / 1000).astype(np.float32)
            if sparse:  # offsets up to 1e-6 mm (float noise in ICT's data) are dropped
                expected[np.linalg.norm(targets[name][vertex_map], axis=1) <= 1e-6] = 0
            np.testing.assert_array_equal(r["morph_targets"][name], expected)
        # normals point out of the face: the nose tip region (largest z) faces +z
        front = r["positions"][:, 2] > np.percentile(r["positions"][:, 2], 99)
        assert r["normals"][front, 2].mean() > 0.5
    print(f"\nICT head GLB ({len(r['positions'])} vertices after UV split, {head.num_vertices} model vertices, "
          f"53 morph targets, 64x64 texture): dense {sizes[False] / 1e6:.2f} MB, sparse {sizes[True] / 1e6:.2f} MB")
    assert sizes[True] < sizes[False]
