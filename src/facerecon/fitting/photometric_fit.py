"""Full mode: analysis by synthesis through the differentiable renderer.

Starting from the landmark fit, refine identity, expression, pose, focal length and SH light by
gradient descent on landmark + eye/lip closure + photometric + prior terms, rendering the face
with a per-vertex albedo that is re-estimated in closed form (albedo.py) a few times per level.
Over the render sizes of `PhotometricFitConfig.levels` (coarse to fine when it names several; by
default one short level: see its docstring); pixels whose colour the model cannot explain (cast shadows,
highlights, occluders) are masked out by a robust threshold on the residual.
"""
from __future__ import annotations

import contextlib
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import FitError
from ..geometry.mesh import graph_laplacian, mesh_edges
from ..models import MorphableModel
from ..render import PinholeCamera, render_mesh
from ..render.shading import sh_shading, vertex_normals
from .adam import Adam
from .albedo import AlbedoSolver, solve_sh_light
from .config import PhotometricFitConfig
from .correspondence import VertexCorrespondence
from .crop import FaceCrop, crop_image, face_crop
from .result import FitDiagnostics, FitResult
from .state import Appearance, Camera, FaceParams, FaceState
from .terms import LossInputs, expression_prior_weights, objective, weighted_sum


@contextlib.contextmanager
def torch_threads(count: int | None):
    """Run a block with `count` torch intra-op threads, restoring the caller's setting after
    (None: leave it alone). torch's setting is process-wide, so other threads see it meanwhile."""
    if count is None:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def drifted_from_landmarks(fit: FitResult, reference_rms_px: float, factor: float, margin_px: float) -> bool:
    """Whether a photometric fit ended further from its landmarks than `reference_rms_px` (the
    landmark fit it started from) x `factor` + `margin_px`: its image terms pulled the face away from
    what the points say (`PipelineConfig.drift_factor`)."""
    return fit.rms_px > float(reference_rms_px) * factor + margin_px


