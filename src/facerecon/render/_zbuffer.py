"""Z-buffer visibility: which triangle is nearest at each pixel centre (no gradients).

Two backends of the same algorithm, bit-identical on the same input:
- ``zbuffer_numba``: a numba kernel on CPU, triangle by triangle over its bounding box.
- ``zbuffer_torch``: vectorised torch over (triangle, pixel-in-bounding-box) pairs, for CUDA tensors.

The numba kernels of this package are serial on purpose: numba's OpenMP pool and torch's are two
separate runtimes whose spinning threads fight over the same cores; with both parallel, renders
took 10-100x longer whenever another process was busy.

Watertightness: vertex positions are snapped to 1/256 px (fixed point) and the edge functions are
evaluated in int64, so they are exact and a shared edge gives exactly opposite values in its two
triangles; the top-left fill rule then assigns a pixel centre lying exactly on a shared edge to
exactly one of them (no cracks, no double coverage).

Dropped triangles (never drawn): zero area after snapping; back-facing ones when culling; with
perspective, those with a vertex at depth <= near; those with a vertex beyond GUARD_BAND px of the
origin (far off-screen; the int64 arithmetic needs the bound).

Winding: a triangle counter-clockwise seen from the camera (the OBJ convention for an outward face)
has a negative signed area A = (x1-x0)(y2-y0) - (y1-y0)(x2-x0) in y-down pixel coordinates and is
front-facing.
The depth key is z (orthographic) or -1/z (perspective), interpolated linearly in screen space,
smaller = nearer; on equal keys the lower triangle id wins.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ._jit import njit

SUBPIXEL = 256
HALF = SUBPIXEL // 2
GUARD_BAND = float(1 << 20)
_CHUNK_PAIRS = 1 << 20  # (triangle, pixel) pairs per step of the torch backend: ~150 MB


@njit(cache=True, error_model="numpy", inline="always")
def _top_left_bias(xa, ya, xb, yb):
    """0 if the edge a->b (positive winding, y down) is a top or left edge, else -1."""
    dx = xb - xa
    dy = yb - ya
    if dy < 0 or (dy == 0 and dx > 0):
        return 0
    return -1


@njit(cache=True, error_model="numpy")
def _zbuffer_kernel(screen, triangles, perspective, cull, near, tid, zbuf):
    """screen (B,N,3) f8, triangles (F,3) i8 -> tid (B,H,W) i8 (-1 none), zbuf (B,H,W) f8 depth keys."""
    nb, height, width = tid.shape
    n = screen.shape[1]
    tid[:] = -1
    zbuf[:] = np.inf
    fx = np.empty(n, np.int64)
    fy = np.empty(n, np.int64)
    key = np.empty(n)
    usable = np.empty(n, np.bool_)
    for b in range(nb):
        for v in range(n):
            u, w, z = screen[b, v, 0], screen[b, v, 1], screen[b, v, 2]
            usable[v] = abs(u) <= GUARD_BAND and abs(w) <= GUARD_BAND and (z > near or not perspective)
            if usable[v]:
                fx[v] = np.int64(np.round(u * SUBPIXEL))
                fy[v] = np.int64(np.round(w * SUBPIXEL))
                key[v] = -1.0 / z if perspective else z
        for f in range(triangles.shape[0]):
            i0, i1, i2 = triangles[f, 0], triangles[f, 1], triangles[f, 2]
            if not (usable[i0] and usable[i1] and usable[i2]):
                continue
            area = (fx[i1] - fx[i0]) * (fy[i2] - fy[i0]) - (fy[i1] - fy[i0]) * (fx[i2] - fx[i0])
            if area == 0 or (cull and area > 0):
                continue
            if area < 0:  # store in positive winding
                i1, i2 = i2, i1
            x0, y0, x1, y1, x2, y2 = fx[i0], fy[i0], fx[i1], fy[i1], fx[i2], fy[i2]
            k0, k1, k2 = key[i0], key[i1], key[i2]
            farea = float(abs(area))
            bias0 = _top_left_bias(x1, y1, x2, y2)
            bias1 = _top_left_bias(x2, y2, x0, y0)
            bias2 = _top_left_bias(x0, y0, x1, y1)
            # pixel j is sampled at j*SUBPIXEL + HALF: the first j with sample >= min, the last <= max
            jmin = max(-((HALF - min(x0, x1, x2)) // SUBPIXEL), 0)
            jmax = min((max(x0, x1, x2) - HALF) // SUBPIXEL, width - 1)
            imin = max(-((HALF - min(y0, y1, y2)) // SUBPIXEL), 0)
            imax = min((max(y0, y1, y2) - HALF) // SUBPIXEL, height - 1)
            for i in range(imin, imax + 1):
                py = i * SUBPIXEL + HALF
                for j in range(jmin, jmax + 1):
                    px = j * SUBPIXEL + HALF
                    w0 = (x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)
                    if w0 + bias0 < 0:
                        continue
                    w1 = (x0 - x2) * (py - y2) - (y0 - y2) * (px - x2)
                    if w1 + bias1 < 0:
                        continue
                    w2 = (x1 - x0) * (py - y0) - (y1 - y0) * (px - x0)
                    if w2 + bias2 < 0:
                        continue
                    z = (float(w0) * k0 + float(w1) * k1 + float(w2) * k2) / farea
                    if z < zbuf[b, i, j]:
                        zbuf[b, i, j] = z
                        tid[b, i, j] = f


def zbuffer_numba(
    screen: np.ndarray, triangles: np.ndarray, height: int, width: int, perspective: bool, cull: bool, near: float
) -> np.ndarray:
    """screen (B,N,3) f8, triangles (F,3) i8 -> triangle id (B,H,W) i8, -1 = background."""
    tid = np.empty((screen.shape[0], height, width), np.int64)
    zbuf = np.empty((screen.shape[0], height, width), np.float64)
    _zbuffer_kernel(screen, triangles, perspective, cull, near, tid, zbuf)
    return tid


def _ceil_div(a: Tensor, d: int) -> Tensor:
    return -torch.div(-a, d, rounding_mode="floor")


def zbuffer_torch(
    screen: Tensor, triangles: Tensor, height: int, width: int, perspective: bool, cull: bool, near: float
) -> Tensor:
    """The same as zbuffer_numba in torch, on the tensors' device. (B,N,3), (F,3) -> (B,H,W) long.

    Works in chunks of (triangle, pixel) pairs; only the chunk boundaries (B*F ints) visit the CPU.
    """
    nb, nf = screen.shape[0], triangles.shape[0]
    dev = screen.device
    g = screen.detach().double()[:, triangles]  # (B,F,3,3)
    ok = (g[..., :2].abs() <= GUARD_BAND).all(-1).all(-1)
    if perspective:
        ok &= (g[..., 2] > near).all(-1)
    g = torch.where(ok[..., None, None], g, torch.zeros_like(g))
    xy = torch.round(g[..., :2] * SUBPIXEL).long()  # (B,F,3,2)
    x, y = xy[..., 0], xy[..., 1]
    area = (x[..., 1] - x[..., 0]) * (y[..., 2] - y[..., 0]) - (y[..., 1] - y[..., 0]) * (x[..., 2] - x[..., 0])
    ok &= area != 0
    if cull:
        ok &= area < 0
    order = torch.where(
        (area < 0)[..., None], torch.tensor([0, 2, 1], device=dev), torch.tensor([0, 1, 2], device=dev)
    )
    x, y = x.gather(-1, order), y.gather(-1, order)
    z = g[..., 2].gather(-1, order)
    key = -1.0 / torch.where(ok[..., None], z, torch.ones_like(z)) if perspective else z
    area = area.abs().double()
    x0 = _ceil_div(x.min(-1).values - HALF, SUBPIXEL).clamp_min(0)
    x1 = torch.div(x.max(-1).values - HALF, SUBPIXEL, rounding_mode="floor").clamp_max(width - 1)
    y0 = _ceil_div(y.min(-1).values - HALF, SUBPIXEL).clamp_min(0)
    y1 = torch.div(y.max(-1).values - HALF, SUBPIXEL, rounding_mode="floor").clamp_max(height - 1)
    bw, bh = (x1 - x0 + 1).clamp_min(0), (y1 - y0 + 1).clamp_min(0)
    count = torch.where(ok, bw * bh, torch.zeros_like(bw)).reshape(-1)  # (B*F,) in (b, f) order

    nxt = [1, 2, 0]
    prv = [2, 0, 1]
    dx, dy = x[..., nxt] - x, y[..., nxt] - y  # edge k: vertex k -> k+1
    bias = torch.where((dy < 0) | ((dy == 0) & (dx > 0)), 0, -1)  # (B,F,3) per edge k

    zbuf = torch.full((nb * height * width,), float("inf"), dtype=torch.float64, device=dev)
    tid = torch.full((nb * height * width,), -1, dtype=torch.long, device=dev)
    x, y, key, bias = (t.reshape(nb * nf, 3) for t in (x, y, key, bias))
    x0, y0, bw, area = (t.reshape(nb * nf) for t in (x0, y0, bw, area))
    ends = torch.cumsum(count, 0).cpu().numpy()
    start_tri, start_pair = 0, 0
    while start_tri < nb * nf:
        # the consecutive triangles whose pairs fit in one chunk (at least one triangle)
        stop = max(start_tri + 1, int(np.searchsorted(ends, start_pair + _CHUNK_PAIRS, side="right")))
        ids = torch.arange(start_tri, stop, device=dev)
        cnt = count[start_tri:stop]
        rep = torch.repeat_interleave(ids, cnt)
        local = torch.arange(rep.numel(), device=dev) - torch.repeat_interleave(torch.cumsum(cnt, 0) - cnt, cnt)
        px = (x0[rep] + local % bw[rep]) * SUBPIXEL + HALF
        py = (y0[rep] + torch.div(local, bw[rep].clamp_min(1), rounding_mode="floor")) * SUBPIXEL + HALF
        xr, yr = x[rep], y[rep]
        # weight of vertex k = edge function of the opposite edge (k+1 -> k+2), as in the numba kernel
        w = (xr[:, prv] - xr[:, nxt]) * (py[:, None] - yr[:, nxt]) - (yr[:, prv] - yr[:, nxt]) * (
            px[:, None] - xr[:, nxt]
        )
        inside = ((w + bias[rep][:, nxt]) >= 0).all(-1)
        wf = w.double()
        kr = key[rep]
        z = (wf[:, 0] * kr[:, 0] + wf[:, 1] * kr[:, 1] + wf[:, 2] * kr[:, 2]) / area[rep]
        pix = torch.div(rep, nf, rounding_mode="floor") * (height * width) + (py // SUBPIXEL) * width + px // SUBPIXEL
        pix, z, f = pix[inside], z[inside], (rep % nf)[inside]
        cz = torch.full_like(zbuf, float("inf")).scatter_reduce(0, pix, z, "amin")
        win = z == cz[pix]
        ct = torch.full_like(tid, nf).scatter_reduce(0, pix[win], f[win], "amin")
        better = cz < zbuf
        zbuf = torch.where(better, cz, zbuf)
        tid = torch.where(better, ct, tid)
        start_tri, start_pair = stop, ends[stop - 1]
    return tid.reshape(nb, height, width)
