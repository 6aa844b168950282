"""CPU fast paths: the per-pixel and per-face differentiable ops as numba kernels with hand-written
backward passes, wrapped in torch.autograd.Function. Each has a plain-torch twin in the public
module that uses it (raster._barycentrics_torch, interpolate._interpolate_torch,
shading._vertex_normals_torch), which other devices use and the tests compare against.

Kernels take the caller's dtype (float32 or float64), compute in float64 and write the caller's
dtype; gradients are accumulated in float64. They are serial, like all kernels here (see _zbuffer).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import torch
from torch import Tensor

from facerecon.errors import RenderError

from ._jit import njit

_TINY = 1e-30
# True (inside `torch_kernels()`) makes CPU tensors take the plain-torch twins, the path of other devices
_TORCH_KERNELS: ContextVar[bool] = ContextVar("facerecon_torch_kernels", default=False)


def use_numba(t: Tensor) -> bool:
    """Whether `t`'s computations go through the numba kernels (CPU) or the torch twins."""
    return t.device.type == "cpu" and not _TORCH_KERNELS.get()


@contextmanager
def torch_kernels() -> Iterator[None]:
    """Within this block (in this thread or asyncio task only), CPU tensors take the plain-torch
    twins instead of the numba kernels.

    For one-shot renders (a texture bake, an overlay): there the numba kernels' first use in a
    process costs about 0.2 s of numba start-up (loading its CPU target and the cached kernels),
    more than the render itself, and a warm kernel runs no faster than torch's on two threads
    (a fast-mode save of the astronaut: 0.31-0.38 s with warm kernels, 0.33-0.43 s with torch).
    Fits, which render many times and need the hand-written backward passes, keep the kernels.
    The tests use it to compare both paths.
    """
    token = _TORCH_KERNELS.set(True)
    try:
        yield
    finally:
        _TORCH_KERNELS.reset(token)


def check_indices(index: Tensor, size: int, what: str) -> None:
    """Raise RenderError unless every entry of `index` is in [0, size): the kernels do not check."""
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= size):
        raise RenderError(f"{what} must be in [0, {size}), got [{int(index.min())}, {int(index.max())}]")


