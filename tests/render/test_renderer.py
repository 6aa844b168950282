import numpy as np
import pytest
import torch

from facerecon.errors import RenderError, UsageError
from facerecon.render.cameras import PinholeCamera, WeakPerspectiveCamera
from facerecon.render.primitives import icosphere
from facerecon.render.renderer import render_mesh
from facerecon.render.shading import SHLight

from .helpers import assert_grad_matches, tetrahedron

G = torch.Generator().manual_seed(0)


def _scene(batch=1, size=20):
    v, f = tetrahedron()
    cam = PinholeCamera.looking_at_origin(180.0, (size, size), fov_deg=28.0, batch=batch, dtype=torch.float64)
    cam.rotation = torch.tensor([[0.35, -0.5, 0.15]], dtype=torch.float64).repeat(batch, 1)
    colours = torch.rand(batch, 4, 3, dtype=torch.float64, generator=G)
    sh = SHLight.ambient_directional(batch, dtype=torch.float64).coefficients
    sh = sh + 0.05 * torch.randn(sh.shape, dtype=torch.float64, generator=G)
    background = torch.rand(batch, size, size, 3, dtype=torch.float64, generator=G)
    return v[None].repeat(batch, 1, 1), f, cam, colours, sh, background


@pytest.mark.parametrize("antialias", [True, False])
def test_gradients_match_finite_differences(antialias):
    verts, f, cam, colours, sh, background = _scene()
    for t in (verts, colours, sh, background, cam.rotation, cam.translation, cam.focal):
        t.requires_grad_(True)
    w = torch.randn(1, 20, 20, 4, dtype=torch.float64, generator=G)
    ref = render_mesh(verts, f, cam, colours, sh).triangle_id

    def loss():
        out = render_mesh(verts, f, cam, colours, sh, background=background, antialias=antialias)
        assert torch.equal(out.triangle_id, ref)
        return (out.image * w[..., :3]).sum() + (out.alpha * w[..., 3]).sum()

    for x in (verts, colours, sh, cam.rotation, cam.translation, cam.focal):
        assert_grad_matches(loss, x)
    assert_grad_matches(loss, background, rtol=1e-4, atol=1e-5)


def test_weak_perspective_camera_gradients():
    verts, f, _, colours, sh, _ = _scene()
    verts.requires_grad_(True)
    cam = WeakPerspectiveCamera(torch.tensor([[0.3, 0.6, -0.1]], dtype=torch.float64, requires_grad=True),
                                torch.tensor([0.25], dtype=torch.float64, requires_grad=True),
                                torch.tensor([[10.3, 9.6]], dtype=torch.float64, requires_grad=True), (20, 20))
    w = torch.randn(1, 20, 20, 3, dtype=torch.float64, generator=G)
    ref = render_mesh(verts, f, cam, colours, sh).triangle_id

    def loss():
        out = render_mesh(verts, f, cam, colours, sh)
        assert torch.equal(out.triangle_id, ref)
        return (out.image * w).sum()

    for x in (cam.rotation, cam.scale, cam.translation, verts):
        assert_grad_matches(loss, x)


def test_batch_items_are_independent_and_outputs_have_the_documented_shapes():
    verts, f, cam, colours, sh, background = _scene(batch=2, size=24)
    verts = verts.clone()
    verts[1] *= 0.8
    out = render_mesh(verts, f, cam, colours, sh, background=background)
    assert out.image.shape == (2, 24, 24, 3) and out.alpha.shape == (2, 24, 24)
    assert out.depth.shape == (2, 24, 24) and out.normals.shape == (2, 24, 24, 3)
    assert out.triangle_id.shape == (2, 24, 24) and out.triangle_id.dtype == torch.long
    one = PinholeCamera(cam.rotation[1:], cam.translation[1:], cam.focal[1:], cam.principal[1:], (24, 24))
    single = render_mesh(verts[1:], f, one, colours[1:], sh[1:], background=background[1:])
    torch.testing.assert_close(out.image[1:], single.image)
    torch.testing.assert_close(out.alpha[1:], single.alpha)
    # background shows where nothing is drawn; normals are unit where something is
    uncovered = out.alpha == 0
    assert uncovered.any()
    torch.testing.assert_close(out.image[uncovered], background[uncovered])
    torch.testing.assert_close(out.normals[out.fragments.mask].norm(dim=-1),
                               torch.ones(int(out.fragments.mask.sum()), dtype=torch.float64))
    assert ((out.alpha >= 0) & (out.alpha <= 1)).all()


