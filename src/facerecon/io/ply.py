"""PLY meshes: writing (binary or ASCII), reading back, and the registry's `export_ply`.

Units and frames follow docs/conventions.md: positions in **millimetres**, +y up, +z toward the
camera; counter-clockwise triangles face outward. One index per vertex (PLY has no UV seams), so
the format suits per-vertex colours, not textures.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelError
from .arrays import mesh_arrays, orient_consistently, per_vertex

if TYPE_CHECKING:
    from .mesh import Mesh

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


def ply_bytes(vertices, triangles, colors=None, binary: bool = True) -> bytes:
    """A PLY file's bytes: float32 x y z in mm, optional uchar red green blue, int triangle lists.

    Args:
        vertices: (V, 3) positions in mm.
        triangles: (F, 3) 0-based vertex indices, written as given.
        colors: (V, 3) float RGB in [0, 1] (clipped, rounded to uchar) or None.
        binary: binary little-endian (default) or ASCII.
    """
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
    parts = [header.encode("ascii")]
    if binary:
        fdata = np.empty(len(tris), dtype=[("n", "u1"), ("i", "<i4", (3,))])
        fdata["n"] = 3
        fdata["i"] = tris
        parts += [vdata.tobytes(), fdata.tobytes()]
    else:
        # %.9g round-trips float32.
        vfmt = " ".join(["%.9g"] * 3 + (["%d"] * 3 if colors is not None else [])) + "\n"
        rows = np.column_stack([verts.astype(np.float64)] + ([rgb] if colors is not None else []))
        parts.append(((vfmt * len(rows)) % tuple(rows.ravel().tolist())).encode("ascii"))
        parts.append((("3 %d %d %d\n" * len(tris)) % tuple(tris.ravel().tolist())).encode("ascii"))
    return b"".join(parts)


def write_ply(path: str | Path, vertices, triangles, colors=None, binary: bool = True) -> Path:
    """Write `ply_bytes(vertices, triangles, colors, binary)` to `path` (arrays as given; `Mesh.export`
    / `export_ply` is the clean path); returns the path."""
    path = Path(path)
    path.write_bytes(ply_bytes(vertices, triangles, colors, binary))
    return path


def export_ply(mesh: Mesh, stem: str) -> dict[str, bytes]:
    """Registry exporter: `{stem}.ply`, binary, `mesh.vertices` (posed) in mm with `mesh.colors`.

    The triangles are oriented consistently for readers that weld coincident vertices (see
    `orient_consistently`); triangles that no orientation can make consistent once welded (on the
    ICT head: 10 of the 2160 eyelash-card triangles, where cards cross at coincident vertices) are
    left out, so trimesh's `is_winding_consistent` holds on the file as loaded.
    """
    triangles, conflicted = orient_consistently(mesh.vertices, mesh.triangles)
    return {f"{stem}.ply": ply_bytes(mesh.vertices, triangles[~conflicted], mesh.colors)}


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