def _np(t: Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


# ---------------------------------------------------------------- barycentrics


@njit(cache=True, error_model="numpy", inline="always")
def _pixel_centre(p, height, width):
    # floor((p + 0.5) / n) in floating point: exact, since (p + 0.5) / n is never within rounding
    # error of an integer, and much cheaper than two int64 divisions
    b = np.int64(np.floor((p + 0.5) * (1.0 / (height * width))))
    rem = p - b * height * width
    i = np.int64(np.floor((rem + 0.5) * (1.0 / width)))
    return b, (rem - i * width) + 0.5, i + 0.5


@njit(cache=True, error_model="numpy")
def _bary_fwd(screen, tris, pix, tri, height, width, perspective, bary, depth):
    for k in range(pix.shape[0]):
        b, px, py = _pixel_centre(pix[k], height, width)
        f = tri[k]
        r0x = screen[b, tris[f, 0], 0] - px
        r0y = screen[b, tris[f, 0], 1] - py
        r1x = screen[b, tris[f, 1], 0] - px
        r1y = screen[b, tris[f, 1], 1] - py
        r2x = screen[b, tris[f, 2], 0] - px
        r2y = screen[b, tris[f, 2], 1] - py
        w0 = r1x * r2y - r1y * r2x
        w1 = r2x * r0y - r2y * r0x
        w2 = r0x * r1y - r0y * r1x
        z0, z1, z2 = screen[b, tris[f, 0], 2], screen[b, tris[f, 1], 2], screen[b, tris[f, 2], 2]
        if perspective:
            q0, q1, q2 = w0 / z0, w1 / z1, w2 / z2
            s = q0 + q1 + q2
            if not abs(s) > _TINY:
                s = _TINY
            bary[k, 0], bary[k, 1], bary[k, 2] = q0 / s, q1 / s, q2 / s
            depth[k] = (w0 + w1 + w2) / s
        else:
            a = w0 + w1 + w2
            if not abs(a) > _TINY:
                a = _TINY
            bary[k, 0], bary[k, 1], bary[k, 2] = w0 / a, w1 / a, w2 / a
            depth[k] = (w0 * z0 + w1 * z1 + w2 * z2) / a


@njit(cache=True, error_model="numpy")
def _bary_bwd(screen, tris, pix, tri, height, width, perspective, gbary, gdepth, g):
    for k in range(pix.shape[0]):
        b, px, py = _pixel_centre(pix[k], height, width)
        f = tri[k]
        v0, v1, v2 = tris[f, 0], tris[f, 1], tris[f, 2]
        r0x, r0y, z0 = screen[b, v0, 0] - px, screen[b, v0, 1] - py, screen[b, v0, 2]
        r1x, r1y, z1 = screen[b, v1, 0] - px, screen[b, v1, 1] - py, screen[b, v1, 2]
        r2x, r2y, z2 = screen[b, v2, 0] - px, screen[b, v2, 1] - py, screen[b, v2, 2]
        w0 = r1x * r2y - r1y * r2x
        w1 = r2x * r0y - r2y * r0x
        w2 = r0x * r1y - r0y * r1x
        gb0, gb1, gb2, gd = gbary[k, 0], gbary[k, 1], gbary[k, 2], gdepth[k]
        if perspective:
            q0, q1, q2 = w0 / z0, w1 / z1, w2 / z2
            s = q0 + q1 + q2
            if not abs(s) > _TINY:
                continue
            d = (w0 + w1 + w2) / s
            common = (gb0 * q0 + gb1 * q1 + gb2 * q2) / s + gd * d
            gq0, gq1, gq2 = (gb0 - common) / s, (gb1 - common) / s, (gb2 - common) / s
            gw0, gw1, gw2 = gq0 / z0 + gd / s, gq1 / z1 + gd / s, gq2 / z2 + gd / s
            g[b, v0, 2] -= gq0 * q0 / z0
            g[b, v1, 2] -= gq1 * q1 / z1
            g[b, v2, 2] -= gq2 * q2 / z2
        else:
            a = w0 + w1 + w2
            if not abs(a) > _TINY:
                continue
            l0, l1, l2 = w0 / a, w1 / a, w2 / a
            gl0, gl1, gl2 = gb0 + gd * z0, gb1 + gd * z1, gb2 + gd * z2
            common = gl0 * l0 + gl1 * l1 + gl2 * l2
            gw0, gw1, gw2 = (gl0 - common) / a, (gl1 - common) / a, (gl2 - common) / a
            g[b, v0, 2] += gd * l0
            g[b, v1, 2] += gd * l1
            g[b, v2, 2] += gd * l2
        # w0 = r1 x r2, w1 = r2 x r0, w2 = r0 x r1 (2D cross products); r = vertex - pixel centre
        g[b, v0, 0] += gw1 * -r2y + gw2 * r1y
        g[b, v0, 1] += gw1 * r2x - gw2 * r1x
        g[b, v1, 0] += gw0 * r2y - gw2 * r0y
        g[b, v1, 1] += -gw0 * r2x + gw2 * r0x
        g[b, v2, 0] += -gw0 * r1y + gw1 * r0y
        g[b, v2, 1] += gw0 * r1x - gw1 * r0x


class BarycentricsFunction(torch.autograd.Function):
    """(screen (B,N,3), triangles (F,3), pix (K,), tri (K,), H, W, perspective) -> bary (K,3), depth (K,)."""

    @staticmethod
    def forward(ctx, screen, triangles, pix, tri, height, width, perspective):
        s, t, p, f = _np(screen), _np(triangles.long()), _np(pix), _np(tri)
        k = p.shape[0]
        bary = np.empty((k, 3), s.dtype)
        depth = np.empty(k, s.dtype)
        _bary_fwd(s, t, p, f, height, width, perspective, bary, depth)
        ctx.save_for_backward(screen, triangles, pix, tri)
        ctx.args = (height, width, perspective)
        return torch.from_numpy(bary), torch.from_numpy(depth)

    @staticmethod
    def backward(ctx, gbary, gdepth):
        screen, triangles, pix, tri = ctx.saved_tensors
        height, width, perspective = ctx.args
        g = np.zeros(tuple(screen.shape), np.float64)
        _bary_bwd(_np(screen), _np(triangles.long()), _np(pix), _np(tri), height, width, perspective,
                  _np(gbary.to(screen.dtype)), _np(gdepth.to(screen.dtype)), g)
        return torch.from_numpy(g).to(screen.dtype), None, None, None, None, None, None


# ---------------------------------------------------------------- interpolation


@njit(cache=True, error_model="numpy")
def _interp_fwd(attr, tris, tri, abatch, bary, out):
    """out (M,K,C): M = 1 uses attribute batch abatch[k]; M > 1 uses attribute batch m."""
    m_count, k_count, ch = out.shape
    for k in range(k_count):
        f = tri[k]
        v0, v1, v2 = tris[f, 0], tris[f, 1], tris[f, 2]
        b0, b1, b2 = bary[k, 0], bary[k, 1], bary[k, 2]
        for m in range(m_count):
            a = abatch[k] if m_count == 1 else m
            for c in range(ch):
                out[m, k, c] = b0 * attr[a, v0, c] + b1 * attr[a, v1, c] + b2 * attr[a, v2, c]


@njit(cache=True, error_model="numpy")
def _interp_bwd(attr, tris, tri, abatch, bary, gout, ga, gbary):
    m_count, k_count, ch = gout.shape
    for k in range(k_count):
        f = tri[k]
        v0, v1, v2 = tris[f, 0], tris[f, 1], tris[f, 2]
        b0, b1, b2 = bary[k, 0], bary[k, 1], bary[k, 2]
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        for m in range(m_count):
            a = abatch[k] if m_count == 1 else m
            for c in range(ch):
                g = gout[m, k, c]
                ga[a, v0, c] += b0 * g
                ga[a, v1, c] += b1 * g
                ga[a, v2, c] += b2 * g
                s0 += g * attr[a, v0, c]
                s1 += g * attr[a, v1, c]
                s2 += g * attr[a, v2, c]
        gbary[k, 0], gbary[k, 1], gbary[k, 2] = s0, s1, s2


class InterpolateFunction(torch.autograd.Function):
    """(attributes (A,N,C), triangles (F,3), tri (K,), abatch (K,), bary (K,3), broadcast) -> (M,K,C).

    M = A when `broadcast` (every attribute set on the same pixels), else 1 (pixel k reads set
    abatch[k]). attributes and bary share a dtype.
    """

    @staticmethod
    def forward(ctx, attributes, triangles, tri, abatch, bary, broadcast):
        m = attributes.shape[0] if broadcast else 1
        a, t, f, ab, br = _np(attributes), _np(triangles.long()), _np(tri), _np(abatch), _np(bary)
        out = np.empty((m, tri.shape[0], attributes.shape[2]), a.dtype)
        _interp_fwd(a, t, f, ab, br, out)
        ctx.save_for_backward(attributes, triangles, tri, abatch, bary)
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, gout):
        attributes, triangles, tri, abatch, bary = ctx.saved_tensors
        gattr = np.zeros(tuple(attributes.shape), np.float64)
        gbary = np.empty((tri.shape[0], 3), np.float64)
        _interp_bwd(_np(attributes), _np(triangles.long()), _np(tri), _np(abatch), _np(bary),
                    _np(gout.to(attributes.dtype)), gattr, gbary)
        ga = torch.from_numpy(gattr).to(attributes.dtype)
        return ga, None, None, None, torch.from_numpy(gbary).to(bary.dtype), None


