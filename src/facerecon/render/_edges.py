"""Find where silhouette edges cross between neighbouring pixel centres (no gradients), for the
antialias.

A silhouette edge is a boundary edge or one whose two triangles face opposite ways (or whose other
triangle cannot be drawn). Each is handled along one axis only, the one it is closer to
perpendicular to (as in nvdiffrast): horizontal pixel pairs for steep edges, vertical for flat ones.

1. Candidates: every silhouette edge marks the pixel pairs whose connecting segment it crosses.
2. Events: for a marked pair with different triangle ids, start in the nearer pixel's triangle
   (background is farthest) and walk across the mesh along the segment toward the other pixel
   centre, through triangles facing the same way, until leaving through a silhouette edge. The walk
   makes this work when triangles are smaller than pixels (the triangle that owns the silhouette edge
   often covers no pixel centre); it stops without an event when it reaches the other centre first.

An event is (pin: pixel on the near side, pout: the other pixel, va/vb: the edge's vertices as flat
indices into B*N, axis 0 = horizontal pair / 1 = vertical pair, in_side: the crossing lies in pin's
half). Two backends of the same computation: numba (CPU) and vectorised torch (other devices).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ._jit import njit

MAX_WALK = 16  # triangles crossed between two pixel centres before giving up


@njit(cache=True, error_model="numpy")
def _facing(screen, triangles, perspective, near, out):
    """out (B,F) i1: -1 front-facing (negative signed area), +1 back-facing, 0 degenerate/undrawable."""
    nb, nf = out.shape
    for bf in range(nb * nf):
        b = bf // nf
        f = bf % nf
        v0, v1, v2 = triangles[f, 0], triangles[f, 1], triangles[f, 2]
        if perspective and not (screen[b, v0, 2] > near and screen[b, v1, 2] > near and screen[b, v2, 2] > near):
            out[b, f] = 0
            continue
        x0, y0 = screen[b, v0, 0], screen[b, v0, 1]
        area = (screen[b, v1, 0] - x0) * (screen[b, v2, 1] - y0) - (screen[b, v1, 1] - y0) * (screen[b, v2, 0] - x0)
        out[b, f] = -1 if area < 0 else (1 if area > 0 else 0)


@njit(cache=True, error_model="numpy", inline="always")
def _is_silhouette(b, f, k, adj, facing):
    n = adj[f, k]
    return n < 0 or facing[b, n] != facing[b, f] or facing[b, n] == 0


@njit(cache=True, error_model="numpy")
def _mark_candidates(screen, triangles, adj, facing, code):
    """code (B,H,W) u1 |= 1 (pair with the right neighbour) / 2 (with the lower one) if a silhouette
    edge crosses the segment between the two centres (both neighbours when it passes through one)."""
    nb, height, width = code.shape
    for b in range(nb):
        for f in range(triangles.shape[0]):
            if facing[b, f] == 0:
                continue
            for k in range(3):
                if not _is_silhouette(b, f, k, adj, facing):
                    continue
                va, vb = triangles[f, k], triangles[f, (k + 1) % 3]
                x0, y0, x1, y1 = screen[b, va, 0], screen[b, va, 1], screen[b, vb, 0], screen[b, vb, 1]
                steep = abs(y1 - y0) >= abs(x1 - x0)
                if x0 == x1 and y0 == y1:
                    continue
                # along = coordinate varying along the pixel pair; across = the scanline coordinate
                a0, a1, c0, c1 = (x0, x1, y0, y1) if steep else (y0, y1, x0, x1)
                lines = height if steep else width
                extent = width if steep else height
                lo = max(math.ceil(min(c0, c1) - 0.5), 0)
                hi = min(math.floor(max(c0, c1) - 0.5), lines - 1)
                for line in range(lo, hi + 1):
                    c = line + 0.5
                    m = a0 + (c - c0) * (a1 - a0) / (c1 - c0) - 0.5
                    first = math.floor(m)
                    for p in range(first - 1 if m == first else first, first + 1):
                        if 0 <= p < extent - 1:
                            if steep:
                                code[b, line, p] |= 1
                            else:
                                code[b, p, line] |= 2


@njit(cache=True, error_model="numpy", inline="always")
def _crossing(screen, b, va, vb, axis, c):
    """(crosses, along-coordinate) of edge va-vb with the line {across-coordinate = c}."""
    a0, a1 = screen[b, va, axis], screen[b, vb, axis]
    c0, c1 = screen[b, va, 1 - axis], screen[b, vb, 1 - axis]
    d0, d1 = c0 - c, c1 - c
    if d0 == d1 or (d0 > 0 and d1 > 0) or (d0 < 0 and d1 < 0):
        return False, 0.0
    return True, a0 + (c - c0) * (a1 - a0) / (c1 - c0)


@njit(cache=True, error_model="numpy")
def _pair(b, ia, ja, ib, jb, axis, tid, depth, screen, triangles, adj, facing):
    """The event of one pixel pair: (found, pin, pout, va, vb, in_side)."""
    nb, height, width = tid.shape
    n = screen.shape[1]
    none = (False, 0, 0, 0, 0, False)
    ta = tid[b, ia, ja]
    tb = tid[b, ib, jb]
    if ta == tb:
        return none
    if tb < 0 or (ta >= 0 and depth[b, ia, ja] <= depth[b, ib, jb]):
        cur, iin, jin, iout, jout = ta, ia, ja, ib, jb
    else:
        cur, iin, jin, iout, jout = tb, ib, jb, ia, ja
    if facing[b, cur] == 0:
        return none
    c = (iin + 0.5) if axis == 0 else (jin + 0.5)
    start = (jin + 0.5) if axis == 0 else (iin + 0.5)
    direction = (jout - jin) if axis == 0 else (iout - iin)
    prev = -1
    for _ in range(MAX_WALK):
        best_t = -np.inf
        best_k = -1
        for k in range(3):
            if prev >= 0 and adj[cur, k] == prev:
                continue
            ok, x = _crossing(screen, b, triangles[cur, k], triangles[cur, (k + 1) % 3], axis, c)
            if ok and (x - start) * direction > best_t:
                best_t = (x - start) * direction
                best_k = k
        if best_k < 0 or best_t < 0.0 or best_t > 1.0:
            return none
        if _is_silhouette(b, cur, best_k, adj, facing):
            va, vb = triangles[cur, best_k], triangles[cur, (best_k + 1) % 3]
            da = abs(screen[b, vb, axis] - screen[b, va, axis])
            dc = abs(screen[b, vb, 1 - axis] - screen[b, va, 1 - axis])
            if dc < da:
                return none
            return (True, (b * height + iin) * width + jin, (b * height + iout) * width + jout, b * n + va, b * n + vb,
                    best_t < 0.5)
        prev = cur
        cur = adj[cur, best_k]
    return none


@njit(cache=True, error_model="numpy")
def _collect_events(tid, depth, screen, triangles, adj, facing, code, pin, pout, va, vb, axis, in_side):
    """Test every candidate pair of `code`, store the events found; -> how many."""
    nb, height, width = tid.shape
    e = 0
    for b in range(nb):
        for i in range(height):
            for j in range(width):
                for ax in range(2):
                    if not (code[b, i, j] >> ax) & 1:
                        continue
                    ib, jb = (i, j + 1) if ax == 0 else (i + 1, j)
                    found, p_in, p_out, e0, e1, near_in = _pair(b, i, j, ib, jb, ax, tid, depth, screen, triangles,
                                                                adj, facing)
                    if found:
                        pin[e], pout[e], va[e], vb[e], axis[e], in_side[e] = p_in, p_out, e0, e1, ax, near_in
                        e += 1
    return e


def edge_events_numba(tid, depth, screen, triangles, adj, perspective, near):
    """numpy inputs: tid (B,H,W) i8, depth (B,H,W) f8, screen (B,N,3) f8, triangles (F,3) i8,
    adj (F,3) i8 -> dict of event arrays (see module docstring)."""
    nb, height, width = tid.shape
    facing = np.empty((nb, triangles.shape[0]), np.int8)
    _facing(screen, triangles, perspective, near, facing)
    code = np.zeros((nb, height, width), np.uint8)
    _mark_candidates(screen, triangles, adj, facing, code)
    most = int(np.count_nonzero(code & 1) + np.count_nonzero(code & 2))
    out = {
        "pin": np.empty(most, np.int64),
        "pout": np.empty(most, np.int64),
        "va": np.empty(most, np.int64),
        "vb": np.empty(most, np.int64),
        "axis": np.empty(most, np.int8),
        "in_side": np.empty(most, np.bool_),
    }
    e = _collect_events(tid, depth, screen, triangles, adj, facing, code, out["pin"], out["pout"], out["va"],
                        out["vb"], out["axis"], out["in_side"])
    return {key: value[:e] for key, value in out.items()}


# ---------------------------------------------------------------- torch twin


def _facing_torch(screen: Tensor, triangles: Tensor, perspective: bool, near: float) -> Tensor:
    g = screen[:, triangles]  # (B,F,3,3)
    area = (g[..., 1, 0] - g[..., 0, 0]) * (g[..., 2, 1] - g[..., 0, 1]) - (g[..., 1, 1] - g[..., 0, 1]) * (
        g[..., 2, 0] - g[..., 0, 0]
    )
    facing = torch.sign(area).to(torch.int8)
    if perspective:
        facing = torch.where((g[..., 2] > near).all(-1), facing, torch.zeros_like(facing))
    return facing


def _silhouette_torch(adj: Tensor, facing: Tensor) -> Tensor:
    """(B,F,3) bool, as _is_silhouette."""
    nb = facing.shape[0]
    nbr = torch.gather(facing, 1, adj.clamp_min(0).reshape(1, -1).expand(nb, -1)).reshape(nb, -1, 3)
    return (adj[None] < 0) | (nbr != facing[..., None]) | (nbr == 0)


def _mark_candidates_torch(screen, triangles, sil, facing, shape) -> Tensor:
    """(B,H,W,2) bool candidates, as _mark_candidates."""
    nb, height, width = shape
    dev = screen.device
    marks = torch.zeros(nb, height, width, 2, dtype=torch.bool, device=dev)
    b, f, k = torch.nonzero(sil & (facing != 0)[..., None], as_tuple=True)
    va, vb = triangles[f, k], triangles[f, (k + 1) % 3]
    p0, p1 = screen[b, va, :2], screen[b, vb, :2]
    steep = (p1[:, 1] - p0[:, 1]).abs() >= (p1[:, 0] - p0[:, 0]).abs()
    keep = (p0 != p1).any(-1)
    for ax in (0, 1):
        sel = keep & (steep if ax == 0 else ~steep)
        bb, q0, q1 = b[sel], p0[sel], p1[sel]
        a0, a1, c0, c1 = q0[:, ax], q1[:, ax], q0[:, 1 - ax], q1[:, 1 - ax]
        lines, extent = (height, width) if ax == 0 else (width, height)
        lo = torch.ceil(torch.minimum(c0, c1) - 0.5).clamp_min(0).long()
        hi = torch.floor(torch.maximum(c0, c1) - 0.5).clamp_max(lines - 1).long()
        cnt = (hi - lo + 1).clamp_min(0)
        rep = torch.repeat_interleave(torch.arange(len(cnt), device=dev), cnt)
        line = lo[rep] + torch.arange(len(rep), device=dev) - torch.repeat_interleave(torch.cumsum(cnt, 0) - cnt, cnt)
        c = line.double() + 0.5
        m = a0[rep] + (c - c0[rep]) * (a1[rep] - a0[rep]) / (c1[rep] - c0[rep]) - 0.5
        first = torch.floor(m)
        for p, ok in ((first, torch.ones_like(m, dtype=torch.bool)), (first - 1, m == first)):
            p = p.long()
            ok = ok & (p >= 0) & (p < extent - 1)
            i, j = (line, p) if ax == 0 else (p, line)
            marks[bb[rep][ok], i[ok], j[ok], ax] = True
    return marks


def edge_events_torch(
    tid: Tensor, depth: Tensor, screen: Tensor, triangles: Tensor, adj: Tensor, perspective: bool, near: float
) -> dict[str, Tensor]:
    """The same as edge_events_numba, vectorised in torch on the tensors' device (no gradients)."""
    nb, height, width = tid.shape
    n = screen.shape[1]
    dev = tid.device
    screen = screen.detach().double()
    depth = depth.detach().double()
    facing = _facing_torch(screen, triangles, perspective, near)
    sil = _silhouette_torch(adj, facing)
    marks = _mark_candidates_torch(screen, triangles, sil, facing, (nb, height, width))
    flat_tid, flat_depth = tid.reshape(-1), depth.reshape(-1)
    parts = []
    for ax in (0, 1):
        b, i, j = torch.nonzero(marks[..., ax], as_tuple=True)
        pa = (b * height + i) * width + j
        pb = pa + (1 if ax == 0 else width)
        ta, tb = flat_tid[pa], flat_tid[pb]
        a_front = (tb < 0) | ((ta >= 0) & (flat_depth[pa] <= flat_depth[pb]))
        cur = torch.where(a_front, ta, tb)
        active = (ta != tb) & (facing[b, cur.clamp_min(0)] != 0)
        p_in, p_out = torch.where(a_front, pa, pb), torch.where(a_front, pb, pa)
        rem_in, rem_out = p_in % (height * width), p_out % (height * width)
        i_in, j_in = torch.div(rem_in, width, rounding_mode="floor"), rem_in % width
        i_out, j_out = torch.div(rem_out, width, rounding_mode="floor"), rem_out % width
        c = ((i_in if ax == 0 else j_in).double() + 0.5)[:, None]
        start = ((j_in if ax == 0 else i_in).double() + 0.5)[:, None]
        direction = ((j_out - j_in) if ax == 0 else (i_out - i_in)).double()[:, None]
        prev = torch.full_like(cur, -1)
        found = torch.zeros_like(active)
        edge_a, edge_b, t_hit = torch.zeros_like(cur), torch.zeros_like(cur), torch.zeros(len(cur), device=dev).double()
        rows = torch.arange(len(cur), device=dev)
        for _ in range(MAX_WALK):
            if not bool(active.any()):
                break
            cs = cur.clamp_min(0)
            v0 = triangles[cs]
            v1 = v0[:, [1, 2, 0]]
            q0, q1 = screen[b[:, None], v0], screen[b[:, None], v1]  # (E,3,3)
            a0, a1, c0, c1 = q0[..., ax], q1[..., ax], q0[..., 1 - ax], q1[..., 1 - ax]
            d0, d1 = c0 - c, c1 - c
            ok = ~((d0 == d1) | ((d0 > 0) & (d1 > 0)) | ((d0 < 0) & (d1 < 0)))
            ok &= ~((prev[:, None] >= 0) & (adj[cs] == prev[:, None]))
            denom = torch.where(ok, c1 - c0, torch.ones_like(c0))
            t = torch.where(ok, (a0 + (c - c0) * (a1 - a0) / denom - start) * direction, -math.inf)
            best_t, best_k = t.max(1)  # first maximum, as the strict > of the numba loop
            active &= (best_t >= 0) & (best_t <= 1)
            hit = active & sil[b, cs, best_k]
            steep_ok = (c1 - c0).abs()[rows, best_k] >= (a1 - a0).abs()[rows, best_k]
            found |= hit & steep_ok
            edge_a = torch.where(hit, v0[rows, best_k], edge_a)
            edge_b = torch.where(hit, v1[rows, best_k], edge_b)
            t_hit = torch.where(hit, best_t, t_hit)
            active &= ~hit
            prev = torch.where(active, cs, prev)
            cur = torch.where(active, adj[cs, best_k], cur)
        parts.append(
            {
                "pin": p_in[found],
                "pout": p_out[found],
                "va": (b * n + edge_a)[found],
                "vb": (b * n + edge_b)[found],
                "axis": torch.full((int(found.sum()),), ax, dtype=torch.int8, device=dev),
                "in_side": (t_hit < 0.5)[found],
            }
        )
    return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
