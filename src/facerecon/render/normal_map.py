"""Normals of a surface displaced along its normals, and tangent-space normal maps, on a UV texel grid.

Everything here works on maps rasterised into UV space (`render_to_uv`): positions (B, S, S, 3) and
unit normals (B, S, S, 3) of a mesh at each texel, a mask (B, S, S) of the texels inside the UV
islands, and a displacement (B, S, S) in the positions' units along the normals. Texel row 0 is the
top of the image (v = 1, see texture.py): +u is along increasing columns, +v along decreasing rows.

The displaced surface P + D N gets its normals by bump mapping (Blinn 1978): n' = N - grad_s D, with
grad_s D the surface gradient of D (the tangent vector whose dot products with dP/du and dP/dv are
dD/du and dD/dv), so D = 0 gives back N exactly and the result is differentiable in D. Differences
are central where both neighbours are inside the mask, one-sided where one is, zero where none is.

`render_normal_mapped` renders a mesh whose normals come from a model-space UV normal map (the
renderer's SH shading, per pixel), so a surface finer than the mesh can be drawn and checked.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..errors import UsageError
from .cameras import Camera
from .renderer import render_mesh
from .shading import sh_shading
from .texture import sample_texture


def _check(positions: Tensor, normals: Tensor, mask: Tensor, displacement: Tensor | None = None) -> None:
    if positions.dim() != 4 or positions.shape[-1] != 3:
        raise UsageError(f"positions must have shape (B, S, S, 3), got {tuple(positions.shape)}")
    if normals.shape != positions.shape:
        raise UsageError(f"normals {tuple(normals.shape)} and positions {tuple(positions.shape)} differ")
    if mask.shape != positions.shape[:3]:
        raise UsageError(f"mask must have shape {tuple(positions.shape[:3])}, got {tuple(mask.shape)}")
    if displacement is not None and displacement.shape != positions.shape[:3]:
        raise UsageError(f"displacement must have shape {tuple(positions.shape[:3])}, got {tuple(displacement.shape)}")


def _difference(x: Tensor, mask: Tensor, dim: int) -> Tensor:
    """d x / d index along `dim` (1: rows, 2: columns) of (B, S, S, C) values inside (B, S, S) mask."""
    m = mask.to(x.dtype)[..., None]
    xm = x * m

    def shift(t: Tensor, k: int) -> Tensor:  # t[i + k] at i, zero beyond the border
        n = t.shape[dim]
        body = t.narrow(dim, max(k, 0), n - abs(k))
        zeros = torch.zeros_like(t.narrow(dim, 0, abs(k)))
        return torch.cat([body, zeros] if k > 0 else [zeros, body], dim)

    fwd_ok, bwd_ok = shift(m, 1) * m, shift(m, -1) * m
    fwd = (shift(xm, 1) - xm) * fwd_ok
    bwd = (xm - shift(xm, -1)) * bwd_ok
    count = fwd_ok + bwd_ok
    return (fwd + bwd) / count.clamp(min=1.0)


def tangents(positions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """(dP/du, dP/dv) per texel, (B, S, S, 3) each, in positions' units per texel (+v = up the image)."""
    return _difference(positions, mask, 2), -_difference(positions, mask, 1)


def surface_gradient(positions: Tensor, displacement: Tensor, mask: Tensor) -> Tensor:
    """(B, S, S, 3) the tangent vector g with g . dP/du = dD/du and g . dP/dv = dD/dv (zero off the mask)."""
    tu, tv = tangents(positions, mask)
    d = displacement[..., None]
    du, dv = _difference(d, mask, 2)[..., 0], -_difference(d, mask, 1)[..., 0]
    guu, guv, gvv = (tu * tu).sum(-1), (tu * tv).sum(-1), (tv * tv).sum(-1)
    det = guu * gvv - guv * guv
    ok = det > 1e-12 * (guu * gvv).clamp(min=1e-30)
    inv = torch.where(ok, 1.0 / torch.where(ok, det, torch.ones_like(det)), torch.zeros_like(det))
    a = (gvv * du - guv * dv) * inv
    b = (guu * dv - guv * du) * inv
    return (a[..., None] * tu + b[..., None] * tv) * mask.to(positions.dtype)[..., None]


def bump_normals(positions: Tensor, normals: Tensor, displacement: Tensor, mask: Tensor) -> Tensor:
    """(B, S, S, 3) unit normals of P + D N by bump mapping (see the module docstring); `normals` off the mask.

    Args:
        positions: (B, S, S, 3) surface points per texel. normals: (B, S, S, 3) unit normals.
        displacement: (B, S, S) along the normals, positions' units. mask: (B, S, S) bool.
    """
    _check(positions, normals, mask, displacement)
    g = surface_gradient(positions, displacement, mask)
    g = g - (g * normals).sum(-1, keepdim=True) * normals
    return torch.nn.functional.normalize(normals - g, dim=-1, eps=1e-12)