# ---------------------------------------------------------------- vertex normals


@njit(cache=True, error_model="numpy", inline="always")
def _face_edges(verts, b, v0, v1, v2):
    """The edge vectors a = v1 - v0 and b = v2 - v0 of a face, as six scalars."""
    return (verts[b, v1, 0] - verts[b, v0, 0], verts[b, v1, 1] - verts[b, v0, 1], verts[b, v1, 2] - verts[b, v0, 2],
            verts[b, v2, 0] - verts[b, v0, 0], verts[b, v2, 1] - verts[b, v0, 1], verts[b, v2, 2] - verts[b, v0, 2])


@njit(cache=True, error_model="numpy")
def _normals_fwd(verts, tris, summed, normals, eps):
    nb, n = verts.shape[0], verts.shape[1]
    for b in range(nb):
        for f in range(tris.shape[0]):
            v0, v1, v2 = tris[f, 0], tris[f, 1], tris[f, 2]
            ax, ay, az, bx, by, bz = _face_edges(verts, b, v0, v1, v2)
            cx, cy, cz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
            for v in (v0, v1, v2):
                summed[b, v, 0] += cx
                summed[b, v, 1] += cy
                summed[b, v, 2] += cz
        for v in range(n):
            norm = max(np.sqrt(summed[b, v, 0] ** 2 + summed[b, v, 1] ** 2 + summed[b, v, 2] ** 2), eps)
            for d in range(3):
                normals[b, v, d] = summed[b, v, d] / norm


