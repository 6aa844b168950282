"""PLY meshes: writing (binary or ASCII), reading back, and the registry's `export_ply`.

Units and frames follow docs/conventions.md: positions in **millimetres**, +y up, +z toward the
camera; counter-clockwise triangles face outward. One index per vertex (PLY has no UV seams), so
the format suits per-vertex colours, not textures.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..geometry.meshfiles import read_ply  # noqa: F401  (the one PLY reader; re-exported)
from .arrays import mesh_arrays, orient_consistently, per_vertex

if TYPE_CHECKING:
    from .mesh import Mesh

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
