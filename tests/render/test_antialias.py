import numpy as np
import pytest
import torch

from facerecon.render._edges import edge_events_numba, edge_events_torch
from facerecon.render.antialias import antialias
from facerecon.render.cameras import PinholeCamera, WeakPerspectiveCamera
from facerecon.render.primitives import icosphere
from facerecon.render.raster import rasterize
from facerecon.render.topology import triangle_adjacency

from .helpers import assert_grad_matches, tetrahedron


def _alpha(screen, f, size, perspective=True, aa=True):
    frags = rasterize(screen, f, size, perspective=perspective, cull_backfaces=True)
    alpha = frags.mask.to(screen.dtype)[..., None]
    return antialias(alpha, frags, screen, f, perspective)[..., 0] if aa else alpha[..., 0]


def _sphere_screen(scale=0.4, size=64, level=3, dtype=torch.float64):
    v, f = icosphere(level, radius=60.0, dtype=dtype)
    cam = WeakPerspectiveCamera(torch.tensor([[0.3, 0.5, 0.1]], dtype=dtype), torch.tensor([scale], dtype=dtype),
                                torch.tensor([[size / 2 + 0.3, size / 2 - 0.2]], dtype=dtype), (size, size))
    return cam, v, f


@pytest.mark.parametrize("perspective", [True, False])
def test_backends_find_the_same_events(perspective):
    v, f = icosphere(3, radius=60.0, dtype=torch.float64)
    v = v * torch.tensor([1.0, 1.4, 0.7], dtype=torch.float64)
    cam = PinholeCamera.looking_at_origin(300.0, (48, 64), fov_deg=30.0, batch=2, dtype=torch.float64)
    cam.rotation = torch.tensor([[0.2, 0.4, 0.0], [-0.5, 1.0, 0.3]], dtype=torch.float64)
    screen = cam.to_screen(v[None].expand(2, -1, -1)) if perspective else cam.to_screen(v[None].expand(2, -1, -1))
    frags = rasterize(screen, f, (48, 64), perspective=perspective, cull_backfaces=False)
    adj = triangle_adjacency(f)
    a = edge_events_numba(frags.triangle_id.numpy(), frags.depth.numpy(), screen.numpy(), f.numpy(), adj.numpy(),
                          perspective, 1e-3)
    b = edge_events_torch(frags.triangle_id, frags.depth, screen, f, adj, perspective, 1e-3)
    assert len(a["pin"]) > 100
    order_a = np.lexsort((a["axis"], a["pin"]))
    order_b = np.lexsort((b["axis"].numpy(), b["pin"].numpy()))
    for key in a:
        np.testing.assert_array_equal(a[key][order_a], b[key].numpy()[order_b], err_msg=key)


def test_interior_edges_are_left_alone():
    cam, v, f = _sphere_screen()
    screen = cam.to_screen(v[None])
    frags = rasterize(screen, f, (64, 64), perspective=False, cull_backfaces=True)
    image = torch.rand(1, 64, 64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = antialias(image, frags, screen, f, perspective=False)
    changed = (out != image).any(-1)[0]
    # only pixels next to the silhouette change
    mask = frags.mask[0]
    interior = mask.clone()
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        interior &= torch.roll(mask, (dy, dx), (0, 1))
    assert changed.any() and not (changed & interior).any()


def test_silhouette_gradients_match_finite_differences():
    v, f = tetrahedron()
    cam = PinholeCamera.looking_at_origin(200.0, (20, 20), fov_deg=25.0, dtype=torch.float64)
    cam.rotation = torch.tensor([[0.3, -0.4, 0.2]], dtype=torch.float64)
    screen = cam.to_screen(v[None]).detach().clone().requires_grad_(True)
    ref = rasterize(screen, f, (20, 20)).triangle_id
    colours = torch.rand(1, 20, 20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    w = torch.randn(1, 20, 20, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def loss():
        frags = rasterize(screen, f, (20, 20), cull_backfaces=True)
        assert torch.equal(frags.triangle_id, ref)
        alpha = frags.mask.to(torch.float64)[..., None]
        img = torch.cat([colours * alpha + (frags.barycentric[..., :1] * alpha), alpha], -1)
        return (antialias(img, frags, screen, f) * w).sum()

    assert_grad_matches(loss, screen, eps=1e-7, rtol=1e-4, atol=1e-6)


def test_coverage_gradient_approximates_the_area_derivative():
    scale = torch.tensor([0.4], dtype=torch.float64, requires_grad=True)
    shift = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    cam, v, f = _sphere_screen()
    cam.scale, cam.translation = scale, cam.translation + shift
    screen = cam.to_screen(v[None])
    alpha = _alpha(screen, f, (64, 64), perspective=False)
    u = torch.arange(64, dtype=torch.float64) + 0.5
    (d_scale,) = torch.autograd.grad(alpha.sum(), scale, retain_graph=True)
    (d_shift,) = torch.autograd.grad((alpha * u[None, None, :]).sum(), shift)
    area = alpha.sum().item()
    radius = 60.0 * 0.4
    assert abs(area - np.pi * radius**2) / area < 0.01
    # d(area)/d(scale) = 2 area / scale; shifting right by dt adds area * dt to the first moment in u
    assert abs(d_scale.item() - 2 * area / 0.4) / (2 * area / 0.4) < 0.05
    assert abs(d_shift[0, 0].item() - area) / area < 0.05
    assert abs(d_shift[0, 1].item()) / area < 0.05


def test_without_antialias_the_coverage_has_no_gradient():
    scale = torch.tensor([0.4], dtype=torch.float64, requires_grad=True)
    cam, v, f = _sphere_screen()
    cam.scale = scale
    alpha = _alpha(cam.to_screen(v[None]), f, (64, 64), perspective=False, aa=False)
    assert not alpha.requires_grad


def test_antialias_softens_a_straight_edge_by_its_subpixel_position():
    # a big square whose left edge is at x = 10.2: pixel column 10 (centre 10.5) is inside, and gets
    # blended with the background by 0.5 - 0.3 = 0.2
    s = torch.tensor([[[10.2, -5.0, 1], [40.0, -5.0, 1], [40.0, 40.0, 1], [10.2, 40.0, 1]]], dtype=torch.float64)
    f = torch.tensor([[0, 3, 2], [0, 2, 1]])
    alpha = _alpha(s, f, (16, 16), perspective=False)
    torch.testing.assert_close(alpha[0, 5, 10], torch.tensor(0.8, dtype=torch.float64))
    torch.testing.assert_close(alpha[0, 5, 9], torch.tensor(0.0, dtype=torch.float64))
    torch.testing.assert_close(alpha[0, 5, 11], torch.tensor(1.0, dtype=torch.float64))
    s[0, [0, 3], 0] = 9.8  # now column 9 (centre 9.5) is outside and gets 0.5 - 0.2 ... = 0.2 coverage
    alpha = _alpha(s, f, (16, 16), perspective=False)
    torch.testing.assert_close(alpha[0, 5, 9], torch.tensor(0.2, dtype=torch.float64))
    torch.testing.assert_close(alpha[0, 5, 10], torch.tensor(1.0, dtype=torch.float64))
