"""Writing triangle meshes as Wavefront OBJ (+ MTL) and PLY, and reading them back.

Units and frames follow docs/conventions.md: positions are written in **millimetres**, +y up,
+z toward the camera. UVs use the OBJ convention (v = 0 at the bottom of the texture image).
Counter-clockwise triangles face outward.

Numbers are formatted in bulk (one `%` operation per block, not one Python call per line), so a
27k-vertex head writes in a few tens of milliseconds.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import ModelError, UsageError

# Digits after the point: 1e-6 mm for positions, well below float32 resolution at face scale.
DECIMALS = 6

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
# Trailing zeros of "%.6f" numbers, e.g. "12.500000" -> "12.5", "3.000000" -> "3".
_TRAILING_ZEROS = re.compile(r"\.?0+(?=[ \n])")


def as_array(x, dtype, shape_tail: tuple[int, ...], what: str) -> np.ndarray:
    """An array or tensor as a numpy array of `dtype` (no copy when it already is one), checked to be
    (N, *shape_tail), finite (floats) or integer (indices).

    Accepts numpy arrays, sequences and torch tensors (duck-typed, so this module needs no torch).
    """
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1 + len(shape_tail) or tuple(arr.shape[1:]) != shape_tail:
        want = ", ".join(["N", *map(str, shape_tail)])
        raise UsageError(f"{what} must have shape ({want}), got {tuple(arr.shape)}")
    if np.issubdtype(np.dtype(dtype), np.integer):
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise UsageError(f"{what} must be integer indices, got dtype {arr.dtype}")
    elif not np.isfinite(arr).all():
        raise UsageError(f"{what} contains NaN or inf values")
    return arr.astype(dtype, copy=False)


def check_indices(indices: np.ndarray, count: int, what: str) -> None:
    """Raise `UsageError` unless every index is in [0, count)."""
    if indices.size and (indices.min() < 0 or indices.max() >= count):
        raise UsageError(f"{what} indices must be in [0, {count}), got [{indices.min()}, {indices.max()}]")


def mesh_arrays(vertices, triangles, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Checked (V, 3) `dtype` vertices and (F, 3) int64 triangles indexing them."""
    verts = as_array(vertices, dtype, (3,), "vertices")
    tris = as_array(triangles, np.int64, (3,), "triangles")
    check_indices(tris, len(verts), "triangle")
    return verts, tris


def uv_arrays(uv, uv_triangles, triangles: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Checked (T, 2) float64 UVs and (F, 3) int64 UV triangles matching `triangles`, or (None, None)."""
    if (uv is None) != (uv_triangles is None):
        raise UsageError("uv and uv_triangles must be given together")
    if uv is None:
        return None, None
    uvs = as_array(uv, np.float64, (2,), "uv")
    uv_tris = as_array(uv_triangles, np.int64, (3,), "uv_triangles")
    if uv_tris.shape != triangles.shape:
        raise UsageError(f"uv_triangles {uv_tris.shape} must match triangles {triangles.shape}")
    check_indices(uv_tris, len(uvs), "uv_triangles")
    return uvs, uv_tris


def per_vertex(values, count: int, what: str) -> np.ndarray:
    """Checked (count, 3) float64 per-vertex values (normals, colours, offsets)."""
    arr = as_array(values, np.float64, (3,), what)
    if len(arr) != count:
        raise UsageError(f"{what} must be one per vertex ({count}), got {len(arr)}")
    return arr


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V, 3), (F, 3) -> (V, 3) unit normals, the area-weighted mean of the adjacent faces' normals
    (counter-clockwise = outward). A vertex in no (non-degenerate) triangle gets +z."""
    v = np.asarray(vertices, dtype=np.float64)
    tri = np.asarray(triangles, dtype=np.int64)
    fn = np.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]])
    idx = tri.T.reshape(-1)
    summed = np.stack([np.bincount(idx, np.tile(fn[:, k], 3), minlength=len(v)) for k in range(3)], axis=1)
    return unit_rows(summed)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """(N, 3) rows scaled to unit length; (near-)zero rows become +z."""
    length = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.where(length > 1e-12, vectors / np.maximum(length, 1e-300), np.array([0.0, 0.0, 1.0]))


def _format_rows(prefix: str, values: np.ndarray) -> str:
    """Lines "prefix a b c\\n" for the rows of a float array, compact (trailing zeros removed)."""
    if len(values) == 0:
        return ""
    cols = values.shape[1]
    line = prefix + " " + " ".join([f"%.{DECIMALS}f"] * cols) + "\n"
    text = (line * len(values)) % tuple(np.asarray(values, dtype=np.float64).ravel().tolist())
    return _TRAILING_ZEROS.sub("", text)


