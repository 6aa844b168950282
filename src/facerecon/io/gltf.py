"""glTF 2.0 binary (GLB) export with a texture and named morph targets (the registry's
`export_glb`), a reader for tests, and a structural validator that needs no external tool (the
test-suite also runs the Khronos validator on every GLB it writes, tests/browser/).

Units: glTF is in **metres**, so positions and morph-target offsets are written as mm / 1000 (OBJ and
PLY stay in mm). glTF's frame (+y up, +z forward, right-handed) is ours
(docs/conventions.md), so no axis changes. glTF puts the UV origin at the top-left of the image:
our OBJ-convention v becomes 1 - v on writing and back on reading.

glTF has one index per vertex for every attribute, so where the UV layout has seams (a vertex with a
different UV in different triangles) vertices are split: one glTF vertex per distinct
(vertex, uv) pair, see `split_uv_seams`. Positions, normals and every morph target go through the
same map; normals are computed on the unsplit mesh, so seams do not show in the shading.
"""
from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelError, UsageError
from .arrays import as_array, mesh_arrays, per_vertex, unit_rows, uv_arrays, vertex_normals

if TYPE_CHECKING:
    from .mesh import Mesh

MM_PER_METRE = 1000.0
# Default for sparse targets: a vertex is moved when its offset is longer than this (mm).
SPARSE_THRESHOLD_MM = 1e-6

_MAGIC = b"glTF"
_CHUNK_JSON = 0x4E4F534A
_CHUNK_BIN = 0x004E4942
_ARRAY_BUFFER = 34962
_ELEMENT_ARRAY_BUFFER = 34963
_TRIANGLES = 4
_COMPONENTS = {5120: np.dtype("i1"), 5121: np.dtype("u1"), 5122: np.dtype("<i2"), 5123: np.dtype("<u2"),
               5125: np.dtype("<u4"), 5126: np.dtype("<f4")}
_COMPONENT_OF = {(v.kind, v.itemsize): k for k, v in _COMPONENTS.items()}
_TYPE_SIZES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_INDEX_COMPONENTS = (5121, 5123, 5125)
_SIGNATURES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}


