"""Texture sampling and rendering into UV space.

UV convention (OBJ): u in [0, 1] left to right, v in [0, 1] with v = 0 at the *bottom* of the
texture image. Textures are channels-last like images, (B, Ht, Wt, C), row 0 at the top; texel
(row i, column j) has its centre at u = (j + 0.5) / Wt, v = 1 - (i + 0.5) / Ht.
"""
from __future__ import annotations

import torch
from torch import Tensor

from facerecon.errors import UsageError

from .interpolate import interpolate
from .raster import rasterize


def sample_texture(texture: Tensor, uv: Tensor) -> Tensor:
    """Bilinear lookup, differentiable w.r.t. the texture and the uv; clamps at the border.

    texture (B, Ht, Wt, C) or (1, Ht, Wt, C) shared, uv (B, ..., 2) -> (B, ..., C).
    """
    if texture.dim() != 4:
        raise UsageError(f"texture must have shape (B, Ht, Wt, C) (channels last), got {tuple(texture.shape)}")
    if uv.shape[-1] != 2 or uv.dim() < 2:
        raise UsageError(f"uv must have shape (B, ..., 2), got {tuple(uv.shape)}")
    nb = uv.shape[0]
    if texture.shape[0] not in (1, nb):
        raise UsageError(f"texture batch {texture.shape[0]} does not match uv batch {nb}")
    grid = uv.reshape(nb, 1, -1, 2)
    grid = torch.stack([2 * grid[..., 0] - 1, 1 - 2 * grid[..., 1]], -1).to(texture.dtype)
    tex = texture.permute(0, 3, 1, 2).expand(nb, -1, -1, -1)
    out = torch.nn.functional.grid_sample(tex, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[:, :, 0].transpose(1, 2).reshape(uv.shape[:-1] + (texture.shape[-1],))


def render_to_uv(
    attributes: Tensor, uv: Tensor, uv_triangles: Tensor, size: int, triangles: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Rasterise the mesh in UV space to turn a per-vertex attribute into a (size x size) UV map.

    attributes (B, N, C) per mesh vertex, indexed by `triangles` (F, 3); uv (T, 2) and uv_triangles
    (F, 3) give each triangle's corners in UV space. Without `triangles` the attributes are per UV
    vertex (N = T) and indexed by uv_triangles. Returns (B, size, size, C), zero outside the UV
    islands, and the mask (B, size, size) bool of texels inside them. Differentiable w.r.t. the
    attributes (the UV layout is fixed). Where islands overlap the lower triangle id wins.
    """
    if uv.dim() != 2 or uv.shape[-1] != 2:
        raise UsageError(f"uv must have shape (T, 2), got {tuple(uv.shape)}")
    if attributes.dim() != 3:
        raise UsageError(f"attributes must have shape (B, N, C), got {tuple(attributes.shape)}")
    if triangles is None:
        triangles = uv_triangles
    if triangles.shape != uv_triangles.shape:
        raise UsageError(f"triangles {tuple(triangles.shape)} and uv_triangles {tuple(uv_triangles.shape)} differ")
    screen = torch.stack([uv[:, 0] * size, (1 - uv[:, 1]) * size, torch.ones_like(uv[:, 0])], -1)
    frags = rasterize(screen[None].to(attributes.dtype), uv_triangles, (size, size), perspective=False)
    out = interpolate(attributes, triangles, frags)
    return out, frags.mask.expand(attributes.shape[0], -1, -1)
