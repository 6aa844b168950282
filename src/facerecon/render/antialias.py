"""Analytic antialiasing of silhouette edges (nvdiffrast's `antialias`), which gives gradients to
vertex positions where the coverage of a pixel changes.

Where a silhouette edge crosses the segment between two neighbouring pixel centres at fraction t
(measured from the centre of the pixel inside the nearer triangle), the pixel holding the crossing
is blended toward its neighbour by the uncovered part of its half: the inside pixel by (0.5 - t) when
t < 0.5, the outside pixel by (t - 0.5) when t > 0.5. The result is continuous as the edge moves
across pixel centres and its derivative w.r.t. the edge's screen vertices is what moves silhouettes.
The blend reads the input image only, so each pixel gets the sum of its (at most four) events.
Finding the crossings (`_edges`) walks the mesh from the nearer pixel's triangle, so silhouettes
are found when triangles are smaller than pixels too.
"""
from __future__ import annotations

import torch
from torch import Tensor

from facerecon.errors import RenderError, UsageError

from ._edges import edge_events_numba, edge_events_torch
from ._fused import check_indices, use_numba
from .raster import NEAR, Fragments
from .topology import triangle_adjacency


def antialias(
    image: Tensor,
    fragments: Fragments,
    screen_vertices: Tensor,
    triangles: Tensor,
    perspective: bool = True,
    near: float = NEAR,
) -> Tensor:
    """Blend pixels across silhouette edges.

    image (B, H, W, C) rendered with `fragments` (e.g. colour composited over the background and the
    alpha channel concatenated), screen_vertices (B, N, 3) and triangles (F, 3) the ones that were
    rasterised -> (B, H, W, C). Differentiable w.r.t. `image` and `screen_vertices`.
    """
    nb, height, width = fragments.triangle_id.shape
    if image.dim() != 4 or tuple(image.shape[:3]) != (nb, height, width):
        raise UsageError(f"image must have shape ({nb}, {height}, {width}, C), got {tuple(image.shape)}")
    if triangles.shape[0] == 0 or screen_vertices.shape[1] == 0:
        return image
    check_indices(triangles, screen_vertices.shape[1], "triangle indices")
    if int(fragments.triangle_id.max()) >= triangles.shape[0]:
        raise RenderError("the fragments hold triangle ids beyond `triangles`: pass the rasterised triangles")
    adj = triangle_adjacency(triangles)
    if use_numba(image):
        ev = edge_events_numba(
            fragments.triangle_id.contiguous().numpy(),
            fragments.depth.detach().to(torch.float64).contiguous().numpy(),
            screen_vertices.detach().to(torch.float64).contiguous().numpy(),
            triangles.to(torch.int64).contiguous().numpy(),
            adj.numpy(),
            perspective,
            near,
        )
        ev = {k: torch.from_numpy(v) for k, v in ev.items()}
    else:
        ev = edge_events_torch(fragments.triangle_id, fragments.depth, screen_vertices, triangles.long(), adj,
                               perspective, near)
    return blend_events(image, screen_vertices, ev)


def blend_events(image: Tensor, screen_vertices: Tensor, events: dict[str, Tensor]) -> Tensor:
    """Apply the blends of `events` (see `_edges`) to image (B, H, W, C); differentiable."""
    nb, height, width, ch = image.shape
    if events["pin"].numel() == 0:
        return image
    pin, pout, axis, in_side = events["pin"], events["pout"], events["axis"].long(), events["in_side"]
    pos = screen_vertices.reshape(-1, 3)
    p0 = pos.index_select(0, events["va"])
    p1 = pos.index_select(0, events["vb"])
    along, across = axis[:, None], (1 - axis)[:, None]
    a0, a1 = p0.gather(1, along).squeeze(1), p1.gather(1, along).squeeze(1)
    c0, c1 = p0.gather(1, across).squeeze(1), p1.gather(1, across).squeeze(1)
    hw = height * width
    i_in, j_in = torch.div(pin % hw, width, rounding_mode="floor"), pin % width
    i_out, j_out = torch.div(pout % hw, width, rounding_mode="floor"), pout % width
    horizontal = axis == 0
    c = torch.where(horizontal, i_in, j_in).to(pos.dtype) + 0.5
    start = torch.where(horizontal, j_in, i_in).to(pos.dtype) + 0.5
    direction = torch.where(horizontal, j_out - j_in, i_out - i_in).to(pos.dtype)
    t = (a0 + (c - c0) * (a1 - a0) / (c1 - c0) - start) * direction
    weight = torch.where(in_side, 0.5 - t, t - 0.5)
    target = torch.where(in_side, pin, pout)
    source = torch.where(in_side, pout, pin)
    flat = image.reshape(-1, ch)
    delta = weight[:, None].to(image.dtype) * (flat.index_select(0, source) - flat.index_select(0, target))
    return flat.clone().index_add_(0, target, delta).reshape(nb, height, width, ch)
