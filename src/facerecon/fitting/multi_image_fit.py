"""Several photos of one face: a joint landmark fit with one shared identity (eos's
`fit_shape_and_pose` over multiple images).

Unknowns: the identity alpha (shared, k_id) and per image i its expression, rotation, translation
and log focal. Each image's residual terms (`fitting.terms`, the same objective as the one-image
fit, `landmark_reprojection` for the landmarks) are built exactly as `LandmarkFitter` builds them,
over the one-image parameter vector [alpha, image i's own block]; the terms that depend on the
identity only (`SHARED_TERMS`: the identity prior) are counted once, not once per image. Image
terms read their observations from each image's own `extras` (e.g. a turned photo's outline targets,
`fitting.outline`, with the fitter's surface samples projected by that image's camera). The
Levenberg-Marquardt step eliminates the per-image blocks (Schur complement), so one iteration costs
O(B) small solves plus one k_id x k_id solve, and memory grows linearly with B.

Order does not matter: the start is the coordinate-wise median of the per-image fits' identities
(never "the first photo"), and every sum over images is a plain sum, so permuted photos give the
same result within floating-point noise.

Cameras: a batch state has one image size, photos do not. Each photo i is described in a
normalised frame, scaled by `image_scales[i]` = S / max(H_i, W_i) with S the largest side of all
photos, so that the batch state's camera has image size (S, S), focal_i x scale_i and principal_i x
scale_i (the photo sits at the canvas's top-left corner). `MultiImageFitResult.image_state(i)` gives
the photo's own one-image state in its own pixels.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import FitError, UsageError
from .config import LandmarkFitConfig
from .correspondence import VertexCorrespondence
from .landmark_fit import LandmarkFitter, hold_parameters, landmark_reprojection, normal_equations
from .result import FitDiagnostics, FitResult
from .state import Appearance, Camera, FaceParams, FaceState
from .terms import GaussNewtonInputs, Residual, SurfaceProjection, objective

SHARED_TERMS = ("identity_prior",)
"""Terms that see the identity only: counted once in a joint fit, not once per image."""


@dataclass
class MultiImageFitResult(FitResult):
    """A joint fit: `state` has identity (1, K) and B rows elsewhere, in the normalised frame.

    Attributes:
        correspondences: each image's final landmark correspondence (`correspondence` is image 0's).
        image_sizes: (H, W) of each photo. image_scales: (B,) photo px -> normalised frame px.
        image_weights: (B,) the weight each image's terms had in the fit.
        image_rms_px: (B,) each image's landmark RMS in its own pixels.
        image_drift_px: (B,) for a joint full fit, the landmark RMS (px) of each photo whose
            photometric fit drifted from its points (`fit_multi_image_photometric`), 0 for the others.
    """

    correspondences: list[VertexCorrespondence] = field(default_factory=list)
    image_sizes: list[tuple[int, int]] = field(default_factory=list)
    image_scales: np.ndarray = field(default_factory=lambda: np.ones(0))
    image_weights: np.ndarray = field(default_factory=lambda: np.ones(0))
    image_rms_px: np.ndarray = field(default_factory=lambda: np.zeros(0))
    image_drift_px: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def image_state(self, index: int) -> FaceState:
        """The one-image state of photo `index` in its own pixels (shared identity included)."""
        one = self.state.image(index).to_numpy()
        s = float(self.image_scales[index])
        return one.replace(focal=one.camera.focal / s, principal=one.camera.principal / s,
                           image_size=tuple(self.image_sizes[index]))

    def image_result(self, index: int) -> FitResult:
        """Photo `index` as a one-image `FitResult` in its own pixels."""
        return FitResult(self.image_state(index), self.correspondences[index],
                         FitDiagnostics(self.diagnostics.residual_px[index:index + 1]))


def normalised_scales(image_sizes: list[tuple[int, int]]) -> tuple[np.ndarray, int]:
    """(B,) scales taking each photo to the normalised frame, and that frame's side S (px)."""
    sides = np.array([max(int(h), int(w)) for h, w in image_sizes], dtype=np.float64)
    side = int(sides.max())
    return side / sides, side


