"""Linear blendshape maths as plain functions on tensors (the `lbs.py` of smplx, for linear models)."""
from __future__ import annotations

import torch
from torch import Tensor


def blend_linear(mean: Tensor, basis_flat: Tensor, coefficients: Tensor) -> Tensor:
    """Mean plus a linear combination of basis offsets.

    Args:
        mean: (V, 3) mean or neutral shape.
        basis_flat: (K, V * 3) basis offsets, one row per mode, already scaled so that the
            coefficient unit is what the caller means (standard deviations, or blendshape weight).
        coefficients: (B, K).

    Returns:
        (B, V, 3) shapes.
    """
    batch = coefficients.shape[0]
    flat = torch.addmm(mean.reshape(1, -1), coefficients, basis_flat)
    return flat.reshape(batch, -1, 3)


def add_linear(shapes: Tensor, basis_flat: Tensor, coefficients: Tensor) -> Tensor:
    """`shapes` (B, V, 3) plus `coefficients` (B, K) times `basis_flat` (K, V * 3); returns (B, V, 3)."""
    batch = shapes.shape[0]
    flat = torch.addmm(shapes.reshape(batch, -1), coefficients, basis_flat)
    return flat.reshape(batch, -1, 3)


def barycentric_points(vertices: Tensor, triangles: Tensor, triangle_ids: Tensor, barycentric: Tensor) -> Tensor:
    """Points given as barycentric coordinates on triangles.

    Args:
        vertices: (B, V, 3).
        triangles: (F, 3) long.
        triangle_ids: (L,) long, index into `triangles`.
        barycentric: (L, 3), rows summing to 1.

    Returns:
        (B, L, 3).
    """
    corners = vertices[:, triangles[triangle_ids]]  # (B, L, 3, 3)
    return (corners * barycentric.to(vertices.dtype)[None, :, :, None]).sum(dim=2)
