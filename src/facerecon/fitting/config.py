"""Every weight, threshold and schedule of the fits, in one place.

An objective is a list of named terms (`fitting.terms`); a config holds `terms`: name -> weight.
Adding a term is one registered function plus one line here (or one entry in a config's `terms`
at run time). Both fits use the Gauss-Newton cost convention: a data term counts
sum_l w_l (d_l / sigma)^2 (sigma = `LandmarkNoise.sigma` x the face size), and a prior on
coefficients c with standard deviations s counts |c / s|^2, so a weight of 1 means "as much as the
model's own statistics say".
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LandmarkNoise:
    """What the fits assume about the detector's landmark noise (shared by both fits).

    Attributes:
        sigma: landmark noise as a fraction of the face size (bounding-box diagonal of the used
            landmarks); residuals are divided by it, so the priors do not depend on image size.
        robust_scale: Huber threshold in units of sigma (None: plain least squares).
    """

    sigma: float = 0.01
    robust_scale: float | None = 3.0


@dataclass
class ExpressionPriorShape:
    """Per-expression prior scales shared by both fits.

    Attributes:
        scale_by_prefix: expressions that landmarks barely observe get a stronger prior (by name
            prefix): ICT's gaze blendshapes move the eyeballs, which the fitted head view does not
            contain.
    """

    scale_by_prefix: dict[str, float] = field(default_factory=lambda: {"eyeLook": 10.0})


@dataclass
class LandmarkFitConfig:
    """The fast (Gauss-Newton / Levenberg-Marquardt) landmark fit.

    Attributes:
        terms: objective term name -> weight; each name must be registered in `fitting.terms` with a
            residual form.
        num_identity: identity modes to fit (the first k).
        noise: the landmark noise model.
        focal_init: initial focal length as a multiple of max(H, W) when none is given.
        focal_prior_sigma: std of log(focal / focal_init); 0 fixes the focal length.
        iterations: Levenberg-Marquardt iterations.
        sliding_updates: how many times the outline correspondences are re-chosen.
        expression_shape: per-expression prior scales.
        damping_init: the initial Levenberg-Marquardt damping.
        step_trials: damped solves tried per iteration before giving up on a step.
        stop_relative_decrease: converged when the cost falls by less than this fraction.
    """

    terms: dict[str, float] = field(default_factory=lambda: {
        "landmark": 1.0, "identity_prior": 1.0, "expression_prior": 0.3, "focal_prior": 1.0,
        # the face's outline against the person segmentation (`fitting.outline`; only where the
        # pipeline gives it targets: turned faces). 0.5 chosen on validation faces of the held-out
        # generator (60 each, seeds 11 / 12; never the benchmark's seed 0): gap closed 8 -> 17 % and
        # 9 -> 15 % at 0.5, 16 % and 14 % at 1
        "outline": 0.5})
    num_identity: int = 100
    noise: LandmarkNoise = field(default_factory=LandmarkNoise)
    focal_init: float = 1.0
    focal_prior_sigma: float = 0.25
    iterations: int = 12
    sliding_updates: int = 3
    expression_shape: ExpressionPriorShape = field(default_factory=ExpressionPriorShape)
    damping_init: float = 1e-3
    step_trials: int = 6
    stop_relative_decrease: float = 1e-4


@dataclass
class AlbedoConfig:
    """Priors of the closed-form per-vertex albedo solve (per vertex, relative to a fully observed one)."""

    smoothness: float = 100.0
    symmetry: float = 100.0
    prior: float = 0.02


@dataclass
class PhotometricFitConfig:
    """The full (analysis-by-synthesis) fit: objective terms, schedule and robust masking.

    Attributes:
        terms: objective term name -> weight; each name must be registered in `fitting.terms` with a
            loss form. "photometric" is the mean colour distance over the skin mask (in [0, ~1.7]).
        albedo: the closed-form albedo priors.
        noise: the landmark noise model (the pipeline passes the landmark fit's, so both agree).
        expression_shape: per-expression prior scales (likewise shared).
        levels: coarse-to-fine (render size, iterations) pairs. One level of 12 at 224 px: the fit
            starts from the landmark fit, already near, and on images the fit's renderer did not
            make (point and area lights, cast shadows, specular) every further step fits that
            renderer's mismatch more than the face. Chosen on the held-out generator's validation
            faces (`bench_accuracy.py` rows through `run_rows`, seeds 11 / 12, 40 faces each, never
            the benchmark's seed 0; 2026-12-06): gap closed 24 / 23 % at the former (112, 16),
            (224, 10); 21 % (seed 11) at 4x those iterations, 23 / - at 2x, 26 / 24 % at half;
            (224, 8) 26 / 25 %, (224, 12) 27 / 26 %, (224, 16) 27 / 25 %; s per photo 0.74-0.76
            before, 0.46-0.48 at (224, 12).
        learning_rates: Adam learning rate per parameter group.
        corrective: fit a per-vertex corrective displacement beyond the model's span.
        light_updates_per_level: closed-form albedo/light re-solves per level.
        outlier_mad: pixels whose residual exceeds median + k * MAD are masked out.
        crop_scale: crop side as a multiple of the landmarks' box size.
        stop_relative_change: stop a level when the total changes by less than this fraction.
        visibility_depth_mm: a vertex is visible when within this depth of the z-buffer.
        min_facing: a vertex takes part in the albedo solve when its normal's z exceeds this.
        torch_threads: torch intra-op threads during the fit, restored after (None: leave torch's
            setting). The tensors are small: one thread is as fast, and torch's thread pool stalls
            badly (50-300x) when the other cores are busy.
    """

    # "silhouette" (fitting.silhouette, the outline against the person segmentation) calibrated on
    # training renders (scripts/calibrate_silhouette.py --n 48, seed 9100): gap closed 21.5 % at 0,
    # 22.2 % at 300, 22.7 % at 1000, 22.6 % at 3000 (per |yaw| bin at 1000: 21.1 / 32.9 / 31.2 / 11.4 %
    # against 21.7 / 31.1 / 27.7 / 9.7 % without); the pipeline applies it from |yaw| 15 deg
    # (PipelineConfig.silhouette_min_yaw_deg: 23.2 %, bins 21.7 / 33.6 / 31.2 / 11.4 %); +0.3-0.4 s per fit.
    # With the augmented detector (landmarks.mediapipe_detector): 24.5 % without, 25.9 % with it
    # (bins 26.2 / 34.3 / 38.6 / 12.8 against 26.2 / 32.9 / 37.6 / 9.9 %). With face mesh v2 (2026-12-02, same
    # faces): from |yaw| 15, 26.6 % at 0, 28.9 % at 1000, 29.4 % at 3000; 1000 at every yaw 29.4 % (bins
    # 27.6 / 34.2 / 39.8 / 22.9 against 25.8 / 34.2 / 39.8 / 22.9 gated): differences within these 48
    # faces' noise, so 1000 from |yaw| 15 stays (0.2 s less per fit on frontal faces). Raised to 4000
    # (2026-12-03) on the held-out generator's validation faces (bench_accuracy.py --n 40 --ablation,
    # seeds 11 / 12, never the benchmark's seed 0): gap 16 / 15 % at 1000, 17 % (seed 11) at 2000,
    # 18 / 17 % at 4000, 18 / 18 % at 8000, 18 % (seed 11) at 16000; at 4000 no |yaw| bin worse on
    # either seed (11: 16/16/21/19 against 16/15/17/17 %; 12: 19/15/12/23 against 18/14/10/18 %),
    # while 8000 loses seed 11's 15-30 bin (13 %)
    terms: dict[str, float] = field(default_factory=lambda: {
        "landmark": 1.0, "eye_closure": 1.0, "lip_closure": 0.5, "photometric": 500.0,
        "identity_prior": 1.0, "expression_prior": 0.3, "corrective_smoothness": 50.0, "corrective_prior": 0.5,
        "silhouette": 4000.0})
    albedo: AlbedoConfig = field(default_factory=AlbedoConfig)
    noise: LandmarkNoise = field(default_factory=LandmarkNoise)
    expression_shape: ExpressionPriorShape = field(default_factory=ExpressionPriorShape)
    levels: tuple[tuple[int, int], ...] = ((224, 12),)
    learning_rates: dict[str, float] = field(default_factory=lambda: {
        "identity": 0.05, "expression": 0.02, "rotation": 0.004, "translation": 1.0, "log_focal": 0.01, "sh": 0.01,
        "corrective": 0.1,
    })
    corrective: bool = False
    light_updates_per_level: int = 1
    outlier_mad: float = 3.0
    crop_scale: float = 1.5
    stop_relative_change: float = 1e-4
    visibility_depth_mm: float = 1.5
    min_facing: float = 0.05
    torch_threads: int | None = 1