def fit_multi_image(fitter: LandmarkFitter, points: list[np.ndarray], image_sizes: list[tuple[int, int]],
                    weights: list[np.ndarray] | np.ndarray | None = None, config: LandmarkFitConfig | None = None,
                    focals: list[float | None] | None = None, image_weights: np.ndarray | None = None,
                    init: list[FitResult] | None = None, shared_terms: tuple[str, ...] = SHARED_TERMS,
                    extras: dict | list[dict] | None = None) -> MultiImageFitResult:
    """Fit B photos of one face jointly: one identity, per-image expression, pose and focal length.

    Args:
        fitter: the `LandmarkFitter` of the model (its per-model arrays are reused).
        points: B arrays (L, 2) of landmarks in each photo's pixels, in the correspondence's order.
        image_sizes: B (H, W).
        weights: (L,) per-landmark weights for every image, or B such arrays (default ones).
        config: `LandmarkFitConfig` (its `terms` are each image's objective).
        focals: B known focal lengths in px or None (known ones are held fixed).
        image_weights: (B,) weight of each image's terms (default ones), e.g. to down-weight a
            photo whose landmarks fit badly; the shared terms keep weight 1.
        init: B one-image fits to start from (default: `fitter.fit` of each image); the identity
            starts at the median of theirs.
        shared_terms: names of the terms counted once (identity-only terms).
        extras: passed to the terms as `GaussNewtonInputs.extras`: one dict for every image, or B
            dicts, one per image (e.g. a turned photo's outline targets, `fitting.outline`, in its
            own pixels; a photo without them fits without that term).

    Returns:
        `MultiImageFitResult`.
    """
    b = len(points)
    if b == 0:
        raise UsageError("fit_multi_image needs at least one image")
    if len(image_sizes) != b:
        raise UsageError(f"got {b} landmark arrays but {len(image_sizes)} image sizes")
    cfg = config or LandmarkFitConfig()
    focals = [None] * b if focals is None else list(focals)
    if len(focals) != b:
        raise UsageError(f"got {b} images but {len(focals)} focal lengths")
    per_lm = per_image_weights(weights, b, len(fitter.correspondence))
    img_w = np.ones(b) if image_weights is None else np.asarray(image_weights, dtype=np.float64)
    if img_w.shape != (b,) or not np.isfinite(img_w).all() or (img_w <= 0).any():
        raise UsageError(f"image_weights must be {b} positive numbers, got {image_weights!r}")
    if init is None:
        init = [fitter.fit(p, s, w, cfg, focal=f) for p, s, w, f in zip(points, image_sizes, per_lm, focals)]
    if len(init) != b:
        raise UsageError(f"got {b} images but {len(init)} initial fits")
    if extras is None or isinstance(extras, dict):
        extras = [extras or {}] * b
    extras = list(extras)
    if len(extras) != b or not all(isinstance(e, dict) for e in extras):
        raise UsageError(f"extras must be one dict or {b} dicts (one per image)")
    from threadpoolctl import threadpool_limits

    # small dense problems: BLAS threads only add synchronisation (as in `LandmarkFitter.fit`)
    with threadpool_limits(limits=1, user_api="blas"):
        return _JointFit(fitter, cfg, points, image_sizes, per_lm, focals, img_w, init, shared_terms,
                         extras).run()


def per_image_weights(weights, b: int, n_landmarks: int) -> list[np.ndarray]:
    if weights is None:
        return [np.ones(n_landmarks)] * b
    if isinstance(weights, np.ndarray) and weights.ndim == 1:
        return [weights.astype(np.float64)] * b
    out = [np.asarray(w, dtype=np.float64) for w in weights]
    if len(out) != b or any(w.shape != (n_landmarks,) for w in out):
        raise UsageError(f"weights must be ({n_landmarks},) or {b} such arrays")
    return out


