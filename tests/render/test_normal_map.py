import numpy as np
import pytest
import torch

from facerecon.errors import UsageError
from facerecon.render.normal_map import bump_normals, tangent_space_encode, tangent_space_normal_map


def _plane(s=16, mirrored=False):
    i, j = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    x = (s - 1 - j) if mirrored else j  # a mirrored layout: +u runs along -x
    p = torch.stack([x.double(), (s - 1 - i).double(), torch.zeros(s, s, dtype=torch.float64)], -1)[None]
    n = torch.zeros_like(p)
    n[..., 2] = 1
    return p, n, torch.ones(1, s, s, dtype=torch.bool)


@pytest.mark.parametrize("mirrored", [False, True])
def test_encoding_puts_x_along_u_and_y_up_the_texture(mirrored):
    p, n, m = _plane(mirrored=mirrored)
    tilt = torch.nn.functional.normalize(torch.tensor([0.3, 0.2, 1.0], dtype=torch.float64), dim=0)
    enc = tangent_space_encode(p, n, tilt.expand_as(n).clone(), m)[0, 8, 8] * 2 - 1
    # +u is +x (or -x when mirrored); +v (up the texture) is +y either way
    expect = torch.stack([tilt[0] * (-1 if mirrored else 1), tilt[1], tilt[2]])
    torch.testing.assert_close(enc, expect)


def test_flat_detail_and_off_mask_texels_encode_as_flat():
    p, n, m = _plane()
    m[0, :4] = False
    enc = tangent_space_encode(p, n, n.clone(), m)
    torch.testing.assert_close(enc, torch.tensor([0.5, 0.5, 1.0], dtype=torch.float64).expand_as(enc))
    with pytest.raises(UsageError):
        tangent_space_encode(p, n, n[..., :2], m)


def test_the_displacement_map_form_equals_encoding_its_bump_normals():
    p, n, m = _plane()
    d = 0.3 * torch.sin(p[..., 0] / 2.0) * torch.cos(p[..., 1] / 3.0)
    np.testing.assert_allclose(tangent_space_normal_map(p, n, d, m).numpy(),
                               tangent_space_encode(p, n, bump_normals(p, n, d, m), m).numpy())
