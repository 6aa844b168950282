"""Objective terms: named pure functions of (fit variables, observations), registered once.

A `Term` has a *residual form* for the Gauss-Newton landmark fit (numpy: residual vector r and its
Jacobian J over the fit's parameter vector, cost w |r|^2) and/or a *loss form* for the
gradient-based photometric fit (torch: a scalar in the same |r|^2 units). Which terms run, and with
which weights, is the `terms` dict of `fitting.config.LandmarkFitConfig` / `PhotometricFitConfig`.

    @register_term("identity_to_target", residual=my_residual)   # in user code
    config.terms["identity_to_target"] = 5.0                     # and it is part of the fit

A data term marked `per_landmark` is multiplied by the number of landmarks used in the loss form,
so that priors weigh the same in both fits (the residual form sums over landmarks already).
A form returns None where its term does not apply (e.g. no eye pairs were given).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from ..errors import UsageError
from ..render import render_mesh
from .losses import closure_loss, coefficient_prior, landmark_loss, photometric_loss


@dataclass
class Residual:
    """One term's contribution to a Gauss-Newton step.

    Attributes:
        r: (m,) residuals (already divided by their noise).
        jacobian: d r / d x, or None when only r is asked for: (m, n) over the fit's whole parameter
            vector, or over `columns` only; a 1-D (m,) array is a diagonal (m = the block's size).
        weights: (m,) iteratively-reweighted (robust) weights, or None (all ones).
        columns: the parameter block the Jacobian covers (None: all parameters).
    """

    r: np.ndarray
    jacobian: np.ndarray | None = None
    weights: np.ndarray | None = None
    columns: slice | None = None


@dataclass
class SurfaceProjection:
    """The fitter's surface samples near the occluding contour under the current camera (for image
    terms of the Gauss-Newton fit: the face's projected outline is made of them, and where the
    outline lies inside the person's, so does the rest of the face).

    Attributes:
        uv: (N, 2) projected px. facing: (N,) cosine between each sample's (mean-shape) normal and
            its ray to the camera (> 0 faces the camera, about 0 on the occluding contour).
        jacobian: callable(rows (K,)) -> d(u, v) / d parameters (K, 2, n) of those samples.
        in_face: (N,) bool, the samples on the face proper (the rest of the head may form the
            outline, but is not fitted to it); None: all.
    """

    uv: np.ndarray
    facing: np.ndarray
    jacobian: Callable[[np.ndarray], np.ndarray]
    in_face: np.ndarray | None = None


@dataclass
class GaussNewtonInputs:
    """What a residual form sees: the parameter vector's layout and current values, and the observations.

    The parameter vector is [identity (k_id), expression (k_exp), rotation update (3), translation (3),
    log focal (1)]; `block(name)` gives a block's slice.

    Attributes:
        identity (k_id,), expression (k_exp,), rotation (3,) axis-angle, translation (3,) mm,
        log_focal: current values. log_focal_prior: log of the focal the prior is centred on.
        expression_names: the model's expression names. config: the `LandmarkFitConfig`.
        landmarks: callable(with_jacobian) -> Residual of the landmark reprojection (the fitter's
            analytic projection; see `landmark_fit`).
        extras: anything a custom term needs (e.g. a target), from `LandmarkFitter.fit(extras=...)`.
        landmark_sigma: the landmark noise in px (residuals of image terms are divided by it).
        surface: callable() -> `SurfaceProjection` of the fitter's surface samples at the current
            values (computed on each call: a term calls it once); None when the fitter has none
            (`fitting.outline`).
    """

    identity: np.ndarray
    expression: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    log_focal: float
    log_focal_prior: float
    expression_names: list[str]
    config: Any
    landmarks: Callable[[bool], Residual]
    extras: dict
    landmark_sigma: float = 1.0
    surface: "Callable[[], SurfaceProjection] | None" = None

    @property
    def num_parameters(self) -> int:
        return len(self.identity) + len(self.expression) + 7

    def block(self, name: str) -> slice:
        k, e = len(self.identity), len(self.expression)
        starts = {"identity": (0, k), "expression": (k, k + e), "rotation": (k + e, k + e + 3),
                  "translation": (k + e + 3, k + e + 6), "log_focal": (k + e + 6, k + e + 7)}
        if name not in starts:
            raise UsageError(f"no parameter block {name!r}; blocks: {sorted(starts)}")
        return slice(*starts[name])

    def linear(self, name: str, r: np.ndarray, d_r: np.ndarray, with_jacobian: bool) -> Residual:
        """A residual that depends on one block only: d r / d block = `d_r`, (m, block size) or a
        diagonal (block size,)."""
        if not with_jacobian:
            return Residual(r)
        return Residual(r, d_r, columns=self.block(name))


@dataclass
class LossInputs:
    """What a loss form sees (torch, batch B): current variables, renders and observations.

    Attributes:
        identity (B|1, K), expression (B, E), corrective (B, V) or None: the variables.
        vertices: (B, V, 3) the current mesh. camera: the render camera.
        landmarks: (B, L, 2) projected model landmarks; landmark_target (B, L, 2); landmark_weights (L,).
        sigma: landmark noise in px (crop pixels). robust_scale: Huber threshold in sigma units or None.
        expression_std: (E,) prior std of each expression. eye_pairs, lip_pairs: (P, 2) or None.
        render_triangles: (F, 3) triangles the photometric term sees; colors (B, V, 3) albedo or None;
            sh (B, 9, 3); target (B, H, W, 3) the photo crop; pixel_mask (B, H, W) skin x inliers.
        laplacian: (V, V) sparse graph Laplacian, for the corrective's smoothness.
        extras: anything a custom term needs.
    """

    identity: Tensor
    expression: Tensor
    vertices: Tensor
    camera: Any
    landmarks: Tensor
    landmark_target: Tensor
    landmark_weights: Tensor
    sigma: float
    robust_scale: float | None
    expression_std: Tensor
    eye_pairs: Tensor | None = None
    lip_pairs: Tensor | None = None
    corrective: Tensor | None = None
    render_triangles: Tensor | None = None
    colors: Tensor | None = None
    sh: Tensor | None = None
    target: Tensor | None = None
    pixel_mask: Tensor | None = None
    laplacian: Tensor | None = None
    extras: dict | None = None


ResidualForm = Callable[[GaussNewtonInputs, bool], "Residual | None"]
LossForm = Callable[[LossInputs], "Tensor | None"]


@dataclass(frozen=True)
class Term:
    """A named objective term; see the module docstring."""

    name: str
    residual: ResidualForm | None = None
    loss: LossForm | None = None
    per_landmark: bool = False


TERMS: dict[str, Term] = {}


def register_term(name: str, residual: ResidualForm | None = None, loss: LossForm | None = None,
                  per_landmark: bool = False, replace: bool = False) -> Term:
    """Register a term under `name` (a config's `terms` dict then switches it on with a weight)."""
    if residual is None and loss is None:
        raise UsageError(f"term {name!r} needs a residual form, a loss form or both")
    if name in TERMS and not replace:
        raise UsageError(f"a term named {name!r} is registered already (replace=True to override)")
    TERMS[name] = Term(name, residual, loss, per_landmark)
    return TERMS[name]


def unregister_term(name: str) -> None:
    """Remove a term registered by `register_term` (a no-op for unknown names)."""
    TERMS.pop(name, None)


def objective(weights: dict[str, float], form: str) -> list[tuple[Term, float]]:
    """The (term, weight) list a fit runs: `weights` resolved against the registry.

    Args:
        weights: term name -> weight (a weight of 0 drops the term).
        form: "residual" (Gauss-Newton) or "loss" (gradient descent).

    Raises:
        UsageError: an unknown term, or one without the form this fit needs.
    """
    out = []
    for name, weight in weights.items():
        if name not in TERMS:
            raise UsageError(f"unknown objective term {name!r}; registered: {', '.join(sorted(TERMS))}")
        term = TERMS[name]
        if getattr(term, form) is None:
            continue
        if weight:
            out.append((term, float(weight)))
    return out


def weighted_sum(terms: list[tuple[Term, float]], inputs: LossInputs) -> tuple[Tensor, dict[str, Tensor]]:
    """Total loss and each term's raw value (the terms that apply)."""
    n_used = float((inputs.landmark_weights > 0).sum())
    values: dict[str, Tensor] = {}
    total = None
    for term, weight in terms:
        value = term.loss(inputs)
        if value is None:
            continue
        values[term.name] = value
        part = (n_used if term.per_landmark else 1.0) * weight * value
        total = part if total is None else total + part
    if total is None:
        raise UsageError("the objective has no applicable term")
    return total, values


# ---------------------------------------------------------------------------- the built-in terms
def expression_prior_weights(names, scale_by_prefix: dict[str, float]) -> np.ndarray:
    """(E,) relative prior weight of each expression: the scale of the first matching name prefix, else 1."""
    return _prior_weights(tuple(names), tuple(scale_by_prefix.items())).copy()


@functools.lru_cache(maxsize=64)
def _prior_weights(names: tuple[str, ...], scale_by_prefix: tuple[tuple[str, float], ...]) -> np.ndarray:
    # every Gauss-Newton iteration asks: the name matching is done once per model and config
    out = np.ones(len(names))
    for i, name in enumerate(names):
        for prefix, scale in scale_by_prefix:
            if name.startswith(prefix):
                out[i] = scale
                break
    return out


def _landmark_residual(x: GaussNewtonInputs, with_jacobian: bool) -> Residual:
    return x.landmarks(with_jacobian)


def _landmark_loss(x: LossInputs) -> Tensor:
    # landmark_loss is the mean of 1/2 (d / sigma)^2 (Huber beyond robust_scale); twice that is the
    # Gauss-Newton cost's (d / sigma)^2 per landmark
    return 2.0 * landmark_loss(x.landmarks, x.landmark_target, x.landmark_weights, x.sigma, delta=x.robust_scale)


def _identity_prior_residual(x: GaussNewtonInputs, with_jacobian: bool) -> Residual:
    return x.linear("identity", x.identity, np.ones(len(x.identity)), with_jacobian)


def _identity_prior_loss(x: LossInputs) -> Tensor:
    return 2.0 * coefficient_prior(x.identity)  # |alpha|^2: coefficient_prior is half of it


def _expression_prior_residual(x: GaussNewtonInputs, with_jacobian: bool) -> Residual:
    root = np.sqrt(expression_prior_weights(x.expression_names, x.config.expression_shape.scale_by_prefix))
    return x.linear("expression", root * x.expression, root, with_jacobian)


def _expression_prior_loss(x: LossInputs) -> Tensor:
    return 2.0 * coefficient_prior(x.expression, x.expression_std)


def _focal_prior_residual(x: GaussNewtonInputs, with_jacobian: bool) -> Residual | None:
    sigma = x.config.focal_prior_sigma
    if sigma <= 0:
        return None
    r = np.array([(x.log_focal - x.log_focal_prior) / sigma])
    return x.linear("log_focal", r, np.array([1.0 / sigma]), with_jacobian)


def _closure(pairs_of: Callable[[LossInputs], Tensor | None]) -> LossForm:
    def loss(x: LossInputs) -> Tensor | None:
        pairs = pairs_of(x)
        if pairs is None:
            return None
        return closure_loss(x.landmarks, x.landmark_target, pairs, x.sigma)
    return loss


def _photometric_loss(x: LossInputs) -> Tensor | None:
    if x.colors is None or x.target is None:
        return None
    out = render_mesh(x.vertices, x.render_triangles, x.camera, colors=x.colors, sh=x.sh, antialias=False)
    return photometric_loss(out.image, x.target, x.pixel_mask * out.alpha.detach())


def _corrective_smoothness_loss(x: LossInputs) -> Tensor | None:
    if x.corrective is None or x.laplacian is None:
        return None
    lap = torch.sparse.mm(x.laplacian.to(x.corrective.dtype), x.corrective.T).T
    return (lap * lap).sum()


def _corrective_prior_loss(x: LossInputs) -> Tensor | None:
    return None if x.corrective is None else (x.corrective * x.corrective).sum()


register_term("landmark", residual=_landmark_residual, loss=_landmark_loss, per_landmark=True)
register_term("identity_prior", residual=_identity_prior_residual, loss=_identity_prior_loss)
register_term("expression_prior", residual=_expression_prior_residual, loss=_expression_prior_loss)
register_term("focal_prior", residual=_focal_prior_residual)
register_term("eye_closure", loss=_closure(lambda x: x.eye_pairs), per_landmark=True)
register_term("lip_closure", loss=_closure(lambda x: x.lip_pairs), per_landmark=True)
register_term("photometric", loss=_photometric_loss, per_landmark=True)
register_term("corrective_smoothness", loss=_corrective_smoothness_loss)
register_term("corrective_prior", loss=_corrective_prior_loss)