class PhotometricFitter:
    """Per-model state of the full fit (albedo system, render triangles), reused across images.

    Args:
        model: the model or view being fitted (the one the landmark fit used).
        config: schedule and weights.
        render_region: region whose triangles are rendered (the photometric loss sees only these).
    """

    def __init__(self, model: MorphableModel, config: PhotometricFitConfig | None = None,
                 render_region: str = "face") -> None:
        self.model = model
        self.config = config or PhotometricFitConfig()
        a = self.config.albedo
        self.albedo_solver = AlbedoSolver(model, a.smoothness, a.symmetry, a.prior)
        tris = model.triangles
        if render_region in model.regions:
            keep = torch.zeros(model.num_vertices, dtype=torch.bool, device=tris.device)
            keep[model.regions[render_region]] = True
            tris = tris[keep[tris].all(1)]
        self.render_triangles = tris
        self.skin_weight = model.face_mask.detach().cpu().numpy()
        self.mean_normals = vertex_normals(model.mean[None].detach().cpu().float(), model.triangles.cpu())[0]
        lap = graph_laplacian(mesh_edges(model.triangles.cpu().numpy()), model.num_vertices).tocoo()
        self.laplacian = torch.sparse_coo_tensor(np.stack([lap.row, lap.col]), lap.data, lap.shape,
                                                  check_invariants=True).coalesce()

    def fit(self, image: np.ndarray, points: np.ndarray, weights: np.ndarray, skin_mask: np.ndarray,
            init: FitResult, eye_pairs: np.ndarray | None = None, lip_pairs: np.ndarray | None = None,
            use_photometric: bool = True, fix_focal: bool = False, extras: dict | None = None) -> FitResult:
        """Refine `init` on `image` (H, W, 3) float in [0, 1].

        Args:
            points: (L, 2) detected landmarks (px) in the correspondence's order; weights: (L,).
            skin_mask: (H, W) bool, the face skin (landmarks.face_region_mask).
            init: the landmark fit to start from (one image; also gives the correspondence).
            eye_pairs, lip_pairs: (P, 2) indices into L of upper/lower contour points.
            use_photometric: False runs the same schedule without the photometric term (ablation).
            fix_focal: keep `init`'s focal length (a known focal).
            extras: passed to custom terms as `LossInputs.extras`. Its "image_maps" {name: (H, W) or
                (H, W, C) array at the photo's size} are cropped and resized like the photo at each
                level and given as `extras["crops"][name]` (1, S, S, C) tensors.

        Returns:
            `FitResult` whose state carries the albedo (1, V, 3) and SH light (1, 9, 3).
        """
        with torch_threads(self.config.torch_threads):
            return self._fit(image, points, weights, skin_mask, init, eye_pairs, lip_pairs, use_photometric,
                             fix_focal, extras or {})

    def _fit(self, image, points, weights, skin_mask, init: FitResult, eye_pairs, lip_pairs, use_photometric,
             fix_focal, extras) -> FitResult:
        t0 = time.perf_counter()
        cfg = self.config
        model = self.model
        corr: VertexCorrespondence = init.correspondence
        start = init.state.to_numpy()
        h, wd = image.shape[:2]
        dtype = model.dtype
        dev = model.device
        valid = weights > 0
        crop0 = face_crop(points[valid], cfg.levels[-1][0], cfg.crop_scale)
        lm_w = torch.as_tensor(weights, dtype=dtype, device=dev)
        term_weights = dict(cfg.terms)
        if not use_photometric:
            term_weights["photometric"] = 0.0
        if not cfg.corrective:
            term_weights = {k: v for k, v in term_weights.items() if not k.startswith("corrective")}
        terms = objective(term_weights, "loss")

        def variable(a):
            return torch.tensor(a, dtype=dtype, device=dev, requires_grad=True)

        alpha = variable(start.params.identity)
        psi = variable(start.params.expression)
        rot = variable(start.params.rotation)
        trans = variable(start.params.translation)
        log_f = variable(np.log(start.camera.focal))
        sh = torch.zeros(1, 9, 3, dtype=dtype, device=dev, requires_grad=True)
        # beyond-PCA corrective (3D3M-style): a per-vertex offset along the normals, Laplacian-smooth
        offset = torch.zeros(1, model.num_vertices, dtype=dtype, device=dev, requires_grad=cfg.corrective)
        normals0 = self.mean_normals.to(device=dev, dtype=dtype)
        lr = cfg.learning_rates
        groups = [{"params": [alpha], "lr": lr["identity"]}, {"params": [psi], "lr": lr["expression"]},
                  {"params": [rot], "lr": lr["rotation"]}, {"params": [trans], "lr": lr["translation"]},
                  {"params": [log_f], "lr": 0.0 if fix_focal else lr["log_focal"]}, {"params": [sh], "lr": lr["sh"]}]
        if cfg.corrective:
            groups.append({"params": [offset], "lr": lr.get("corrective", 0.1)})
        opt = Adam(groups)
        bounded = model.expression_bounds is not None
        scales = expression_prior_weights(model.expression_names, cfg.expression_shape.scale_by_prefix)
        exp_std = torch.as_tensor(1.0 / np.sqrt(scales), dtype=dtype, device=dev)
        eye_t = None if eye_pairs is None or len(eye_pairs) == 0 else torch.as_tensor(eye_pairs, device=dev)
        lip_t = None if lip_pairs is None or len(lip_pairs) == 0 else torch.as_tensor(lip_pairs, device=dev)
        albedo_np = None
        losses: dict[str, dict[str, float]] = {}
        iterations = 0

        for level, (size, n_iter) in enumerate(cfg.levels):
            crop = FaceCrop(crop0.x0, crop0.y0, crop0.side, size)
            target = crop_image(image, crop).to(device=dev, dtype=dtype)
            mask = crop_image(skin_mask.astype(np.float32)[..., None], crop)[..., 0].to(device=dev, dtype=dtype)
            mask = (mask > 0.5).to(dtype)
            lm_target = torch.as_tensor(crop.to_crop(points)[None], dtype=dtype, device=dev)
            principal = torch.as_tensor(crop.to_crop(start.camera.principal), dtype=dtype, device=dev)
            log_scale = float(np.log(crop.scale))
            face_size = float(np.linalg.norm(np.ptp(crop.to_crop(points[valid]), axis=0)))
            sigma = cfg.noise.sigma * face_size
            update_at = set(np.linspace(0, n_iter, cfg.light_updates_per_level, endpoint=False).astype(int).tolist())
            inlier = torch.ones_like(mask)
            prev = None
            # full-image maps a custom term asked for (extras["image_maps"]), cropped like the photo
            level_extras = extras
            if extras.get("image_maps"):
                level_extras = {**extras, "crops": {
                    k: crop_image(np.asarray(v, np.float32).reshape(h, wd, -1), crop).to(device=dev, dtype=dtype)
                    for k, v in extras["image_maps"].items()}}

            def camera() -> PinholeCamera:
                return PinholeCamera(rot, trans, torch.exp(log_f + log_scale), principal, (size, size))

            for it in range(n_iter):
                if it in update_at and use_photometric:
                    with torch.no_grad():
                        verts = model.vertices(alpha, psi) + offset[..., None] * normals0
                        albedo_np, sh_new = self._solve_albedo_light(verts, camera(), target, mask, albedo_np)
                        sh.copy_(sh_new[None])
                        inlier = self._inliers(verts, camera(), target, mask, albedo_np, sh)
                opt.zero_grad()
                verts = model.vertices(alpha, psi) + offset[..., None] * normals0
                cam = camera()
                inputs = LossInputs(
                    identity=alpha, expression=psi, vertices=verts, camera=cam,
                    landmarks=cam.project(corr.points_torch(verts)), landmark_target=lm_target, landmark_weights=lm_w,
                    sigma=sigma, robust_scale=cfg.noise.robust_scale, expression_std=exp_std, eye_pairs=eye_t,
                    lip_pairs=lip_t, corrective=offset if cfg.corrective else None,
                    render_triangles=self.render_triangles,
                    colors=None if albedo_np is None else torch.as_tensor(albedo_np[None], dtype=dtype, device=dev),
                    sh=sh, target=target, pixel_mask=mask * inlier, laplacian=self.laplacian, extras=level_extras)
                total, terms_now = weighted_sum(terms, inputs)
                if not torch.isfinite(total):
                    raise FitError("full fit produced a non-finite loss")
                total.backward()
                opt.step()
                iterations += 1
                if bounded:
                    with torch.no_grad():
                        psi.clamp_(0.0, 1.0)
                values = {k: float(v.detach()) for k, v in terms_now.items()}
                values["total"] = float(total.detach())
                if level == 0 and it == 0:
                    losses["initial"] = values
                losses["final"] = values
                if prev is not None and it not in update_at and abs(prev - values["total"]) < cfg.stop_relative_change * abs(prev):
                    break
                prev = values["total"]

        with torch.no_grad():
            verts = model.vertices(alpha, psi) + offset[..., None] * normals0
            cam = PinholeCamera(rot, trans, torch.exp(log_f),
                                torch.as_tensor(start.camera.principal, dtype=dtype, device=dev), (h, wd))
            proj = cam.project(corr.points_torch(verts))[0].cpu().double().numpy()
        residual = np.linalg.norm(proj - points, axis=1)
        if albedo_np is None:
            albedo_np = np.full((model.num_vertices, 3), 0.6)
        state = FaceState(
            FaceParams(alpha.detach(), psi.detach(), rot.detach(), trans.detach()),
            Camera(torch.exp(log_f).detach(), start.camera.principal, (h, wd)),
            Appearance(albedo_np[None], sh.detach()),
        ).to_numpy()
        corrective = offset.detach().cpu().double().numpy()[0] if cfg.corrective else None
        if not state.is_finite() or (corrective is not None and not np.isfinite(corrective).all()):
            raise FitError("full fit produced non-finite parameters")
        return FitResult(state, corr, FitDiagnostics(residual[None], losses, time.perf_counter() - t0, iterations),
                         corrective)

    # ------------------------------------------------------------------ closed-form steps
    def _vertex_samples(self, verts, cam, target, mask):
        """Per-vertex observed colour, camera-space normal and weight (visible skin)."""
        size = cam.image_size[0]
        screen = cam.to_screen(verts)[0]  # (V, 3)
        normals = vertex_normals(cam.transform(verts), self.model.triangles)[0]
        out = render_mesh(verts, self.render_triangles, cam, antialias=False)
        depth = out.depth[0]
        uv = screen[:, :2]
        ij = uv.floor().long()
        inside = (ij[:, 0] >= 0) & (ij[:, 0] < size) & (ij[:, 1] >= 0) & (ij[:, 1] < size)
        ijc = ij.clamp(0, size - 1)
        zbuf = depth[ijc[:, 1], ijc[:, 0]]
        visible = (inside & (zbuf > 0) & (screen[:, 2] <= zbuf + self.config.visibility_depth_mm)
                   & (normals[:, 2] > self.config.min_facing))
        grid = (uv / size * 2 - 1)[None, None]  # (1, 1, V, 2), x then y, align_corners=False
        img = target.permute(0, 3, 1, 2)
        colour = F.grid_sample(img, grid, mode="bilinear", align_corners=False)[0, :, 0].T  # (V, 3)
        in_mask = F.grid_sample(mask[:, None], grid, mode="nearest", align_corners=False)[0, 0, 0]
        weight = visible.to(verts.dtype) * in_mask * torch.as_tensor(self.skin_weight, dtype=verts.dtype,
                                                                      device=verts.device)
        return colour, normals, weight

    def _solve_albedo_light(self, verts, cam, target, mask, albedo_prev):
        colour, normals, weight = self._vertex_samples(verts, cam, target, mask)
        c = colour.cpu().double().numpy()
        wv = weight.cpu().double().numpy()
        if wv.sum() < 50:
            raise FitError("too few visible skin vertices for the photometric fit")
        mean_albedo = np.array([np.median(c[wv > 0, k]) for k in range(3)])
        albedo = albedo_prev
        if albedo is None:
            albedo = np.tile(mean_albedo, (len(c), 1))
        n_t = normals.double()
        for _ in range(1 if albedo_prev is not None else 2):
            sh = solve_sh_light(n_t, colour.double(), torch.from_numpy(albedo), weight.double())
            shading = sh_shading(n_t[None], sh[None])[0].numpy()
            albedo = self.albedo_solver.solve(c, np.maximum(shading, 1e-3), wv, mean_albedo, x0=albedo)
        sh = solve_sh_light(n_t, colour.double(), torch.from_numpy(albedo), weight.double())
        return albedo, sh.to(verts.dtype)

    def _inliers(self, verts, cam, target, mask, albedo, sh):
        colors = torch.as_tensor(albedo[None], dtype=verts.dtype, device=verts.device)
        out = render_mesh(verts, self.render_triangles, cam, colors=colors, sh=sh, antialias=False)
        err = (out.image - target).norm(dim=-1)
        sel = (mask * out.alpha) > 0.5
        if sel.sum() < 50:
            return torch.ones_like(mask)
        e = err[sel]
        med = e.median()
        mad = (e - med).abs().median()
        return (err <= med + self.config.outlier_mad * 1.4826 * mad + 1e-3).to(mask.dtype)