def tangent_space_normal_map(positions: Tensor, normals: Tensor, displacement: Tensor, mask: Tensor) -> Tensor:
    """(B, S, S, 3) the bump normals of P + D N in each texel's tangent frame, encoded as (n + 1) / 2
    in [0, 1] (`tangent_space_encode`)."""
    _check(positions, normals, mask, displacement)
    return tangent_space_encode(positions, normals, bump_normals(positions, normals, displacement, mask), mask)


def tangent_space_encode(positions: Tensor, normals: Tensor, detailed: Tensor, mask: Tensor) -> Tensor:
    """(B, S, S, 3) unit model-space `detailed` normals in each texel's tangent frame, as (n + 1) / 2.

    The frame is T = dP/du made orthogonal to N, B = N x T (so +B points up the texture, +v, as
    glTF and OBJ viewers expect with MikkTSpace-like tangents), N; off the mask the map is flat
    (0.5, 0.5, 1).

    Args:
        positions, normals: (B, S, S, 3) the coarse surface per texel; detailed: (B, S, S, 3) unit
            normals to encode; mask: (B, S, S) bool.
    """
    _check(positions, normals, mask)
    if detailed.shape != normals.shape:
        raise UsageError(f"detailed {tuple(detailed.shape)} and normals {tuple(normals.shape)} differ")
    tu, tv = tangents(positions, mask)
    t = tu - (tu * normals).sum(-1, keepdim=True) * normals
    t = torch.nn.functional.normalize(t, dim=-1, eps=1e-12)
    b = torch.cross(normals, t, dim=-1)
    # a mirrored UV layout (B against dP/dv) flips the bitangent's sign
    b = b * torch.where((b * tv).sum(-1, keepdim=True) < 0, -1.0, 1.0).to(b.dtype)
    local = torch.stack([(detailed * t).sum(-1), (detailed * b).sum(-1), (detailed * normals).sum(-1)], -1)
    flat = torch.tensor([0.0, 0.0, 1.0], dtype=local.dtype, device=local.device)
    inside = mask[..., None] & (t.norm(dim=-1, keepdim=True) > 0.5)
    local = torch.where(inside, local, flat)
    return (local + 1.0) / 2.0


def render_normal_mapped(vertices: Tensor, triangles: Tensor, camera: Camera, colors: Tensor, sh: Tensor,
                         uv: Tensor, uv_triangles: Tensor, normal_map: Tensor, map_mask: Tensor,
                         background: Tensor | None = None) -> Tensor:
    """(1, H, W, 3) the mesh shaded as `render_mesh` does, with the normals of `normal_map` where it is set.

    Args:
        vertices: (1, N, 3) model space. triangles: (F, 3). camera: the render camera (batch 1).
        colors: (N, 3) per-vertex albedo. sh: (1, 9, 3) camera-space SH light.
        uv: (T, 2), uv_triangles: (F, 3) the UV layout. normal_map: (1, S, S, 3) unit model-space
            normals; map_mask: (1, S, S) bool, the texels where they replace the interpolated vertex
            normals (pixels whose bilinear lookup touches a texel off the mask keep the vertex normals).
        background: (1, H, W, 3), default black.
    """
    if normal_map.dim() != 4 or normal_map.shape[0] != 1 or normal_map.shape[-1] != 3:
        raise UsageError(f"normal_map must have shape (1, S, S, 3), got {tuple(normal_map.shape)}")
    if map_mask.shape != normal_map.shape[:3]:
        raise UsageError(f"map_mask must have shape {tuple(normal_map.shape[:3])}, got {tuple(map_mask.shape)}")
    out = render_mesh(vertices, triangles, camera, colors=colors, sh=sh, background=background, antialias=False)
    pix, tri, bary = out.fragments.packed()
    b = bary.to(normal_map.dtype)
    pix_uv = (b[:, :, None] * uv.to(b.dtype)[uv_triangles.long()[tri]]).sum(1)
    tex = torch.cat([normal_map, map_mask[..., None].to(normal_map.dtype)], -1)
    looked = sample_texture(tex, pix_uv[None])[0]
    use = looked[:, 3] > 0.999
    n_cam = torch.nn.functional.normalize(looked[:, :3], dim=-1, eps=1e-12) @ camera.rotation_matrix[0].to(b.dtype).T
    albedo = (b[:, :, None] * colors.to(b.dtype)[triangles.long()[tri]]).sum(1)
    shaded = albedo * sh_shading(n_cam, sh.to(b.dtype), torch.zeros(len(pix), dtype=torch.long))
    image = out.image.reshape(-1, 3).clone()
    image[pix[use]] = shaded[use].to(image.dtype)
    return image.reshape(out.image.shape)
