import math

import numpy as np
import pytest
import torch

from facerecon.errors import UsageError
from facerecon.render.cameras import WeakPerspectiveCamera
from facerecon.render.primitives import icosphere
from facerecon.render.renderer import render_mesh
from facerecon.render.shading import LAMBERT, SHLight, sh_basis, sh_shading, vertex_normals

from .helpers import assert_grad_matches


def _fibonacci_sphere(n):
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1 - 2 * i / n
    phi = math.pi * (1 + 5**0.5) * i
    r = (1 - z * z).sqrt()
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], -1)


def test_basis_divided_by_the_lambert_constants_is_orthonormal():
    n = _fibonacci_sphere(200_000)
    y = sh_basis(n) / torch.tensor(LAMBERT, dtype=torch.float64)
    gram = (y.T @ y) * (4 * math.pi / len(n))
    torch.testing.assert_close(gram, torch.eye(9, dtype=torch.float64), atol=1e-3, rtol=0)


def test_ambient_coefficient_matches_the_convention():
    # docs/conventions.md: a constant ambient a is sh[0, c] = a / Y_0
    sh = torch.zeros(1, 9, 3, dtype=torch.float64)
    sh[0, 0] = 0.7 / sh_basis(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))[0]
    out = sh_shading(_fibonacci_sphere(10)[None], sh)
    torch.testing.assert_close(out, torch.full((1, 10, 3), 0.7, dtype=torch.float64))


def test_directional_light_is_the_clamped_cosine_to_second_order():
    light = SHLight.ambient_directional(ambient=0.2, intensity=1.0, direction=(0.0, 0.0, 1.0), dtype=torch.float64)
    n = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]], dtype=torch.float64)
    out = sh_shading(n, light.coefficients)[0, :, 0]
    # sum_l A_l (2l+1)/(4pi) P_l(cos): 1/4 + cos/2 + 5/16 (3cos^2-1)/2
    torch.testing.assert_close(out, torch.tensor([0.2 + 1.0625, 0.2 + 0.0625, 0.2 + 0.09375], dtype=torch.float64))


def test_from_deca_reproduces_deca_add_shlight():
    g = torch.Generator().manual_seed(0)
    deca = torch.randn(2, 9, 3, dtype=torch.float64, generator=g)
    n = torch.nn.functional.normalize(torch.randn(2, 50, 3, dtype=torch.float64, generator=g), dim=-1)
    pi = np.pi
    c = [1 / np.sqrt(4 * pi), ((2 * pi) / 3) * (np.sqrt(3 / (4 * pi))), ((2 * pi) / 3) * (np.sqrt(3 / (4 * pi))),
         ((2 * pi) / 3) * (np.sqrt(3 / (4 * pi))), (pi / 4) * (3) * (np.sqrt(5 / (12 * pi))),
         (pi / 4) * (3) * (np.sqrt(5 / (12 * pi))), (pi / 4) * (3) * (np.sqrt(5 / (12 * pi))),
         (pi / 4) * (3 / 2) * (np.sqrt(5 / (12 * pi))), (pi / 4) * (1 / 2) * (np.sqrt(5 / (4 * pi)))]
    x, y, z = n.unbind(-1)
    basis = torch.stack([torch.ones_like(x), x, y, z, x * y, x * z, y * z, x * x - y * y, 3 * z * z - 1], -1)
    expected = torch.einsum("bnk,bkc->bnc", basis * torch.tensor(c, dtype=torch.float64), deca)
    torch.testing.assert_close(sh_shading(n, SHLight.from_deca(deca).coefficients), expected)


@pytest.mark.parametrize("k", range(9))
def test_sphere_lit_by_one_sh_function_matches_the_analytic_shading(k):
    v, f = icosphere(4, radius=50.0, dtype=torch.float64)
    size, scale = 96, 0.8
    cam = WeakPerspectiveCamera(torch.zeros(1, 3, dtype=torch.float64), torch.tensor([scale], dtype=torch.float64),
                                torch.tensor([[size / 2, size / 2]], dtype=torch.float64), (size, size))
    sh = torch.zeros(1, 9, 3, dtype=torch.float64)
    sh[0, k] = torch.tensor([1.0, 0.5, -0.25])
    out = render_mesh(v[None], f, cam, sh=sh, antialias=False)
    centres = torch.arange(size, dtype=torch.float64) + 0.5
    x = ((centres - size / 2) / (50.0 * scale))[None, :].expand(size, -1)
    y = (-(centres - size / 2) / (50.0 * scale))[:, None].expand(-1, size)
    inside = x * x + y * y < 0.9**2
    n = torch.stack([x, y, (1 - x * x - y * y).clamp_min(0).sqrt()], -1)
    expected = sh_basis(n)[..., k, None] * sh[0, k]
    assert out.alpha[0][inside].min() == 1
    torch.testing.assert_close(out.image[0][inside], expected[inside], atol=1e-2 * sh_basis(n)[..., k].abs().max(),
                               rtol=0)
    torch.testing.assert_close(out.normals[0][inside], n[inside], atol=5e-3, rtol=0)


def test_vertex_normals_of_a_sphere_are_radial():
    v, f = icosphere(3, radius=30.0, dtype=torch.float64)
    n = vertex_normals(v[None].repeat(2, 1, 1), f)
    torch.testing.assert_close(n[1], v / 30.0, atol=1e-2, rtol=0)  # area weighting on uneven faces


def test_sh_shading_gradients_and_shapes():
    g = torch.Generator().manual_seed(1)
    n = torch.nn.functional.normalize(torch.randn(2, 4, 5, 3, dtype=torch.float64, generator=g), dim=-1)
    sh = torch.randn(2, 9, 3, dtype=torch.float64, generator=g, requires_grad=True)
    nr = n.clone().requires_grad_(True)
    assert sh_shading(n, sh).shape == (2, 4, 5, 3)
    assert_grad_matches(lambda: sh_shading(nr, sh).pow(2).sum(), sh)
    assert_grad_matches(lambda: sh_shading(nr, sh).pow(2).sum(), nr)
    with pytest.raises(UsageError):
        sh_shading(n, sh[:, :4])