def write_obj(path: str | Path, vertices, triangles, uv=None, uv_triangles=None, normals=None,
              texture_png: str | Path | None = None, material_name: str = "face") -> Path:
    """Write a Wavefront OBJ (and, with a texture, an MTL beside it).

    Args:
        path: the .obj file to write.
        vertices: (V, 3) positions in mm.
        triangles: (F, 3) 0-based vertex indices, counter-clockwise = outward.
        uv: (T, 2) texture coordinates (OBJ convention, v = 0 at the image bottom) or None.
        uv_triangles: (F, 3) indices into `uv`, given with `uv`. A separate UV index keeps UV seams:
            a vertex may have a different UV in each triangle that uses it.
        normals: (V, 3) per-vertex normals (indexed like the vertices) or None for none.
        texture_png: the texture image, written into `<stem>.mtl` as `map_Kd`: an absolute path is
            made relative to the OBJ's folder, a relative one is written as given (viewers read it
            relative to the MTL). The image itself is not copied.
        material_name: the MTL material name.

    Returns:
        The path written.
    """
    path = Path(path)
    verts, tris = mesh_arrays(vertices, triangles)
    uvs, uv_tris = uv_arrays(uv, uv_triangles, tris)
    blocks = ["# facerecon OBJ, units: millimetres, +y up, +z toward the camera\n"]
    if texture_png is not None:
        blocks.append(f"mtllib {path.stem}.mtl\n")
    blocks.append(_format_rows("v", verts))
    columns = [tris + 1]
    if uvs is not None:
        blocks.append(_format_rows("vt", uvs))
        columns.append(uv_tris + 1)
    if normals is not None:
        blocks.append(_format_rows("vn", per_vertex(normals, len(verts), "normals")))
        columns.append(tris + 1)
    if texture_png is not None:
        blocks.append(f"usemtl {material_name}\n")
    corner = {1: "%d", 2: "%d/%d", 3: "%d/%d/%d"}[len(columns)]
    if uvs is None and normals is not None:
        corner = "%d//%d"
    per_face = np.stack(columns, axis=2).reshape(len(tris), -1)  # (F, 3 * k): corner-major
    line = "f " + " ".join([corner] * 3) + "\n"
    blocks.append((line * len(tris)) % tuple(per_face.ravel().tolist()))
    path.write_text("".join(blocks), encoding="utf-8")
    if texture_png is not None:
        _write_mtl(path.with_suffix(".mtl"), material_name, Path(texture_png), path.parent)
    return path


def _write_mtl(path: Path, material_name: str, texture: Path, folder: Path) -> None:
    ref = texture if not texture.is_absolute() else Path(os.path.relpath(texture, folder.resolve()))
    path.write_text(
        f"# facerecon material\nnewmtl {material_name}\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\n"
        f"map_Kd {ref.as_posix()}\n", encoding="utf-8")


