"""Wavefront OBJ (+ MTL + PNG texture): writing, reading back, and the registry's `export_obj`.

Units and frames follow docs/conventions.md: positions are written in **millimetres**, +y up,
+z toward the camera. UVs use the OBJ convention (v = 0 at the bottom of the texture image).
Counter-clockwise triangles face outward. A separate UV index per corner keeps UV seams.

What `export_obj` writes, so the file opens the same in three.js, Blender and trimesh:
- `vn` per-vertex normals (area-weighted, or the mesh's own) and `s 1`, so viewers shade smoothly;
- only the vertices and UVs some triangle uses (the mesh is compacted first), so trimesh loads it
  without warnings about unreferenced vertices;
- an MTL whose `map_Kd` is relative to the MTL file: the texture is written beside it, so the
  reference is its bare file name.

Numbers are formatted in bulk (one `%` operation per block, not one Python call per line), so a
27k-vertex head writes in a few tens of milliseconds.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .arrays import mesh_arrays, per_vertex, uv_arrays, vertex_normals

if TYPE_CHECKING:
    from .mesh import Mesh

# Digits after the point: 1e-6 mm for positions, well below float32 resolution at face scale.
DECIMALS = 6
MATERIAL_NAME = "face"
# Trailing zeros of "%.6f" numbers, e.g. "12.500000" -> "12.5", "3.000000" -> "3".
_TRAILING_ZEROS = re.compile(r"\.?0+(?=[ \n])")


def _format_rows(prefix: str, values: np.ndarray) -> str:
    """Lines "prefix a b c\\n" for the rows of a float array, compact (trailing zeros removed)."""
    if len(values) == 0:
        return ""
    cols = values.shape[1]
    line = prefix + " " + " ".join([f"%.{DECIMALS}f"] * cols) + "\n"
    text = (line * len(values)) % tuple(np.asarray(values, dtype=np.float64).ravel().tolist())
    return _TRAILING_ZEROS.sub("", text)


def obj_text(vertices, triangles, uv=None, uv_triangles=None, normals=None, mtllib: str | None = None,
             material_name: str = MATERIAL_NAME) -> str:
    """The OBJ file's text.

    Args:
        vertices: (V, 3) positions in mm. triangles: (F, 3) 0-based indices, counter-clockwise = outward.
        uv: (T, 2) OBJ-convention UVs and uv_triangles (F, 3) indices into them, or None.
        normals: (V, 3) per-vertex normals indexed like the vertices, or None; with normals the
            file also says `s 1` (smooth shading).
        mtllib: the MTL file name to reference (with `usemtl material_name`), or None.
    """
    verts, tris = mesh_arrays(vertices, triangles)
    uvs, uv_tris = uv_arrays(uv, uv_triangles, tris)
    blocks = ["# facerecon OBJ, units: millimetres, +y up, +z toward the camera\n"]
    if mtllib is not None:
        blocks.append(f"mtllib {mtllib}\n")
    blocks.append(_format_rows("v", verts))
    columns = [tris + 1]
    if uvs is not None:
        blocks.append(_format_rows("vt", uvs))
        columns.append(uv_tris + 1)
    if normals is not None:
        blocks.append(_format_rows("vn", per_vertex(normals, len(verts), "normals")))
        columns.append(tris + 1)
        blocks.append("s 1\n")
    if mtllib is not None:
        blocks.append(f"usemtl {material_name}\n")
    corner = {1: "%d", 2: "%d/%d", 3: "%d/%d/%d"}[len(columns)]
    if uvs is None and normals is not None:
        corner = "%d//%d"
    per_face = np.stack(columns, axis=2).reshape(len(tris), -1)  # (F, 3 * k): corner-major
    line = "f " + " ".join([corner] * 3) + "\n"
    blocks.append((line * len(tris)) % tuple(per_face.ravel().tolist()))
    return "".join(blocks)


def mtl_text(texture_ref: str, material_name: str = MATERIAL_NAME, normal_ref: str | None = None) -> str:
    """An MTL with one diffuse-textured material; `texture_ref` is relative to the MTL's folder.

    With `normal_ref` (a tangent-space normal map, +y up the image) the material names it twice:
    `norm` (three.js' MTLLoader, the PBR extension) and `map_Bump` (Blender imports it as a
    normal map; three.js prefers `norm` where both are given)."""
    text = (f"# facerecon material\nnewmtl {material_name}\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\n"
            f"map_Kd {texture_ref}\n")
    if normal_ref is not None:
        text += f"norm {normal_ref}\nmap_Bump {normal_ref}\n"
    return text


def write_obj(path: str | Path, vertices, triangles, uv=None, uv_triangles=None, normals=None,
              texture_png: str | Path | None = None, material_name: str = MATERIAL_NAME) -> Path:
    """Write a Wavefront OBJ (and, with a texture, `<stem>.mtl` beside it) from arrays.

    Args:
        path: the .obj file to write.
        vertices, triangles, uv, uv_triangles, normals: as in `obj_text`. Written as given (no
            compaction): `Mesh.export` / `export_obj` is the clean path.
        texture_png: the texture image's path (relative paths are relative to the working
            directory, like `path`); the MTL refers to it relative to the MTL's own folder (its
            bare name when it lies beside it). The image itself is not copied.
        material_name: the MTL material name.

    Returns:
        The path written.
    """
    path = Path(path)
    mtllib = None if texture_png is None else f"{path.stem}.mtl"
    path.write_text(obj_text(vertices, triangles, uv, uv_triangles, normals, mtllib, material_name),
                    encoding="utf-8")
    if texture_png is not None:
        ref = Path(os.path.relpath(Path(texture_png).resolve(), path.parent.resolve())).as_posix()
        path.with_suffix(".mtl").write_text(mtl_text(ref, material_name), encoding="utf-8")
    return path


def export_obj(mesh: Mesh, stem: str) -> dict[str, bytes]:
    """Registry exporter: `{stem}.obj`, and with a texture `{stem}.mtl` and the PNG (named by
    `mesh.texture_file`, default `{stem}_albedo.png`; with a normal map also its PNG, named by
    `mesh.normal_map_file`, default `{stem}_normals.png`), all meant to lie in one folder.

    Positions are `mesh.vertices` (the posed shape; morph targets have no OBJ form), in mm, with
    `vn` normals (the mesh's own, else area-weighted ones).
    """
    normals = mesh.normals if mesh.normals is not None else vertex_normals(mesh.vertices, mesh.triangles)
    if mesh.texture is None:
        return {f"{stem}.obj": obj_text(mesh.vertices, mesh.triangles, mesh.uv, mesh.uv_triangles, normals).encode()}
    texture_file = mesh.texture_file or f"{stem}_albedo.png"
    obj = obj_text(mesh.vertices, mesh.triangles, mesh.uv, mesh.uv_triangles, normals, f"{stem}.mtl")
    normal_file = None if mesh.normal_map is None else mesh.normal_map_file or f"{stem}_normals.png"
    files = {f"{stem}.obj": obj.encode(), f"{stem}.mtl": mtl_text(texture_file, normal_ref=normal_file).encode(),
             texture_file: mesh.texture_png()}
    if normal_file is not None:
        files[normal_file] = mesh.normal_map_png()
    return files


def read_obj_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float64 positions and (F, 3) int64 triangles of an OBJ file; `ModelError` if unreadable.
    (`facerecon.geometry.meshfiles.read_obj` also returns UVs and materials.)"""
    from ..geometry.meshfiles import read_obj

    mesh = read_obj(path)
    return mesh.vertices, mesh.triangles
