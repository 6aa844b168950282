"""What a fit returns: the fitted `FaceState` plus diagnostics (never a free-form dict of results)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .correspondence import VertexCorrespondence
from .state import FaceState


@dataclass
class FitDiagnostics:
    """How a fit went.

    Attributes:
        residual_px: (B, L) reprojection error of each landmark in each image, px.
        losses: stage -> term name -> value (e.g. {"initial": {...}, "final": {...}}).
        seconds: wall time. iterations: optimiser steps taken. history: cost after each step.
    """

    residual_px: np.ndarray
    losses: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    iterations: int = 0
    history: list[float] = field(default_factory=list)


@dataclass
class FitResult:
    """A fitted state and how it was obtained.

    Attributes:
        state: the fitted `FaceState` (numpy).
        correspondence: the final landmark correspondence (outline points chosen by the contour step).
        diagnostics: `FitDiagnostics`.
        corrective: (V,) beyond-model displacement along the mean shape's normals (mm), or None.
    """

    state: FaceState
    correspondence: VertexCorrespondence
    diagnostics: FitDiagnostics
    corrective: np.ndarray | None = None

    @property
    def rms_px(self) -> float:
        """RMS landmark reprojection error over every landmark and image, px."""
        return float(np.sqrt(np.mean(self.diagnostics.residual_px ** 2)))
