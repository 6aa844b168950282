"""Where a landmark fit is unsure: per-vertex positional std by the Laplace approximation.

At the fitted state the Gauss-Newton normal matrix A = sum_terms w J^T D J of the fast fit's own
objective (`fitting.terms`: landmark reprojection, priors, focal prior) is the Hessian of the negative
log posterior (residuals are in noise units and the cost is |r|^2, so the covariance is A^-1). For B
images of one person the unknowns are one shared identity block and, per image, expression, rotation
update, translation and log focal length; each image's landmark term couples the shared block with
its own, and the identity prior counts once. So adding views shrinks the identity's covariance, and
with it every vertex's std. A vertex's covariance is J_v Sigma J_v^T with J_v its rows of the
identity (and expression) basis: pose and focal length are marginalised, not fixed.

The fit's noise model (`LandmarkNoise.sigma`, the error model's per-point weights) is a guess; the
landmark residuals at the optimum measure it. With `estimate_noise` the data term's part of A is
divided by s^2 = chi^2 / (n - p_eff), the residual variance per degree of freedom (chi^2 the
robust-weighted squared landmark residuals in noise units, n their count, p_eff = tr(A^-1 A_data)
the parameters the data determine), as in weighted least squares with an unknown noise scale; the
priors keep their own scales.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..models import MorphableModel
from .config import LandmarkFitConfig
from .correspondence import VertexCorrespondence
from .landmark_fit import landmark_reprojection, normal_equations
from .state import FaceState
from .terms import GaussNewtonInputs, objective


@dataclass
class ShapePosterior:
    """Gaussian posterior over the shape coefficients of a (multi-image) fit.

    Attributes:
        covariance: (k_id + B E, k_id + B E) over [identity, expression of image 0, ..., image B-1]
            (pose and focal marginalised).
        num_identity: k_id. num_expression: E. num_images: B.
        noise_scale: s, the landmark noise over the fit's assumed noise (1 when not estimated).
        dof: n - p_eff, the residual degrees of freedom s was estimated from.
    """

    covariance: np.ndarray
    num_identity: int
    num_expression: int
    num_images: int
    noise_scale: float = 1.0
    dof: float = 0.0

    def block(self, image: int, include_expression: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(indices, covariance) of the coefficients image `image`'s shape depends on."""
        idx = np.arange(self.num_identity)
        if include_expression:
            start = self.num_identity + image * self.num_expression
            idx = np.r_[idx, start:start + self.num_expression]
        return idx, self.covariance[np.ix_(idx, idx)]


