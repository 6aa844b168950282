"""Shared fixtures: the shared model folder and a session-wide ICT model."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "models"

if not os.environ.get("FACERECON_MODEL_DIR") and SHARED_MODELS.is_dir():
    os.environ["FACERECON_MODEL_DIR"] = str(SHARED_MODELS)


def _ict_dir() -> Path | None:
    for root in os.environ.get("FACERECON_MODEL_DIR", "").split(os.pathsep):
        p = Path(root) / "ict-facekit-light"
        if (p / "ict_facekit_light.npz").is_file():
            return p
    return None


@pytest.fixture(scope="session")
def ict_dir() -> Path:
    d = _ict_dir()
    if d is None:
        pytest.skip("ICT-FaceKit model not found (set FACERECON_MODEL_DIR)")
    return d


@pytest.fixture(scope="session")
def ict_model(ict_dir):
    from facerecon.models import load_model

    return load_model("ict")


@pytest.fixture(scope="session")
def ict_head(ict_model):
    return ict_model.view("head")
