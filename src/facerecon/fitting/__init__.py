"""Fitting: the state of a fitted face, objective terms (pure functions, registered by name), and
the stages that minimise them (Gauss-Newton landmark fit, photometric fit)."""
from .config import (AlbedoConfig, ExpressionPriorShape, LandmarkFitConfig, LandmarkNoise, PhotometricFitConfig)
from .contour_correspondence import ContourLines, contour_lines, update_contour_correspondences
from .correspondence import VertexCorrespondence, correspondence_on
from .landmark_fit import LandmarkFitter, landmark_reprojection, normal_equations, solve_damped_step
from .outline import OutlineTargets, outline_targets
from .photometric_fit import PhotometricFitter, torch_threads
from .pose import estimate_initial_pose, estimate_orthographic_projection_linear
from .result import FitDiagnostics, FitResult
from .silhouette import silhouette_loss, silhouette_targets
from .state import Appearance, Camera, FaceParams, FaceState
from .terms import TERMS, GaussNewtonInputs, LossInputs, Residual, Term, objective, register_term, unregister_term

__all__ = [
    "TERMS", "AlbedoConfig", "Appearance", "Camera", "ContourLines", "ExpressionPriorShape", "FaceParams", "FaceState",
    "FitDiagnostics", "FitResult", "GaussNewtonInputs", "LandmarkFitConfig", "LandmarkFitter", "LandmarkNoise",
    "LossInputs", "OutlineTargets", "PhotometricFitConfig", "PhotometricFitter", "Residual", "Term", "VertexCorrespondence",
    "contour_lines", "correspondence_on", "estimate_initial_pose", "estimate_orthographic_projection_linear",
    "landmark_reprojection", "normal_equations", "objective", "outline_targets", "register_term", "solve_damped_step", "torch_threads",
    "unregister_term", "update_contour_correspondences",
]
