"""The numba fast paths against their plain-torch twins: same values, same gradients."""
import pytest
import torch

from facerecon.render._fused import InterpolateFunction, ShadeFunction, VertexNormalsFunction
from facerecon.render.interpolate import _interpolate_torch
from facerecon.render.primitives import icosphere
from facerecon.render.shading import _CONSTS_NP, _vertex_normals_torch, sh_shading

from .helpers import assert_grad_matches

G = torch.Generator().manual_seed(0)


def _rand(*shape):
    return torch.randn(*shape, dtype=torch.float64, generator=G).requires_grad_(True)


def _compare(fast, slow, inputs, n_out=1):
    outs_f, outs_s = fast(), slow()
    if n_out == 1:
        outs_f, outs_s = (outs_f,), (outs_s,)
    ws = [torch.randn(o.shape, dtype=torch.float64, generator=G) for o in outs_s]
    for a, b in zip(outs_f, outs_s):
        torch.testing.assert_close(a, b)
    gf = torch.autograd.grad(sum((o * w).sum() for o, w in zip(outs_f, ws)), inputs)
    gs = torch.autograd.grad(sum((o * w).sum() for o, w in zip(outs_s, ws)), inputs)
    for a, b in zip(gf, gs):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("mode", ["per_pixel_batch", "shared", "broadcast"])
def test_interpolation(mode):
    nb = {"per_pixel_batch": 3, "shared": 1, "broadcast": 4}[mode]
    attr = _rand(nb, 10, 5)
    tris = torch.randint(0, 10, (7, 3), generator=G)
    k = 40
    tri = torch.randint(0, 7, (k,), generator=G)
    abatch = torch.randint(0, nb, (k,), generator=G) if mode == "per_pixel_batch" else torch.zeros(k, dtype=torch.long)
    bary = _rand(k, 3)
    broadcast = mode == "broadcast"
    _compare(lambda: InterpolateFunction.apply(attr, tris, tri, abatch, bary, broadcast),
             lambda: _interpolate_torch(attr, tris, tri, abatch, bary, broadcast), (attr, bary))


def test_vertex_normals():
    v, f = icosphere(1, dtype=torch.float64)
    v = (v[None].repeat(2, 1, 1) + 0.1 * torch.randn(2, len(v), 3, dtype=torch.float64, generator=G))
    v = torch.cat([v, torch.zeros(2, 1, 3, dtype=torch.float64)], 1).requires_grad_(True)  # + an unused vertex
    _compare(lambda: VertexNormalsFunction.apply(v, f, 1e-12), lambda: _vertex_normals_torch(v, f), (v,))
    assert_grad_matches(lambda: (VertexNormalsFunction.apply(v, f, 1e-12) * torch.arange(3.0)).sum(), v)


@pytest.mark.parametrize("nb", [1, 3])
def test_shading(nb):
    k = 50
    n = _rand(k, 3)
    albedo = _rand(k, 3)
    sh = _rand(nb, 9, 3)
    batch = torch.randint(0, nb, (k,), generator=G)

    def slow():
        unit = torch.nn.functional.normalize(n, dim=-1, eps=1e-12)
        return albedo * sh_shading(unit, sh, batch), unit

    _compare(lambda: ShadeFunction.apply(n, albedo, sh, batch, _CONSTS_NP, 1e-12), slow, (n, albedo, sh), n_out=2)


def test_torch_kernels_switches_cpu_tensors_to_the_torch_twins_in_this_context_only():
    import threading

    from facerecon.render import rasterize, torch_kernels
    from facerecon.render._fused import use_numba

    t = torch.zeros(1)
    assert use_numba(t)
    seen = {}
    with torch_kernels():
        assert not use_numba(t)
        worker = threading.Thread(target=lambda: seen.setdefault("other thread", use_numba(t)))
        worker.start()
        worker.join()
        with torch_kernels():  # nested: still torch, and the outer block's setting comes back
            assert not use_numba(t)
        assert not use_numba(t)
    assert use_numba(t) and seen["other thread"]
    with pytest.raises(RuntimeError), torch_kernels():
        raise RuntimeError("an error inside")
    assert use_numba(t)  # restored after an error too
    # the same visibility either way (the z-buffers are bit-identical)
    v, f = icosphere(2)
    screen = torch.cat([v[:, :2] * 20 + 32, 5 - v[:, 2:]], 1)[None].double()  # depth > 0 in front
    a = rasterize(screen, f, (64, 64))
    with torch_kernels():
        b = rasterize(screen, f, (64, 64))
    assert (a.triangle_id >= 0).sum() > 500 and torch.equal(a.triangle_id, b.triangle_id)
    torch.testing.assert_close(a.barycentric, b.barycentric)
