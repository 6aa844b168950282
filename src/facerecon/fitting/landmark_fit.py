"""Fast mode: fit identity, expression, pose and focal length to dense 2D landmarks.

Levenberg-Marquardt on the reprojection error of the landmarks under a pinhole camera, with an
analytic Jacobian, Tikhonov priors from the mode variances (coefficients are in standard
deviations), expression weights projected onto [0, 1] for blendshape models, a log-normal prior
on the focal length, and sliding correspondences for the face outline (the model point of an
outline landmark moves along a horizontal contour line to where the surface turns away from the
camera). Everything here is small dense numpy (L landmarks x ~160 unknowns), so one fit takes
milliseconds.

Step names follow eos: `estimate_orthographic_projection_linear` gives the start,
`fit_landmarks` refines everything jointly.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import FitError, UsageError
from ..geometry.mesh import vertex_normals
from ..models import MorphableModel
from .correspondence import VertexCorrespondence
from ..geometry.rotation import axis_angle_to_matrix_np, matrix_to_axis_angle_np


@dataclass
class LandmarkFitConfig:
    """Weights and limits of the landmark fit (all priors relative to the landmark noise).

    Attributes:
        num_identity: identity modes to fit (the first k).
        identity_prior: weight of ||alpha||^2 (alpha in standard deviations).
        expression_prior: weight of ||psi||^2.
        landmark_sigma: landmark noise as a fraction of the face size (bounding-box diagonal of the
            landmarks); residuals are divided by it so the priors do not depend on image size.
        focal_init: initial focal length as a multiple of max(H, W) when none is given.
        focal_prior_sigma: std of log(focal / focal_init); 0 fixes the focal length.
        iterations: Levenberg-Marquardt iterations.
        sliding_updates: how many times the outline correspondences are re-chosen.
        robust_scale: Huber threshold in units of landmark_sigma (None: plain least squares).
    """

    num_identity: int = 100
    identity_prior: float = 1.0
    expression_prior: float = 0.3
    landmark_sigma: float = 0.01
    focal_init: float = 1.0
    focal_prior_sigma: float = 0.25
    iterations: int = 12
    sliding_updates: int = 3
    robust_scale: float | None = 3.0
    # expressions that landmarks barely observe get a stronger prior (by name prefix): ICT's gaze
    # blendshapes move the eyeballs, which the fitted head view does not contain
    expression_prior_scale: dict[str, float] = field(default_factory=lambda: {"eyeLook": 10.0})


@dataclass
class LandmarkFit:
    """Result of a landmark fit (one image).

    Attributes:
        identity: (k,) coefficients in standard deviations. expression: (E,).
        rotation: (3,) axis-angle model -> camera. translation: (3,) mm. focal: px.
        principal: (2,) px. image_size: (H, W).
        residual_px: (L,) reprojection error of each landmark in pixels.
        correspondence: the final correspondence (with the chosen outline points).
        seconds: wall time of the fit.
    """

    identity: np.ndarray
    expression: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    focal: float
    principal: np.ndarray
    image_size: tuple[int, int]
    residual_px: np.ndarray
    correspondence: VertexCorrespondence
    seconds: float = 0.0
    history: list[float] = field(default_factory=list)

    @property
    def rms_px(self) -> float:
        return float(np.sqrt(np.mean(self.residual_px ** 2)))


class LandmarkFitter:
    """Holds the per-model arrays a landmark fit needs, so repeated fits cost milliseconds.

    Args:
        model: the model (or view) to fit.
        correspondence: landmarks on `model`'s vertices.
        contour_region: region whose vertices outline points may slide over (default "face").
    """

    def __init__(self, model: MorphableModel, correspondence: VertexCorrespondence,
                 contour_region: str = "face") -> None:
        self.model = model
        self.correspondence = correspondence
        mean = model.mean.detach().cpu().double().numpy()
        self.bounded = model.expression_bounds is not None
        tris = model.triangles.cpu().numpy()
        region = model.regions.get(contour_region)
        region_ids = np.arange(model.num_vertices) if region is None else region.cpu().numpy()
        contours = _contour_lines(mean, region_ids, correspondence)
        # Everything a fit touches lives on a few thousand vertices: keep their bases in float64,
        # laid out (n, 3, K_id + E), so a fit never gathers from the full model.
        self.contour_landmarks = np.array(sorted(contours), dtype=np.int64)
        cand = [contours[i] for i in self.contour_landmarks]
        self.contour_starts = np.cumsum([0] + [len(c) for c in cand])
        contour_vertices = np.concatenate(cand) if cand else np.zeros(0, dtype=np.int64)
        involved = np.unique(np.concatenate([correspondence.vertex_ids.ravel(), contour_vertices]))
        self.local_index = np.full(model.num_vertices, -1, dtype=np.int64)
        self.local_index[involved] = np.arange(len(involved))
        self.contour_local = self.local_index[contour_vertices]
        self.contour_vertices = contour_vertices
        self.num_identity = model.num_identity
        id_basis = model.identity_basis.detach().cpu().numpy()[:, involved]  # (K, n, 3)
        exp_basis = model.expression_basis.detach().cpu().numpy()[:, involved]
        self.local_mean = mean[involved]
        self.local_basis = np.ascontiguousarray(
            np.concatenate([id_basis, exp_basis]).transpose(1, 2, 0).astype(np.float64))  # (n, 3, K + E)
        self.local_normals = vertex_normals(mean, tris)[involved]
        self.num_expression = exp_basis.shape[0]
        self._basis_cache: dict[int, np.ndarray] = {}
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
            init: LandmarkFit | None = None, freeze_identity: bool = False,
            freeze_expression: bool = False) -> LandmarkFit:
        """Fit to observed landmarks.

        Args:
            points: (L, 2) observed landmarks in pixels, in the correspondence's order.
            image_size: (H, W).
            weights: (L,) per-landmark weights (0 drops a landmark), default ones.
            config: `LandmarkFitConfig`.
            focal: a known focal length in px (then it is held fixed).
            init: a previous fit to start from (video tracking, or a polish after the full fit).
            freeze_identity: keep `init`'s identity and fit only expression, pose and focal length.
            freeze_expression: keep `init`'s expression too (then only pose and focal are fitted).
        """
        if self._threads is None:
            from threadpoolctl import ThreadpoolController

            self._threads = ThreadpoolController()
        # these are small dense problems: BLAS threads only add synchronisation (and stall badly
        # when the cores are busy)
        with self._threads.limit(limits=1, user_api="blas"):
            return self._fit(points, image_size, weights, config, focal, init, freeze_identity, freeze_expression)

    def _fit(self, points, image_size, weights, config, focal, init, freeze_identity=False,
             freeze_expression=False) -> LandmarkFit:
        t0 = time.perf_counter()
        cfg = config or LandmarkFitConfig()
        corr = self.correspondence
        points = np.asarray(points, dtype=np.float64)
        if points.shape != (len(corr), 2):
            raise UsageError(f"expected ({len(corr)}, 2) landmarks, got {points.shape}")
        w = np.ones(len(corr)) if weights is None else np.asarray(weights, dtype=np.float64)
        if not (np.isfinite(points[w > 0]).all()):
            raise FitError("landmarks contain NaN or inf")
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
        sigma = cfg.landmark_sigma * face_size
        f0 = float(focal) if focal is not None else cfg.focal_init * max(h, wd)
        fix_focal = focal is not None or cfg.focal_prior_sigma <= 0

        vids = corr.vertex_ids.copy()
        bary = corr.weights
        alpha = np.zeros(k_id)
        psi = np.zeros(k_exp)
        if init is not None:
            alpha[: len(init.identity)] = init.identity[:k_id]
            psi[:] = init.expression
            rot, trans, log_f = init.rotation.copy(), init.translation.copy(), np.log(init.focal)
        else:
            x0 = np.einsum("lk,lkc->lc", bary, self.local_mean[self.local_index[vids]])
            rot, trans, log_f = _initial_pose(x0, points, w, f0, principal)

        n_par = k_id + k_exp + 7
        prior = np.zeros(n_par)
        prior[:k_id] = cfg.identity_prior
        prior[k_id:k_id + k_exp] = expression_prior_weights(self.model.expression_names, cfg.expression_prior,
                                                            cfg.expression_prior_scale)
        lam = 1e-3
        history = []
        updates = set(np.linspace(0, cfg.iterations - 1, cfg.sliding_updates + 1)[:-1].round().astype(int).tolist()) \
            if len(self.contour_landmarks) and cfg.sliding_updates > 0 else set()
        bases = self._landmark_bases(vids, bary, local_basis)
        cost = None
        for it in range(cfg.iterations):
            if it in updates:
                vids = self._slide(vids, local_basis, np.concatenate([alpha, psi]), rot, trans, log_f, principal)
                bases = self._landmark_bases(vids, bary, local_basis)
                cost = None
            r, jac, robust_w = self._residuals(bases, alpha, psi, rot, trans, log_f, principal, points, w, sigma,
                                               cfg, with_jacobian=True)
            p_vec = np.concatenate([alpha, psi])
            if cost is None:
                cost = self._cost(r, p_vec, prior, log_f, f0, cfg, fix_focal)
            jw = jac * robust_w[:, None]
            a_mat = jw.T @ jac
            g = jw.T @ r
            a_mat[np.diag_indices(k_id + k_exp)] += prior[: k_id + k_exp]
            g[: k_id + k_exp] += prior[: k_id + k_exp] * p_vec
            if (freeze_identity or freeze_expression) and init is not None:
                frozen = np.r_[np.arange(k_id) if freeze_identity else np.zeros(0, int),
                               np.arange(k_id, k_id + k_exp) if freeze_expression else np.zeros(0, int)]
                a_mat[frozen, :] = 0
                a_mat[:, frozen] = 0
                a_mat[frozen, frozen] = 1.0
                g[frozen] = 0.0
            if self.bounded:
                # active set: weights held at a bound that the gradient pushes beyond stay there
                ge = g[k_id:k_id + k_exp]
                active = k_id + np.nonzero(((psi <= 1e-9) & (ge > 0)) | ((psi >= 1 - 1e-9) & (ge < 0)))[0]
                a_mat[active, :] = 0
                a_mat[:, active] = 0
                a_mat[active, active] = 1.0
                g[active] = 0.0
            if fix_focal:
                a_mat[-1, :] = 0
                a_mat[:, -1] = 0
                a_mat[-1, -1] = 1.0
                g[-1] = 0.0
            else:
                a_mat[-1, -1] += 1.0 / cfg.focal_prior_sigma ** 2
                g[-1] += (log_f - np.log(f0)) / cfg.focal_prior_sigma ** 2
            for _ in range(6):
                damped = a_mat + lam * np.diag(np.diag(a_mat) + 1e-6)
                try:
                    step = -np.linalg.solve(damped, g)
                except np.linalg.LinAlgError:
                    lam *= 10
                    continue
                na, npsi, nrot, ntrans, nlogf = self._apply(step, alpha, psi, rot, trans, log_f, k_id, k_exp)
                nr, _, _ = self._residuals(bases, na, npsi, nrot, ntrans, nlogf, principal, points, w, sigma, cfg,
                                           with_jacobian=False)
                ncost = self._cost(nr, np.concatenate([na, npsi]), prior, nlogf, f0, cfg, fix_focal)
                if ncost <= cost:
                    alpha, psi, rot, trans, log_f, cost = na, npsi, nrot, ntrans, nlogf, ncost
                    lam = max(lam / 3, 1e-7)
                    break
                lam *= 8
            history.append(float(cost))
            converged = len(history) > 1 and history[-2] - history[-1] < 1e-4 * history[-1]
            if converged and not any(u > it for u in updates):
                break
        proj = self._project(bases, alpha, psi, rot, trans, np.exp(log_f), principal)
        residual = np.linalg.norm(proj - points, axis=1)
        values = [alpha, psi, rot, trans, np.array([log_f])]
        if not all(np.isfinite(v).all() for v in values):
            raise FitError("landmark fit diverged (non-finite parameters)")
        final_corr = VertexCorrespondence(vids, bary, corr.sliding)
        return LandmarkFit(alpha, psi, rot, trans, float(np.exp(log_f)), principal, (int(h), int(wd)), residual,
                           final_corr, time.perf_counter() - t0, history)

    # ------------------------------------------------------------------ pieces
    def _landmark_bases(self, vids: np.ndarray, bary: np.ndarray, local_basis: np.ndarray):
        """Mean (L, 3) and the shape basis (L, 3, k_id + E) of the landmark points."""
        li = self.local_index[vids]
        mean = np.einsum("lk,lkc->lc", bary, self.local_mean[li])
        basis = np.einsum("lk,lkcn->lcn", bary, local_basis[li])
        return mean, basis

    @staticmethod
    def _project(bases, alpha, psi, rot, trans, focal, principal):
        mean, basis = bases
        x = mean + basis @ np.concatenate([alpha, psi])
        y = x @ axis_angle_to_matrix_np(rot).T + trans
        z = np.maximum(-y[:, 2], 1e-6)
        return np.stack([principal[0] + focal * y[:, 0] / z, principal[1] - focal * y[:, 1] / z], axis=1)

    def _residuals(self, bases, alpha, psi, rot, trans, log_f, principal, points, w, sigma, cfg, with_jacobian):
        mean, basis = bases
        f = np.exp(log_f)
        r_mat = axis_angle_to_matrix_np(rot)
        x = mean + basis @ np.concatenate([alpha, psi])
        rx = x @ r_mat.T
        y = rx + trans
        z = -y[:, 2]
        if (z <= 1e-3).any():
            z = np.maximum(z, 1e-3)
        u = principal[0] + f * y[:, 0] / z
        v = principal[1] - f * y[:, 1] / z
        sw = np.sqrt(w)[:, None] / sigma
        res = (np.stack([u, v], 1) - points) * sw  # (L, 2)
        robust = np.ones_like(res)
        if cfg.robust_scale is not None:
            norm = np.linalg.norm(res, axis=1)
            robust = np.where(norm > cfg.robust_scale, cfg.robust_scale / np.maximum(norm, 1e-12), 1.0)
            robust = np.repeat(robust[:, None], 2, axis=1)
        if not with_jacobian:
            return (res * np.sqrt(robust)).ravel(), None, None
        # d(u, v)/dY: (L, 2, 3)
        inv_z = 1.0 / z
        du = np.stack([f * inv_z, np.zeros_like(z), f * y[:, 0] * inv_z ** 2], 1)
        dv = np.stack([np.zeros_like(z), -f * inv_z, -f * y[:, 1] * inv_z ** 2], 1)
        d_uv = np.stack([du, dv], 1) * sw[:, :, None]  # (L, 2, 3)
        j_shape = (d_uv @ r_mat) @ basis  # (L, 2, k_id + E)
        # left-multiplied rotation update R <- exp([d]x) R: dY/dd = -[R x]x
        skew = np.zeros((len(rx), 3, 3))
        skew[:, 0, 1], skew[:, 0, 2] = rx[:, 2], -rx[:, 1]
        skew[:, 1, 0], skew[:, 1, 2] = -rx[:, 2], rx[:, 0]
        skew[:, 2, 0], skew[:, 2, 1] = rx[:, 1], -rx[:, 0]
        j_rot = d_uv @ skew
        j_t = d_uv
        j_f = np.stack([u - principal[0], v - principal[1]], 1)[:, :, None] * sw[:, :, None]
        jac = np.concatenate([j_shape, j_rot, j_t, j_f], axis=2).reshape(-1, j_shape.shape[2] + 7)
        return res.ravel(), jac, robust.ravel()

    @staticmethod
    def _cost(r, p_vec, prior, log_f, f0, cfg, fix_focal):
        c = float(r @ r) + float((prior[: len(p_vec)] * p_vec * p_vec).sum())
        if not fix_focal:
            c += float((log_f - np.log(f0)) ** 2 / cfg.focal_prior_sigma ** 2)
        return c

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

    def _slide(self, vids, local_basis, coeffs, rot, trans, log_f, principal):
        """Re-choose the model vertex of each outline landmark: along its contour line, the most
        outward point that still faces the camera (the silhouette of that slice of the face)."""
        r_mat = axis_angle_to_matrix_np(rot)
        f = np.exp(log_f)
        lc = self.contour_local
        x = self.local_mean[lc] + local_basis[lc] @ coeffs
        y = x @ r_mat.T + trans
        u = principal[0] + f * y[:, 0] / np.maximum(-y[:, 2], 1e-3)
        n = self.local_normals[lc] @ r_mat.T
        facing = -(n * y).sum(1) / np.linalg.norm(y, axis=1)
        xc = self.local_mean[self.local_index[vids[:, 0]]] @ r_mat.T + trans
        centre_u = float(np.median(principal[0] + f * xc[:, 0] / np.maximum(-xc[:, 2], 1e-3)))
        vids = vids.copy()
        starts = self.contour_starts
        for k, li in enumerate(self.contour_landmarks):
            a, b = starts[k], starts[k + 1]
            ok = facing[a:b] > -0.05
            if not ok.any():
                continue
            outward = 1.0 if u[a] >= centre_u else -1.0  # the default vertex comes first
            score = np.where(ok, outward * u[a:b], -np.inf)
            vids[li, :] = self.contour_vertices[a + int(np.argmax(score))]
        return vids


def expression_prior_weights(names, base: float, scale_by_prefix: dict[str, float]) -> np.ndarray:
    """(E,) prior weight of each expression: `base` times the scale of the first matching name prefix."""
    out = np.full(len(names), float(base))
    for i, name in enumerate(names):
        for prefix, scale in scale_by_prefix.items():
            if name.startswith(prefix):
                out[i] *= scale
                break
    return out


def estimate_orthographic_projection_linear(model_points: np.ndarray, image_points: np.ndarray,
                                            weights: np.ndarray | None = None):
    """Scaled-orthographic camera from 2D-3D correspondences (affine least squares, then the nearest rotation).

    Args:
        model_points: (L, 3) mm. image_points: (L, 2) px. weights: (L,).

    Returns:
        (R (3, 3), s px/mm, t (2,) px) with u = s (R x)_x + t_x, v = -s (R x)_y + t_y.
    """
    w = np.ones(len(model_points)) if weights is None else weights
    keep = w > 0
    x = model_points[keep]
    p = image_points[keep]
    sw = np.sqrt(w[keep])[:, None]
    a = np.concatenate([x, np.ones((len(x), 1))], 1) * sw
    sol, *_ = np.linalg.lstsq(a, p * sw, rcond=None)  # (4, 2)
    r1, r2 = sol[:3, 0], -sol[:3, 1]
    s = (np.linalg.norm(r1) + np.linalg.norm(r2)) / 2
    m = np.stack([r1, r2, np.cross(r1, r2)])
    uu, _, vt = np.linalg.svd(m)
    r = uu @ vt
    if np.linalg.det(r) < 0:
        r = uu @ np.diag([1, 1, -1]) @ vt
    return r, float(s), sol[3]


def _initial_pose(x0, points, w, focal, principal):
    r, s, t2 = estimate_orthographic_projection_linear(x0, points, w)
    dist = focal / max(s, 1e-6)
    centre = (x0[w > 0] @ r.T).mean(0)
    uc = s * centre[0] + t2[0]
    vc = -s * centre[1] + t2[1]
    trans = np.array([(uc - principal[0]) * dist / focal - centre[0],
                      -(vc - principal[1]) * dist / focal - centre[1],
                      -dist - centre[2]])
    return matrix_to_axis_angle_np(r), trans, float(np.log(focal))


def _contour_lines(mean: np.ndarray, region_ids: np.ndarray, corr: VertexCorrespondence,
                   band_mm: float = 2.5) -> dict[int, np.ndarray]:
    """For each sliding landmark, the region vertices on its horizontal slice of the face, from near
    the midline out to just past the landmark's default point; the default vertex first."""
    out = {}
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
        out[int(li)] = np.concatenate([[default], cand]).astype(np.int64)
    return out
