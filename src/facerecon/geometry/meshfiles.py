"""The one home of mesh file readers: Wavefront OBJ (positions, UVs, polygons, material groups) and
PLY (ASCII and binary of either byte order; polygons fan-split; vertex colours). Writers live in `io`.
Every failure is a `ModelError` naming the file; callers that read user input re-raise their own type."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError


@dataclass
class ObjMesh:
    """Arrays read from an OBJ file; polygons are fan-split into triangles (a, b, c), (a, c, d), ...

    Attributes:
        vertices: (V, 3) float64. uv: (T, 2) float64 (may be empty).
        triangles: (F, 3) int64, 0-based. uv_triangles: (F, 3) int64 or None when faces carry no UVs.
        triangle_material: (F,) int64 index into `materials`, -1 where no `usemtl` was active.
        materials: material names in order of first use.
    """

    vertices: np.ndarray
    uv: np.ndarray
    triangles: np.ndarray
    uv_triangles: np.ndarray | None
    triangle_material: np.ndarray
    materials: list[str]


def read_obj(path: str | Path, positions_only: bool = False, allow_empty: bool = False) -> ObjMesh:
    """Read an OBJ file; raise `ModelError` naming the file on anything malformed.

    `positions_only=True` skips faces and UVs (for blendshape targets that share a topology);
    `allow_empty=True` returns a mesh without vertices instead of raising (the caller decides).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError:
        raise ModelError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not a readable text OBJ file ({exc})") from None
    verts, uvs, tris, uv_tris, tri_mat, materials = [], [], [], [], [], []
    current = -1
    has_uv = True
    try:
        for line in text.splitlines():
            if line.startswith("v "):
                verts.append(line[2:].split()[:3])
            elif positions_only:
                continue
            elif line.startswith("vt "):
                uvs.append(line[3:].split()[:2])
            elif line.startswith("f "):
                corners = [c.split("/") for c in line[2:].split()]
                if len(corners) < 3:
                    raise ValueError(f"face with {len(corners)} corners")
                vi = [int(c[0]) for c in corners]
                ti = [int(c[1]) if len(c) > 1 and c[1] else 0 for c in corners]
                if 0 in ti:
                    has_uv = False
                for k in range(1, len(vi) - 1):
                    tris.append((vi[0], vi[k], vi[k + 1]))
                    uv_tris.append((ti[0], ti[k], ti[k + 1]))
                    tri_mat.append(current)
            elif line.startswith("usemtl "):
                name = line[7:].strip()
                if name not in materials:
                    materials.append(name)
                current = materials.index(name)
        vertices = np.asarray(verts, dtype=np.float64).reshape(-1, 3)
        uv = np.asarray(uvs, dtype=np.float64).reshape(-1, 2)
    except ValueError as exc:
        raise ModelError(f"{path}: malformed OBJ ({exc})") from None
    if len(vertices) == 0 and not allow_empty:
        raise ModelError(f"{path}: no vertices (empty or not an OBJ file)")
    if not np.isfinite(vertices).all():
        raise ModelError(f"{path}: vertex coordinates contain NaN or inf")
    triangles = _to_zero_based(np.asarray(tris, dtype=np.int64).reshape(-1, 3), len(vertices), path, "vertex")
    uv_triangles = None
    if tris and has_uv:
        uv_triangles = _to_zero_based(np.asarray(uv_tris, dtype=np.int64).reshape(-1, 3), len(uv), path, "uv")
    return ObjMesh(vertices, uv, triangles, uv_triangles, np.asarray(tri_mat, dtype=np.int64), materials)


def _to_zero_based(idx: np.ndarray, count: int, path: Path, what: str) -> np.ndarray:
    # OBJ indices are 1-based; negative ones count back from the end of the list read so far
    # (we resolve them against the full list, which is what exporters mean in practice).
    out = np.where(idx > 0, idx - 1, count + idx)
    if out.size and (out.min() < 0 or out.max() >= count):
        raise ModelError(f"{path}: {what} index out of range (the file may be truncated)")
    return out


def _fan(polygons: list[list[int]]) -> np.ndarray:
    tris = [(poly[0], poly[k], poly[k + 1]) for poly in polygons for k in range(1, len(poly) - 1)]
    return np.array(tris, dtype=np.int64).reshape(-1, 3)


_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


