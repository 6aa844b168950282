"""What a synthetic score means: the two ends of the scale every result is placed on.

- nothing: the model's mean face (identity 0, expression 0), as if nothing was learnt from the photo.
- floor: the model fitted directly to the ground-truth mesh (identity, expression and a similarity,
  alternating Umeyama and bounded linear least squares on the face region): the best the model can
  do. 0 for on-model faces; for off-model faces what the model cannot represent.

Both are scored exactly like a reconstruction (the NoW protocol, `score_vertices`), and a result is
reported as the fraction of the gap it closes: `gap_fraction = (nothing - result) / (nothing - floor)`
(0 = no better than the mean face, 1 = as good as the model can be).

What is scored: the predicted mesh is the fitted view (vertices and triangles) with its 7 NoW
landmarks from the view's iBUG-68 embedding; the scan is the gt mesh's vertices of the view restricted
to the model's `narrow_face` region, with the gt's 7 landmarks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
from scipy.linalg import qr
from scipy.optimize import lsq_linear

from ..errors import UsageError
from ..models import MorphableModel
from .alignment import Similarity, umeyama
from .now import NOW_LANDMARKS_68, NowResult, now_errors
from .synthetic import SyntheticFace

SCAN_REGION = "narrow_face"


def scan_vertex_ids(view: MorphableModel) -> np.ndarray:
    """Indices into the view of the vertices scored (its `narrow_face` region, else all)."""
    if SCAN_REGION in view.regions:
        return view.regions[SCAN_REGION].cpu().numpy()
    return np.arange(view.num_vertices)


def _parent_ids(view: MorphableModel, ids: np.ndarray) -> np.ndarray:
    return ids if view.parent_vertices is None else view.parent_vertices.cpu().numpy()[ids]


def scan_points(face: SyntheticFace, view: MorphableModel) -> np.ndarray:
    """(P, 3) the ground-truth scan of `face` for predictions on `view`, mm."""
    return face.gt_vertices[_parent_ids(view, scan_vertex_ids(view))].astype(np.float64)


def view_landmarks7(view: MorphableModel, vertices: np.ndarray) -> np.ndarray:
    """(7, 3) NoW landmarks on view vertices (V_view, 3), from the view's iBUG-68 embedding."""
    if view.landmarks68 is None:
        raise UsageError(f"the view of {view.name!r} has no 68-point landmarks to align the NoW way with")
    with torch.no_grad():
        lm = view.landmark_points(torch.as_tensor(np.asarray(vertices), dtype=view.dtype)[None])[0]
    return lm.double().numpy()[list(NOW_LANDMARKS_68)]


