"""Shared helpers of the render tests: finite differences and small meshes."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def finite_difference(fn: Callable[[], Tensor], x: Tensor, eps: float = 1e-6) -> Tensor:
    """Central differences of the scalar fn() w.r.t. every entry of x (modified in place, restored)."""
    grad = torch.zeros_like(x)
    flat, gflat = x.data.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        up = fn().item()
        flat[i] = old - eps
        down = fn().item()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def autograd_grad(fn: Callable[[], Tensor], x: Tensor) -> Tensor:
    x.grad = None
    fn().backward()
    return x.grad.clone()


def assert_grad_matches(fn: Callable[[], Tensor], x: Tensor, eps: float = 1e-6, rtol: float = 1e-4,
                        atol: float = 1e-6) -> None:
    """Autograd vs central differences of a float64 scalar function."""
    analytic = autograd_grad(fn, x)
    numeric = finite_difference(fn, x, eps)
    assert analytic.abs().sum() > 0, "the gradient is identically zero: the check would be vacuous"
    torch.testing.assert_close(analytic, numeric, rtol=rtol, atol=atol)


def tetrahedron(dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """A small irregular closed mesh (4 vertices, 4 outward counter-clockwise triangles), mm."""
    v = torch.tensor([[0.0, 0.0, 30.0], [-28.0, -17.0, -9.0], [27.0, -19.0, -11.0], [2.0, 31.0, -10.0]], dtype=dtype)
    f = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]])
    return v, f
