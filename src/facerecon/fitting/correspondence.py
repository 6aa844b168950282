"""Landmark correspondences on a model as vertex triples with barycentric weights.

A `LandmarkEmbedding` names triangles of one particular mesh; fitting works on views of a model
(fewer vertices), so it carries landmarks as (vertex ids, weights) in the view's own indexing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UsageError
from ..models import LandmarkEmbedding, MorphableModel


@dataclass
class VertexCorrespondence:
    """Landmarks as weighted vertex triples of one mesh.

    Attributes:
        vertex_ids: (L, 3) int64 vertex indices in the mesh being fitted.
        weights: (L, 3) float64 barycentric weights.
        sliding: (L,) bool, landmarks on the face outline whose model point slides along the contour.
    """

    vertex_ids: np.ndarray
    weights: np.ndarray
    sliding: np.ndarray

    def __len__(self) -> int:
        return int(self.vertex_ids.shape[0])

    def subset(self, keep: np.ndarray) -> "VertexCorrespondence":
        return VertexCorrespondence(self.vertex_ids[keep], self.weights[keep], self.sliding[keep])

    def points(self, vertices: np.ndarray) -> np.ndarray:
        """(L, 3) points on `vertices` (V, 3)."""
        return np.einsum("lk,lkc->lc", self.weights, vertices[self.vertex_ids])

    def points_torch(self, vertices: torch.Tensor) -> torch.Tensor:
        """(B, L, 3) points on `vertices` (B, V, 3), differentiable."""
        ids = torch.from_numpy(self.vertex_ids).to(vertices.device)
        w = torch.from_numpy(self.weights).to(device=vertices.device, dtype=vertices.dtype)
        return (vertices[:, ids] * w[None, :, :, None]).sum(dim=2)


def correspondence_on(model: MorphableModel, embedding: LandmarkEmbedding, parent: MorphableModel | None = None,
                      sliding: np.ndarray | None = None) -> VertexCorrespondence:
    """Express `embedding` (defined on `parent`'s triangles, or `model`'s when `parent` is None) in the
    vertex indexing of `model` (a view of `parent`).

    Raises:
        UsageError: a landmark lies on vertices the view does not keep.
    """
    source = parent if parent is not None else model
    tri = source.triangles.cpu().numpy()[embedding.triangle_ids.cpu().numpy()]  # (L, 3) parent vertex ids
    weights = embedding.barycentric.cpu().numpy().astype(np.float64)
    if parent is not None:
        if model.parent_vertices is None:
            raise UsageError("model is not a view of parent")
        inverse = np.full(parent.num_vertices, -1, dtype=np.int64)
        inverse[model.parent_vertices.cpu().numpy()] = np.arange(model.num_vertices)
        tri = inverse[tri]
        if (tri < 0).any():
            bad = np.nonzero((tri < 0).any(1))[0].tolist()
            raise UsageError(f"landmarks {bad[:10]} lie outside the view")
    slide = np.zeros(len(tri), dtype=bool) if sliding is None else np.asarray(sliding, dtype=bool)
    return VertexCorrespondence(tri.astype(np.int64), weights, slide)
