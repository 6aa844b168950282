import pytest
import torch

from facerecon.errors import RenderError, UsageError
from facerecon.render.cameras import PinholeCamera
from facerecon.render.interpolate import interpolate
from facerecon.render.primitives import icosphere
from facerecon.render.raster import rasterize

from .helpers import assert_grad_matches, tetrahedron


def _fragments(batch=1, size=24):
    v, f = tetrahedron()
    cam = PinholeCamera.looking_at_origin(150.0, (size, size), fov_deg=30.0, batch=batch, dtype=torch.float64)
    cam.rotation = torch.tensor([[0.3, -0.5, 0.1]], dtype=torch.float64).repeat(batch, 1)
    screen = cam.to_screen(v[None].expand(batch, -1, -1))
    return v, f, cam, rasterize(screen, f, (size, size))


def test_interpolating_positions_gives_the_visible_surface_point():
    v, f, cam, frags = _fragments()
    pos = interpolate(cam.transform(v[None]), f, frags)
    torch.testing.assert_close(-pos[..., 2][frags.mask], frags.depth[frags.mask])
    assert (pos[~frags.mask] == 0).all()


def test_constant_attribute_is_constant_and_zero_on_background():
    v, f, _, frags = _fragments()
    out = interpolate(torch.full((len(v), 2), 3.0, dtype=torch.float64), f, frags)
    assert out.shape == (1, 24, 24, 2)
    torch.testing.assert_close(out[frags.mask], torch.full((int(frags.mask.sum()), 2), 3.0, dtype=torch.float64))


def test_batch_broadcasting():
    v, f, _, frags = _fragments(batch=1)
    attrs = torch.randn(3, len(v), 4, dtype=torch.float64)
    out = interpolate(attrs, f, frags)  # one set of fragments, three attribute sets
    assert out.shape == (3, 24, 24, 4)
    torch.testing.assert_close(out[1:2], interpolate(attrs[1:2], f, frags))
    _, _, _, frags2 = _fragments(batch=2)
    assert interpolate(attrs[0], f, frags2).shape == (2, 24, 24, 4)
    with pytest.raises(UsageError):
        interpolate(attrs, f, frags2)


def test_uv_like_attributes_on_their_own_triangles():
    # attributes on other vertices (as UVs are) in triangles of the same order
    v, f, _, frags = _fragments()
    uv = torch.rand(12, 2, dtype=torch.float64)
    uv_tris = torch.arange(12).reshape(4, 3)
    out = interpolate(uv, uv_tris, frags)
    pix, tri, bary = frags.packed()
    expected = (bary[..., None] * uv[uv_tris[tri]]).sum(1)
    torch.testing.assert_close(out.reshape(-1, 2)[pix], expected)


def test_gradients_to_attributes_and_vertices():
    v, f = icosphere(1, radius=40.0, dtype=torch.float64)
    cam = PinholeCamera.looking_at_origin(150.0, (16, 16), fov_deg=40.0, dtype=torch.float64)
    colours = torch.rand(1, len(v), 3, dtype=torch.float64, requires_grad=True)
    verts = v[None].clone().requires_grad_(True)
    w = torch.randn(1, 16, 16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = rasterize(cam.to_screen(verts), f, (16, 16)).triangle_id

    def loss():
        frags = rasterize(cam.to_screen(verts), f, (16, 16))
        assert torch.equal(frags.triangle_id, ref)
        return (interpolate(colours, f, frags) * w).sum()

    assert_grad_matches(loss, colours)
    assert_grad_matches(loss, verts)


def test_bad_indices_raise_instead_of_reading_out_of_bounds():
    v, f, _, frags = _fragments()
    assert int(frags.triangle_id.max()) >= 1
    with pytest.raises(RenderError):
        interpolate(torch.zeros(3, 2, dtype=torch.float64), f, frags)  # vertex 3 does not exist
    with pytest.raises(RenderError):
        interpolate(torch.zeros(len(v), 2, dtype=torch.float64), f[:1], frags)  # fewer triangles than ids
