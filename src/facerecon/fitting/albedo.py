"""Closed-form albedo and light estimates for a model without an albedo basis (ICT-FaceKit).

Light and albedo are solved in turn (the CEST order view -> shape -> albedo -> light): with the
geometry fixed, each is a linear least-squares problem.

- `solve_sh_light`: 27 SH coefficients from observed colours, albedo and normals.
- `AlbedoSolver`: a per-vertex albedo with a Laplacian smoothness prior and a left/right symmetry
  prior strong enough that the albedo cannot absorb the shading (one-sided light stays light).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import cg
from torch import Tensor

from ..geometry.mesh import graph_laplacian, mesh_edges
from ..models import MorphableModel
from ..render.shading import sh_basis


def solve_sh_light(normals: Tensor, observed: Tensor, albedo: Tensor, weight: Tensor, ridge: float = 1e-3) -> Tensor:
    """Least-squares SH coefficients (9, 3) with observed = albedo * (Y(n) @ sh).

    Args:
        normals: (N, 3) unit normals in camera space.
        observed: (N, 3) colours. albedo: (N, 3). weight: (N,) >= 0.
        ridge: Tikhonov weight on the order-1 and order-2 coefficients (relative to the data).
    """
    basis = sh_basis(normals.double())  # (N, 9)
    w = weight.double()
    reg = torch.full((9,), ridge, dtype=torch.float64)
    reg[0] = 1e-8
    out = []
    total = w.sum().clamp_min(1e-9)
    for c in range(3):
        a = basis * albedo[:, c:c + 1].double()
        ata = (a * w[:, None]).T @ a / total + torch.diag(reg)
        atb = (a * w[:, None]).T @ observed[:, c].double() / total
        out.append(torch.linalg.solve(ata, atb))
    return torch.stack(out, 1).to(normals.dtype)


class AlbedoSolver:
    """Per-vertex albedo minimising
    sum_v w_v |a_v s_v - c_v|^2 + smooth * sum_edges |a_i - a_j|^2 + symmetry * sum_v |a_v - a_mirror(v)|^2
    + prior * sum_v |a_v - a_mean|^2, one sparse SPD system per colour channel (conjugate gradients).

    Args:
        model: the model (or view) whose vertices carry the albedo.
        smooth, symmetry, prior: the prior weights (per vertex, relative to a fully observed vertex).
    """

    def __init__(self, model: MorphableModel, smooth: float = 2.0, symmetry: float = 2.0, prior: float = 0.02) -> None:
        tris = model.triangles.cpu().numpy()
        n = model.num_vertices
        edges = mesh_edges(tris)
        self.edges = torch.from_numpy(edges)
        lap = graph_laplacian(edges, n)
        sym = model.symmetry.cpu().numpy()
        mirror = sp.csr_matrix((np.ones(n), (np.arange(n), sym)), shape=(n, n))
        diff = sp.identity(n, format="csr") - mirror
        self.base = (smooth * lap + symmetry * (diff.T @ diff) + prior * sp.identity(n)).tocsr()
        self.prior = prior
        self.num_vertices = n

    def solve(self, observed: np.ndarray, shading: np.ndarray, weight: np.ndarray, mean_albedo: np.ndarray,
              x0: np.ndarray | None = None) -> np.ndarray:
        """Albedo (V, 3) in [0, 1.5] from observed colours (V, 3), shading (V, 3) and weights (V,)."""
        out = np.empty((self.num_vertices, 3))
        base_diag = self.base.diagonal()
        for c in range(3):
            s = shading[:, c]
            data = weight * s * s
            a_mat = self.base + sp.diags(data)
            b = weight * s * observed[:, c] + self.prior * mean_albedo[c]
            start = None if x0 is None else x0[:, c]
            jacobi = sp.diags(1.0 / (base_diag + data))
            x, _ = cg(a_mat, b, x0=start, rtol=1e-4, maxiter=150, M=jacobi)
            out[:, c] = x
        return np.clip(out, 0.0, 1.5)
