"""Sliding outline correspondences (eos: `contour_correspondence`): the model point of a face-outline
landmark moves along a horizontal contour line to where the surface turns away from the camera."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.rotation import axis_angle_to_matrix_np
from .correspondence import VertexCorrespondence


@dataclass
class ContourLines:
    """Candidate vertices of each sliding landmark, flattened.

    Attributes:
        landmarks: (C,) landmark indices that slide.
        starts: (C + 1,) offsets into `vertices` of each landmark's candidates (its default first).
        vertices: (N,) candidate vertex ids of the mesh.
    """

    landmarks: np.ndarray
    starts: np.ndarray
    vertices: np.ndarray


def contour_lines(mean: np.ndarray, region_ids: np.ndarray, corr: VertexCorrespondence,
                  band_mm: float = 2.5) -> ContourLines:
    """For each sliding landmark, the region vertices on its horizontal slice of the face, from near
    the midline out to just past the landmark's default point; the default vertex first.

    Args:
        mean: (V, 3) the mean shape. region_ids: vertex ids the outline may slide over.
        corr: the landmark correspondence (its `sliding` flags). band_mm: half height of a slice.
    """
    lines = {}
    pts = mean[region_ids]
    for li in np.nonzero(corr.sliding)[0]:
        default = int(corr.vertex_ids[li, np.argmax(corr.weights[li])])
        p = mean[default]
        if abs(p[0]) < 15.0:  # near the chin centre the outline does not slide sideways
            continue
        same_side = pts[:, 0] * p[0] > 0
        in_band = np.abs(pts[:, 1] - p[1]) < band_mm
        lateral = (np.abs(pts[:, 0]) > 0.35 * abs(p[0])) & (np.abs(pts[:, 0]) < 1.05 * abs(p[0]) + 2.0)
        front = pts[:, 2] > p[2] - 30.0
        cand = region_ids[same_side & in_band & lateral & front]
        cand = cand[cand != default]
        lines[int(li)] = np.concatenate([[default], cand]).astype(np.int64)
    landmarks = np.array(sorted(lines), dtype=np.int64)
    cands = [lines[i] for i in landmarks]
    starts = np.cumsum([0] + [len(c) for c in cands])
    vertices = np.concatenate(cands) if cands else np.zeros(0, dtype=np.int64)
    return ContourLines(landmarks, starts, vertices)


def update_contour_correspondences(vertex_ids: np.ndarray, lines: ContourLines, candidates: np.ndarray,
                                   normals: np.ndarray, centre_points: np.ndarray, rotation: np.ndarray,
                                   translation: np.ndarray, focal: float, principal: np.ndarray,
                                   min_facing: float = -0.05) -> np.ndarray:
    """Re-choose the vertex of each outline landmark: along its contour line, the most outward point
    that still faces the camera (the silhouette of that slice of the face).

    Args:
        vertex_ids: (L, 3) current correspondence vertex ids.
        lines: `ContourLines`. candidates: (N, 3) current model-space positions of `lines.vertices`;
            normals: (N, 3) their (mean-shape) normals.
        centre_points: (L, 3) points whose median projection is the face's centre column.
        rotation (3,), translation (3,) mm, focal px, principal (2,): the current camera.
        min_facing: a candidate faces the camera when cos(normal, view ray) exceeds this.

    Returns:
        (L, 3) vertex ids with the sliding landmarks' triples set to the chosen vertex.
    """
    r_mat = axis_angle_to_matrix_np(rotation)
    y = candidates @ r_mat.T + translation
    u = principal[0] + focal * y[:, 0] / np.maximum(-y[:, 2], 1e-3)
    n = normals @ r_mat.T
    facing = -(n * y).sum(1) / np.linalg.norm(y, axis=1)
    xc = centre_points @ r_mat.T + translation
    centre_u = float(np.median(principal[0] + focal * xc[:, 0] / np.maximum(-xc[:, 2], 1e-3)))
    out = vertex_ids.copy()
    starts = lines.starts
    for k, li in enumerate(lines.landmarks):
        a, b = starts[k], starts[k + 1]
        ok = facing[a:b] > min_facing
        if not ok.any():
            continue
        outward = 1.0 if u[a] >= centre_u else -1.0  # the default vertex comes first
        score = np.where(ok, outward * u[a:b], -np.inf)
        out[li, :] = lines.vertices[a + int(np.argmax(score))]
    return out
