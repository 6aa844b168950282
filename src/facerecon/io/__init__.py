"""Reading and writing files: meshes as OBJ / PLY (mm) and glTF binary (metres, with morph targets).

Images (photos in, textures out) are in `facerecon.io.images`.
"""
from .gltf import read_glb, split_uv_seams, validate_glb, write_glb
from .mesh_export import read_obj_mesh, read_ply, vertex_normals, write_obj, write_ply

__all__ = [
    "read_glb", "read_obj_mesh", "read_ply", "split_uv_seams", "validate_glb", "vertex_normals", "write_glb",
    "write_obj", "write_ply",
]