def score_vertices(face: SyntheticFace, view: MorphableModel, vertices: np.ndarray,
                   metrical: bool = False) -> NowResult:
    """NoW errors of predicted view vertices (V_view, 3) against the face's ground truth.

    Args:
        metrical: the metrical variant (no scale estimated in the alignment).
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.shape != (view.num_vertices, 3):
        raise UsageError(f"vertices must be the view's ({view.num_vertices}, 3), got {vertices.shape}")
    return now_errors(vertices, view.triangles.cpu().numpy(), view_landmarks7(view, vertices),
                      scan_points(face, view), face.landmarks7, scale=not metrical)


def mean_face(view: MorphableModel) -> np.ndarray:
    """(V_view, 3) the mean face: identity 0, expression 0."""
    return view.mean.detach().cpu().double().numpy()


def nothing_baseline(face: SyntheticFace, view: MorphableModel, metrical: bool = False) -> NowResult:
    """NoW errors of the mean face against `face`: the score of learning nothing from the photo."""
    return score_vertices(face, view, mean_face(view), metrical)


@dataclass
class MeshFit:
    """A model fitted to a mesh.

    Attributes:
        identity: (K_id,); expression: (K_exp,) (in [0, 1] for blendshape models).
        transform: Similarity taking the model's vertices onto the target.
        rms: RMS vertex distance (mm) on the fitted vertices after the transform.
    """

    identity: np.ndarray
    expression: np.ndarray
    transform: Similarity
    rms: float


class MeshFitter:
    """Fits identity + expression + similarity of `model` to target positions of some of its vertices.

    Each round: the shape's least-squares similarity to the target (Umeyama), then the coefficients
    by linear least squares of the target brought into model space, expression weights bounded to
    [0, 1] for blendshape models (`scipy.optimize.lsq_linear` on the QR factor, factored once here).
    The first round starts from the identity transform: a synthetic gt is in model space already.

    Args:
        model: the model or view to fit.
        vertex_ids: (n,) the vertices the target gives (default: the `narrow_face` region).
    """

    def __init__(self, model: MorphableModel, vertex_ids: np.ndarray | None = None) -> None:
        self.model = model
        self.ids = scan_vertex_ids(model) if vertex_ids is None else np.asarray(vertex_ids, dtype=np.int64)
        mean = model.mean.detach().cpu().double().numpy()
        self.mean = mean[self.ids]
        k_id, k_exp = model.num_identity, model.num_expression
        basis = torch.cat([model.identity_basis[:, self.ids], model.expression_basis[:, self.ids]])
        self.basis = basis.detach().cpu().double().numpy().reshape(k_id + k_exp, -1).T  # (3n, K)
        self.q, self.r = qr(self.basis, mode="economic")
        bounds = model.expression_bounds or (-np.inf, np.inf)
        self.lower = np.r_[np.full(k_id, -np.inf), np.full(k_exp, bounds[0])]
        self.upper = np.r_[np.full(k_id, np.inf), np.full(k_exp, bounds[1])]
        self.k_id = k_id

    def fit(self, target: np.ndarray, rounds: int = 5) -> MeshFit:
        """Fit to target (n, 3), the positions of `vertex_ids`, mm."""
        target = np.asarray(target, dtype=np.float64)
        if target.shape != self.mean.shape:
            raise UsageError(f"target must be ({len(self.ids)}, 3), got {target.shape}")
        transform = Similarity.identity()
        coeffs = np.zeros(self.basis.shape[1])
        for k in range(rounds):
            if k > 0:
                transform = umeyama(self._shape(coeffs), target)
            local = transform.inverse().apply(target) - self.mean
            coeffs = lsq_linear(self.r, self.q.T @ local.ravel(), bounds=(self.lower, self.upper),
                                method="bvls").x
        transform = umeyama(self._shape(coeffs), target)
        rms = float(np.sqrt(np.mean(np.sum((transform.apply(self._shape(coeffs)) - target) ** 2, 1))))
        return MeshFit(coeffs[: self.k_id], coeffs[self.k_id:], transform, rms)

    def _shape(self, coeffs: np.ndarray) -> np.ndarray:
        return self.mean + (self.basis @ coeffs).reshape(-1, 3)

    def vertices(self, fit: MeshFit) -> np.ndarray:
        """(V, 3) all the model's vertices for a fit's coefficients (model space, no transform)."""
        to = dict(dtype=self.model.dtype, device=self.model.device)
        identity, expression = (torch.as_tensor(c[None], **to) for c in (fit.identity, fit.expression))
        with torch.no_grad():
            return self.model.vertices(identity, expression)[0].cpu().double().numpy()


def floor_baseline(face: SyntheticFace, view: MorphableModel, fitter: MeshFitter | None = None,
                   metrical: bool = False) -> NowResult:
    """NoW errors of the model fitted directly to the face's gt mesh: the best the model can score.

    Args:
        fitter: a `MeshFitter(view)` to reuse across faces (it factors the basis once).
    """
    fitter = fitter if fitter is not None else MeshFitter(view)
    if fitter.model is not view:
        raise UsageError("the fitter was built for another model or view")
    fit = fitter.fit(face.gt_vertices[_parent_ids(view, fitter.ids)])
    return score_vertices(face, view, fitter.vertices(fit), metrical)


def gap_fraction(result, nothing, floor, key: str = "mean") -> float:
    """Fraction of the nothing -> floor gap that `result` closes: (nothing - result) / (nothing - floor).

    Each argument is an error in mm or a summary dict ({"median", "mean", "std"}), whose `key` is
    used. NaN when nothing and floor coincide.
    """
    r, a, b = (float(x[key]) if isinstance(x, Mapping) else float(x) for x in (result, nothing, floor))
    return (a - r) / (a - b) if a != b else float("nan")


@dataclass
class Calibration:
    """Per-face NoW distances (mm) of the two baselines, by face name."""

    nothing: dict[str, np.ndarray]
    floor: dict[str, np.ndarray]


def calibrate(faces: list[SyntheticFace], view: MorphableModel, metrical: bool = False) -> Calibration:
    """The nothing and floor baselines of every face, scored on `view` (the view reconstructions fit)."""
    fitter = MeshFitter(view)
    nothing, floor = {}, {}
    for face in faces:
        nothing[face.name] = nothing_baseline(face, view, metrical).distances
        floor[face.name] = floor_baseline(face, view, fitter, metrical).distances
    return Calibration(nothing, floor)
