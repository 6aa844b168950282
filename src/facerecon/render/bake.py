"""Baking images into UV space: atlas packing, per-texel rasterisation, unwrapping a photo with
per-texel visibility, dividing out shading, filling by a texel correspondence and seamless
(multi-band) blending. Knows nothing about faces.

Arrays are numpy; UV convention as in texture.py (OBJ: v = 0 at the bottom; texel (row i, column j)
has its centre at u = (j + 0.5) / S, v = 1 - (i + 0.5) / S). A "texel list" is a set of K covered
texels given by their flat indices ``row * S + column``, in ascending order.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch
import torch.nn.functional as F

from facerecon.errors import UsageError

from .cameras import PinholeCamera
from .raster import rasterize


@dataclass(frozen=True)
class UVRaster:
    """Which triangle covers each texel of a (size x size) UV map, and where.

    texel (K,) int64 flat indices (ascending), triangle (K,) int64, barycentric (K, 3) float32.
    """

    size: int
    texel: np.ndarray
    triangle: np.ndarray
    barycentric: np.ndarray

    def select(self, keep: np.ndarray) -> "UVRaster":
        """The texels whose triangle is in `keep` ((F,) bool)."""
        m = keep[self.triangle]
        return UVRaster(self.size, self.texel[m], self.triangle[m], self.barycentric[m])

    def interpolation_matrix(self, triangles: np.ndarray, num_vertices: int) -> scipy.sparse.csr_matrix:
        """(K, V) sparse matrix taking per-vertex values (V, C) to the texels (K, C) through `triangles`
        (F, 3) (the mesh's triangles, which may index other vertices than the UV triangles)."""
        k = len(self.texel)
        cols = np.asarray(triangles)[self.triangle].reshape(-1)
        rows = np.repeat(np.arange(k), 3)
        return scipy.sparse.csr_matrix((self.barycentric.reshape(-1), (rows, cols)), shape=(k, num_vertices))


def rasterize_uv(uv: np.ndarray, uv_triangles: np.ndarray, size: int) -> UVRaster:
    """Rasterise the UV layout (uv (T, 2) in [0, 1], uv_triangles (F, 3)) at texel centres; where
    islands overlap the lower triangle id wins (as in `render_to_uv`)."""
    if size < 1:
        raise UsageError(f"size must be >= 1, got {size}")
    uv = np.asarray(uv, dtype=np.float64)
    screen = np.stack([uv[:, 0] * size, (1 - uv[:, 1]) * size, np.ones(len(uv))], -1)
    frags = rasterize(torch.from_numpy(screen)[None], torch.as_tensor(np.asarray(uv_triangles, dtype=np.int64)),
                      (size, size), perspective=False)
    pix, tri, bary = frags.packed()
    return UVRaster(size, pix.numpy(), tri.numpy(), bary.numpy().astype(np.float32))


# ---------------------------------------------------------------------------------------- atlas
def atlas_uv(uv: np.ndarray, uv_triangles: np.ndarray, islands: Sequence[np.ndarray], weights: Sequence[float],
             padding: float = 4 / 1024) -> np.ndarray:
    """Re-pack UV islands into one [0, 1]^2 atlas with no overlap.

    uv (T, 2) (any range, e.g. UDIM-like tiles u in [0, 7]); uv_triangles (F, 3); islands: a list
    of (m_i,) triangle-id arrays that together hold every triangle and share no UV vertex; weights:
    the share of the atlas each island's bounding box should get (normalised here; an island keeps
    its aspect ratio and is scaled uniformly). Islands are placed largest first by a guillotine
    packer; if they do not fit all are shrunk until they do. `padding` (UV units) is kept free
    around each island. Deterministic. Returns the new uv (T, 2).
    """
    uv = np.asarray(uv, dtype=np.float64)
    uv_triangles = np.asarray(uv_triangles)
    if len(islands) != len(weights) or not islands:
        raise UsageError(f"need one weight per island, got {len(islands)} islands and {len(weights)} weights")
    if min(weights) <= 0:
        raise UsageError(f"island weights must be > 0, got {list(weights)}")
    owner = np.full(len(uv), -1)
    tri_count = np.zeros(len(uv_triangles), dtype=int)
    boxes = []
    for i, tris in enumerate(islands):
        tris = np.asarray(tris, dtype=np.int64)
        tri_count[tris] += 1
        ids = np.unique(uv_triangles[tris])
        if (owner[ids] >= 0).any():
            raise UsageError(f"island {i} shares UV vertices with island {int(owner[ids][owner[ids] >= 0][0])}")
        owner[ids] = i
        lo, hi = uv[ids].min(0), uv[ids].max(0)
        boxes.append((lo, np.maximum(hi - lo, 1e-9)))
    if (tri_count != 1).any():
        raise UsageError(f"every triangle must be in exactly one island; triangle {int(np.argmax(tri_count != 1))} "
                         f"is in {int(tri_count[np.argmax(tri_count != 1)])}")
    w = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
    aspect = np.array([b[1][0] / b[1][1] for b in boxes])
    scale = 1.0
    while True:
        sizes = [(min(1.0, np.sqrt(a * r) * scale) + 2 * padding, min(1.0, np.sqrt(a / r) * scale) + 2 * padding)
                 for a, r in zip(w, aspect)]
        placed = _guillotine_pack(sizes)
        if placed is not None:
            break
        scale *= 0.97
    out = uv.copy()
    for i, ((lo, ext), (x, y), (rw, rh)) in enumerate(zip(boxes, placed, sizes)):
        s = min((rw - 2 * padding) / ext[0], (rh - 2 * padding) / ext[1])
        # centre the island in its rectangle; image y runs down, v up
        ox = x + (rw - s * ext[0]) / 2
        oy = 1 - (y + rh) + (rh - s * ext[1]) / 2
        ids = owner == i
        out[ids] = (uv[ids] - lo) * s + np.array([ox, oy])
    return out


def _guillotine_pack(sizes: list[tuple[float, float]]) -> list[tuple[float, float]] | None:
    """Top-left corners (x, y down) of rectangles (w, h) packed into the unit square, largest area
    first, best short side fit, shorter-leftover-axis split; None when they do not fit."""
    eps = 1e-12
    free = [(0.0, 0.0, 1.0, 1.0)]
    out: list[tuple[float, float] | None] = [None] * len(sizes)
    for i in sorted(range(len(sizes)), key=lambda k: (-sizes[k][0] * sizes[k][1], k)):
        w, h = sizes[i]
        best = None
        for j, (fx, fy, fw, fh) in enumerate(free):
            if w <= fw + eps and h <= fh + eps:
                score = (min(fw - w, fh - h), max(fw - w, fh - h), fy, fx)
                if best is None or score < best[0]:
                    best = (score, j)
        if best is None:
            return None
        fx, fy, fw, fh = free.pop(best[1])
        out[i] = (fx, fy)
        rw, rh = fw - w, fh - h
        pieces = ([(fx + w, fy, rw, h), (fx, fy + h, fw, rh)] if rw < rh
                  else [(fx + w, fy, rw, fh), (fx, fy + h, w, rh)])
        free += [p for p in pieces if p[2] > eps and p[3] > eps]
    return out  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------- unwrap
def depth_map(camera: PinholeCamera, cam_vertices: np.ndarray, triangles: np.ndarray,
              max_side: int = 1024) -> tuple[np.ndarray, float]:
    """Z-buffer of a mesh seen by `camera`: camera-space vertices (V, 3), triangles (F, 3) ->
    (depth (h, w) mm, 0 where nothing is drawn; back faces culled, scale) at `scale` = h / H <= 1 of the
    camera's image, so that its longer side is at most `max_side`."""
    h, w = camera.image_size
    scale = min(1.0, max_side / max(h, w))
    size = (max(1, int(round(h * scale))), max(1, int(round(w * scale))))
    cam = torch.as_tensor(np.asarray(cam_vertices, dtype=np.float64))[None]
    screen = camera.camera_to_screen(cam)
    screen = torch.cat([screen[..., :2] * scale, screen[..., 2:]], -1)
    frags = rasterize(screen, torch.as_tensor(np.asarray(triangles, dtype=np.int64)), size, perspective=True,
                      cull_backfaces=True)
    return frags.depth[0].numpy(), scale


def unwrap_image(image: np.ndarray, camera: PinholeCamera, points: np.ndarray, facing: np.ndarray,
                 depth: np.ndarray, depth_scale: float, depth_tolerance: float = 3.0,
                 grazing: tuple[float, float] = (0.1, 0.45), edge_px: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Sample a photo at texels and say how much each sample can be trusted.

    image (H, W, C) float; points (K, 3) the texels' camera-space positions (mm); facing (K,) the
    cosine between each texel's normal and the direction to the camera; depth, depth_scale from
    `depth_map`. A texel's weight is 0 when it faces away, lies outside the image, is behind the
    z-buffer by more than `depth_tolerance` mm (occluded) or within `edge_px` pixels of the
    silhouette; it ramps from 0 to 1 as `facing` goes from grazing[0] to grazing[1]. Returns
    (colours (K, C) bilinear, weights (K,) in [0, 1]).
    """
    if image.ndim != 3:
        raise UsageError(f"image must have shape (H, W, C), got {image.shape}")
    if points.ndim != 2 or points.shape[1] != 3 or facing.shape != points.shape[:1]:
        raise UsageError(f"points must be (K, 3) and facing (K,), got {points.shape} and {facing.shape}")
    h, w = image.shape[:2]
    screen = camera.camera_to_screen(torch.as_tensor(points, dtype=torch.float64)[None])[0].numpy()
    u, v, z = screen[:, 0], screen[:, 1], screen[:, 2]
    dh, dw = depth.shape
    cover = depth > 0
    if edge_px > 0:
        from scipy.ndimage import minimum_filter

        cover = minimum_filter(cover, size=2 * edge_px + 1, mode="constant", cval=False)
    di = np.clip((v * depth_scale).astype(np.int64), 0, dh - 1)
    dj = np.clip((u * depth_scale).astype(np.int64), 0, dw - 1)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h) & (z > 0)
    zb = depth[di, dj]
    visible = inside & cover[di, dj] & (z <= zb + depth_tolerance)
    weight = np.clip((facing - grazing[0]) / (grazing[1] - grazing[0]), 0, 1) * visible
    return bilinear(image, u - 0.5, v - 0.5), weight.astype(np.float32)


def bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """image (H, W, C) at continuous (column x, row y) (K,) with texel centres at integers, clamped
    at the border -> (K, C) float32."""
    h, w = image.shape[:2]
    img = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    grid = torch.from_numpy(np.stack([(2 * np.asarray(x) + 1) / w - 1, (2 * np.asarray(y) + 1) / h - 1], -1)
                            .astype(np.float32))[None, None]
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, 0].t().contiguous().numpy()


def divide_shading(colors: np.ndarray, shading: np.ndarray, floor: float = 0.05) -> np.ndarray:
    """Albedo = colours / shading, (K, C) / (K, C); shading clamped below at `floor` so that dark,
    badly lit texels do not blow up; the result is clipped to [0, 1]."""
    return np.clip(colors / np.maximum(shading, floor), 0, 1)


def fill_by_correspondence(values: np.ndarray, weights: np.ndarray, correspondence: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Values and weights read through a texel correspondence: correspondence (K,) gives for each
    texel the index of the texel it copies (-1: none, weight 0). values (K, C), weights (K,)."""
    ok = correspondence >= 0
    src = np.where(ok, correspondence, 0)
    return values[src], np.where(ok, weights[src], 0).astype(weights.dtype)


def nearest_texels(points: np.ndarray, queries: np.ndarray, max_distance: float) -> np.ndarray:
    """For each query point (Q, 3) the index of the nearest of `points` (K, 3), -1 beyond
    `max_distance`: a texel correspondence from positions (e.g. mirrored ones)."""
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(points).query(queries, k=1, distance_upper_bound=max_distance, workers=-1)
    return np.where(np.isfinite(dist), idx, -1).astype(np.int64)


# ---------------------------------------------------------------------------------------- blending
@dataclass(frozen=True)
class TexelGrid:
    """A grid `factor` times coarser than the texture over the bounding box of a texel list:
    cell (K,) the cell of each texel; corners (K, 4) and bilinear (K, 4) the four cells and weights
    that interpolate the grid at each texel's centre (clamped at the border); shape (h, w)."""

    shape: tuple[int, int]
    factor: int
    cell: np.ndarray
    corners: np.ndarray
    bilinear: np.ndarray

    @classmethod
    def build(cls, texel: np.ndarray, size: int, factor: int = 4) -> "TexelGrid":
        """texel (K,) flat indices into a (size x size) map."""
        rows, cols = np.divmod(np.asarray(texel, dtype=np.int64), size)
        rows, cols = rows - rows.min(), cols - cols.min()
        h, w = int(rows.max() // factor + 1), int(cols.max() // factor + 1)
        # cell centres at texel coordinate (c + 0.5) * factor - 0.5
        fy = np.clip((rows + 0.5) / factor - 0.5, 0, h - 1)
        fx = np.clip((cols + 0.5) / factor - 0.5, 0, w - 1)
        y0, x0 = np.floor(fy).astype(np.int64), np.floor(fx).astype(np.int64)
        y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
        ay, ax = (fy - y0).astype(np.float32), (fx - x0).astype(np.float32)
        corners = np.stack([y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1], 1)
        weights = np.stack([(1 - ay) * (1 - ax), (1 - ay) * ax, ay * (1 - ax), ay * ax], 1)
        return cls((h, w), factor, (rows // factor) * w + cols // factor, corners, weights)

    def smooth(self, values: np.ndarray) -> np.ndarray:
        """A low-pass of texel values (K, C) at the grid's scale: each cell's mean over its texels in
        the list, interpolated back at the texels -> (K, C)."""
        cells = self.shape[0] * self.shape[1]
        count = np.maximum(np.bincount(self.cell, minlength=cells), 1)
        means = np.stack([np.bincount(self.cell, values[:, j], minlength=cells) / count
                          for j in range(values.shape[1])], 1)
        return self._interpolation() @ means

    def _interpolation(self, dtype=np.float64) -> scipy.sparse.csr_matrix:
        """(K, cells) sparse bilinear interpolation of the grid at the texels (4 weights a row), built
        on first use for each dtype: a sparse product is ~20x faster than gathering (K, 4, C) corner
        values."""
        key = f"_matrix_{np.dtype(dtype).name}"
        matrix = self.__dict__.get(key)
        if matrix is None:
            k = len(self.cell)
            matrix = scipy.sparse.csr_matrix(
                (self.bilinear.astype(dtype).ravel(), self.corners.ravel(), np.arange(0, 4 * k + 1, 4)),
                shape=(k, self.shape[0] * self.shape[1]))
            object.__setattr__(self, key, matrix)
        return matrix

    def _pull(self) -> scipy.sparse.csr_matrix:
        """(cells, K) float32 sparse: each cell's sum over its texels / factor^2, built on first use."""
        matrix = self.__dict__.get("_pull_matrix")
        if matrix is None:
            k = len(self.cell)
            matrix = scipy.sparse.csr_matrix(
                (np.full(k, 1.0 / self.factor**2, np.float32), self.cell, np.arange(k + 1)),
                shape=(k, self.shape[0] * self.shape[1])).T.tocsr()
            object.__setattr__(self, "_pull_matrix", matrix)
        return matrix


def _pull_to_grid(grid: "TexelGrid", values: np.ndarray, support: np.ndarray, weights: np.ndarray
                  ) -> np.ndarray:
    """The layers' texels averaged into the grid's cells: values (N, K, C), support and weights
    (N, K) -> (N, C + 2, cells) float32 holding value x support, support and weight, each summed
    over a cell's texels and divided by factor^2 (a full cell's mean)."""
    pull = grid._pull()
    return np.stack([(pull @ np.concatenate([v * s[:, None], s[:, None], w[:, None]], 1)).T
                     for v, s, w in zip(values, support, weights)])


def _finest_band(grid: "TexelGrid", values: np.ndarray, support: np.ndarray, weights: np.ndarray,
                 filled: np.ndarray, blended: np.ndarray) -> np.ndarray:
    """filled (N, cells, C), blended (cells, C) -> (K, C) float32: the grid's blend interpolated at
    each texel, plus each layer's detail above its own interpolated grid values, weighted by
    weight x support / the texel's sum of weights (where that is > 0)."""
    interp = grid._interpolation(np.float32)  # (K, cells)
    out = interp @ blended
    wsum = np.maximum(weights.sum(0), np.float32(1e-6))
    for v, s, w, layer in zip(values, support, weights, filled):
        f = w * s / wsum
        keep = f > 0
        out += np.multiply(f[:, None], v - interp @ layer, where=keep[:, None], out=np.zeros_like(v))
    return out.astype(np.float32, copy=False)


def multiband_blend(grid: TexelGrid, values: np.ndarray, support: np.ndarray, weights: np.ndarray,
                    levels: int | None = None) -> np.ndarray:
    """Blend N layers of texels without seams (Burt & Adelson's multi-band blending, with holes).

    values (N, K, C) on the texels of `grid`, layer i defined where support[i] (N, K) in [0, 1]
    is > 0 (filled elsewhere by pull-push: normalised convolution over a pyramid); weights (N, K)
    blending weights (normalised per texel and per level here). Each frequency band is blended
    with the weights blurred to that band's scale, so low frequencies meet smoothly over large
    distances while fine detail stays sharp. The finest band (above the grid's resolution) is
    blended on the texels with the weights as given, the others on the grid's pyramid. Returns
    (K, C) float32.
    """
    if values.ndim != 3 or support.shape != values.shape[:2] or weights.shape != values.shape[:2]:
        raise UsageError(f"values must be (N, K, C) and support, weights (N, K); got {values.shape}, "
                         f"{support.shape}, {weights.shape}")
    n, k, c = values.shape
    if k != len(grid.cell):
        raise UsageError(f"the grid has {len(grid.cell)} texels but the layers {k}")
    values = np.ascontiguousarray(values, dtype=np.float32)
    support = np.ascontiguousarray(support, dtype=np.float32)
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    h, w = grid.shape
    stack = _pull_to_grid(grid, values, support, weights)
    filled, blended = _pyramid_blend(torch.from_numpy(stack).reshape(n, c + 2, h, w), c,
                                     levels or max(1, int(np.log2(max(h, w))) - 1))
    return _finest_band(grid, values, support, weights,
                        filled.reshape(n, c, h * w).transpose(1, 2).contiguous().numpy(),
                        blended.reshape(c, h * w).t().contiguous().numpy())


def _pyramid_blend(stack: torch.Tensor, c: int, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """stack (N, C + 2, h, w): C channels of value x support, the support, the weight (each
    averaged from the texels). Returns (each layer filled by pull-push (N, C, h, w), the multi-band
    blend of the layers (C, h, w))."""
    _, _, h, w = stack.shape
    m = 2 ** (levels - 1)
    pyr = [F.pad(stack, (0, -(-w // m) * m - w, 0, -(-h // m) * m - h))]  # every level halves exactly
    for _ in range(levels - 1):
        pyr.append(F.avg_pool2d(pyr[-1], 2))
    out = None
    coarse = None
    for lvl in range(levels - 1, -1, -1):
        xs, s, wt = pyr[lvl][:, :c], pyr[lvl][:, c:c + 1], pyr[lvl][:, c + 1:]
        mean = xs / s.clamp_min(1e-8)
        if coarse is None:  # the coarsest level: holes take the layer's mean
            fallback = xs.sum((-1, -2), keepdim=True) / s.sum((-1, -2), keepdim=True).clamp_min(1e-8)
            filled = torch.where(s > 0, mean, fallback)
            band = filled
        else:
            up = F.interpolate(coarse, scale_factor=2.0, mode="bilinear", align_corners=False)
            a = (s * 4).clamp(0, 1)  # a cell a quarter covered is known
            filled = a * mean + (1 - a) * up
            band = filled - up
        layer = (wt * band).sum(0) / wt.sum(0).clamp_min(1e-6)
        out = layer if out is None else F.interpolate(out[None], scale_factor=2.0, mode="bilinear",
                                                      align_corners=False)[0] + layer
        coarse = filled
    return coarse[..., :h, :w], out[..., :h, :w]


def padding_gather(mask: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Texels to fill around islands so that bilinear and mip-mapped lookups show no seams: for each
    texel outside `mask` (S, S) bool within `radius` texels of it, (destination flat index (M,),
    source flat index (M,) of the nearest texel inside)."""
    from scipy import ndimage

    dist, (ri, ci) = ndimage.distance_transform_edt(~mask, return_indices=True)
    dst = np.flatnonzero((dist > 0) & (dist <= radius))
    src = (ri.reshape(-1)[dst] * mask.shape[1] + ci.reshape(-1)[dst])
    return dst, src
