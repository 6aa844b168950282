"""Fitting: loss terms (pure functions) and the stages that use them (landmark fit, photometric fit)."""
from .config import LossWeights, PhotometricFitConfig
from .correspondence import VertexCorrespondence, correspondence_on
from .landmark_fit import LandmarkFit, LandmarkFitConfig, LandmarkFitter, estimate_orthographic_projection_linear
from .photometric_fit import PhotometricFit, PhotometricFitter

__all__ = [
    "LandmarkFit", "LandmarkFitConfig", "LandmarkFitter", "LossWeights", "PhotometricFit", "PhotometricFitConfig",
    "PhotometricFitter", "VertexCorrespondence", "correspondence_on", "estimate_orthographic_projection_linear",
]
