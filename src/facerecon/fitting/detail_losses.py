"""Pure regularisers of a UV displacement map (fitting.detail): `loss(D, mask) -> scalar`.

D is (B, S, S) in mm, texel row 0 at v = 1, and `mask` (B, S, S) bool the texels it lives on. Means
are over the mask, so the weights do not depend on the map's size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of (B, S, S) `values` over the texels where `mask` (bool or weights) is set."""
    w = mask.to(values.dtype)
    return (values * w).sum() / w.sum().clamp(min=1.0)


def mirror_u(x: Tensor) -> Tensor:
    """(B, S, S) -> the map mirrored about u = 0.5 (left and right of a symmetric UV layout swap)."""
    return torch.flip(x, dims=[-1])


def symmetry_loss(displacement: Tensor, mask: Tensor) -> Tensor:
    """DECA's soft symmetry ||V_uv (D - flip(D))||_1, over texels whose mirror is in the mask too."""
    both = mask & mirror_u(mask)
    return masked_mean((displacement - mirror_u(displacement)).abs(), both)


def smoothness_penalty(displacement: Tensor, mask: Tensor) -> Tensor:
    """Mean squared 4-neighbour Laplacian of D (mm^2 per texel^2) over texels whose neighbours are in the mask."""
    d = displacement[:, None]
    m = mask[:, None].to(d.dtype)
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=d.dtype)[None, None]
    lap = F.conv2d(d, kernel, padding=1)
    full = F.conv2d(m, kernel.abs(), padding=1) > 7.5  # the texel and its 4 neighbours
    return masked_mean(lap[:, 0] ** 2, full[:, 0])
