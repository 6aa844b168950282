"""Interpolation of per-vertex attributes over the rasterised triangles (differentiable)."""
from __future__ import annotations

import torch
from torch import Tensor

from facerecon.errors import UsageError

from ._fused import InterpolateFunction, check_indices, use_numba
from .raster import Fragments


def interpolate_packed(attributes: Tensor, triangles: Tensor, fragments: Fragments) -> tuple[Tensor, Tensor]:
    """Attributes at the covered pixels only: (pixel_index (K,), values (B', K, C)).

    attributes (B, N, C) or (N, C) (shared by the batch); when the fragments have batch 1 and the
    attributes batch B, every attribute set is interpolated on the same pixels and values is
    (B, K, C) with pixel_index into H*W; otherwise values is (1, K, C) with pixel_index into B*H*W.
    """
    if attributes.dim() == 2:
        attributes = attributes[None]
    if attributes.dim() != 3:
        raise UsageError(f"attributes must have shape (B, N, C) or (N, C), got {tuple(attributes.shape)}")
    nb, height, width = fragments.triangle_id.shape
    na = attributes.shape[0]
    if na not in (1, nb) and nb != 1:
        raise UsageError(f"attributes have batch {na} but the fragments batch {nb}; they must match or one be 1")
    pix, tri, bary = fragments.packed()
    check_indices(tri, triangles.shape[0], "the fragments' triangle ids (rows of `triangles`)")
    check_indices(triangles, attributes.shape[1], "triangle indices (rows of `attributes`)")
    dtype = torch.promote_types(attributes.dtype, bary.dtype)
    attributes, bary = attributes.to(dtype), bary.to(dtype)
    broadcast = na > 1 and nb == 1
    if na > 1 and not broadcast:
        abatch = torch.div(pix, height * width, rounding_mode="floor")
    else:
        abatch = torch.zeros_like(pix)
    if use_numba(attributes):
        return pix, InterpolateFunction.apply(attributes, triangles, tri, abatch, bary, broadcast)
    return pix, _interpolate_torch(attributes, triangles, tri, abatch, bary, broadcast)


def _interpolate_torch(
    attributes: Tensor, triangles: Tensor, tri: Tensor, abatch: Tensor, bary: Tensor, broadcast: bool
) -> Tensor:
    """Plain-torch twin of _fused.InterpolateFunction: -> (A, K, C) if broadcast else (1, K, C)."""
    na, n, ch = attributes.shape
    vid = triangles.index_select(0, tri).long()  # (K, 3)
    if broadcast:
        vals = attributes.index_select(1, vid.reshape(-1)).reshape(na, -1, 3, ch)
        return (vals * bary[None, :, :, None]).sum(2)
    vid = vid + (abatch * n)[:, None]
    vals = attributes.reshape(na * n, ch).index_select(0, vid.reshape(-1)).reshape(-1, 3, ch)
    return (vals * bary[..., None]).sum(1)[None]


def scatter_packed(values: Tensor, pixel_index: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """(B', K, C) packed values -> dense (B, H, W, C), zero elsewhere; `shape` = (B, H, W) of the
    fragments (B' = 1 and index into B*H*W, or B' = batch and index into H*W)."""
    nb, height, width = shape
    bv, _, ch = values.shape
    if bv == 1:
        out = values.new_zeros(nb * height * width, ch).index_copy(0, pixel_index, values[0])
        return out.reshape(nb, height, width, ch)
    out = values.new_zeros(bv, height * width, ch).index_copy(1, pixel_index, values)
    return out.reshape(bv, height, width, ch)


def interpolate(attributes: Tensor, triangles: Tensor, fragments: Fragments) -> Tensor:
    """Interpolate per-vertex attributes with the fragments' barycentrics.

    attributes (B, N, C) or (N, C) - positions, normals, colours, UVs, anything; triangles (F, 3) the
    rasterised ones or, for attributes on other vertices (UVs), triangles in the same order indexing
    those -> (B, H, W, C), zero on background. Differentiable w.r.t. the attributes and, through the
    barycentrics, the screen vertices.
    """
    pix, vals = interpolate_packed(attributes, triangles, fragments)
    return scatter_packed(vals, pix, tuple(fragments.triangle_id.shape))
