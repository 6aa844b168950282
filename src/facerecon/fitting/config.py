"""The weights of every loss term and the schedule of the full (photometric) fit, in one place."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LossWeights:
    """Weights of the full-mode objective (see fitting.losses for each term).

    The objective is  N * (landmark * mean_l (d_l / sigma)^2 + eye_closure * E + lip_closure * M
    + photometric * P) + identity_prior * |alpha|^2 + expression_prior * |psi|^2,
    with N the number of landmarks used and sigma the landmark noise (1% of the face size), so the
    priors weigh exactly as in the fast mode's least squares; P is the mean colour distance over
    the skin mask (in [0, ~1.7]).
    """

    landmark: float = 1.0
    eye_closure: float = 1.0
    lip_closure: float = 0.5
    photometric: float = 500.0
    identity_prior: float = 1.0
    expression_prior: float = 0.3
    albedo_smoothness: float = 100.0
    albedo_symmetry: float = 100.0
    albedo_prior: float = 0.02
    corrective_smoothness: float = 50.0
    corrective_prior: float = 0.5


@dataclass
class PhotometricFitConfig:
    """Schedule of the full fit: coarse-to-fine render sizes with iterations per level."""

    levels: tuple[tuple[int, int], ...] = ((112, 16), (224, 10))  # (render size, iterations)
    learning_rates: dict[str, float] = field(default_factory=lambda: {
        "identity": 0.05, "expression": 0.02, "rotation": 0.004, "translation": 1.0, "log_focal": 0.01, "sh": 0.01,
        "corrective": 0.1,
    })
    # fit a per-vertex corrective displacement beyond the model's span (off by default)
    corrective: bool = False
    light_updates_per_level: int = 1
    outlier_mad: float = 3.0  # pixels whose residual exceeds median + k * MAD are masked out
    crop_scale: float = 1.5  # crop side as a multiple of the landmarks' box size
    weights: LossWeights = field(default_factory=LossWeights)
    stop_relative_change: float = 1e-4
