"""Small meshes the io tests share, and an ICT head as the pipeline exports it (with unused vertices)."""
from __future__ import annotations

import numpy as np

from facerecon.io import Mesh
from facerecon.models.arkit import arkit_targets

# ICT triangle groups the pipeline leaves out of its files (so their vertices are unused).
HIDDEN_GROUPS = ("M_EyeOcclusion", "M_LacrimalFluid", "M_EyeBlend")


def seamed_quad():
    """Two triangles sharing the edge 0-2, with different UVs on each side of it (a UV seam)."""
    vertices = np.array([[0.0, 0.0, 0.0], [10.5, 0.0, 1.25], [10.0, 10.0, -3.0], [-0.000001, 12.0, 123.456789]])
    triangles = np.array([[0, 1, 2], [0, 2, 3]])
    uv = np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.6, 0.6], [1.0, 1.0], [0.6, 1.0]])
    uv_triangles = np.array([[0, 1, 2], [3, 4, 5]])
    return vertices, triangles, uv, uv_triangles


def checker_texture(size: int = 64) -> np.ndarray:
    """(size, size, 3) float texture: a colour checkerboard, so a loaded texture is recognisable."""
    y, x = np.mgrid[0:size, 0:size] * 8 // size
    rgb = np.stack([(x + y) % 2 * 0.6 + 0.2, x / 8.0, y / 8.0], axis=-1)
    return rgb


def ict_export_mesh(model, texture_size: int = 64, jaw: float = 0.0) -> Mesh:
    """The full ICT model's mean head, without the hidden groups, textured, with ARKit morph targets
    (plus ICT's halves as extras) as `Reconstruction.mesh` builds it."""
    keep = np.ones(int(model.triangles.shape[0]), dtype=bool)
    for group in HIDDEN_GROUPS:
        keep[model.triangle_groups[group].numpy()] = False
    names = list(model.expression_names)
    ark_names, ark, extra_names, extra = arkit_targets(names, model.expression_basis)
    targets = dict(zip(ark_names + extra_names, np.concatenate([ark, extra])))
    base = model.mean.numpy().astype(np.float64)
    weights = [0.0] * len(targets)
    weights[ark_names.index("jawOpen")] = jaw
    return Mesh(vertices=base + jaw * targets["jawOpen"], triangles=model.triangles.numpy()[keep],
                uv=model.uv.numpy(), uv_triangles=model.uv_triangles.numpy()[keep],
                texture=checker_texture(texture_size), texture_file="albedo.png", colors=np.full((len(base), 3), 0.6),
                morph_targets=targets, morph_weights=weights, base_vertices=base)
