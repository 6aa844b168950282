"""Full mode over several photos of one face: photometric refinement with one shared identity.

By composition of the one-image fits (DECA's shape consistency: every photo is rendered with the
shared identity): each round, every photo is refined by `PhotometricFitter.fit` starting from the
shared identity and its own expression, pose and light; the shared identity then moves by the
weighted mean of the photos' identity steps (an averaged gradient step, symmetric in the photos, so
order does not matter); finally each photo's expression, pose and focal length are re-fitted to its
landmarks with that identity held (`LandmarkFitter.fit(freeze_identity=True)`), so every overlay
sits on its landmarks. Albedo and light stay per photo (B rows): each photo's own colours.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..errors import FitError, UsageError
from .config import LandmarkFitConfig
from .landmark_fit import LandmarkFitter
from .multi_image_fit import MultiImageFitResult, per_image_weights
from .photometric_fit import PhotometricFitter, drifted_from_landmarks
from .result import FitDiagnostics
from .state import Appearance, FaceState


def fit_multi_image_photometric(full_fitter: PhotometricFitter, landmark_fitter: LandmarkFitter,
                                joint: MultiImageFitResult, images: list[np.ndarray], skin_masks: list[np.ndarray],
                                eye_pairs: np.ndarray | None = None, lip_pairs: np.ndarray | None = None,
                                landmark_config: LandmarkFitConfig | None = None,
                                points: list[np.ndarray] | None = None,
                                weights: np.ndarray | list[np.ndarray] | None = None, fix_focal: list[bool] | None = None,
                                rounds: int = 1, extras: list[dict] | None = None,
                                drift_factor: float | None = None, drift_margin_px: float = 0.5) -> MultiImageFitResult:
    """Refine a joint landmark fit photometrically, keeping one identity.

    Args:
        full_fitter: the model's `PhotometricFitter`; landmark_fitter: its `LandmarkFitter`.
        joint: the joint landmark fit (`fit_multi_image`) to start from.
        images: B photos (H_i, W_i, 3) float in [0, 1]; skin_masks: B (H_i, W_i) bool.
        eye_pairs, lip_pairs: as `PhotometricFitter.fit`.
        landmark_config: the landmark fit's config (for the final landmark re-fit).
        points: B (L, 2) landmarks (default: those `joint` was fitted to are not stored, so give them).
        weights: (L,) per-landmark weights for every photo, or B such arrays (each photo's own, e.g.
            the landmark error model's).
        fix_focal: B flags: hold that photo's focal length.
        rounds: photometric rounds (each: B one-image fits, one shared-identity step).
        extras: B dicts passed to each photo's fit as `PhotometricFitter.fit`'s extras (e.g. the
            silhouette term's targets), or None.
        drift_factor, drift_margin_px: a photo whose photometric fit ends further from its landmarks
            than its joint landmark fit's RMS x factor + margin (px) drifted (its image terms pulled
            the face away from what its points say, as on a grayscale photo whose hair the silhouette
            took for the face, `PipelineConfig.drift_factor`): its identity step is left out of the
            shared one and it keeps its joint landmark fit's expression and pose (its light and albedo
            are still its own); `image_drift_px` says which. None: no photo is judged.

    Returns:
        `MultiImageFitResult` with albedo (B, V, 3) and light (B, 9, 3).
    """
    b = joint.state.num_images
    if len(images) != b or len(skin_masks) != b:
        raise UsageError(f"the joint fit has {b} images; got {len(images)} photos and {len(skin_masks)} masks")
    if points is None or len(points) != b:
        raise UsageError(f"give the {b} photos' landmarks (points)")
    if rounds < 1:
        raise UsageError(f"rounds must be >= 1, got {rounds}")
    fix_focal = [False] * b if fix_focal is None else list(fix_focal)
    extras = [None] * b if extras is None else list(extras)
    if len(extras) != b:
        raise UsageError(f"the joint fit has {b} images; got {len(extras)} extras")
    per_image = per_image_weights(weights, b, len(landmark_fitter.correspondence))
    t0 = time.perf_counter()
    w_img = np.asarray(joint.image_weights, dtype=np.float64)
    alpha = np.asarray(joint.state.params.identity[0], dtype=np.float64).copy()
    states = [joint.image_state(i) for i in range(b)]
    refined = [None] * b
    drift = np.zeros(b)
    for _ in range(rounds):
        steps = []
        for i in range(b):
            start = dataclasses.replace(joint.image_result(i), state=states[i].replace(identity=alpha[None].copy()))
            refined[i] = full_fitter.fit(images[i], points[i], per_image[i], skin_masks[i], start, eye_pairs, lip_pairs,
                                         fix_focal=fix_focal[i], extras=extras[i])
            if drift_factor is not None and drifted_from_landmarks(refined[i], joint.image_rms_px[i], drift_factor,
                                                                   drift_margin_px):
                drift[i] = refined[i].rms_px
            steps.append(np.asarray(refined[i].state.params.identity[0], dtype=np.float64) - alpha)
        kept = np.where(drift > 0, 0.0, w_img)
        if kept.sum() > 0:
            alpha = alpha + (kept[:, None] * np.stack(steps)).sum(0) / kept.sum()
        states = [joint.image_state(i).replace(albedo=r.state.appearance.albedo, sh=r.state.appearance.sh)
                  if drift[i] > 0 else r.state for i, r in enumerate(refined)]
    # every photo's expression, pose and focal re-fitted to its landmarks with the shared identity held
    finals, residuals = [], []
    for i in range(b):
        start = states[i].replace(identity=alpha[None].copy())
        polished = landmark_fitter.fit(points[i], joint.image_sizes[i], per_image[i], landmark_config,
                                       focal=float(start.camera.focal[0]) if fix_focal[i] else None, init=start,
                                       freeze_identity=True)
        finals.append((polished, refined[i].state.appearance))
        residuals.append(polished.diagnostics.residual_px[0])
    if not np.isfinite(alpha).all():
        raise FitError("joint full fit produced a non-finite identity")
    scales = joint.image_scales
    one = [f.state.to_numpy() for f, _ in finals]
    stacked = FaceState.stack([s.replace(focal=s.camera.focal * sc, principal=s.camera.principal * sc,
                                         image_size=joint.state.camera.image_size) for s, sc in zip(one, scales)])
    state = stacked.replace(identity=alpha[None])
    state = FaceState(state.params, state.camera, Appearance(np.concatenate([a.albedo for _, a in finals]),
                                                             np.concatenate([a.sh for _, a in finals])))
    residual = np.stack(residuals)
    rms = np.array([np.sqrt(np.mean(r[w > 0] ** 2)) for r, w in zip(residual, per_image)])
    return MultiImageFitResult(state, finals[0][0].correspondence,
                               FitDiagnostics(residual, seconds=time.perf_counter() - t0,
                                              iterations=sum(r.diagnostics.iterations for r in refined)),
                               correspondences=[f.correspondence for f, _ in finals], image_sizes=joint.image_sizes,
                               image_scales=scales, image_weights=w_img.copy(), image_rms_px=rms,
                               image_drift_px=drift)
