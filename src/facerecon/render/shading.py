"""Normals and Lambertian shading with second-order spherical harmonics (27 coefficients).

The 9 basis functions, in DECA's order, are the real SH with the Lambertian convolution constants
A_0 = pi, A_1 = 2 pi / 3, A_2 = pi / 4 folded in (Ramamoorthi & Hanrahan 2001), so that
``shading(n) = sum_k sh[k, c] * basis_k(n)`` is the irradiance of the environment whose radiance has
SH coefficients ``sh`` (n a unit normal in camera space):

    k   function        constant
    0   1               pi * 1 / (2 sqrt(pi))          = sqrt(pi) / 2
    1   x               2pi/3 * sqrt(3 / (4 pi))       = sqrt(pi / 3)
    2   y                  "
    3   z                  "
    4   x y             pi/4 * sqrt(15 / (4 pi))       = sqrt(15 pi) / 8
    5   x z                "
    6   y z                "
    7   x^2 - y^2       pi/4 * sqrt(15 / (4 pi)) / 2   = sqrt(15 pi) / 16
    8   3 z^2 - 1       pi/4 * sqrt(5 / (16 pi))       = sqrt(5 pi) / 16

Deep3DFaceRecon uses the same constants (in another order and sign convention). DECA's
add_SHlight uses 1 / (2 sqrt(pi)) for k = 0 (no A_0 = pi): convert its coefficients with
:meth:`SHLight.from_deca`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from facerecon.errors import UsageError

from ._fused import ShadeFunction, VertexNormalsFunction, check_indices, use_numba

SH_CONSTANTS = (
    math.sqrt(math.pi) / 2,
    math.sqrt(math.pi / 3),
    math.sqrt(math.pi / 3),
    math.sqrt(math.pi / 3),
    math.sqrt(15 * math.pi) / 8,
    math.sqrt(15 * math.pi) / 8,
    math.sqrt(15 * math.pi) / 8,
    math.sqrt(15 * math.pi) / 16,
    math.sqrt(5 * math.pi) / 16,
)
_CONSTS_NP = np.array(SH_CONSTANTS)
# the Lambertian convolution constant A_l of each basis function
LAMBERT = (math.pi,) + (2 * math.pi / 3,) * 3 + (math.pi / 4,) * 5


def face_normals(vertices: Tensor, triangles: Tensor) -> Tensor:
    """(B, N, 3), (F, 3) -> (B, F, 3) area-weighted normals (length = 2 x area), counter-clockwise
    winding = outward."""
    tri = triangles.long()
    v0 = vertices.index_select(1, tri[:, 0])
    v1 = vertices.index_select(1, tri[:, 1])
    v2 = vertices.index_select(1, tri[:, 2])
    return torch.cross(v1 - v0, v2 - v0, dim=-1)


def vertex_normals(vertices: Tensor, triangles: Tensor) -> Tensor:
    """(B, N, 3), (F, 3) -> (B, N, 3) unit normals: area-weighted mean of the adjacent faces'
    normals (zero for a vertex in no triangle)."""
    check_indices(triangles, vertices.shape[1], "triangle indices")
    if use_numba(vertices):
        return VertexNormalsFunction.apply(vertices, triangles, 1e-12)
    return _vertex_normals_torch(vertices, triangles)


def _vertex_normals_torch(vertices: Tensor, triangles: Tensor) -> Tensor:
    """Plain-torch twin of _fused.VertexNormalsFunction."""
    fn = face_normals(vertices, triangles)
    idx = triangles.long().t().reshape(-1)  # (3F,) vertex of corner k of every face, k-major
    summed = torch.zeros_like(vertices).index_add_(1, idx, fn.repeat(1, 3, 1))
    return torch.nn.functional.normalize(summed, dim=-1, eps=1e-12)


def sh_basis(normals: Tensor) -> Tensor:
    """(..., 3) unit normals -> (..., 9) basis values, constants folded in (see module docstring)."""
    x, y, z = normals.unbind(-1)
    c = SH_CONSTANTS
    return torch.stack(
        [
            torch.full_like(x, c[0]),
            c[1] * x,
            c[2] * y,
            c[3] * z,
            c[4] * x * y,
            c[5] * x * z,
            c[6] * y * z,
            c[7] * (x * x - y * y),
            c[8] * (3 * z * z - 1),
        ],
        -1,
    )


def sh_shading(normals: Tensor, sh: Tensor, batch_index: Tensor | None = None) -> Tensor:
    """Irradiance per normal and colour channel.

    normals (B, ..., 3) unit, camera space; sh (B, 9, 3) (or (1, 9, 3) shared) -> (B, ..., 3).
    With batch_index (K,) the normals are a flat list (K, 3) and normal k uses sh[batch_index[k]].
    """
    if sh.dim() != 3 or sh.shape[1:] != (9, 3):
        raise UsageError(f"sh must have shape (B, 9, 3), got {tuple(sh.shape)}")
    basis = sh_basis(normals)
    if batch_index is not None:
        if sh.shape[0] == 1:
            return basis @ sh[0]
        return (basis[..., None] * sh.index_select(0, batch_index)).sum(-2)
    lead = basis.shape[1:-1]
    flat = basis.reshape(basis.shape[0], -1, 9)
    return torch.bmm(flat, sh.expand(flat.shape[0], 9, 3)).reshape(basis.shape[:1] + lead + (3,))


def shade_packed(normals: Tensor, albedo: Tensor, sh: Tensor, batch_index: Tensor) -> tuple[Tensor, Tensor]:
    """Shade a flat list of K pixels: normals (K, 3) (normalised here), albedo (K, 3) or (1, 3),
    sh (B, 9, 3), batch_index (K,) -> (rgb (K, 3) = albedo * irradiance, unit normals (K, 3))."""
    if sh.dim() != 3 or sh.shape[1:] != (9, 3):
        raise UsageError(f"sh must have shape (B, 9, 3), got {tuple(sh.shape)}")
    dtype = normals.dtype
    albedo, sh = albedo.to(dtype).expand(normals.shape[0], 3), sh.to(dtype)
    if sh.shape[0] == 1:
        batch_index = torch.zeros_like(batch_index)
    check_indices(batch_index, sh.shape[0], "batch_index")
    if use_numba(normals):
        return ShadeFunction.apply(normals, albedo, sh, batch_index, _CONSTS_NP, 1e-12)
    unit = torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)
    return albedo * sh_shading(unit, sh, batch_index), unit


@dataclass
class SHLight:
    """Spherical-harmonics lighting: coefficients (B, 9, 3) in the basis of `sh_basis`."""

    coefficients: Tensor

    def __post_init__(self) -> None:
        if self.coefficients.dim() != 3 or self.coefficients.shape[1:] != (9, 3):
            raise UsageError(f"SHLight.coefficients must have shape (B, 9, 3), got {tuple(self.coefficients.shape)}")

    @classmethod
    def ambient_directional(
        cls,
        batch: int = 1,
        ambient: float = 0.45,
        intensity: float = 0.6,
        direction: tuple[float, float, float] = (0.35, 0.45, 1.0),
        color: tuple[float, float, float] = (1.0, 1.0, 1.0),
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> "SHLight":
        """A constant `ambient` plus a distant light of `intensity` coming from `direction` (camera
        space, toward the light; the default is above, to the viewer's right, in front), so that
        shading ~ ambient + intensity * max(0, n . d) (its second-order SH approximation)."""
        d = torch.tensor(direction, dtype=torch.float64)
        d = d / d.norm()
        # a distant light's radiance has SH coefficients intensity * Y_k(d) (basis without A_l)
        coef = intensity * sh_basis(d) / torch.tensor(LAMBERT, dtype=torch.float64)
        coef[0] += ambient / SH_CONSTANTS[0]
        rgb = torch.tensor(color, dtype=torch.float64)
        c = (coef[:, None] * rgb[None, :]).to(dtype=dtype, device=device)
        return cls(c[None].repeat(batch, 1, 1))

    @classmethod
    def from_deca(cls, coefficients: Tensor) -> "SHLight":
        """DECA's (B, 9, 3) lighting (add_SHlight, whose band-0 constant lacks pi) in this basis."""
        scale = torch.ones(9, 1, dtype=coefficients.dtype, device=coefficients.device)
        scale[0] = 1 / math.pi
        return cls(coefficients * scale)
