"""Fast mode: fit identity, expression, pose and focal length to dense 2D landmarks.

Levenberg-Marquardt on the objective's residual terms (`fitting.terms`: the landmark reprojection
under a pinhole camera with an analytic Jacobian, Tikhonov priors, a log-normal focal prior, and any
term a config adds), expression weights projected onto [0, 1] for blendshape models (active set),
and sliding correspondences for the face outline. Everything is small dense numpy (L landmarks x
~160 unknowns), so one fit takes milliseconds.

The steps, named for what they solve (after eos): `estimate_initial_pose` (fitting.pose) gives the
start; `update_contour_correspondences` (fitting.contour_correspondence) re-chooses the outline;
`landmark_reprojection` is the residual and Jacobian of the landmark term; `solve_damped_step`
solves one Levenberg-Marquardt step of the normal equations; `LandmarkFitter.fit` runs them.
With a `CorrelatedNoise` (the detector's low-rank + diagonal error covariance) the landmark term is
whitened by it (`woodbury_whitener`), so the normal equations are J^T Sigma^-1 J and J^T Sigma^-1 r
over the points used.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.linalg.blas import dsyrk
from scipy.linalg.lapack import dpotrf, dpotrs

from ..errors import FitError, UsageError
from ..geometry.mesh import vertex_normals
from ..geometry.rotation import axis_angle_to_matrix_np, matrix_to_axis_angle_np
from ..models import MorphableModel
from .config import LandmarkFitConfig
from .contour_correspondence import contour_lines, update_contour_correspondences
from .correspondence import VertexCorrespondence
from .outline import CONTOUR_FACING, SAMPLE_SPACING_MM
from .pose import estimate_initial_pose
from .result import FitDiagnostics, FitResult
from .state import FaceState
from .terms import GaussNewtonInputs, Residual, SurfaceProjection, objective


@dataclass(frozen=True)
class CorrelatedNoise:
    """Landmark noise correlated across points: Sigma = diag(d) + U U^T over the raveled coordinates
    (x0, y0, x1, y1, ...) of the L detector points, in px (from `LandmarkErrorModel.covariance_at`).

    Attributes:
        diagonal: (L, 2) d, variances in px^2. factors: (L, 2, k) U in px.
    """

    diagonal: np.ndarray
    factors: np.ndarray

    def __post_init__(self) -> None:
        d, u = np.asarray(self.diagonal), np.asarray(self.factors)
        if d.ndim != 2 or d.shape[1] != 2 or u.shape[:2] != d.shape or u.ndim != 3:
            raise UsageError(f"correlated noise needs diagonal (L, 2) and factors (L, 2, k); got {d.shape}, {u.shape}")
        if not (np.isfinite(d).all() and np.isfinite(u).all() and (d > 0).all()):
            raise UsageError("correlated noise needs finite factors and a positive diagonal")

    def scaled(self, factor: float) -> "CorrelatedNoise":
        """The same noise with every std multiplied by `factor` (Sigma x factor^2)."""
        return CorrelatedNoise(self.diagonal * factor ** 2, self.factors * factor)


def _apply_basis(basis: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """(n, 3) basis . coeffs for a basis (n, 3, P), as one matrix-vector product (numpy's stacked
    (3, P) @ (P,) products are twice as slow)."""
    return (basis.reshape(-1, basis.shape[-1]) @ coeffs).reshape(basis.shape[:-1])


def woodbury_whitener(diagonal: np.ndarray, factors: np.ndarray):
    """A symmetric W with W^T W = (diag(d) + U U^T)^-1, applied without forming any (m, m) matrix.

    With V = diag(d)^-1/2 U and the eigen-decomposition V^T V = R diag(s) R^T (k x k),
    (I + V V^T)^-1/2 = I - V R diag(g(s)) R^T V^T with g(s) = (1 - (1 + s)^-1/2) / s (-> 1/2 at 0),
    so W = (I + V V^T)^-1/2 diag(d)^-1/2 (the Woodbury identity, square-rooted).

    Args:
        diagonal: (m,) positive variances d. factors: (m, k) U.

    Returns:
        whiten(x) -> W x for x (m,) or (m, n); then (W J)^T (W J) = J^T Sigma^-1 J and
        (W J)^T (W r) = J^T Sigma^-1 r, so the normal equations of whitened residuals are the
        correlated ones.
    """
    inv_root = 1.0 / np.sqrt(diagonal)
    v = factors * inv_root[:, None]  # (m, k)
    s, rot = np.linalg.eigh(v.T @ v)
    s = np.maximum(s, 0.0)
    safe = np.where(s > 1e-12, s, 1.0)
    g = np.where(s > 1e-12, (1.0 - 1.0 / np.sqrt(1.0 + safe)) / safe, 0.5)
    inner = (rot * g) @ rot.T  # (k, k)

    def whiten(x: np.ndarray) -> np.ndarray:
        y = x * (inv_root if x.ndim == 1 else inv_root[:, None])
        return y - v @ (inner @ (v.T @ y))
    return whiten


def landmark_reprojection(mean: np.ndarray, basis: np.ndarray, coeffs: np.ndarray, rotation: np.ndarray,
                          translation: np.ndarray, log_focal: float, principal: np.ndarray, points: np.ndarray,
                          weights: np.ndarray, sigma: float, robust_scale: float | None,
                          with_jacobian: bool, noise: CorrelatedNoise | None = None) -> Residual:
    """Residual of the landmark term: weighted reprojection error in units of the landmark noise.

    Args:
        mean: (L, 3) model points at zero coefficients; basis: (L, 3, P) their shape basis;
            coeffs: (P,) identity then expression coefficients.
        rotation: (3,) axis-angle; translation: (3,) mm; log_focal; principal: (2,) px.
        points: (L, 2) observed px; weights: (L,) per-landmark weights; sigma: noise in px.
        robust_scale: Huber threshold in sigma units (None: least squares).
        with_jacobian: also return d r / d [coeffs, rotation update (left), translation, log focal].
        noise: correlated landmark noise (px): then the residuals of the points with weight > 0 are
            whitened by its covariance restricted to them (`woodbury_whitener`), with `sigma` and
            `weights` as before (the cost is sum over used points of w-scaled residuals under
            Sigma / sigma^2), and the Huber threshold applies to each point's residual in units of
            its own marginal std.

    Returns:
        `Residual` (2L,): with the Jacobian, the raw residuals and the Huber (IRLS) weights; without,
        the residuals scaled by the square root of those weights (so |r|^2 is the robust cost).
        With `noise`: (2 L_used,) whitened residuals (robust weights folded in) and their Jacobian.
    """
    f = np.exp(log_focal)
    r_mat = axis_angle_to_matrix_np(rotation)
    x = mean + _apply_basis(basis, coeffs)
    rx = x @ r_mat.T
    y = rx + translation
    z = -y[:, 2]
    if (z <= 1e-3).any():
        z = np.maximum(z, 1e-3)
    u = principal[0] + f * y[:, 0] / z
    v = principal[1] - f * y[:, 1] / z
    sw = np.sqrt(weights)[:, None] / sigma
    res = (np.stack([u, v], 1) - points) * sw  # (L, 2)
    robust = np.ones_like(res)
    if noise is not None:
        used = weights > 0
        var = (noise.diagonal[used] + (noise.factors[used] ** 2).sum(2)) / sigma ** 2  # (L_used, 2) marginal
    if robust_scale is not None:
        norm = np.linalg.norm(res, axis=1)
        if noise is not None:
            norm = np.zeros(len(res))
            norm[used] = np.sqrt((res[used] ** 2 / var).sum(1))
        robust = np.where(norm > robust_scale, robust_scale / np.maximum(norm, 1e-12), 1.0)
        robust = np.repeat(robust[:, None], 2, axis=1)
    if noise is not None:
        # Sigma of the used points in units of sigma^2; IRLS: a point's weight scales its rows
        whiten = woodbury_whitener(noise.diagonal[used].ravel() / sigma ** 2,
                                   noise.factors[used].reshape(-1, noise.factors.shape[2]) / sigma)
        root = np.sqrt(robust[used]).ravel()
    if not with_jacobian:
        if noise is not None:
            return Residual(whiten(res[used].ravel() * root))
        return Residual((res * np.sqrt(robust)).ravel())
    # d(u, v)/dY: (L, 2, 3)
    inv_z = 1.0 / z
    du = np.stack([f * inv_z, np.zeros_like(z), f * y[:, 0] * inv_z ** 2], 1)
    dv = np.stack([np.zeros_like(z), -f * inv_z, -f * y[:, 1] * inv_z ** 2], 1)
    d_uv = np.stack([du, dv], 1) * sw[:, :, None]  # (L, 2, 3)
    j_shape = (d_uv @ r_mat) @ basis  # (L, 2, P)
    # left-multiplied rotation update R <- exp([d]x) R: dY/dd = -[R x]x
    skew = np.zeros((len(rx), 3, 3))
    skew[:, 0, 1], skew[:, 0, 2] = rx[:, 2], -rx[:, 1]
    skew[:, 1, 0], skew[:, 1, 2] = -rx[:, 2], rx[:, 0]
    skew[:, 2, 0], skew[:, 2, 1] = rx[:, 1], -rx[:, 0]
    j_rot = d_uv @ skew
    j_f = np.stack([u - principal[0], v - principal[1]], 1)[:, :, None] * sw[:, :, None]
    jac = np.concatenate([j_shape, j_rot, d_uv, j_f], axis=2)
    if noise is not None:
        return Residual(whiten(res[used].ravel() * root), whiten(jac[used].reshape(-1, jac.shape[2]) * root[:, None]))
    return Residual(res.ravel(), jac.reshape(-1, j_shape.shape[2] + 7), robust.ravel())


def project_with_jacobian(mean: np.ndarray, basis: np.ndarray, coeffs: np.ndarray, rotation: np.ndarray,
                          translation: np.ndarray, log_focal: float, principal: np.ndarray,
                          with_jacobian: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Pinhole projection of model points and, when asked, its Jacobian.

    Args:
        mean: (N, 3) points at zero coefficients; basis: (N, 3, P) their basis; coeffs: (P,).
        rotation (3,) axis-angle, translation (3,) mm, log_focal, principal (2,) px: the camera.

    Returns:
        (projected (N, 2) px, and with `with_jacobian` d(u, v) / d [coeffs, rotation update (left),
        translation, log focal] (N, 2, P + 7), else None).
    """
    f = np.exp(log_focal)
    r_mat = axis_angle_to_matrix_np(rotation)
    rx = (mean + _apply_basis(basis, coeffs)) @ r_mat.T
    y = rx + translation
    z = np.maximum(-y[:, 2], 1e-3)
    uv = np.stack([principal[0] + f * y[:, 0] / z, principal[1] - f * y[:, 1] / z], 1)
    if not with_jacobian:
        return uv, None
    inv_z = 1.0 / z
    zero = np.zeros_like(z)
    du = np.stack([f * inv_z, zero, f * y[:, 0] * inv_z ** 2], 1)
    dv = np.stack([zero, -f * inv_z, -f * y[:, 1] * inv_z ** 2], 1)
    d_uv = np.stack([du, dv], 1)  # (N, 2, 3)
    j_shape = (d_uv @ r_mat) @ basis
    skew = np.zeros((len(rx), 3, 3))
    skew[:, 0, 1], skew[:, 0, 2] = rx[:, 2], -rx[:, 1]
    skew[:, 1, 0], skew[:, 1, 2] = -rx[:, 2], rx[:, 0]
    skew[:, 2, 0], skew[:, 2, 1] = rx[:, 1], -rx[:, 0]
    j_f = (uv - principal)[:, :, None]
    return uv, np.concatenate([j_shape, d_uv @ skew, d_uv, j_f], axis=2)


