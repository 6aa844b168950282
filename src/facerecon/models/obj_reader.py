"""A small, fast Wavefront OBJ reader for model files (positions, UVs, polygons, material groups)."""
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


def read_obj(path: str | Path, positions_only: bool = False) -> ObjMesh:
    """Read an OBJ file; raise `ModelError` naming the file on anything malformed.

    `positions_only=True` skips faces and UVs (for blendshape targets that share a topology).
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
    if len(vertices) == 0:
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