def read_obj_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float64 positions and (F, 3) int64 triangles of an OBJ file; `ModelError` if unreadable.
    (`facerecon.models.obj_reader.read_obj` also returns UVs and materials.)"""
    # imported here: `facerecon.models` pulls in torch, which writing files does not need
    from ..models.obj_reader import read_obj

    mesh = read_obj(path)
    return mesh.vertices, mesh.triangles


def write_ply(path: str | Path, vertices, triangles, colors=None, binary: bool = True) -> Path:
    """Write a PLY mesh: float32 x y z in mm, optional uchar red green blue, int triangle lists.

    Args:
        vertices: (V, 3) positions in mm.
        triangles: (F, 3) 0-based vertex indices.
        colors: (V, 3) float RGB in [0, 1] (clipped, rounded to uchar) or None.
        binary: binary little-endian (default) or ASCII.

    Returns:
        The path written.
    """
    path = Path(path)
    verts, tris = mesh_arrays(vertices, triangles, np.float32)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colors is not None:
        cols = per_vertex(colors, len(verts), "colors")
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vdata = np.empty(len(verts), dtype=fields)
    for k, name in enumerate("xyz"):
        vdata[name] = verts[:, k]
    if colors is not None:
        rgb = np.rint(np.clip(cols, 0.0, 1.0) * 255).astype(np.uint8)
        for k, name in enumerate(("red", "green", "blue")):
            vdata[name] = rgb[:, k]
    props = "".join(f"property {'float' if t == '<f4' else 'uchar'} {n}\n" for n, t in fields)
    header = (f"ply\nformat {'binary_little_endian' if binary else 'ascii'} 1.0\n"
              "comment facerecon PLY, units: millimetres, +y up, +z toward the camera\n"
              f"element vertex {len(verts)}\n{props}element face {len(tris)}\n"
              "property list uchar int vertex_indices\nend_header\n")
    with open(path, "wb") as fh:
        fh.write(header.encode("ascii"))
        if binary:
            fdata = np.empty(len(tris), dtype=[("n", "u1"), ("i", "<i4", (3,))])
            fdata["n"] = 3
            fdata["i"] = tris
            fh.write(vdata.tobytes())
            fh.write(fdata.tobytes())
        else:
            # repr of a float32 value (via float64) is exact; %.9g round-trips float32.
            vfmt = " ".join(["%.9g"] * 3 + (["%d"] * 3 if colors is not None else [])) + "\n"
            rows = np.column_stack([verts.astype(np.float64)] + ([rgb] if colors is not None else []))
            fh.write(((vfmt * len(rows)) % tuple(rows.ravel().tolist())).encode("ascii"))
            fh.write((("3 %d %d %d\n" * len(tris)) % tuple(tris.ravel().tolist())).encode("ascii"))
    return path


def read_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read a triangle PLY (binary little-endian or ASCII) as written by `write_ply`.

    Returns:
        (V, 3) float positions, (F, 3) int64 triangles, and (V, 3) uint8 colours or None.
        Raises `ModelError` naming the file on anything it cannot read.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc})") from None
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise ModelError(f"{path}: not a PLY file (no 'ply' magic or 'end_header')")
    fmt, elements = None, []
    for line in data[:end].decode("ascii", "replace").splitlines()[1:]:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format":
            fmt = words[1]
        elif words[0] == "element":
            elements.append((words[1], int(words[2]), []))
        elif words[0] == "property" and elements:
            elements[-1][2].append(words[1:])
    if fmt not in ("binary_little_endian", "ascii"):
        raise ModelError(f"{path}: PLY format {fmt!r} not supported (binary_little_endian or ascii)")
    body = data[end + len(b"end_header\n"):]
    try:
        return _read_ply_body(body, fmt, elements)
    except (ValueError, KeyError, IndexError) as exc:
        raise ModelError(f"{path}: malformed or truncated PLY ({exc})") from None


def _read_ply_body(body: bytes, fmt: str, elements: list) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    vertex = face = None
    offset = 0
    tokens = body.split() if fmt == "ascii" else None
    for name, count, props in elements:
        if props and props[0][0] == "list":
            count_t, index_t = _PLY_TYPES[props[0][1]], _PLY_TYPES[props[0][2]]
            if fmt == "ascii":
                rows = np.asarray(tokens[offset:offset + 4 * count], dtype=np.int64).reshape(count, 4)
                offset += 4 * count
                counts, idx = rows[:, 0], rows[:, 1:]
            else:
                dt = np.dtype([("n", "<" + count_t), ("i", "<" + index_t, (3,))])
                arr = np.frombuffer(body, dtype=dt, count=count, offset=offset)
                offset += dt.itemsize * count
                counts, idx = arr["n"], arr["i"]
            if (counts != 3).any():
                raise ValueError("only triangle faces are supported")
            if name == "face":
                face = idx.astype(np.int64)
            continue
        dt = np.dtype([(p[1], "<" + _PLY_TYPES[p[0]]) for p in props])
        if fmt == "ascii":
            n = len(props) * count
            flat = np.asarray(tokens[offset:offset + n], dtype=np.float64)
            if len(flat) != n:
                raise ValueError(f"element {name!r} is truncated")
            offset += n
            arr = np.empty(count, dtype=dt)
            for k, p in enumerate(props):
                arr[p[1]] = flat[k::len(props)]
        else:
            arr = np.frombuffer(body, dtype=dt, count=count, offset=offset)
            offset += dt.itemsize * count
        if name == "vertex":
            vertex = arr
    if vertex is None or face is None:
        raise ValueError("needs a vertex and a face element")
    verts = np.stack([vertex[c] for c in "xyz"], axis=1)
    colors = None
    if "red" in vertex.dtype.names:
        colors = np.stack([vertex[c] for c in ("red", "green", "blue")], axis=1).astype(np.uint8)
    return verts, face, colors