def normal_equations(residuals: list[tuple[Residual, float]], num_parameters: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Newton normal equations A = sum w J^T D J, g = sum w J^T D r of weighted residual terms."""
    a_mat = np.zeros((num_parameters, num_parameters))
    g = np.zeros(num_parameters)
    for res, weight in residuals:
        w = weight if res.weights is None else weight * res.weights
        cols = res.columns if res.columns is not None else slice(0, num_parameters)
        jac = res.jacobian
        if jac.ndim == 1:  # a diagonal block
            idx = np.arange(num_parameters)[cols]
            a_mat[idx, idx] += w * jac * jac
            g[cols] += jac * (w * res.r)
        else:
            w = np.broadcast_to(w, res.r.shape)
            if (w >= 0).all():  # J^T W J as (W^1/2 J)^T (W^1/2 J): one triangle (BLAS syrk), mirrored
                jw = jac * np.sqrt(w)[:, None]
                upper = dsyrk(1.0, jw.T)  # (P, P), the upper triangle filled
                a_mat[cols, cols] += upper + np.triu(upper, 1).T
                g[cols] += jw.T @ (np.sqrt(w) * res.r)
            else:
                jw = jac * w[:, None]
                a_mat[cols, cols] += jw.T @ jac
                g[cols] += jw.T @ res.r
    return a_mat, g


def hold_parameters(a_mat: np.ndarray, g: np.ndarray, held: np.ndarray) -> None:
    """Keep the parameters `held` (indices) where they are: identity rows in A, zero gradient (in place)."""
    if len(held) == 0:
        return
    a_mat[held, :] = 0
    a_mat[:, held] = 0
    a_mat[held, held] = 1.0
    g[held] = 0.0


def solve_damped_step(a_mat: np.ndarray, g: np.ndarray, damping: float) -> np.ndarray | None:
    """The Levenberg-Marquardt step -(A + damping diag(A))^-1 g, or None when singular."""
    damped = a_mat + damping * np.diag(np.diag(a_mat) + 1e-6)
    # symmetric positive definite whenever A is positive semi-definite (a Gauss-Newton matrix):
    # Cholesky, with the general solver for what it rejects
    factor, info = dpotrf(damped, lower=0, clean=0)
    if info == 0:
        step, info = dpotrs(factor, g, lower=0)
        if info == 0 and np.isfinite(step).all():
            return -step
    try:
        return -np.linalg.solve(damped, g)
    except np.linalg.LinAlgError:
        return None


def thinned_vertices(points: np.ndarray, ids: np.ndarray, spacing: float) -> np.ndarray:
    """(K,) ids (sorted) of one vertex per occupied cell of a `spacing` grid over points[ids]: the
    one nearest its cell's centre.

    Args:
        points: (V, 3) vertex positions; ids: (n,) the vertices to thin; spacing: the cell side.
    """
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) == 0:
        return ids
    p = points[ids] / spacing
    cell = np.floor(p).astype(np.int64)
    off = np.sum((p - cell - 0.5) ** 2, axis=1)
    order = np.lexsort((off, cell[:, 2], cell[:, 1], cell[:, 0]))
    c = cell[order]
    first = np.ones(len(c), bool)
    first[1:] = (c[1:] != c[:-1]).any(axis=1)
    return np.sort(ids[order[first]])


class LandmarkFitter:
    """Holds the per-model arrays a landmark fit needs, so repeated fits cost milliseconds.

    Args:
        model: the model (or view) to fit.
        correspondence: landmarks on `model`'s vertices.
        contour_region: region whose vertices outline points may slide over (default "face").
        outline_region: the face proper, for the outline term: its surface samples cover the whole
            model (a head's outline may be any part of it) and only those in this region are fitted
            to the outline (every sample when the model has no such region).
    """

    def __init__(self, model: MorphableModel, correspondence: VertexCorrespondence,
                 contour_region: str = "face", outline_region: str = "narrow_face") -> None:
        self.model = model
        self.correspondence = correspondence
        mean = model.mean.detach().cpu().double().numpy()
        self.bounded = model.expression_bounds is not None
        tris = model.triangles.cpu().numpy()
        region = model.regions.get(contour_region)
        region_ids = np.arange(model.num_vertices) if region is None else region.cpu().numpy()
        self.contours = contour_lines(mean, region_ids, correspondence)
        # the outline term's surface samples (`fitting.outline`): the whole model thinned to a grid
        self.surface_samples = thinned_vertices(mean, np.arange(model.num_vertices), SAMPLE_SPACING_MM)
        fitted = model.regions.get(outline_region)
        self.surface_in_face = np.ones(len(self.surface_samples), bool) if fitted is None else \
            np.isin(self.surface_samples, fitted.cpu().numpy())
        # Everything a fit touches lives on a few thousand vertices: keep their bases in float64,
        # laid out (n, 3, K_id + E), so a fit never gathers from the full model.
        involved = np.unique(np.concatenate([correspondence.vertex_ids.ravel(), self.contours.vertices,
                                             self.surface_samples]))
        self.local_index = np.full(model.num_vertices, -1, dtype=np.int64)
        self.local_index[involved] = np.arange(len(involved))
        self.contour_local = self.local_index[self.contours.vertices]
        self.surface_local = self.local_index[self.surface_samples]
        self.num_identity = model.num_identity
        id_basis = model.identity_basis.detach().cpu().numpy()[:, involved]  # (K, n, 3)
        exp_basis = model.expression_basis.detach().cpu().numpy()[:, involved]
        self.local_mean = mean[involved]
        self.local_basis = np.ascontiguousarray(
            np.concatenate([id_basis, exp_basis]).transpose(1, 2, 0).astype(np.float64))  # (n, 3, K + E)
        self.local_normals = vertex_normals(mean, tris)[involved]
        self.num_expression = exp_basis.shape[0]
        self._basis_cache: dict[int, np.ndarray] = {}
        self._contour_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._surface_cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._threads = None

    def _basis(self, k_id: int) -> np.ndarray:
        """(n, 3, k_id + E) local basis with only the first k_id identity modes."""
        if k_id == self.num_identity:
            return self.local_basis
        if k_id not in self._basis_cache:
            cols = np.r_[0:k_id, self.num_identity:self.num_identity + self.num_expression]
            self._basis_cache[k_id] = np.ascontiguousarray(self.local_basis[:, :, cols])
        return self._basis_cache[k_id]

    def fit(self, points: np.ndarray, image_size: tuple[int, int], weights: np.ndarray | None = None,
            config: LandmarkFitConfig | None = None, focal: float | None = None,
            init: FitResult | FaceState | None = None, freeze_identity: bool = False,
            freeze_expression: bool = False, extras: dict | None = None,
            noise: CorrelatedNoise | None = None) -> FitResult:
        """Fit one image's landmarks.

        Args:
            points: (L, 2) observed landmarks in pixels, in the correspondence's order.
            image_size: (H, W).
            weights: (L,) per-landmark weights (0 drops a landmark), default ones.
            config: `LandmarkFitConfig` (its `terms` are the objective).
            focal: a known focal length in px (then it is held fixed).
            init: a previous fit or state (B = 1) to start from (video tracking, a polish after the
                full fit); its correspondence is not reused.
            freeze_identity: keep `init`'s identity and fit only expression, pose and focal length.
            freeze_expression: keep `init`'s expression too (then only pose and focal are fitted).
            extras: passed to custom terms as `GaussNewtonInputs.extras`.
            noise: correlated landmark noise (px, `CorrelatedNoise`): the landmark term whitens the
                used points' residuals by it (`landmark_reprojection`); None: independent points of
                std sigma / sqrt(weight).

        Returns:
            `FitResult` with a one-image state (appearance empty).
        """
        if self._threads is None:
            from threadpoolctl import ThreadpoolController

            self._threads = ThreadpoolController()
        # these are small dense problems: BLAS threads only add synchronisation (and stall badly
        # when the cores are busy)
        with self._threads.limit(limits=1, user_api="blas"):
            state = init.state if isinstance(init, FitResult) else init
            return self._fit(points, image_size, weights, config or LandmarkFitConfig(), focal, state,
                             freeze_identity, freeze_expression, extras or {}, noise)

    def _fit(self, points, image_size, weights, cfg: LandmarkFitConfig, focal, init: FaceState | None,
             freeze_identity, freeze_expression, extras, noise: CorrelatedNoise | None) -> FitResult:
        t0 = time.perf_counter()
        corr = self.correspondence
        points = np.asarray(points, dtype=np.float64)
        if points.shape != (len(corr), 2):
            raise UsageError(f"expected ({len(corr)}, 2) landmarks, got {points.shape}")
        w = np.ones(len(corr)) if weights is None else np.asarray(weights, dtype=np.float64)
        if not (np.isfinite(points[w > 0]).all()):
            raise FitError("landmarks contain NaN or inf")
        if noise is not None and noise.diagonal.shape[0] != len(corr):
            raise UsageError(f"correlated noise is for {noise.diagonal.shape[0]} landmarks, the fit has {len(corr)}")
        points = np.where(np.isfinite(points), points, 0.0)
        h, wd = image_size
        principal = np.array([wd / 2.0, h / 2.0])
        k_id = min(cfg.num_identity, self.num_identity)
        k_exp = self.num_expression
        local_basis = self._basis(k_id)
        lo, hi = points[w > 0].min(0), points[w > 0].max(0)
        face_size = float(np.linalg.norm(hi - lo))
        if face_size < 4:
            raise FitError("landmarks span less than 4 pixels")
        sigma = cfg.noise.sigma * face_size
        f0 = float(focal) if focal is not None else cfg.focal_init * max(h, wd)
        fix_focal = focal is not None or cfg.focal_prior_sigma <= 0
        terms = objective(cfg.terms, "residual")

        vids = corr.vertex_ids.copy()
        bary = corr.weights
        alpha = np.zeros(k_id)
        psi = np.zeros(k_exp)
        if init is not None:
            one = init.to_numpy()
            alpha[: min(k_id, one.params.identity.shape[1])] = one.params.identity[0, :k_id]
            psi[:] = one.params.expression[0]
            rot, trans = one.params.rotation[0].copy(), one.params.translation[0].copy()
            log_f = float(np.log(one.camera.focal[0])) if focal is None else float(np.log(focal))
        else:
            x0 = np.einsum("lk,lkc->lc", bary, self.local_mean[self.local_index[vids]])
            rot, trans, log_f = estimate_initial_pose(x0, points, w, f0, principal)

        n_par = k_id + k_exp + 7
        held = np.zeros(0, dtype=np.int64)
        if init is not None and (freeze_identity or freeze_expression):
            held = np.r_[np.arange(k_id) if freeze_identity else np.zeros(0, int),
                         np.arange(k_id, k_id + k_exp) if freeze_expression else np.zeros(0, int)]
        lam = cfg.damping_init
        history = []
        updates = set(np.linspace(0, cfg.iterations - 1, cfg.sliding_updates + 1)[:-1].round().astype(int).tolist()) \
            if len(self.contours.landmarks) and cfg.sliding_updates > 0 else set()
        bases = self._landmark_bases(vids, bary, local_basis)
        surface_arrays = self._surface_arrays(local_basis)
        names = list(self.model.expression_names)

        def evaluate(a, e, r, t, lf, with_jacobian):
            def landmarks(jac: bool) -> Residual:
                return landmark_reprojection(bases[0], bases[1], np.concatenate([a, e]), r, t, lf, principal, points,
                                             w, sigma, cfg.noise.robust_scale, jac, noise)
            def surface() -> SurfaceProjection:
                return self._surface_projection(surface_arrays, np.concatenate([a, e]), r, t, lf, principal)
            inputs = GaussNewtonInputs(a, e, r, t, lf, np.log(f0), names, cfg, landmarks, extras, sigma, surface)
            out = []
            for term, weight in terms:
                res = term.residual(inputs, with_jacobian)
                if res is not None:
                    out.append((res, weight))
            return out

        def cost_of(residuals) -> float:
            return float(sum(weight * float(res.r @ res.r) for res, weight in residuals))

        cost = None
        for it in range(cfg.iterations):
            if it in updates:
                new_vids = self._update_outline(vids, local_basis, np.concatenate([alpha, psi]), rot, trans, log_f,
                                                principal)
                bases = self._landmark_bases(new_vids, bary, local_basis, previous=(vids, bases))
                vids = new_vids
                cost = None
            residuals = evaluate(alpha, psi, rot, trans, log_f, True)
            if cost is None:
                cost = cost_of(residuals)
            a_mat, g = normal_equations(residuals, n_par)
            hold_parameters(a_mat, g, held)
            if self.bounded:
                # active set: weights held at a bound that the gradient pushes beyond stay there
                ge = g[k_id:k_id + k_exp]
                hold_parameters(a_mat, g, k_id + np.nonzero(((psi <= 1e-9) & (ge > 0)) | ((psi >= 1 - 1e-9) & (ge < 0)))[0])
            if fix_focal:
                hold_parameters(a_mat, g, np.array([n_par - 1]))
            for _ in range(cfg.step_trials):
                step = solve_damped_step(a_mat, g, lam)
                if step is None:
                    lam *= 10
                    continue
                na, npsi, nrot, ntrans, nlogf = self._apply(step, alpha, psi, rot, trans, log_f, k_id, k_exp)
                ncost = cost_of(evaluate(na, npsi, nrot, ntrans, nlogf, False))
                if ncost <= cost:
                    alpha, psi, rot, trans, log_f, cost = na, npsi, nrot, ntrans, nlogf, ncost
                    lam = max(lam / 3, 1e-7)
                    break
                lam *= 8
            history.append(float(cost))
            converged = len(history) > 1 and history[-2] - history[-1] < cfg.stop_relative_decrease * history[-1]
            if converged and not any(u > it for u in updates):
                break
        proj = self._project(bases, alpha, psi, rot, trans, np.exp(log_f), principal)
        residual = np.linalg.norm(proj - points, axis=1)
        values = [alpha, psi, rot, trans, np.array([log_f])]
        if not all(np.isfinite(v).all() for v in values):
            raise FitError("landmark fit diverged (non-finite parameters)")
        state = FaceState.single(alpha, psi, rot, trans, float(np.exp(log_f)), principal, (int(h), int(wd)))
        return FitResult(state, VertexCorrespondence(vids, bary, corr.sliding),
                         FitDiagnostics(residual[None], seconds=time.perf_counter() - t0, iterations=len(history),
                                        history=history))

    def landmark_facing(self, fit: FitResult) -> np.ndarray:
        """(L,) cosine between each landmark's surface normal (at its first vertex, mean shape) and the
        ray to the camera under `fit`'s pose: negative on the far side of a turned face, where a
        detector's point cannot be the surface point it is paired with."""
        st = fit.state.to_numpy()
        r_mat = axis_angle_to_matrix_np(st.params.rotation[0])
        li = self.local_index[fit.correspondence.vertex_ids[:, 0]]
        y = self.local_mean[li] @ r_mat.T + st.params.translation[0]
        n = self.local_normals[li] @ r_mat.T
        return -(n * y).sum(1) / np.maximum(np.linalg.norm(y, axis=1), 1e-9)

    # ------------------------------------------------------------------ pieces
    def _landmark_bases(self, vids: np.ndarray, bary: np.ndarray, local_basis: np.ndarray,
                        previous: tuple | None = None):
        """Mean (L, 3) and the shape basis (L, 3, k_id + E) of the landmark points.

        `previous` = (vids, (mean, basis)) of an earlier call with the same `bary` and `local_basis`:
        then only the rows whose vertices changed (the outline's, after `_update_outline`) are
        recomputed, into copies (the earlier arrays are left as they were).
        """
        if previous is not None:
            old_vids, (mean, basis) = previous
            rows = np.nonzero((vids != old_vids).any(axis=1))[0]
            mean, basis = mean.copy(), basis.copy()
        else:
            rows = slice(None)
            mean = basis = None
        li = self.local_index[vids[rows]]
        new_mean = np.einsum("lk,lkc->lc", bary[rows], self.local_mean[li])
        new_basis = np.einsum("lk,lkcn->lcn", bary[rows], local_basis[li])
        if previous is None:
            return new_mean, new_basis
        mean[rows], basis[rows] = new_mean, new_basis
        return mean, basis

    @staticmethod
    def _project(bases, alpha, psi, rot, trans, focal, principal):
        mean, basis = bases
        x = mean + _apply_basis(basis, np.concatenate([alpha, psi]))
        y = x @ axis_angle_to_matrix_np(rot).T + trans
        z = np.maximum(-y[:, 2], 1e-6)
        return np.stack([principal[0] + focal * y[:, 0] / z, principal[1] - focal * y[:, 1] / z], axis=1)

    def _apply(self, step, alpha, psi, rot, trans, log_f, k_id, k_exp):
        na = alpha + step[:k_id]
        npsi = psi + step[k_id:k_id + k_exp]
        if self.bounded:
            npsi = np.clip(npsi, 0.0, 1.0)
        d = step[k_id + k_exp:k_id + k_exp + 3]
        nrot = matrix_to_axis_angle_np(axis_angle_to_matrix_np(d) @ axis_angle_to_matrix_np(rot))
        ntrans = trans + step[k_id + k_exp + 3:k_id + k_exp + 6]
        nlogf = log_f + step[-1]
        return na, npsi, nrot, ntrans, nlogf

    def _surface_arrays(self, local_basis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean (N, 3) and basis (N, 3, k_id + E) of the surface samples for this local basis, and the
        basis as a float32 (N * 3, k_id + E) matrix (where the samples are only needs to be roughly known)."""
        key = local_basis.shape[2]
        if key not in self._surface_cache:
            sl = self.surface_local
            basis = np.ascontiguousarray(local_basis[sl])
            self._surface_cache[key] = (self.local_mean[sl], basis,
                                        basis.reshape(-1, key).astype(np.float32))
        return self._surface_cache[key]

    def _surface_projection(self, arrays, coeffs, rot, trans, log_f, principal) -> SurfaceProjection:
        """The surface samples near the occluding contour (|facing| < `CONTOUR_FACING`, judged on the
        mean shape's positions and normals), projected."""
        mean, basis, coarse = arrays
        r_mat = axis_angle_to_matrix_np(rot)
        y = mean @ r_mat.T + trans
        n = self.local_normals[self.surface_local] @ r_mat.T
        facing = -(n * y).sum(1) / np.maximum(np.linalg.norm(y, axis=1), 1e-9)
        near = np.nonzero(np.abs(facing) < CONTOUR_FACING)[0]
        # one float32 product over all samples beats gathering the basis rows of the near ones
        x = mean[near] + (coarse @ coeffs.astype(np.float32)).reshape(-1, 3)[near]
        yn = x @ r_mat.T + trans
        z = np.maximum(-yn[:, 2], 1e-3)
        f = np.exp(log_f)
        uv = np.stack([principal[0] + f * yn[:, 0] / z, principal[1] - f * yn[:, 1] / z], 1)

        def jacobian(rows: np.ndarray) -> np.ndarray:
            ids = near[rows]
            return project_with_jacobian(mean[ids], basis[ids], coeffs, rot, trans, log_f, principal, True)[1]
        return SurfaceProjection(uv, facing[near], jacobian, self.surface_in_face[near])

    def _update_outline(self, vids, local_basis, coeffs, rot, trans, log_f, principal):
        lc = self.contour_local
        key = local_basis.shape[2]  # one local basis per number of identity modes
        if key not in self._contour_cache:
            self._contour_cache[key] = (self.local_mean[lc], np.ascontiguousarray(local_basis[lc]))
        contour_mean, contour_basis = self._contour_cache[key]
        candidates = contour_mean + _apply_basis(contour_basis, coeffs)
        centre = self.local_mean[self.local_index[vids[:, 0]]]
        return update_contour_correspondences(vids, self.contours, candidates, self.local_normals[lc], centre,
                                              rot, trans, float(np.exp(log_f)), principal)