class _Image:
    """One photo's observations and current per-image parameters."""

    def __init__(self, fitter: LandmarkFitter, cfg: LandmarkFitConfig, points, size, weights, focal, start: FitResult,
                 extras: dict):
        corr = fitter.correspondence
        self.extras = extras
        self.points = np.asarray(points, dtype=np.float64)
        if self.points.shape != (len(corr), 2):
            raise UsageError(f"expected ({len(corr)}, 2) landmarks, got {self.points.shape}")
        self.w = weights
        self.points = np.where(np.isfinite(self.points), self.points, 0.0)
        h, wd = size
        self.size = (int(h), int(wd))
        self.principal = np.array([wd / 2.0, h / 2.0])
        used = self.points[weights > 0]
        self.sigma = cfg.noise.sigma * float(np.linalg.norm(used.max(0) - used.min(0)))
        f0 = float(focal) if focal is not None else cfg.focal_init * max(h, wd)
        self.log_f0 = float(np.log(f0))
        self.fix_focal = focal is not None or cfg.focal_prior_sigma <= 0
        one = start.state.to_numpy()
        self.psi = one.params.expression[0].copy()
        self.rot = one.params.rotation[0].copy()
        self.trans = one.params.translation[0].copy()
        self.log_f = float(np.log(one.camera.focal[0])) if focal is None else float(np.log(focal))
        self.vids = start.correspondence.vertex_ids.copy()


