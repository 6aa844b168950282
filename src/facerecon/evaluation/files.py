"""Readers (and the one writer) for the files of evaluation data sets, in numpy only.

- Meshes: Wavefront OBJ and PLY (ascii, binary little and big endian); polygons are split into
  triangles as fans; only positions and faces are read.
- 3D landmarks: `.npy`, whitespace/comma separated `.txt`, MeshLab picked points `.pp` (NoW scans).
- 2D landmarks: the iBUG `.pts` format (300W, Multi-PIE 68 points). Its coordinates are stored and
  returned as they are; 300W counts pixels from 1 (the centre of the top-left pixel is (1, 1)) while
  facerecon puts that centre at (0.5, 0.5) (docs/conventions.md): pass `one_based=True` to convert.

Everything unreadable raises ImageError (exit code 4) with the path and what is wrong.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..errors import ImageError, UsageError

MESH_SUFFIXES = (".obj", ".ply")


# --------------------------------------------------------------------------------------- meshes


def read_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) float64 and triangles (F, 3) int64 of an OBJ or PLY file.

    A file with vertices but no faces (a point cloud) returns (0, 3) triangles.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"mesh file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".obj":
            vertices, triangles = _read_obj(path)
        elif suffix == ".ply":
            vertices, triangles = _read_ply(path)
        else:
            raise ImageError(f"{path}: unsupported mesh format {suffix!r}; use .obj or .ply")
    except (ValueError, IndexError, KeyError, UnicodeDecodeError, OSError) as err:
        raise ImageError(f"{path}: not a readable {suffix[1:].upper()} mesh ({err})") from None
    if len(vertices) == 0:
        raise ImageError(f"{path}: the mesh has no vertices")
    if not np.isfinite(vertices).all():
        raise ImageError(f"{path}: the mesh has NaN or infinite vertex coordinates")
    if len(triangles) and (triangles.min() < 0 or triangles.max() >= len(vertices)):
        raise ImageError(f"{path}: a face refers to a vertex that does not exist")
    return vertices, triangles


def _fan(polygons: list[list[int]]) -> np.ndarray:
    tris = [(poly[0], poly[k], poly[k + 1]) for poly in polygons for k in range(1, len(poly) - 1)]
    return np.array(tris, dtype=np.int64).reshape(-1, 3)


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    vertices: list[list[float]] = []
    polygons: list[list[int]] = []
    with open(path, encoding="utf-8", errors="strict") as fh:
        for line in fh:
            if line.startswith("v "):
                vertices.append([float(x) for x in line.split()[1:4]])
                if len(vertices[-1]) != 3:
                    raise ValueError(f"vertex line with fewer than 3 coordinates: {line.strip()!r}")
            elif line.startswith("f "):
                poly = []
                for token in line.split()[1:]:
                    k = int(token.split("/", 1)[0])
                    # OBJ counts from 1; negative indices count back from the latest vertex.
                    poly.append(k - 1 if k > 0 else len(vertices) + k)
                if len(poly) < 3:
                    raise ValueError(f"face with fewer than 3 vertices: {line.strip()!r}")
                polygons.append(poly)
    return np.array(vertices, dtype=np.float64).reshape(-1, 3), _fan(polygons)


_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


def _read_ply(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = path.read_bytes()
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
    vertices, polygons = None, []
    for name, count, props in elements:
        rows = reader.read(count, props)
        if name == "vertex":
            vertices = np.stack([np.asarray(rows[k], dtype=np.float64) for k in "xyz"], axis=1)
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
        return vertices, tris.reshape(-1, 3).astype(np.int64)
    return vertices, _fan(polygons)


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
            return {p[0]: table[:, j] for j, p in enumerate(props)}
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


def read_landmarks(path: str | os.PathLike, n_points: int | None = None) -> np.ndarray:
    """3D landmarks (K, 3) float64 from a .npy, .txt (one point a line) or MeshLab .pp file.

    Args:
        path: the file.
        n_points: the number of points the file must hold (7 for NoW), or None for any.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"landmark file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            points = np.load(path, allow_pickle=False)
        elif suffix == ".txt":
            with open(path, encoding="utf-8") as fh:
                points = np.array(
                    [[float(x) for x in line.replace(",", " ").split()] for line in fh if line.strip()]
                )
        elif suffix == ".pp":
            points = np.array(
                [[float(p.attrib[k]) for k in "xyz"] for p in ET.parse(path).getroot().iter("point")]
            )
        else:
            raise ImageError(f"{path}: unsupported landmark format {suffix!r}; use .npy, .txt or .pp")
    except (ValueError, KeyError, OSError, ET.ParseError, UnicodeDecodeError) as err:
        raise ImageError(f"{path}: not a readable landmark file ({err})") from None
    points = np.asarray(points, dtype=np.float64)
    if points.ndim == 1 and points.size % 3 == 0:
        points = points.reshape(-1, 3)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ImageError(f"{path}: expected one 'x y z' point a row, got an array of shape {points.shape}")
    if n_points is not None and len(points) != n_points:
        raise ImageError(f"{path}: expected {n_points} landmarks, found {len(points)}")
    if not np.isfinite(points).all():
        raise ImageError(f"{path}: landmarks contain NaN or inf")
    return points


def read_pts(path: str | os.PathLike, one_based: bool = False) -> np.ndarray:
    """2D points (N, 2) float64 of an iBUG .pts file ('version: 1', 'n_points: N', '{', 'x y'..., '}').

    Args:
        path: the file.
        one_based: the file counts pixels from 1 (300W, iBUG): subtract 0.5 to return facerecon
            pixel coordinates (top-left pixel centre at (0.5, 0.5)).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"landmark file not found: {path}")
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        lines = [line for line in lines if line]
        header = {}
        k = 0
        while k < len(lines) and lines[k] != "{":
            key, _, value = lines[k].partition(":")
            header[key.strip()] = value.strip()
            k += 1
        n = int(header["n_points"])
        if k + n + 1 >= len(lines) or lines[k + n + 1] != "}":
            raise ValueError(f"expected '{{', {n} 'x y' lines and '}}'")
        points = np.array([[float(x) for x in line.split()] for line in lines[k + 1 : k + 1 + n]])
    except (ValueError, KeyError, IndexError, OSError, UnicodeDecodeError) as err:
        raise ImageError(f"{path}: not a readable .pts file ({err})") from None
    if points.shape != (n, 2) or not np.isfinite(points).all():
        raise ImageError(f"{path}: expected {n} finite 'x y' points, got shape {points.shape}")
    return points - 0.5 if one_based else points


def write_pts(path: str | os.PathLike, points: np.ndarray, one_based: bool = False) -> None:
    """Write 2D points (N, 2) as an iBUG .pts file (one_based: add 0.5, the inverse of read_pts)."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise UsageError(f"points must have shape (N, 2), got {p.shape}")
    if one_based:
        p = p + 0.5
    rows = "\n".join(f"{x!r} {y!r}" for x, y in p.tolist())  # repr: the shortest exact decimal
    Path(path).write_text(f"version: 1\nn_points: {len(p)}\n{{\n{rows}\n}}\n", encoding="utf-8")
