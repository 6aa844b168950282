"""Differentiable mesh rendering on CPU (numba) and any torch device, with no compiled extension.

Cameras -> rasterise (z-buffer, perspective-correct barycentrics) -> interpolate attributes ->
shade (SH lighting, textures) -> antialias silhouettes. Knows nothing about faces. Units and frames:
docs/conventions.md (mm, camera looking down -z, pixel centres at +0.5, SH (B, 9, 3)).
"""
from __future__ import annotations

from ._fused import torch_kernels
from .antialias import antialias
from .cameras import Camera, PinholeCamera, WeakPerspectiveCamera
from .interpolate import interpolate
from .primitives import box, icosphere
from .raster import Fragments, rasterize
from .renderer import RenderOutput, render_mesh, visible_vertices
from ..geometry.rotation import (
    axis_angle_to_matrix,
    axis_angle_to_rotation_6d,
    euler_deg_to_matrix,
    matrix_to_axis_angle,
    matrix_to_euler_deg,
    matrix_to_rotation_6d,
    rotation_6d_to_axis_angle,
    rotation_6d_to_matrix,
)
from .shading import SHLight, face_normals, sh_basis, sh_shading, vertex_normals
from .texture import render_to_uv, sample_texture
from .topology import triangle_adjacency

__all__ = [
    "Camera",
    "Fragments",
    "PinholeCamera",
    "RenderOutput",
    "SHLight",
    "WeakPerspectiveCamera",
    "antialias",
    "axis_angle_to_matrix",
    "axis_angle_to_rotation_6d",
    "box",
    "euler_deg_to_matrix",
    "face_normals",
    "icosphere",
    "interpolate",
    "matrix_to_axis_angle",
    "matrix_to_euler_deg",
    "matrix_to_rotation_6d",
    "rasterize",
    "render_mesh",
    "visible_vertices",
    "render_to_uv",
    "rotation_6d_to_axis_angle",
    "rotation_6d_to_matrix",
    "sample_texture",
    "sh_basis",
    "sh_shading",
    "torch_kernels",
    "triangle_adjacency",
    "vertex_normals",
]