@njit(cache=True, error_model="numpy")
def _normals_bwd(verts, tris, summed, normals, gnormals, eps, gverts):
    nb, n = verts.shape[0], verts.shape[1]
    for b in range(nb):
        gs = np.empty((n, 3))
        for v in range(n):
            norm = np.sqrt(summed[b, v, 0] ** 2 + summed[b, v, 1] ** 2 + summed[b, v, 2] ** 2)
            if norm > eps:
                dot = normals[b, v, 0] * gnormals[b, v, 0] + normals[b, v, 1] * gnormals[b, v, 1] + normals[
                    b, v, 2] * gnormals[b, v, 2]
                for d in range(3):
                    gs[v, d] = (gnormals[b, v, d] - normals[b, v, d] * dot) / norm
            else:
                for d in range(3):
                    gs[v, d] = gnormals[b, v, d] / eps
        for f in range(tris.shape[0]):
            v0, v1, v2 = tris[f, 0], tris[f, 1], tris[f, 2]
            gx = gs[v0, 0] + gs[v1, 0] + gs[v2, 0]
            gy = gs[v0, 1] + gs[v1, 1] + gs[v2, 1]
            gz = gs[v0, 2] + gs[v1, 2] + gs[v2, 2]
            ax, ay, az, bx, by, bz = _face_edges(verts, b, v0, v1, v2)
            # c = a x b: dL/da = b x g, dL/db = g x a
            gax, gay, gaz = by * gz - bz * gy, bz * gx - bx * gz, bx * gy - by * gx
            gbx, gby, gbz = gy * az - gz * ay, gz * ax - gx * az, gx * ay - gy * ax
            gverts[b, v1, 0] += gax
            gverts[b, v1, 1] += gay
            gverts[b, v1, 2] += gaz
            gverts[b, v2, 0] += gbx
            gverts[b, v2, 1] += gby
            gverts[b, v2, 2] += gbz
            gverts[b, v0, 0] -= gax + gbx
            gverts[b, v0, 1] -= gay + gby
            gverts[b, v0, 2] -= gaz + gbz


class VertexNormalsFunction(torch.autograd.Function):
    """(vertices (B,N,3), triangles (F,3), eps) -> unit area-weighted vertex normals (B,N,3)."""

    @staticmethod
    def forward(ctx, vertices, triangles, eps):
        v = _np(vertices)
        summed = np.zeros(v.shape)
        normals = np.empty(v.shape)
        _normals_fwd(v, _np(triangles.long()), summed, normals, eps)
        ctx.save_for_backward(vertices, triangles)
        ctx.state = (summed, normals, eps)
        return torch.from_numpy(normals).to(vertices.dtype)

    @staticmethod
    def backward(ctx, gnormals):
        vertices, triangles = ctx.saved_tensors
        summed, normals, eps = ctx.state
        g = np.zeros(summed.shape)
        _normals_bwd(_np(vertices), _np(triangles.long()), summed, normals, _np(gnormals.to(vertices.dtype)), eps, g)
        return torch.from_numpy(g).to(vertices.dtype), None, None


# ---------------------------------------------------------------- shading


@njit(cache=True, error_model="numpy", inline="always")
def _unit(normals, k, eps):
    raw = np.sqrt(normals[k, 0] ** 2 + normals[k, 1] ** 2 + normals[k, 2] ** 2)
    length = max(raw, eps)
    return normals[k, 0] / length, normals[k, 1] / length, normals[k, 2] / length, raw, length


@njit(cache=True, error_model="numpy", inline="always")
def _irradiance(x, y, z, sh, b, c, k):
    """sum_j k_j basis_j(x, y, z) sh[b, j, c] (k = the folded constants)."""
    return (k[0] * sh[b, 0, c] + k[1] * x * sh[b, 1, c] + k[2] * y * sh[b, 2, c] + k[3] * z * sh[b, 3, c]
            + k[4] * x * y * sh[b, 4, c] + k[5] * x * z * sh[b, 5, c] + k[6] * y * z * sh[b, 6, c]
            + k[7] * (x * x - y * y) * sh[b, 7, c] + k[8] * (3 * z * z - 1) * sh[b, 8, c])


@njit(cache=True, error_model="numpy")
def _shade_fwd(normals, albedo, sh, batch, q, eps, rgb, unit):
    for k in range(normals.shape[0]):
        x, y, z, _, _ = _unit(normals, k, eps)
        unit[k, 0], unit[k, 1], unit[k, 2] = x, y, z
        b = batch[k]
        b0, b1, b2, b3, b4 = q[0], q[1] * x, q[2] * y, q[3] * z, q[4] * x * y
        b5, b6, b7, b8 = q[5] * x * z, q[6] * y * z, q[7] * (x * x - y * y), q[8] * (3 * z * z - 1)
        for c in range(3):
            rgb[k, c] = albedo[k, c] * (b0 * sh[b, 0, c] + b1 * sh[b, 1, c] + b2 * sh[b, 2, c] + b3 * sh[b, 3, c]
                                        + b4 * sh[b, 4, c] + b5 * sh[b, 5, c] + b6 * sh[b, 6, c]
                                        + b7 * sh[b, 7, c] + b8 * sh[b, 8, c])


