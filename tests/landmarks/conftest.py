"""Fixtures for the landmark tests: one MediaPipe detector and the astronaut photo's face."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut photo (Eileen Collins), (512, 512, 3) float32 in [0, 1]."""
    from skimage import data

    return data.astronaut().astype(np.float32) / 255.0


@pytest.fixture(scope="session")
def detector():
    from facerecon.landmarks import create_detector

    det = create_detector()
    yield det
    det.close()


@pytest.fixture(scope="session")
def astronaut_face(detector, astronaut):
    return detector.detect_largest(astronaut)