def split_uv_seams(triangles: np.ndarray, uv_triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One vertex per distinct (vertex, uv) corner pair, as glTF needs.

    Args:
        triangles: (F, 3) vertex indices. uv_triangles: (F, 3) indices into the UV array.

    Returns:
        vertex_map (N,), uv_map (N,): the original vertex and UV index of each new vertex, sorted by
        vertex then UV (so a mesh without seams keeps its vertex order); new_triangles (F, 3) into
        the N new vertices. Vertices used by no triangle are dropped.
    """
    tris = np.asarray(triangles, dtype=np.int64)
    uv_tris = np.asarray(uv_triangles, dtype=np.int64)
    stride = int(uv_tris.max()) + 1 if uv_tris.size else 1
    keys, inverse = np.unique(tris.ravel() * stride + uv_tris.ravel(), return_inverse=True)
    return keys // stride, keys % stride, inverse.reshape(tris.shape)


def write_glb(path: str | Path, vertices, triangles, uv=None, uv_triangles=None,
              texture_png_bytes: bytes | None = None, morph_targets: dict | None = None,
              morph_weights=None, normals=None, sparse_targets: bool = False,
              sparse_threshold_mm: float = SPARSE_THRESHOLD_MM, name: str = "face") -> Path:
    """Write `glb_bytes(...)` (same arguments) to `path`; returns the path."""
    path = Path(path)
    path.write_bytes(glb_bytes(vertices, triangles, uv, uv_triangles, texture_png_bytes, morph_targets,
                               morph_weights, normals, sparse_targets, sparse_threshold_mm, name))
    return path


def export_glb(mesh: Mesh, stem: str) -> dict[str, bytes]:
    """Registry exporter: `{stem}.glb`, self-contained (texture embedded), in metres.

    The base shape is `mesh.base_vertices` (the neutral expression) when given, else `mesh.vertices`;
    the morph targets go in under the mesh's own names and order with `mesh.morph_weights`, as sparse
    accessors holding the vertices a target moves by more than 0.01 mm.
    """
    base = mesh.vertices if mesh.base_vertices is None else mesh.base_vertices
    normals = mesh.normals if mesh.base_vertices is None else None
    png = None if mesh.texture is None else mesh.texture_png()
    normal_png = None if mesh.normal_map is None else mesh.normal_map_png()
    return {f"{stem}.glb": glb_bytes(base, mesh.triangles, mesh.uv, mesh.uv_triangles, png, mesh.morph_targets,
                                     mesh.morph_weights, normals, sparse_targets=True, sparse_threshold_mm=0.01,
                                     normal_png_bytes=normal_png)}


def glb_bytes(vertices, triangles, uv=None, uv_triangles=None, texture_png_bytes: bytes | None = None,
              morph_targets: dict | None = None, morph_weights=None, normals=None, sparse_targets: bool = False,
              sparse_threshold_mm: float = SPARSE_THRESHOLD_MM, name: str = "face",
              normal_png_bytes: bytes | None = None) -> bytes:
    """One mesh as a self-contained glTF 2.0 binary (.glb), positions in METRES.

    Args:
        vertices: (V, 3) base shape in mm. With morph targets this is the shape the targets are added
            to (identity with a neutral expression): a viewer shows vertices + sum_k w_k * target_k.
        triangles: (F, 3) vertex indices, counter-clockwise = outward.
        uv: (T, 2) OBJ-convention UVs (v = 0 at the image bottom) and uv_triangles (F, 3), or None.
        texture_png_bytes: a PNG file's bytes, embedded as the material's base colour texture.
        morph_targets: name -> (V, 3) per-vertex offsets in mm, written as given, in the dict's order,
            under the caller's names (`mesh.extras.targetNames`): e.g. ICT's own names
            (`zip(model.expression_names, model.expression_basis)`) or ARKit's
            (`facerecon.models.arkit.arkit_targets`).
        morph_weights: one weight per target (the fitted expression), stored as `mesh.weights`;
            default all zero.
        normals: (V, 3) per-vertex normals, or None to compute area-weighted ones.
        sparse_targets: store each target as a sparse accessor holding only the vertices it moves
            by more than `sparse_threshold_mm` (smaller offsets are written as zero); smaller files
            when targets are local (ICT head: each expression moves about 60% of the vertices by
            more than 1e-6 mm, 36% by more than 0.01 mm).
        name: the mesh and node name.
        normal_png_bytes: a PNG of a tangent-space normal map in the same UVs (glTF's convention:
            +y up the image), embedded as the material's `normalTexture`, with per-vertex TANGENT
            (`uv_tangents`) so every viewer uses the same frame.
    """
    verts, tris = mesh_arrays(vertices, triangles)
    uvs, uv_tris = uv_arrays(uv, uv_triangles, tris)
    if normal_png_bytes is not None and (bytes(normal_png_bytes[:8]) != _SIGNATURES["image/png"] or uvs is None):
        raise UsageError("normal_png_bytes must be a PNG file, and a normal map needs uv and uv_triangles")
    if texture_png_bytes is not None:
        if bytes(texture_png_bytes[:8]) != _SIGNATURES["image/png"]:
            raise UsageError("texture_png_bytes is not a PNG file (encode the texture with Pillow as PNG first)")
        if uvs is None:
            raise UsageError("a texture needs uv and uv_triangles")
    if normals is None:
        norms = vertex_normals(verts, tris)
    else:
        norms = unit_rows(per_vertex(normals, len(verts), "normals"))
    targets, weights = _check_targets(morph_targets, morph_weights, len(verts))

    b = _GlbBuilder()
    attributes = {}
    if uvs is not None:
        vertex_map, uv_map, out_tris = split_uv_seams(tris, uv_tris)
        st = np.column_stack([uvs[uv_map, 0], 1.0 - uvs[uv_map, 1]])
    else:
        vertex_map, out_tris = np.arange(len(verts)), tris
    attributes["POSITION"] = b.accessor((verts[vertex_map] / MM_PER_METRE).astype(np.float32),
                                        _ARRAY_BUFFER, min_max=True)
    attributes["NORMAL"] = b.accessor(norms[vertex_map].astype(np.float32), _ARRAY_BUFFER)
    if uvs is not None:
        attributes["TEXCOORD_0"] = b.accessor(st.astype(np.float32), _ARRAY_BUFFER)
    if normal_png_bytes is not None:
        attributes["TANGENT"] = b.accessor(uv_tangents(verts[vertex_map], norms[vertex_map], uvs[uv_map], out_tris)
                                           .astype(np.float32), _ARRAY_BUFFER)
    primitive = {"attributes": attributes, "mode": _TRIANGLES,
                 "indices": b.accessor(out_tris.reshape(-1).astype(np.uint32), _ELEMENT_ARRAY_BUFFER),
                 "material": b.material(texture_png_bytes, normal_png_bytes)}
    mesh = {"name": name, "primitives": [primitive]}
    if targets:
        primitive["targets"] = [{"POSITION": k} for k in b.target_accessors(
            np.stack(list(targets.values()))[:, vertex_map], sparse_targets, sparse_threshold_mm)]
        mesh["weights"] = weights
        mesh["extras"] = {"targetNames": list(targets)}
    b.gltf["meshes"] = [mesh]
    b.gltf["nodes"] = [{"name": name, "mesh": 0}]
    return b.to_glb()


def uv_tangents(vertices: np.ndarray, normals: np.ndarray, uv: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V, 4) glTF tangents of a mesh whose (V, 2) OBJ-convention UVs are per vertex: xyz along +u
    (the triangles' area-weighted dP/du, made orthogonal to the unit normal), w = +-1 so that
    cross(normal, xyz) * w points along +v, up the image (the normal map's +y)."""
    p, t = np.asarray(vertices, dtype=np.float64), np.asarray(uv, dtype=np.float64)
    e1, e2 = p[triangles[:, 1]] - p[triangles[:, 0]], p[triangles[:, 2]] - p[triangles[:, 0]]
    d1, d2 = t[triangles[:, 1]] - t[triangles[:, 0]], t[triangles[:, 2]] - t[triangles[:, 0]]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    # dP/du = (e1 dv2 - e2 dv1) / det and dP/dv = (e2 du1 - e1 du2) / det, times |det|: each
    # triangle weighs by its UV area
    sign = np.where(det < 0, -1.0, 1.0)[:, None]
    du = (e1 * d2[:, 1:] - e2 * d1[:, 1:]) * sign
    dv = (e2 * d1[:, :1] - e1 * d2[:, :1]) * sign
    tu, tv = np.zeros_like(p), np.zeros_like(p)
    for k in range(3):
        np.add.at(tu, triangles[:, k], du)
        np.add.at(tv, triangles[:, k], dv)
    n = np.asarray(normals, dtype=np.float64)
    tu -= (tu * n).sum(1, keepdims=True) * n
    length = np.linalg.norm(tu, axis=1, keepdims=True)
    fallback = np.cross(n, np.where(np.abs(n[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]]))  # no UV extent
    tu = np.where(length > 1e-12, tu / np.maximum(length, 1e-12), fallback / np.linalg.norm(fallback, axis=1,
                                                                                           keepdims=True))
    w = np.where((np.cross(n, tu) * tv).sum(1) < 0, -1.0, 1.0)
    return np.column_stack([tu, w])


def _check_targets(morph_targets, morph_weights, count: int) -> tuple[dict[str, np.ndarray], list[float]]:
    targets = {}
    for key, offsets in (morph_targets or {}).items():
        targets[str(key)] = per_vertex(offsets, count, f"morph target {key!r}")
    if morph_weights is None:
        return targets, [0.0] * len(targets)
    weights = [float(w) for w in as_array(morph_weights, np.float64, (), "morph_weights")]
    if len(weights) != len(targets):
        raise UsageError(f"{len(weights)} morph weights for {len(targets)} morph targets")
    return targets, weights


class _GlbBuilder:
    """Accumulates the glTF JSON and the binary buffer; every bufferView starts 4-byte aligned."""

    def __init__(self) -> None:
        self.gltf: dict = {"asset": {"version": "2.0", "generator": "facerecon"}, "scene": 0,
                           "scenes": [{"nodes": [0]}], "bufferViews": [], "accessors": []}
        self.parts: list[bytes] = []
        self.size = 0

    def view(self, data: bytes, target: int | None = None) -> int:
        pad = -self.size % 4
        if pad:
            self.parts.append(b"\0" * pad)
            self.size += pad
        view = {"buffer": 0, "byteOffset": self.size, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self.parts.append(data)
        self.size += len(data)
        self.gltf["bufferViews"].append(view)
        return len(self.gltf["bufferViews"]) - 1

    def accessor(self, array: np.ndarray, target: int | None = None, min_max: bool = False) -> int:
        acc = {"bufferView": self.view(_le_bytes(array), target),
               "componentType": _COMPONENT_OF[array.dtype.kind, array.dtype.itemsize], "count": len(array),
               "type": "SCALAR" if array.ndim == 1 else f"VEC{array.shape[1]}"}
        if min_max:
            acc["min"], acc["max"] = array.min(axis=0).tolist(), array.max(axis=0).tolist()
        return self._add_accessor(acc)

    def target_accessors(self, offsets_mm: np.ndarray, sparse: bool, threshold_mm: float) -> list[int]:
        """Accessors of K morph targets, offsets (K, V, 3) mm, converted and bounded in one pass."""
        values = (offsets_mm / MM_PER_METRE).astype(np.float32)
        if sparse:
            is_moved = np.linalg.norm(offsets_mm, axis=2) > threshold_mm
            values = np.where(is_moved[..., None], values, np.float32(0))
        lows, highs = values.min(axis=1).tolist(), values.max(axis=1).tolist()
        out = []
        for k in range(len(values)):
            acc = {} if sparse else {"bufferView": self.view(_le_bytes(values[k]), _ARRAY_BUFFER)}
            acc.update({"componentType": 5126, "count": values.shape[1], "type": "VEC3", "min": lows[k],
                        "max": highs[k]})
            if sparse:
                # a sparse accessor needs at least one element: a target that moves nothing stores one zero
                moved = np.flatnonzero(is_moved[k]) if is_moved[k].any() else np.array([0])
                moved = moved.astype(np.uint16 if values.shape[1] <= 65536 else np.uint32)
                acc["sparse"] = {"count": len(moved),
                                 "indices": {"bufferView": self.view(_le_bytes(moved)),
                                             "componentType": _COMPONENT_OF["u", moved.dtype.itemsize]},
                                 "values": {"bufferView": self.view(_le_bytes(values[k][moved]))}}
            out.append(self._add_accessor(acc))
        return out

    def material(self, png: bytes | None, normal_png: bytes | None = None) -> int:
        pbr: dict = {"metallicFactor": 0.0, "roughnessFactor": 1.0}
        material: dict = {"name": "face", "pbrMetallicRoughness": pbr}
        for image, key in ((png, "baseColorTexture"), (normal_png, "normalTexture")):
            if image is None:
                continue
            self.gltf.setdefault("images", []).append({"bufferView": self.view(bytes(image)), "mimeType": "image/png"})
            self.gltf["samplers"] = [{"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071}]
            self.gltf.setdefault("textures", []).append({"source": len(self.gltf["images"]) - 1, "sampler": 0})
            (pbr if key == "baseColorTexture" else material)[key] = {"index": len(self.gltf["textures"]) - 1,
                                                                      "texCoord": 0}
        self.gltf["materials"] = [material]
        return 0

    def _add_accessor(self, acc: dict) -> int:
        self.gltf["accessors"].append(acc)
        return len(self.gltf["accessors"]) - 1

    def to_glb(self) -> bytes:
        binary = b"".join(self.parts)
        binary += b"\0" * (-len(binary) % 4)
        self.gltf["buffers"] = [{"byteLength": self.size}]
        text = json.dumps(self.gltf, separators=(",", ":")).encode("utf-8")
        text += b" " * (-len(text) % 4)
        total = 12 + 8 + len(text) + 8 + len(binary)
        return b"".join([struct.pack("<4sII", _MAGIC, 2, total), struct.pack("<II", len(text), _CHUNK_JSON), text,
                         struct.pack("<II", len(binary), _CHUNK_BIN), binary])


def _le_bytes(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


# ---------------------------------------------------------------------------------------- reading

def read_glb(path: str | Path) -> dict:
    """Read the first primitive of the first mesh of a GLB (for tests and round trips).

    Returns:
        A dict with "positions" (N, 3) float32 in metres, "indices" (F, 3) int64, "normals" (N, 3)
        or None, "uv" (N, 2) in the OBJ convention (v = 0 at the bottom; flipped back from glTF) or
        None, "target_names" (list), "morph_targets" name -> (N, 3) float32 offsets in metres
        (sparse targets densified), "weights" (list), "texture_png" bytes or None, and "gltf" (the
        JSON document). Raises `ModelError` naming the file when it is not a readable GLB.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc})") from None
    problems: list[str] = []
    gltf, binary = _parse_container(data, problems)
    if gltf is None:
        raise ModelError(f"{path}: not a readable GLB file: {'; '.join(problems)}")
    try:
        mesh = gltf["meshes"][0]
        prim = mesh["primitives"][0]
        attrs = prim["attributes"]

        def get(index: int) -> np.ndarray:
            return _accessor_data(gltf, binary, index)

        uv = get(attrs["TEXCOORD_0"]).astype(np.float32) if "TEXCOORD_0" in attrs else None
        if uv is not None:
            uv[:, 1] = 1.0 - uv[:, 1]
        names = list(mesh.get("extras", {}).get("targetNames", []))
        targets = [get(t["POSITION"]) for t in prim.get("targets", [])]
        names += [f"target{k}" for k in range(len(names), len(targets))]
        texture = None
        material = gltf.get("materials", [{}])[prim["material"]] if "material" in prim else {}
        base = material.get("pbrMetallicRoughness", {}).get("baseColorTexture")
        if base is not None:
            image = gltf["images"][gltf["textures"][base["index"]]["source"]]
            texture = _image_bytes(gltf, binary, image)
        return {
            "positions": get(attrs["POSITION"]),
            "indices": get(prim["indices"]).astype(np.int64).reshape(-1, 3),
            "normals": get(attrs["NORMAL"]) if "NORMAL" in attrs else None,
            "uv": uv,
            "target_names": names,
            "morph_targets": dict(zip(names, targets)),
            "weights": list(mesh.get("weights", [0.0] * len(targets))),
            "texture_png": texture,
            "gltf": gltf,
        }
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: malformed glTF ({type(exc).__name__}: {exc}); "
                         "run validate_glb for details") from None


def _parse_container(data: bytes, problems: list[str]) -> tuple[dict | None, bytes]:
    """The JSON document and BIN chunk of a GLB; appends what is wrong to `problems`."""
    if len(data) < 20:
        problems.append(f"file is {len(data)} bytes, too short for a GLB header and JSON chunk")
        return None, b""
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    if magic != _MAGIC:
        problems.append(f"bad magic {magic!r}, expected b'glTF'")
        return None, b""
    if version != 2:
        problems.append(f"GLB version {version}, expected 2")
    if length != len(data):
        problems.append(f"header length {length} != file size {len(data)} (truncated or padded file)")
    chunks = []
    offset = 12
    while offset < len(data):
        if offset + 8 > len(data):
            problems.append(f"{len(data) - offset} stray bytes after the last chunk")
            break
        size, kind = struct.unpack_from("<II", data, offset)
        if size % 4:
            problems.append(f"chunk at byte {offset} has length {size}, not a multiple of 4")
        if offset + 8 + size > len(data):
            problems.append(f"chunk at byte {offset} ({size} bytes) runs past the end of the file")
            break
        chunks.append((kind, data[offset + 8:offset + 8 + size]))
        offset += 8 + size
    if not chunks or chunks[0][0] != _CHUNK_JSON:
        problems.append("the first chunk is not a JSON chunk")
        return None, b""
    text = chunks[0][1]
    if not text.rstrip(b" ").endswith(b"}"):
        problems.append("JSON chunk must end with the document followed by space (0x20) padding only")
    try:
        gltf = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        problems.append(f"JSON chunk is not valid UTF-8 JSON ({exc})")
        return None, b""
    if not isinstance(gltf, dict):
        problems.append("JSON chunk is not a JSON object")
        return None, b""
    binary = b""
    if len(chunks) > 1:
        if chunks[1][0] != _CHUNK_BIN:
            problems.append(f"second chunk has type 0x{chunks[1][0]:08x}, expected BIN (0x004e4942)")
        else:
            binary = chunks[1][1]
    return gltf, binary


def _accessor_data(gltf: dict, binary: bytes, index: int) -> np.ndarray:
    """(count,) or (count, n) array of an accessor, with byteStride and sparse substitution applied
    (normalized integers as float32 in [0, 1] or [-1, 1]). Assumes the accessor fits its bufferView
    (check with `validate_glb`)."""
    acc = gltf["accessors"][index]
    dtype = _COMPONENTS[acc["componentType"]]
    n = _TYPE_SIZES[acc["type"]]
    count = acc["count"]
    if "bufferView" in acc:
        view = gltf["bufferViews"][acc["bufferView"]]
        start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
        stride = view.get("byteStride", dtype.itemsize * n)
        rows = np.ndarray((count, n), dtype=dtype, buffer=binary, offset=start, strides=(stride, dtype.itemsize))
        out = np.array(rows)
    else:
        out = np.zeros((count, n), dtype=dtype)
    sparse = acc.get("sparse")
    if sparse:
        idx = _view_array(gltf, binary, sparse["indices"], _COMPONENTS[sparse["indices"]["componentType"]],
                          sparse["count"])
        out[idx.astype(np.int64)] = _view_array(gltf, binary, sparse["values"], dtype,
                                                sparse["count"] * n).reshape(-1, n)
    if acc.get("normalized") and dtype.kind in "iu":
        out = np.maximum(out / np.float32(np.iinfo(dtype).max), np.float32(-1))
    return out[:, 0] if acc["type"] == "SCALAR" else out


def _view_array(gltf: dict, binary: bytes, ref: dict, dtype: np.dtype, count: int) -> np.ndarray:
    view = gltf["bufferViews"][ref["bufferView"]]
    start = view.get("byteOffset", 0) + ref.get("byteOffset", 0)
    return np.frombuffer(binary, dtype=dtype, count=count, offset=start)


def _image_bytes(gltf: dict, binary: bytes, image: dict) -> bytes:
    if "bufferView" in image:
        view = gltf["bufferViews"][image["bufferView"]]
        start = view.get("byteOffset", 0)
        return binary[start:start + view["byteLength"]]
    uri = image.get("uri", "")
    if uri.startswith("data:") and ";base64," in uri:
        return base64.b64decode(uri.split(",", 1)[1])
    raise ValueError(f"image refers to an external file {uri!r}")


# ---------------------------------------------------------------------------------------- validation

def validate_glb(path: str | Path) -> list[str]:
    """Structural checks of a GLB file; returns the problems found (empty list = valid).

    Checks the container (magic, version 2, lengths, 4-byte chunk alignment, space-padded JSON,
    zero-padded BIN), that every bufferView fits its buffer and every accessor (dense and sparse)
    fits its bufferView with its byteOffset aligned to the component size, POSITION accessors
    (also morph targets') carry correct min/max, normals are unit length, indices are below the
    vertex count, morph targets match POSITION's count and `weights` / `extras.targetNames`
    their number, every reference (mesh, material, texture, image, sampler, node) exists and images
    hold PNG or JPEG bytes. Not a replacement for the Khronos validator: extensions, animations,
    skins and cameras are not checked.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return [f"cannot read {path}: {exc}"]
    problems: list[str] = []
    gltf, binary = _parse_container(data, problems)
    if gltf is None:
        return problems
    try:
        _check_document(gltf, binary, problems)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        problems.append(f"malformed glTF document ({type(exc).__name__}: {exc})")
    return problems


def _check_document(gltf: dict, binary: bytes, problems: list[str]) -> None:
    if gltf.get("asset", {}).get("version") != "2.0":
        problems.append("asset.version must be '2.0'")
    buffer_sizes = _check_buffers(gltf, binary, problems)
    good_views = _check_buffer_views(gltf, buffer_sizes, problems)
    good_accessors = _check_accessors(gltf, binary, good_views, problems)
    for m, mesh in enumerate(gltf.get("meshes", [])):
        for p, prim in enumerate(mesh["primitives"]):
            _check_primitive(gltf, binary, good_accessors, f"mesh {m} primitive {p}", prim, problems)
        n_targets = {len(prim.get("targets", [])) for prim in mesh["primitives"]}
        if len(n_targets) > 1:
            problems.append(f"mesh {m}: primitives have different numbers of morph targets {sorted(n_targets)}")
        n = n_targets.pop() if n_targets else 0
        if "weights" in mesh and len(mesh["weights"]) != n:
            problems.append(f"mesh {m}: {len(mesh['weights'])} weights for {n} morph targets")
        names = mesh.get("extras", {}).get("targetNames")
        if names is not None and len(names) != n:
            problems.append(f"mesh {m}: {len(names)} extras.targetNames for {n} morph targets")
    _check_references(gltf, problems)
    for i, image in enumerate(gltf.get("images", [])):
        if "bufferView" in image and image["bufferView"] not in good_views:
            continue  # already reported
        mime = image.get("mimeType")
        try:
            head = _image_bytes(gltf, binary, image)[:8]
        except ValueError as exc:
            problems.append(f"image {i}: {exc}; only self-contained files are checked")
            continue
        kind = next((k for k, sig in _SIGNATURES.items() if head.startswith(sig)), None)
        if kind is None:
            problems.append(f"image {i}: bytes are neither PNG nor JPEG")
        elif "bufferView" in image and mime != kind:
            problems.append(f"image {i}: mimeType {mime!r} but the bytes are {kind}")


def _check_buffers(gltf: dict, binary: bytes, problems: list[str]) -> list[int]:
    sizes = []
    for i, buf in enumerate(gltf.get("buffers", [])):
        length = buf["byteLength"]
        if "uri" in buf:
            problems.append(f"buffer {i} refers to {buf['uri'][:40]!r}; only the GLB's own buffer is checked")
            sizes.append(-1)
            continue
        if i != 0:
            problems.append(f"buffer {i} has no uri; only buffer 0 may be the GLB BIN chunk")
            sizes.append(-1)
            continue
        if length > len(binary):
            problems.append(f"buffer 0 byteLength {length} > BIN chunk length {len(binary)}")
        elif len(binary) - length > 3:
            problems.append(f"BIN chunk is {len(binary)} bytes for a {length}-byte buffer (more than 3 bytes padding)")
        elif any(binary[length:]):
            problems.append("BIN chunk padding must be zero bytes")
        sizes.append(min(length, len(binary)))
    return sizes


def _check_buffer_views(gltf: dict, buffer_sizes: list[int], problems: list[str]) -> set[int]:
    good = set()
    for i, view in enumerate(gltf.get("bufferViews", [])):
        b = view["buffer"]
        end = view.get("byteOffset", 0) + view["byteLength"]
        stride = view.get("byteStride")
        if not 0 <= b < len(buffer_sizes):
            problems.append(f"bufferView {i}: buffer {b} does not exist")
        elif buffer_sizes[b] >= 0 and end > buffer_sizes[b]:
            problems.append(f"bufferView {i}: bytes [{view.get('byteOffset', 0)}, {end}) past the end of "
                            f"buffer {b} ({buffer_sizes[b]} bytes)")
        elif stride is not None and (stride % 4 or not 4 <= stride <= 252):
            problems.append(f"bufferView {i}: byteStride {stride} must be a multiple of 4 in [4, 252]")
        elif buffer_sizes[b] >= 0:
            good.add(i)
    return good


def _check_accessors(gltf: dict, binary: bytes, good_views: set[int], problems: list[str]) -> set[int]:
    """Indices of the accessors whose bytes are all in bounds (so their data can be read)."""
    good = set()
    views = gltf.get("bufferViews", [])
    for i, acc in enumerate(gltf.get("accessors", [])):
        where = f"accessor {i}"
        ctype, kind, count = acc.get("componentType"), acc.get("type"), acc.get("count", 0)
        if ctype not in _COMPONENTS or kind not in _TYPE_SIZES:
            problems.append(f"{where}: unknown componentType {ctype} or type {kind!r}")
            continue
        if not isinstance(count, int) or count < 1:
            problems.append(f"{where}: count must be >= 1, got {count}")
            continue
        size = _COMPONENTS[ctype].itemsize
        n = _TYPE_SIZES[kind]
        ok = True
        for key in ("min", "max"):
            if key in acc and len(acc[key]) != n:
                problems.append(f"{where}: {key} has {len(acc[key])} values for type {kind}")
        if "bufferView" in acc:
            ok = _fits(acc, acc["bufferView"], count, size, n, good_views, views, where, problems)
        elif "byteOffset" in acc:
            problems.append(f"{where}: byteOffset without a bufferView")
        sparse = acc.get("sparse")
        if sparse:
            ok = _check_sparse(gltf, binary, sparse, count, size, n, good_views, where, problems) and ok
        if ok:
            good.add(i)
    return good


def _fits(ref: dict, v: int, count: int, size: int, n: int, good_views: set[int], views: list,
          where: str, problems: list[str]) -> bool:
    """Whether `count` elements of n components of `size` bytes at ref.byteOffset fit bufferView v."""
    if not 0 <= v < len(views):
        problems.append(f"{where}: bufferView {v} does not exist")
        return False
    if v not in good_views:
        return False  # the view's own problem is already reported
    view = views[v]
    offset = ref.get("byteOffset", 0)
    stride = view.get("byteStride", size * n)
    if offset % size or (view.get("byteOffset", 0) + offset) % size:
        problems.append(f"{where}: byteOffset {offset} (bufferView at {view.get('byteOffset', 0)}) is not a "
                        f"multiple of the component size {size}")
        return False
    need = offset + stride * (count - 1) + size * n
    if need > view["byteLength"]:
        problems.append(f"{where}: {count} elements need {need} bytes, past the end of bufferView {v} "
                        f"({view['byteLength']} bytes)")
        return False
    return True


def _check_sparse(gltf: dict, binary: bytes, sparse: dict, count: int, size: int, n: int, good_views: set[int],
                  where: str, problems: list[str]) -> bool:
    views = gltf.get("bufferViews", [])
    k = sparse.get("count", 0)
    if not 1 <= k <= count:
        problems.append(f"{where}: sparse.count {k} must be in [1, {count}]")
        return False
    ind, val = sparse["indices"], sparse["values"]
    if ind.get("componentType") not in _INDEX_COMPONENTS:
        problems.append(f"{where}: sparse indices componentType {ind.get('componentType')} is not unsigned")
        return False
    isize = _COMPONENTS[ind["componentType"]].itemsize
    ok = _fits(ind, ind["bufferView"], k, isize, 1, good_views, views, f"{where} sparse indices", problems)
    ok = _fits(val, val["bufferView"], k, size, n, good_views, views, f"{where} sparse values", problems) and ok
    if ok:
        idx = _view_array(gltf, binary, ind, _COMPONENTS[ind["componentType"]], k).astype(np.int64)
        if (np.diff(idx) <= 0).any() or idx[-1] >= count:
            problems.append(f"{where}: sparse indices must be strictly increasing and below {count}")
            return False
    return ok


def _check_primitive(gltf: dict, binary: bytes, good: set[int], where: str, prim: dict, problems: list[str]) -> None:
    accessors = gltf.get("accessors", [])
    attrs = prim["attributes"]
    if "POSITION" not in attrs:
        problems.append(f"{where}: no POSITION attribute")
        return
    for sem, a in attrs.items():
        if not 0 <= a < len(accessors):
            problems.append(f"{where}: attribute {sem} refers to missing accessor {a}")
            return
    vcount = accessors[attrs["POSITION"]]["count"]
    for sem, a in attrs.items():
        if accessors[a]["count"] != vcount:
            problems.append(f"{where}: {sem} has {accessors[a]['count']} elements, POSITION has {vcount}")
    _check_vec3_float(gltf, binary, good, attrs["POSITION"], f"{where} POSITION", problems, min_max=True)
    if "NORMAL" in attrs:
        _check_vec3_float(gltf, binary, good, attrs["NORMAL"], f"{where} NORMAL", problems, unit=True)
    if "TEXCOORD_0" in attrs and accessors[attrs["TEXCOORD_0"]]["type"] != "VEC2":
        problems.append(f"{where}: TEXCOORD_0 must be VEC2")
    if prim.get("mode", _TRIANGLES) == _TRIANGLES and "indices" in prim:
        _check_indices(gltf, binary, good, prim["indices"], vcount, where, problems)
    for t, target in enumerate(prim.get("targets", [])):
        for sem, a in target.items():
            if not 0 <= a < len(accessors):
                problems.append(f"{where} target {t}: {sem} refers to missing accessor {a}")
                continue
            if accessors[a]["count"] != vcount:
                problems.append(f"{where} target {t}: {sem} has {accessors[a]['count']} elements, "
                                f"POSITION has {vcount}")
            if sem == "POSITION":
                _check_vec3_float(gltf, binary, good, a, f"{where} target {t} POSITION", problems, min_max=True)
    material = prim.get("material")
    if material is not None and not 0 <= material < len(gltf.get("materials", [])):
        problems.append(f"{where}: material {material} does not exist")


def _check_vec3_float(gltf: dict, binary: bytes, good: set[int], a: int, where: str, problems: list[str],
                      min_max: bool = False, unit: bool = False) -> None:
    acc = gltf["accessors"][a]
    if acc["componentType"] != 5126 or acc["type"] != "VEC3":
        problems.append(f"{where}: must be float VEC3")
        return
    if min_max and ("min" not in acc or "max" not in acc):
        problems.append(f"{where}: accessor {a} has no min/max (required for POSITION)")
        min_max = False
    if a not in good:
        return
    data = _accessor_data(gltf, binary, a).astype(np.float64)
    if not np.isfinite(data).all():
        problems.append(f"{where}: NaN or inf values")
        return
    if min_max:
        for key, actual in (("min", data.min(axis=0)), ("max", data.max(axis=0))):
            declared = np.asarray(acc[key], dtype=np.float64)
            if declared.shape != actual.shape:
                continue  # reported with the accessor
            if (np.abs(declared - actual) > 1e-6 * np.maximum(1, np.abs(actual))).any():
                problems.append(f"{where}: declared {key} {declared.tolist()} != actual {actual.tolist()}")
    if unit:
        bad = np.abs(np.linalg.norm(data, axis=1) - 1) > 5e-3
        if bad.any():
            problems.append(f"{where}: {int(bad.sum())} normals are not unit length")


def _check_indices(gltf: dict, binary: bytes, good: set[int], a: int, vcount: int, where: str,
                   problems: list[str]) -> None:
    accessors = gltf.get("accessors", [])
    if not 0 <= a < len(accessors):
        problems.append(f"{where}: indices accessor {a} does not exist")
        return
    acc = accessors[a]
    if acc["componentType"] not in _INDEX_COMPONENTS or acc["type"] != "SCALAR":
        problems.append(f"{where}: indices must be unsigned SCALAR")
        return
    if acc["count"] % 3:
        problems.append(f"{where}: {acc['count']} indices is not a multiple of 3 for triangles")
    if a in good:
        top = int(_accessor_data(gltf, binary, a).max())
        if top >= vcount:
            problems.append(f"{where}: index {top} out of range for {vcount} vertices")


def _check_references(gltf: dict, problems: list[str]) -> None:
    def exists(kind: str, index, where: str) -> None:
        if not isinstance(index, int) or not 0 <= index < len(gltf.get(kind, [])):
            problems.append(f"{where}: {kind[:-1]} {index} does not exist")

    for i, image in enumerate(gltf.get("images", [])):
        if "bufferView" in image:
            exists("bufferViews", image["bufferView"], f"image {i}")
            if "mimeType" not in image:
                problems.append(f"image {i}: a bufferView image needs a mimeType")
    for i, tex in enumerate(gltf.get("textures", [])):
        if "source" in tex:
            exists("images", tex["source"], f"texture {i}")
        if "sampler" in tex:
            exists("samplers", tex["sampler"], f"texture {i}")
    for i, mat in enumerate(gltf.get("materials", [])):
        for ref in (mat.get("pbrMetallicRoughness", {}).get("baseColorTexture"), mat.get("normalTexture")):
            if ref is not None:
                exists("textures", ref.get("index"), f"material {i}")
    for i, node in enumerate(gltf.get("nodes", [])):
        if "mesh" in node:
            exists("meshes", node["mesh"], f"node {i}")
        for child in node.get("children", []):
            exists("nodes", child, f"node {i}")
    for i, scene in enumerate(gltf.get("scenes", [])):
        for n in scene.get("nodes", []):
            exists("nodes", n, f"scene {i}")
    if "scene" in gltf:
        exists("scenes", gltf["scene"], "document")
