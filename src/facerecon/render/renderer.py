"""Render a shaded mesh: image = albedo x SH shading, composited over a background, antialiased."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from facerecon.errors import RenderError, UsageError

from .antialias import antialias as antialias_edges
from .cameras import Camera
from .interpolate import interpolate_packed, scatter_packed
from .raster import Fragments, rasterize
from .shading import SHLight, shade_packed, vertex_normals
from .texture import sample_texture


@dataclass
class RenderOutput:
    """image (B, H, W, 3); alpha (B, H, W) coverage in [0, 1] (antialiased when asked); depth
    (B, H, W) mm, 0 on background; normals (B, H, W, 3) unit, camera space, 0 on background;
    triangle_id (B, H, W) long, -1 on background; fragments of the rasteriser."""

    image: Tensor
    alpha: Tensor
    depth: Tensor
    normals: Tensor
    triangle_id: Tensor
    fragments: Fragments


def _check_vertices(vertices: Tensor) -> None:
    if vertices.dim() != 3 or vertices.shape[-1] != 3:
        raise UsageError(f"vertices must have shape (B, N, 3), got {tuple(vertices.shape)}")
    if not bool(torch.isfinite(vertices).all()):
        raise RenderError("vertices contain NaN or inf; check the parameters that produced them")


def render_mesh(
    vertices: Tensor,
    triangles: Tensor,
    camera: Camera,
    colors: Tensor | None = None,
    sh: Tensor | None = None,
    texture: Tensor | None = None,
    uv: Tensor | None = None,
    uv_triangles: Tensor | None = None,
    background: Tensor | None = None,
    antialias: bool = True,
    cull_backfaces: bool = True,
) -> RenderOutput:
    """Render vertices (B, N, 3) in model space (mm) with triangles (F, 3) through `camera`.

    Albedo: per-vertex `colors` (B, N, 3) or (N, 3); or `texture` (B, Ht, Wt, 3) channels-last with
    `uv` (T, 2) and `uv_triangles` (F, 3) (see texture.py); white if neither. Lighting: `sh`
    (B, 9, 3) in camera space (see shading.py), default SHLight.ambient_directional. `background`
    (B, H, W, 3), default black. With `antialias`, silhouette pixels are blended with what is behind
    them, which gives gradients to vertex positions at the silhouette. Differentiable w.r.t.
    vertices, colours, texture, sh, background and the camera's tensors.
    """
    _check_vertices(vertices)
    nb = vertices.shape[0]
    height, width = camera.image_size
    dtype, dev = vertices.dtype, vertices.device
    cam_vertices = camera.transform(vertices)
    screen = camera.camera_to_screen(cam_vertices)
    frags = rasterize(screen, triangles, (height, width), camera.is_perspective, cull_backfaces)
    pix, _, _ = frags.packed()
    batch_index = torch.div(pix, height * width, rounding_mode="floor")

    attrs = [vertex_normals(cam_vertices, triangles)]
    if colors is not None:
        if colors.dim() == 2:
            colors = colors[None]
        if colors.shape[0] not in (1, nb) or colors.shape[1:] != vertices.shape[1:]:
            raise UsageError(f"colors must have shape ({nb}, {vertices.shape[1]}, 3), got {tuple(colors.shape)}")
        attrs.append(colors.to(dtype).expand(nb, -1, -1))
    _, packed = interpolate_packed(torch.cat(attrs, -1) if len(attrs) > 1 else attrs[0], triangles, frags)
    packed = packed[0]

    if texture is not None:
        if uv is None or uv_triangles is None:
            raise UsageError("a texture needs uv (T, 2) and uv_triangles (F, 3)")
        uv_pix, uv_packed = interpolate_packed(uv, uv_triangles, frags)
        uv_dense = scatter_packed(uv_packed, uv_pix, (nb, height, width))
        albedo = sample_texture(texture, uv_dense).reshape(-1, texture.shape[-1]).index_select(0, pix)
    elif colors is not None:
        albedo = packed[:, 3:]
    else:
        albedo = torch.ones(1, 3, dtype=dtype, device=dev)
    if sh is None:
        sh = SHLight.ambient_directional(nb, dtype=dtype, device=dev).coefficients
    rgb, normals = shade_packed(packed[:, :3], albedo, sh, batch_index)

    shape = (nb, height, width)
    alpha = frags.mask.to(dtype)
    image = scatter_packed(rgb[None], pix, shape)
    if background is not None:
        if background.shape[-3:] != (height, width, 3):
            raise UsageError(f"background must have shape (B, {height}, {width}, 3), got {tuple(background.shape)}")
        image = image + (1 - alpha)[..., None] * background
    if antialias:
        both = antialias_edges(torch.cat([image, alpha[..., None]], -1), frags, screen, triangles,
                               camera.is_perspective)
        image, alpha = both[..., :3], both[..., 3]
    return RenderOutput(
        image=image,
        alpha=alpha,
        depth=frags.depth,
        normals=scatter_packed(normals[None], pix, shape),
        triangle_id=frags.triangle_id,
        fragments=frags,
    )


def visible_vertices(depth: np.ndarray, screen: np.ndarray, tolerance_mm: float = 2.0) -> np.ndarray:
    """Which vertices a depth map shows: (N,) bool for screen points (N, 3) (x, y px; z depth mm),
    true where the pixel under a point is covered (depth (H, W) mm, 0 on background) and the point
    lies within `tolerance_mm` of the surface there."""
    hh, ww = depth.shape
    ij = np.floor(screen[:, :2]).astype(int)
    inside = (ij[:, 0] >= 0) & (ij[:, 0] < ww) & (ij[:, 1] >= 0) & (ij[:, 1] < hh)
    ijc = np.clip(ij, 0, [ww - 1, hh - 1])
    z = depth[ijc[:, 1], ijc[:, 0]]
    return inside & (z > 0) & (screen[:, 2] <= z + tolerance_mm)