def read_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read a PLY mesh or point cloud.

    Returns:
        (V, 3) float64 positions, (F, 3) int64 triangles ((0, 3) for a point cloud), and (V, 3) uint8
        colours or None. Raises `ModelError` naming the file on anything it cannot read.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc})") from None
    if not data.startswith(b"ply") or b"end_header" not in data:
        raise ModelError(f"{path}: not a PLY file (no 'ply' magic or 'end_header')")
    try:
        return _read_ply(data)
    except (ValueError, IndexError, KeyError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: malformed or truncated PLY ({exc})") from None


def _read_ply(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise ValueError("no 'ply' magic or no 'end_header'")
    body_start = data.index(b"\n", end) + 1
    header = data[:end].decode("ascii").splitlines()
    fmt, elements = None, []  # elements: [name, count, [(prop name, type, list count type | None)]]
    for line in header[1:]:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format":
            fmt = words[1]
        elif words[0] == "element":
            elements.append([words[1], int(words[2]), []])
        elif words[0] == "property":
            if words[1] == "list":
                elements[-1][2].append((words[4], _PLY_TYPES[words[3]], _PLY_TYPES[words[2]]))
            else:
                elements[-1][2].append((words[2], _PLY_TYPES[words[1]], None))
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise ValueError(f"unknown PLY format {fmt!r}")
    reader = _PlyAscii(data[body_start:]) if fmt == "ascii" else _PlyBinary(
        data, body_start, "<" if fmt == "binary_little_endian" else ">"
    )
    vertices, polygons, colors = None, [], None
    for name, count, props in elements:
        rows = reader.read(count, props)
        if name == "vertex":
            vertices = np.stack([np.asarray(rows[k], dtype=np.float64) for k in "xyz"], axis=1)
            if all(c in rows for c in ("red", "green", "blue")):
                colors = np.stack([np.asarray(rows[c]) for c in ("red", "green", "blue")], axis=1).astype(np.uint8)
        elif name == "face":
            key = next((p[0] for p in props if p[0] in ("vertex_indices", "vertex_index")), None)
            if key is None:
                raise ValueError("the face element has no vertex_indices list")
            polygons = rows[key]
    if vertices is None:
        raise ValueError("no vertex element")
    if isinstance(polygons, np.ndarray):  # all faces the same size: already an array
        if polygons.shape[1] < 3:
            raise ValueError("faces with fewer than 3 vertices")
        k = np.arange(1, polygons.shape[1] - 1)
        tris = np.stack([np.repeat(polygons[:, :1], len(k), 1), polygons[:, k], polygons[:, k + 1]], -1)
        return vertices, tris.reshape(-1, 3).astype(np.int64), colors
    return vertices, _fan(polygons), colors


class _PlyAscii:
    def __init__(self, body: bytes):
        self._tokens = body.split()
        self._pos = 0

    def read(self, count: int, props) -> dict:
        if all(p[2] is None for p in props):
            n = count * len(props)
            table = np.array(self._tokens[self._pos : self._pos + n], dtype=np.float64)
            if table.size != n:
                raise ValueError("the file ends before its last element")
            self._pos += n
            table = table.reshape(count, len(props))
            # values as the header declares them (an ASCII float property is float32 unless it says double)
            return {p[0]: table[:, j].astype(p[1]) for j, p in enumerate(props)}
        rows: dict = {p[0]: [] for p in props}
        for _ in range(count):
            for name, _, list_type in props:
                if list_type is None:
                    rows[name].append(float(self._tokens[self._pos]))
                    self._pos += 1
                else:
                    n = int(self._tokens[self._pos])
                    rows[name].append([int(t) for t in self._tokens[self._pos + 1 : self._pos + 1 + n]])
                    self._pos += 1 + n
        return rows


class _PlyBinary:
    def __init__(self, data: bytes, offset: int, order: str):
        self._data, self._pos, self._order = data, offset, order

    def read(self, count: int, props) -> dict:
        o = self._order
        if count == 0:
            return {p[0]: [] for p in props}
        if all(p[2] is None for p in props):
            dtype = np.dtype([(p[0], o + p[1]) for p in props])
            table = np.frombuffer(self._data, dtype, count, self._pos)
            self._pos += count * dtype.itemsize
            return {p[0]: table[p[0]] for p in props}
        # Lists: assume every row has the first row's list lengths (true of triangle or quad
        # meshes) and check it; fall back to reading row by row.
        lengths, pos = [], self._pos
        for name, kind, list_type in props:
            if list_type is None:
                pos += np.dtype(kind).itemsize
            else:
                lengths.append(int(np.frombuffer(self._data, o + list_type, 1, pos)[0]))
                pos += np.dtype(list_type).itemsize + lengths[-1] * np.dtype(kind).itemsize
        fields, it = [], iter(lengths)
        for name, kind, list_type in props:
            if list_type is None:
                fields.append((name, o + kind))
            else:
                fields += [(name + "#n", o + list_type), (name, o + kind, (next(it),))]
        dtype = np.dtype(fields)
        if self._pos + count * dtype.itemsize <= len(self._data):
            table = np.frombuffer(self._data, dtype, count, self._pos)
            if all((table[p[0] + "#n"] == n).all() for p, n in zip([p for p in props if p[2]], lengths)):
                self._pos += count * dtype.itemsize
                return {p[0]: table[p[0]] for p in props}
        rows: dict = {p[0]: [] for p in props}
        for _ in range(count):
            for name, kind, list_type in props:
                if list_type is None:
                    rows[name].append(np.frombuffer(self._data, o + kind, 1, self._pos)[0])
                    self._pos += np.dtype(kind).itemsize
                else:
                    n = int(np.frombuffer(self._data, o + list_type, 1, self._pos)[0])
                    self._pos += np.dtype(list_type).itemsize
                    rows[name].append(np.frombuffer(self._data, o + kind, n, self._pos).tolist())
                    self._pos += n * np.dtype(kind).itemsize
        return rows


# ------------------------------------------------------------------------------------ landmarks