def _one_blas_thread():
    """Small dense problems: BLAS threads only add synchronisation, and stall badly when the cores
    are busy (as in `LandmarkFitter.fit`)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def shape_posterior(model: MorphableModel, correspondences: list[VertexCorrespondence], points: np.ndarray,
                    weights: np.ndarray, state: FaceState, config: LandmarkFitConfig | None = None,
                    focal_fixed: bool = False, estimate_noise: bool = False) -> ShapePosterior:
    """The Laplace approximation at a fitted state of B images with a shared identity.

    Args:
        model: the fitted model (view). correspondences: one per image (the fit's final ones).
        points: (B, L, 2) detected landmarks, px. weights: (L,) or (B, L) landmark weights.
        state: the fitted state (B images; identity with 1 row, or B equal rows).
        config: the fit's `LandmarkFitConfig` (its terms, noise and priors).
        focal_fixed: the focal length was given (not a parameter).
        estimate_noise: scale the landmark noise by the residuals' (module docstring).
    """
    with _one_blas_thread():
        return _shape_posterior(model, correspondences, points, weights, state, config or LandmarkFitConfig(),
                                focal_fixed, estimate_noise)


def _shape_posterior(model, correspondences, points, weights, state, cfg, focal_fixed, estimate_noise):
    st = state.to_numpy()
    b = st.num_images
    points = np.asarray(points, dtype=np.float64)
    if points.ndim == 2:
        points = points[None]
    if points.shape[0] != b or len(correspondences) != b:
        raise UsageError(f"{b} images need {b} landmark sets and correspondences, got {points.shape[0]} and "
                         f"{len(correspondences)}")
    w_all = np.broadcast_to(np.asarray(weights, dtype=np.float64), points.shape[:2])
    k_id = st.params.identity.shape[1]
    e = st.params.expression.shape[1]
    mean = model.mean.detach().cpu().double().numpy()
    basis = np.concatenate([model.identity_basis.detach().cpu().double().numpy()[:k_id],
                            model.expression_basis.detach().cpu().double().numpy()], 0)  # (P, V, 3)
    terms = objective(cfg.terms, "residual")
    local = e + 7
    n = k_id + b * local
    a_data, a_prior = np.zeros((n, n)), np.zeros((n, n))
    chi2, count, block_sq, blocks = 0.0, 0, 0.0, 0
    names = list(model.expression_names)
    h, wd = st.camera.image_size
    for i in range(b):
        one = st.image(i)
        corr = correspondences[i]
        pts, w = points[i], w_all[i]
        used = w > 0
        face_size = float(np.linalg.norm(pts[used].max(0) - pts[used].min(0)))
        sigma = cfg.noise.sigma * face_size
        lm_mean = corr.points(mean)
        lm_basis = np.einsum("lk,lkpc->lcp", corr.weights, basis[:, corr.vertex_ids].transpose(1, 2, 0, 3))
        alpha, psi = one.params.identity[0], one.params.expression[0]
        rot, trans = one.params.rotation[0], one.params.translation[0]
        log_f = float(np.log(one.camera.focal[0]))
        principal = one.camera.principal[0]

        def landmarks(jac: bool, pts=pts, w=w, sigma=sigma, lm_mean=lm_mean, lm_basis=lm_basis, alpha=alpha,
                      psi=psi, rot=rot, trans=trans, log_f=log_f, principal=principal):
            return landmark_reprojection(lm_mean, lm_basis, np.concatenate([alpha, psi]), rot, trans, log_f,
                                         principal, pts, w, sigma, cfg.noise.robust_scale, jac)

        f0 = np.exp(log_f) if focal_fixed else cfg.focal_init * max(h, wd)
        inputs = GaussNewtonInputs(alpha, psi, rot, trans, log_f, float(np.log(f0)), names, cfg, landmarks, {})
        data, prior = [], []
        for term, weight in terms:
            if i > 0 and term.name == "identity_prior":
                continue  # the shared identity's prior counts once
            res = term.residual(inputs, True)
            if res is None:
                continue
            (data if term.per_landmark else prior).append((res, weight))
            if term.per_landmark:
                w_r = weight * (1.0 if res.weights is None else res.weights) * np.ones_like(res.r)
                chi2 += float((w_r * res.r ** 2).sum())
                count += int(((np.abs(res.jacobian).sum(1) > 0) & (w_r > 0)).sum())  # rows a landmark used
                if res.r.size == 2 * len(pts):
                    sq, nb = _block_sums(pts[used], (res.r * np.sqrt(w_r)).reshape(-1, 2)[used])
                    block_sq, blocks = block_sq + sq, blocks + nb
        cols = np.r_[0:k_id, k_id + i * local:k_id + (i + 1) * local]
        for part, big in ((data, a_data), (prior, a_prior)):
            a_i, _ = normal_equations(part, k_id + local)
            if focal_fixed:
                a_i[-1, :] = a_i[:, -1] = 0.0
                a_i[-1, -1] = 1.0 if big is a_prior else 0.0
            big[np.ix_(cols, cols)] += a_i
    scale2, dof = 1.0, 0.0
    if estimate_noise:
        p_eff = float(np.trace(np.linalg.solve(a_data + a_prior, a_data)))
        dof = count - p_eff
        if dof < 1.0:
            raise UsageError(f"{count} landmark residuals cannot measure the noise of {p_eff:.0f} parameters")
        scale2 = (block_sq / blocks if blocks else chi2 / count) * count / dof
    cov = _inverse(a_data / scale2 + a_prior)
    shape_cols = np.r_[0:k_id, np.concatenate([k_id + i * local + np.arange(e) for i in range(b)])] \
        if b else np.arange(k_id)
    return ShapePosterior(cov[np.ix_(shape_cols, shape_cols)], k_id, e, b, float(np.sqrt(scale2)), dof)


def _block_sums(points: np.ndarray, residuals: np.ndarray) -> tuple[float, int]:
    """Batch means of (L, 2) residuals at (L, 2) image points: sum over blocks of (block sum)^2 / block
    size, and the number of (block, coordinate) pairs. The blocks are the cells of a g x g grid over
    the points (g = L^(1/4), so about sqrt(L) blocks of sqrt(L) points): where neighbouring residuals
    are independent the mean is the residual variance, where they are correlated it grows by the
    factor by which their information is less."""
    g = max(1, int(round(len(points) ** 0.25)))
    lo, hi = points.min(0), points.max(0)
    cell = np.minimum(((points - lo) / np.maximum(hi - lo, 1e-9) * g).astype(int), g - 1)
    ids = cell[:, 0] * g + cell[:, 1]
    size = np.bincount(ids, minlength=g * g)
    sums = np.stack([np.bincount(ids, residuals[:, k], minlength=g * g) for k in range(2)], 1)
    full = size > 0
    return float((sums[full] ** 2 / size[full, None]).sum()), int(2 * full.sum())


def _inverse(a_mat: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive semi-definite matrix (pseudo-inverse on its null space)."""
    w, u = np.linalg.eigh((a_mat + a_mat.T) / 2)
    keep = w > w.max() * 1e-12
    return (u[:, keep] / w[keep]) @ u[:, keep].T


@dataclass
class VertexUncertainty:
    """Per-vertex positional uncertainty (mm).

    Attributes:
        std: (V,) sqrt(trace(Sigma_v) / 3), the per-axis RMS std. normal_std: (V,) the std along
            the vertex normal (what a surface distance sees), or None.
    """

    std: np.ndarray
    normal_std: np.ndarray | None = None

    def mean(self, vertices: np.ndarray | None = None) -> float:
        ids = slice(None) if vertices is None else vertices
        return float(np.mean(self.std[ids]))


def vertex_uncertainty(posterior: ShapePosterior, model: MorphableModel, image: int = 0,
                       include_expression: bool = True, normals: np.ndarray | None = None) -> VertexUncertainty:
    """(V,) positional std of every vertex of `model` (the fitted model or the full one it is a view of,
    with the same coefficients) in image `image`; with `normals` (V, 3) also the std along them."""
    with _one_blas_thread():
        return _vertex_uncertainty(posterior, model, image, include_expression, normals)


def _vertex_uncertainty(posterior, model, image, include_expression, normals) -> VertexUncertainty:
    idx, cov = posterior.block(image, include_expression)
    k = posterior.num_identity
    parts = [model.identity_basis.detach().cpu()[:k]]
    if include_expression:
        parts.append(model.expression_basis.detach().cpu())
    # float32: a std in mm needs no more, and the (3V, P) x (P, P) product is the cost of this function
    basis = np.concatenate([x.float().numpy() for x in parts], 0)  # (P, V, 3)
    if basis.shape[0] != len(idx):
        raise UsageError(f"the posterior has {len(idx)} shape coefficients, the model {basis.shape[0]}")
    w, u = np.linalg.eigh((cov + cov.T) / 2)
    root = (u * np.sqrt(np.clip(w, 0.0, None))).astype(np.float32)  # cov = root root^T
    v = basis.shape[1]
    proj = (basis.reshape(len(idx), -1).T @ root).reshape(v, 3, -1)  # (V, 3, P)
    std = np.sqrt((proj ** 2).sum((1, 2)) / 3.0).astype(np.float64)
    normal_std = None
    if normals is not None:
        along = np.einsum("vcp,vc->vp", proj, np.asarray(normals, dtype=np.float32))
        normal_std = np.sqrt((along ** 2).sum(1)).astype(np.float64)
    return VertexUncertainty(std, normal_std)