class _JointFit:
    def __init__(self, fitter, cfg, points, sizes, weights, focals, img_w, init, shared_terms, extras):
        self.fitter, self.cfg, self.img_w = fitter, cfg, img_w
        self.k_id = min(cfg.num_identity, fitter.num_identity)
        self.k_exp = fitter.num_expression
        self.basis = fitter._basis(self.k_id)
        self.bary = fitter.correspondence.weights
        self.images = [_Image(fitter, cfg, p, s, w, f, r, e)
                       for p, s, w, f, r, e in zip(points, sizes, weights, focals, init, extras)]
        # built on first use: only image terms that project the surface (the outline) need them
        self._surface_arrays = None
        ids = np.zeros((len(init), self.k_id))
        for i, r in enumerate(init):
            a = r.state.to_numpy().params.identity[0]
            ids[i, : min(self.k_id, len(a))] = a[: self.k_id]
        self.alpha = np.median(ids, axis=0)
        all_terms = objective(cfg.terms, "residual")
        self.image_terms = [(t, w) for t, w in all_terms if t.name not in shared_terms]
        self.shared_terms = [(t, w) for t, w in all_terms if t.name in shared_terms]
        self.names = list(fitter.model.expression_names)

    # ---------------------------------------------------------------- residuals
    def _inputs(self, im: _Image, bases, alpha, psi, rot, trans, log_f) -> GaussNewtonInputs:
        cfg = self.cfg

        def landmarks(jac: bool) -> Residual:
            return landmark_reprojection(bases[0], bases[1], np.concatenate([alpha, psi]), rot, trans, log_f,
                                         im.principal, im.points, im.w, im.sigma, cfg.noise.robust_scale, jac)

        def surface() -> SurfaceProjection:
            if self._surface_arrays is None:
                self._surface_arrays = self.fitter._surface_arrays(self.basis)
            return self.fitter._surface_projection(self._surface_arrays, np.concatenate([alpha, psi]), rot, trans,
                                                   log_f, im.principal)
        return GaussNewtonInputs(alpha, psi, rot, trans, log_f, im.log_f0, self.names, cfg, landmarks, im.extras,
                                 im.sigma, surface)

    @staticmethod
    def _evaluate(terms, inputs: GaussNewtonInputs, with_jacobian: bool) -> list[tuple[Residual, float]]:
        out = []
        for term, weight in terms:
            res = term.residual(inputs, with_jacobian)
            if res is not None:
                out.append((res, weight))
        return out

    @staticmethod
    def _cost(residuals) -> float:
        return float(sum(weight * float(res.r @ res.r) for res, weight in residuals))

    def _total_cost(self, alpha, blocks, all_bases) -> float:
        cost = 0.0
        for im, (psi, rot, trans, log_f), bases, wi in zip(self.images, blocks, all_bases, self.img_w):
            cost += wi * self._cost(self._evaluate(self.image_terms, self._inputs(im, bases, alpha, psi, rot, trans,
                                                                                 log_f), False))
        im0 = self.images[0]
        b0 = blocks[0]
        return cost + self._cost(self._evaluate(self.shared_terms, self._inputs(im0, all_bases[0], alpha, *b0), False))

    # ---------------------------------------------------------------- the loop
    def run(self) -> MultiImageFitResult:
        t0 = time.perf_counter()
        fitter, cfg, k_id, k_exp = self.fitter, self.cfg, self.k_id, self.k_exp
        n_own = k_exp + 7
        n_par = k_id + n_own
        images = self.images
        alpha = self.alpha
        blocks = [(im.psi, im.rot, im.trans, im.log_f) for im in images]
        updates = set(np.linspace(0, cfg.iterations - 1, cfg.sliding_updates + 1)[:-1].round().astype(int).tolist()) \
            if len(fitter.contours.landmarks) and cfg.sliding_updates > 0 else set()
        all_bases = [fitter._landmark_bases(im.vids, self.bary, self.basis) for im in images]
        lam = cfg.damping_init
        history: list[float] = []
        cost = None
        for it in range(cfg.iterations):
            if it in updates:
                for i, im in enumerate(images):
                    psi, rot, trans, log_f = blocks[i]
                    vids = fitter._update_outline(im.vids, self.basis, np.concatenate([alpha, psi]), rot, trans,
                                                  log_f, im.principal)
                    all_bases[i] = fitter._landmark_bases(vids, self.bary, self.basis, previous=(im.vids, all_bases[i]))
                    im.vids = vids
                cost = None
            if cost is None:
                cost = self._total_cost(alpha, blocks, all_bases)
            # per image: the one-image normal equations over [alpha, own block], scaled by its weight
            a_aa = np.zeros((k_id, k_id))
            g_a = np.zeros(k_id)
            couplings = []
            for im, (psi, rot, trans, log_f), bases, wi in zip(images, blocks, all_bases, self.img_w):
                res = self._evaluate(self.image_terms, self._inputs(im, bases, alpha, psi, rot, trans, log_f), True)
                a_mat, g = normal_equations(res, n_par)
                if fitter.bounded:
                    ge = g[k_id:k_id + k_exp]
                    hold_parameters(a_mat, g, k_id + np.nonzero(((psi <= 1e-9) & (ge > 0))
                                                                | ((psi >= 1 - 1e-9) & (ge < 0)))[0])
                if im.fix_focal:
                    hold_parameters(a_mat, g, np.array([n_par - 1]))
                a_mat *= wi
                g *= wi
                a_aa += a_mat[:k_id, :k_id]
                g_a += g[:k_id]
                couplings.append((a_mat[:k_id, k_id:], a_mat[k_id:, k_id:], g[k_id:]))
            shared = self._evaluate(self.shared_terms, self._inputs(images[0], all_bases[0], alpha, *blocks[0]), True)
            a_s, g_s = normal_equations(shared, n_par)
            a_aa += a_s[:k_id, :k_id]
            g_a += g_s[:k_id]
            accepted = False
            for _ in range(cfg.step_trials):
                step = _schur_step(a_aa, g_a, couplings, lam)
                if step is None:
                    lam *= 10
                    continue
                d_alpha, d_own = step
                new_alpha = alpha + d_alpha
                new_blocks = []
                for (psi, rot, trans, log_f), d in zip(blocks, d_own):
                    full = np.concatenate([d_alpha, d])
                    _, npsi, nrot, ntrans, nlogf = fitter._apply(full, alpha, psi, rot, trans, log_f, k_id, k_exp)
                    new_blocks.append((npsi, nrot, ntrans, nlogf))
                new_cost = self._total_cost(new_alpha, new_blocks, all_bases)
                if new_cost <= cost:
                    alpha, blocks, cost = new_alpha, new_blocks, new_cost
                    lam = max(lam / 3, 1e-7)
                    accepted = True
                    break
                lam *= 8
            history.append(float(cost))
            converged = not accepted or (len(history) > 1 and
                                         history[-2] - history[-1] < cfg.stop_relative_decrease * history[-1])
            if converged and not any(u > it for u in updates):
                break
        return self._result(alpha, blocks, all_bases, history, time.perf_counter() - t0)

    def _result(self, alpha, blocks, all_bases, history, seconds) -> MultiImageFitResult:
        fitter, images = self.fitter, self.images
        values = [alpha] + [np.r_[p, r, t, [f]] for p, r, t, f in blocks]
        if not all(np.isfinite(v).all() for v in values):
            raise FitError("joint landmark fit diverged (non-finite parameters)")
        sizes = [im.size for im in images]
        scales, side = normalised_scales(sizes)
        residual = np.stack([np.linalg.norm(fitter._project(bases, alpha, psi, rot, trans, np.exp(log_f),
                                                            im.principal) - im.points, axis=1)
                             for im, bases, (psi, rot, trans, log_f) in zip(images, all_bases, blocks)])
        rms = np.array([np.sqrt(np.mean(r[im.w > 0] ** 2)) for r, im in zip(residual, images)])
        state = FaceState(
            FaceParams(alpha[None].copy(), np.stack([b[0] for b in blocks]), np.stack([b[1] for b in blocks]),
                       np.stack([b[2] for b in blocks])),
            Camera(np.exp([b[3] for b in blocks]) * scales, np.stack([im.principal for im in images]) * scales[:, None],
                   (side, side)),
            Appearance())
        corrs = [VertexCorrespondence(im.vids, self.bary, fitter.correspondence.sliding) for im in images]
        return MultiImageFitResult(state, corrs[0], FitDiagnostics(residual, seconds=seconds, iterations=len(history),
                                                                   history=history),
                                   correspondences=corrs, image_sizes=sizes, image_scales=scales,
                                   image_weights=self.img_w.copy(), image_rms_px=rms)


def _schur_step(a_aa: np.ndarray, g_a: np.ndarray, couplings, damping: float):
    """The damped Levenberg-Marquardt step of the joint system, per-image blocks eliminated.

    The joint system is [[A_aa, A_a1, ...], [A_1a, A_11, 0], ...] (identity first, then each
    image's own block, images independent given the identity); the damping is that of
    `solve_damped_step` on the whole matrix. Returns (d_alpha (k,), [d_own_i]) or None when singular.
    """
    def damp(m):
        return m + damping * np.diag(np.diag(m) + 1e-6)

    s = damp(a_aa)
    rhs = -g_a.copy()
    solved = []
    try:
        for a_ab, a_bb, g_b in couplings:
            inv_ba = np.linalg.solve(damp(a_bb), np.concatenate([a_ab.T, g_b[:, None]], 1))  # (n, k + 1)
            s -= a_ab @ inv_ba[:, :-1]
            rhs += a_ab @ inv_ba[:, -1]
            solved.append(inv_ba)
        d_alpha = np.linalg.solve(s, rhs)
    except np.linalg.LinAlgError:
        return None
    d_own = [-(inv[:, -1] + inv[:, :-1] @ d_alpha) for inv in solved]
    return d_alpha, d_own