def test_default_albedo_and_light_and_shared_colours():
    v, f = icosphere(2, radius=40.0)
    cam = PinholeCamera.looking_at_origin(200.0, (32, 32), fov_deg=30.0, batch=2)
    out = render_mesh(v[None].repeat(2, 1, 1), f, cam)
    assert out.image.dtype == torch.float32 and out.image.max() > 0.5
    grey = render_mesh(v[None].repeat(2, 1, 1), f, cam, colors=torch.full((len(v), 3), 0.5))
    torch.testing.assert_close(grey.image, out.image * 0.5)


def test_backface_culling_switch():
    tri = torch.tensor([[[-10.0, -10.0, 0.0], [10.0, -10.0, 0.0], [0.0, 10.0, 0.0]]])
    cam = PinholeCamera.looking_at_origin(100.0, (16, 16), fov_deg=30.0)
    front = torch.tensor([[0, 1, 2]])
    assert render_mesh(tri, front, cam).alpha.sum() > 10
    assert render_mesh(tri, front.flip(1), cam).alpha.sum() == 0
    assert render_mesh(tri, front.flip(1), cam, cull_backfaces=False).alpha.sum() > 10


def test_bad_input_gives_clear_errors_or_empty_results():
    verts, f, cam, colours, sh, background = _scene()
    bad = verts.clone()
    bad[0, 2, 1] = float("nan")
    with pytest.raises(RenderError, match="NaN"):
        render_mesh(bad, f, cam)
    bad[0, 2, 1] = float("inf")
    with pytest.raises(RenderError):
        render_mesh(bad, f, cam)
    with pytest.raises(RenderError):
        render_mesh(verts, f + 10, cam)
    with pytest.raises(UsageError):
        render_mesh(verts, f, cam, colors=colours[:, :2])
    with pytest.raises(UsageError):
        render_mesh(verts, f, cam, texture=torch.zeros(1, 4, 4, 3))
    empty = render_mesh(verts, f[:0], cam, background=background)
    assert empty.alpha.sum() == 0 and torch.equal(empty.image, background)
    empty = render_mesh(verts[:, :0], f[:0], cam)
    assert empty.alpha.sum() == 0 and empty.image.shape == (1, 20, 20, 3)
    behind = PinholeCamera(cam.rotation, -cam.translation, cam.focal, cam.principal, cam.image_size)
    out = render_mesh(verts, f, behind)
    assert out.alpha.sum() == 0 and (out.triangle_id == -1).all()


def test_the_torch_path_of_other_devices_gives_the_same_render_and_gradients():
    from contextlib import nullcontext

    from facerecon.render import torch_kernels

    v, f = icosphere(2, radius=40.0, dtype=torch.float64)
    cam = PinholeCamera.looking_at_origin(160.0, (40, 48), fov_deg=35.0, batch=2, dtype=torch.float64)
    cam.rotation = torch.tensor([[0.2, 0.5, 0.0], [-0.4, 1.2, 0.3]], dtype=torch.float64)
    verts = (v[None] * torch.tensor([[[1.0, 1.2, 0.9]], [[0.8, 1.0, 1.1]]], dtype=torch.float64)).requires_grad_(True)
    colours = torch.rand(2, len(v), 3, dtype=torch.float64, generator=G, requires_grad=True)
    sh = SHLight.ambient_directional(2, dtype=torch.float64).coefficients.requires_grad_(True)
    w = torch.randn(2, 40, 48, 4, dtype=torch.float64, generator=G)
    results = []
    for torch_only in (False, True):
        with torch_kernels() if torch_only else nullcontext():
            out = render_mesh(verts, f, cam, colours, sh)
            loss = (out.image * w[..., :3]).sum() + (out.alpha * w[..., 3]).sum()
            results.append((out, torch.autograd.grad(loss, (verts, colours, sh))))
    (a, ga), (b, gb) = results
    assert torch.equal(a.triangle_id, b.triangle_id)
    for x, y in ((a.image, b.image), (a.alpha, b.alpha), (a.depth, b.depth), (a.normals, b.normals)):
        torch.testing.assert_close(x, y)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y)


def test_visible_vertices_needs_coverage_and_a_surface_within_tolerance():
    from facerecon.render import visible_vertices

    depth = np.zeros((4, 4))
    depth[1:3, 1:3] = 100.0
    screen = np.array([[1.5, 1.5, 100.5], [1.5, 1.5, 105.0], [0.5, 0.5, 100.0], [9.0, 1.5, 100.0], [2.9, 2.1, 101.9]])
    assert visible_vertices(depth, screen, 2.0).tolist() == [True, False, False, False, True]
