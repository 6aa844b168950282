import pytest
import torch

from facerecon.errors import UsageError
from facerecon.render.cameras import WeakPerspectiveCamera
from facerecon.render.renderer import render_mesh
from facerecon.render.texture import render_to_uv, sample_texture

from .helpers import assert_grad_matches

G = torch.Generator().manual_seed(0)


def _texel_uv(ht, wt):
    u = (torch.arange(wt, dtype=torch.float64) + 0.5) / wt
    v = 1 - (torch.arange(ht, dtype=torch.float64) + 0.5) / ht
    return torch.stack(torch.broadcast_tensors(u[None, :], v[:, None]), -1)  # (Ht, Wt, 2)


def test_texel_centres_and_the_obj_v_direction():
    tex = torch.rand(2, 5, 7, 3, dtype=torch.float64, generator=G)
    out = sample_texture(tex, _texel_uv(5, 7)[None].expand(2, -1, -1, -1))
    torch.testing.assert_close(out, tex)
    # v = 0 is the bottom row of the image
    bottom_left = sample_texture(tex, torch.tensor([[[0.5 / 7, 0.5 / 5]]], dtype=torch.float64).expand(2, 1, 2))
    torch.testing.assert_close(bottom_left[:, 0], tex[:, 4, 0])


def test_bilinear_between_texels_and_clamping():
    tex = torch.rand(1, 4, 4, 2, dtype=torch.float64, generator=G)
    mid = sample_texture(tex, torch.tensor([[[1.0 / 4, 1 - 1.5 / 4]]], dtype=torch.float64))  # between (1,0),(1,1)
    torch.testing.assert_close(mid[0, 0], (tex[0, 1, 0] + tex[0, 1, 1]) / 2)
    outside = sample_texture(tex, torch.tensor([[[-3.0, 7.0]]], dtype=torch.float64))
    torch.testing.assert_close(outside[0, 0], tex[0, 0, 0])


def test_sampling_gradients():
    tex = torch.rand(1, 6, 5, 3, dtype=torch.float64, generator=G, requires_grad=True)
    uv = (torch.rand(1, 4, 2, dtype=torch.float64, generator=G) * 0.8 + 0.1).requires_grad_(True)
    w = torch.randn(1, 4, 3, dtype=torch.float64, generator=G)
    assert_grad_matches(lambda: (sample_texture(tex, uv) * w).sum(), tex)
    assert_grad_matches(lambda: (sample_texture(tex, uv) * w).sum(), uv)


def test_shapes_are_checked():
    with pytest.raises(UsageError):
        sample_texture(torch.zeros(1, 4, 4), torch.zeros(1, 3, 2))
    with pytest.raises(UsageError):
        sample_texture(torch.zeros(3, 4, 4, 3), torch.zeros(2, 3, 2))


def _unit_square():
    uv = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    return uv, torch.tensor([[0, 1, 2], [0, 2, 3]])


def test_render_to_uv_of_the_uv_coordinates_is_the_texel_grid():
    uv, tris = _unit_square()
    out, mask = render_to_uv(uv[None], uv, tris, 8)
    assert mask.all() and out.shape == (1, 8, 8, 2)
    torch.testing.assert_close(out[0], _texel_uv(8, 8))


def test_render_to_uv_with_separate_mesh_triangles():
    # two mesh triangles (0,1,2), (2,3,0) laid out in UV space as (uv0,uv1,uv4), (uv4,uv2,uv3):
    # mesh vertex 2 has two UV positions (a seam, as UV layouts have)
    uv = torch.tensor([[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9], [0.5, 0.5]], dtype=torch.float64)
    uv_tris = torch.tensor([[0, 1, 4], [4, 2, 3]])
    tris = torch.tensor([[0, 1, 2], [2, 3, 0]])
    attrs = torch.rand(2, 4, 3, dtype=torch.float64, generator=G, requires_grad=True)
    out, mask = render_to_uv(attrs, uv, uv_tris, 32, triangles=tris)
    assert out.shape == (2, 32, 32, 3) and mask.shape == (2, 32, 32)
    assert (out[~mask] == 0).all()
    # the texel at row 25, column 16 has its centre at uv (0.515625, 0.203125), inside uv triangle 0
    p = torch.tensor([16.5 / 32, 1 - 25.5 / 32], dtype=torch.float64)
    a, b, c = uv[0], uv[1], uv[4]
    m = torch.stack([b - a, c - a], 1)
    l1, l2 = torch.linalg.solve(m, p - a)
    expected = (1 - l1 - l2) * attrs[:, 0] + l1 * attrs[:, 1] + l2 * attrs[:, 2]
    torch.testing.assert_close(out[:, 25, 16], expected)
    w = torch.randn(2, 32, 32, 3, dtype=torch.float64, generator=G)
    assert_grad_matches(lambda: (render_to_uv(attrs, uv, uv_tris, 32, triangles=tris)[0] * w).sum(), attrs)


def test_textured_render_shows_the_texture_upright():
    # a square facing the camera, textured with a map whose top half is red and bottom half blue
    verts = torch.tensor([[[-10.0, -10.0, 0.0], [10.0, -10.0, 0.0], [10.0, 10.0, 0.0], [-10.0, 10.0, 0.0]]],
                         dtype=torch.float64)
    uv, tris = _unit_square()
    tex = torch.zeros(1, 8, 8, 3, dtype=torch.float64)
    tex[0, :4, :, 0] = 1.0
    tex[0, 4:, :, 2] = 1.0
    cam = WeakPerspectiveCamera(torch.zeros(1, 3, dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64),
                                torch.tensor([[16.0, 16.0]], dtype=torch.float64), (32, 32))
    sh = torch.zeros(1, 9, 3, dtype=torch.float64)
    sh[0, 0] = 1 / 0.886226925452758  # ambient 1
    out = render_mesh(verts, tris, cam, texture=tex, uv=uv, uv_triangles=tris, sh=sh, antialias=False)
    torch.testing.assert_close(out.image[0, 8, 16], torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(out.image[0, 24, 16], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