@njit(cache=True, error_model="numpy")
def _shade_bwd(normals, albedo, sh, batch, consts, eps, grgb, gunit, gnormals, galbedo, gsh):
    q = consts
    acc = np.zeros((9, 3))  # gsh of the current batch item, flushed when it changes
    current = batch[0] if batch.shape[0] else 0
    basis = np.empty(9)
    for k in range(normals.shape[0]):
        x, y, z, raw, length = _unit(normals, k, eps)
        basis[0], basis[1], basis[2], basis[3] = q[0], q[1] * x, q[2] * y, q[3] * z
        basis[4], basis[5], basis[6] = q[4] * x * y, q[5] * x * z, q[6] * y * z
        basis[7], basis[8] = q[7] * (x * x - y * y), q[8] * (3 * z * z - 1)
        b = batch[k]
        if b != current:
            gsh[current] += acc
            acc[:] = 0.0
            current = b
        # l_j = sum_c albedo_c grgb_c sh[b, j, c]: the gradient w.r.t. basis_j
        l1 = l2 = l3 = l4 = l5 = l6 = l7 = l8 = 0.0
        for c in range(3):
            galbedo[k, c] = grgb[k, c] * _irradiance(x, y, z, sh, b, c, q)
            ag = albedo[k, c] * grgb[k, c]
            for j in range(9):
                acc[j, c] += basis[j] * ag
            l1 += ag * sh[b, 1, c]
            l2 += ag * sh[b, 2, c]
            l3 += ag * sh[b, 3, c]
            l4 += ag * sh[b, 4, c]
            l5 += ag * sh[b, 5, c]
            l6 += ag * sh[b, 6, c]
            l7 += ag * sh[b, 7, c]
            l8 += ag * sh[b, 8, c]
        gx = q[1] * l1 + q[4] * y * l4 + q[5] * z * l5 + 2 * q[7] * x * l7 + gunit[k, 0]
        gy = q[2] * l2 + q[4] * x * l4 + q[6] * z * l6 - 2 * q[7] * y * l7 + gunit[k, 1]
        gz = q[3] * l3 + q[5] * x * l5 + q[6] * y * l6 + 6 * q[8] * z * l8 + gunit[k, 2]
        if raw > eps:
            dot = x * gx + y * gy + z * gz
            gnormals[k, 0] = (gx - x * dot) / length
            gnormals[k, 1] = (gy - y * dot) / length
            gnormals[k, 2] = (gz - z * dot) / length
        else:
            gnormals[k, 0], gnormals[k, 1], gnormals[k, 2] = gx / eps, gy / eps, gz / eps
    gsh[current] += acc


class ShadeFunction(torch.autograd.Function):
    """(normals (K,3) not normalised, albedo (K,3), sh (B,9,3), batch (K,), consts (9,), eps)
    -> rgb (K,3) = albedo * SH irradiance of the unit normal, unit normals (K,3)."""

    @staticmethod
    def forward(ctx, normals, albedo, sh, batch, consts, eps):
        n, a, s, b = _np(normals), _np(albedo), _np(sh), _np(batch)
        rgb = np.empty(n.shape, n.dtype)
        unit = np.empty(n.shape, n.dtype)
        _shade_fwd(n, a, s, b, consts, eps, rgb, unit)
        ctx.save_for_backward(normals, albedo, sh, batch)
        ctx.args = (consts, eps)
        return torch.from_numpy(rgb), torch.from_numpy(unit)

    @staticmethod
    def backward(ctx, grgb, gunit):
        normals, albedo, sh, batch = ctx.saved_tensors
        consts, eps = ctx.args
        if gunit is None:
            gunit = torch.zeros_like(normals)
        if grgb is None:
            grgb = torch.zeros_like(normals)
        gn = np.empty(tuple(normals.shape), np.float64)
        ga = np.empty(tuple(normals.shape), np.float64)
        gs = np.zeros(tuple(sh.shape), np.float64)
        dt = normals.dtype
        _shade_bwd(_np(normals), _np(albedo), _np(sh), _np(batch), consts, eps, _np(grgb.to(dt)), _np(gunit.to(dt)),
                   gn, ga, gs)
        return (torch.from_numpy(gn).to(normals.dtype), torch.from_numpy(ga).to(albedo.dtype),
                torch.from_numpy(gs).to(sh.dtype), None, None, None)
