"""Reading and writing files: meshes as OBJ / PLY (mm) and glTF binary (metres, with morph targets).

`Mesh` holds the arrays; `Mesh.export(path)` / `export_mesh(mesh, "glb")` go through the exporter
registry in `facerecon.io.export` (one module per format: `obj`, `ply`, `gltf`).
Images (photos in, textures out) are in `facerecon.io.images`.
"""
from .arrays import vertex_normals
from .export import EXPORTERS, export_mesh, supported_formats, write_mesh
from .gltf import read_glb, split_uv_seams, validate_glb, write_glb
from .mesh import Mesh
from .obj import read_obj_mesh, write_obj
from .ply import read_ply, write_ply

__all__ = [
    "EXPORTERS", "Mesh", "export_mesh", "read_glb", "read_obj_mesh", "read_ply", "split_uv_seams",
    "supported_formats", "validate_glb", "vertex_normals", "write_glb", "write_mesh", "write_obj", "write_ply",
]
