"""Rasterisation: per pixel the nearest triangle, its perspective-correct barycentrics and depth.

Visibility (which triangle) comes from a z-buffer without gradients (`_zbuffer`: numba on CPU,
torch on other devices). The barycentrics and depth are then recomputed from the screen positions
of that triangle's vertices by a differentiable op (a numba kernel with a hand-written backward on
CPU, plain torch elsewhere), so gradients reach the vertices through them, as in nvdiffrast. Only
covered pixels are computed ("packed", K of them); the dense copies are zero on the background.

Pixel (row i, column j) is sampled at its centre (j + 0.5, i + 0.5). See `_zbuffer` for the fill
rule, the winding convention (counter-clockwise seen from the camera = front-facing) and which
triangles are dropped (behind the near plane, degenerate, far outside the image).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from facerecon.errors import RenderError, UsageError

from ._fused import _TINY, BarycentricsFunction, check_indices, use_numba
from ._zbuffer import zbuffer_numba, zbuffer_torch

NEAR = 1e-3  # mm: with perspective, triangles with a vertex at depth <= NEAR are not drawn


@dataclass
class Fragments:
    """What the rasteriser found at each pixel.

    triangle_id (B, H, W) long, -1 = background; barycentric (B, H, W, 3) perspective-correct, zero
    on background; depth (B, H, W) interpolated vertex depth, zero on background. pixel_index (K,)
    are the covered pixels as ascending flat indices into B*H*W and packed_barycentric (K, 3) their
    barycentrics (the same tensor the dense one is scattered from); both are derived from the dense
    fields when not given.
    """

    triangle_id: Tensor
    barycentric: Tensor
    depth: Tensor
    pixel_index: Tensor | None = None
    packed_barycentric: Tensor | None = None

    @property
    def mask(self) -> Tensor:
        """(B, H, W) bool, True where a triangle covers the pixel centre."""
        return self.triangle_id >= 0

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.triangle_id.shape[1]), int(self.triangle_id.shape[2])

    def packed(self) -> tuple[Tensor, Tensor, Tensor]:
        """(pixel_index (K,), triangle (K,), barycentric (K, 3)) of the covered pixels."""
        tid = self.triangle_id.reshape(-1)
        pix = self.pixel_index
        if pix is None:
            pix = torch.nonzero(tid >= 0).squeeze(1)
        bary = self.packed_barycentric
        if bary is None:
            bary = self.barycentric.reshape(-1, 3).index_select(0, pix)
        return pix, tid.index_select(0, pix), bary


def _check_inputs(screen_vertices: Tensor, triangles: Tensor, image_size: tuple[int, int]) -> tuple[int, int]:
    if screen_vertices.dim() != 3 or screen_vertices.shape[-1] != 3:
        raise UsageError(f"screen_vertices must have shape (B, N, 3), got {tuple(screen_vertices.shape)}")
    if not screen_vertices.is_floating_point():
        raise UsageError(f"screen_vertices must be a floating-point tensor, got {screen_vertices.dtype}")
    if triangles.dim() != 2 or triangles.shape[-1] != 3 or triangles.is_floating_point():
        raise UsageError(f"triangles must be an integer tensor of shape (F, 3), got {tuple(triangles.shape)}")
    if triangles.device != screen_vertices.device:
        raise UsageError(f"triangles are on {triangles.device} but the vertices on {screen_vertices.device}")
    if len(image_size) != 2 or min(image_size) < 1:
        raise UsageError(f"image_size must be (H, W) with H, W >= 1, got {image_size!r}")
    check_indices(triangles, screen_vertices.shape[1], "triangle indices (rows of the vertices)")
    if not bool(torch.isfinite(screen_vertices).all()):
        raise RenderError("vertices contain NaN or inf after projection; check the vertices and the camera")
    return int(image_size[0]), int(image_size[1])


def rasterize(
    screen_vertices: Tensor,
    triangles: Tensor,
    image_size: tuple[int, int],
    perspective: bool = True,
    cull_backfaces: bool = False,
    near: float = NEAR,
    backend: Literal["auto", "numba", "torch"] = "auto",
) -> Fragments:
    """Rasterise triangles given in screen space.

    screen_vertices (B, N, 3): (u, v, depth) as from ``camera.to_screen``, depth > 0 in front for
    perspective (then barycentrics are perspective-correct, i.e. linear in 1/depth); triangles
    (F, 3) integer; image_size (H, W). backend "auto" uses numba for CPU tensors and torch otherwise.
    An empty mesh gives an all-background result. Raises RenderError on NaN/inf vertices or
    triangle indices out of range.
    """
    height, width = _check_inputs(screen_vertices, triangles, image_size)
    nb, n = screen_vertices.shape[:2]
    dev, dtype = screen_vertices.device, screen_vertices.dtype
    if backend == "auto":
        backend = "numba" if use_numba(screen_vertices) else "torch"
    if backend == "numba" and dev.type != "cpu":
        raise UsageError(f"the numba backend needs CPU tensors, got {dev}; use backend='torch' or 'auto'")
    if n == 0 or triangles.shape[0] == 0:
        tid = torch.full((nb, height, width), -1, dtype=torch.long, device=dev)
    elif backend == "numba":
        tid = torch.from_numpy(
            zbuffer_numba(
                screen_vertices.detach().to(torch.float64).contiguous().numpy(),
                triangles.to(torch.int64).contiguous().numpy(),
                height,
                width,
                perspective,
                cull_backfaces,
                near,
            )
        )
    elif backend == "torch":
        tid = zbuffer_torch(screen_vertices, triangles.long(), height, width, perspective, cull_backfaces, near)
    else:
        raise UsageError(f"backend must be 'auto', 'numba' or 'torch', got {backend!r}")

    tid_flat = tid.reshape(-1)
    pix = torch.nonzero(tid_flat >= 0).squeeze(1)
    bary, depth = _barycentrics(screen_vertices, triangles, pix, tid_flat.index_select(0, pix), (height, width),
                                perspective)
    size = nb * height * width
    dense_bary = torch.zeros(size, 3, dtype=dtype, device=dev).index_copy(0, pix, bary)
    dense_depth = torch.zeros(size, dtype=dtype, device=dev).index_copy(0, pix, depth)
    return Fragments(
        triangle_id=tid,
        barycentric=dense_bary.reshape(nb, height, width, 3),
        depth=dense_depth.reshape(nb, height, width),
        pixel_index=pix,
        packed_barycentric=bary,
    )


def _barycentrics(
    screen: Tensor, triangles: Tensor, pix: Tensor, tri: Tensor, image_size: tuple[int, int], perspective: bool
) -> tuple[Tensor, Tensor]:
    """Differentiable barycentrics (K, 3) and depth (K,) at the centres of the pixels `pix` (K,)
    covered by triangles `tri` (K,): numba with a hand-written backward on CPU, torch elsewhere."""
    if use_numba(screen):
        return BarycentricsFunction.apply(screen, triangles, pix, tri, image_size[0], image_size[1], perspective)
    return _barycentrics_torch(screen, triangles, pix, tri, image_size, perspective)


def _barycentrics_torch(
    screen: Tensor, triangles: Tensor, pix: Tensor, tri: Tensor, image_size: tuple[int, int], perspective: bool
) -> tuple[Tensor, Tensor]:
    """Plain-torch twin of _fused.BarycentricsFunction."""
    height, width = image_size
    nb, n = screen.shape[:2]
    b = torch.div(pix, height * width, rounding_mode="floor")
    rem = pix - b * (height * width)
    py = torch.div(rem, width, rounding_mode="floor").to(screen.dtype) + 0.5
    px = (rem % width).to(screen.dtype) + 0.5
    vid = triangles.index_select(0, tri).long() + (b * n)[:, None]  # (K, 3) into B*N
    g = screen.reshape(nb * n, 3).index_select(0, vid.reshape(-1)).reshape(-1, 3, 3)
    r = g[..., :2] - torch.stack([px, py], -1)[:, None, :]  # vertex - pixel centre
    r = torch.cat([r, r[:, :2]], 1)
    # weight of vertex k: the 2D cross product of r_{k+1} and r_{k+2}
    w = r[:, 1:4, 0] * r[:, 2:5, 1] - r[:, 1:4, 1] * r[:, 2:5, 0]
    z = g[..., 2]
    tiny = torch.full((1, 1), _TINY, dtype=screen.dtype, device=screen.device)
    if perspective:
        q = w / z
        s = q.sum(1, keepdim=True)
        s = torch.where(s.abs() > _TINY, s, tiny)
        return q / s, (w.sum(1, keepdim=True) / s).squeeze(1)
    a = w.sum(1, keepdim=True)
    a = torch.where(a.abs() > _TINY, a, tiny)
    lin = w / a
    return lin, (lin * z).sum(1)
