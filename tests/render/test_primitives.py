import torch

from facerecon.render.primitives import box, icosphere
from facerecon.render.shading import face_normals
from facerecon.render.topology import triangle_adjacency


def _check_closed_and_outward(v, f):
    assert (triangle_adjacency(f) >= 0).all()  # closed and manifold
    centres = v[f].mean(1)
    assert ((face_normals(v[None], f)[0] * centres).sum(-1) > 0).all()  # counter-clockwise = outward


def test_icosphere():
    v, f = icosphere(3, radius=2.0)
    assert f.shape == (20 * 4**3, 3) and len(v) == 10 * 4**3 + 2
    torch.testing.assert_close(v.norm(dim=1), torch.full((len(v),), 2.0))
    _check_closed_and_outward(v, f)


def test_box():
    v, f = box((2.0, 4.0, 6.0), dtype=torch.float64)
    assert f.shape == (12, 3)
    torch.testing.assert_close(v.abs().amax(0), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    _check_closed_and_outward(v, f)
