"""Cheap batch workers (module-level: spawned processes and Ray actors import them)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from facerecon.commands.batch import Worker
from facerecon.commands.reconstruct import save_whole
from facerecon.errors import NoFaceError
from facerecon.io.images import check_image_file

SECONDS_PER_PHOTO = 0.25


class _Result:
    """Writes files like `Reconstruction.save`, slowly, so a kill can land in the middle."""

    def __init__(self, image: Path) -> None:
        self.image = image

    def save(self, folder):
        folder = Path(folder)
        (folder / "mesh.obj").write_text("v 0 0 0\n")
        time.sleep(SECONDS_PER_PHOTO)
        (folder / "params.json").write_text(json.dumps({"image": self.image.name, "pid": os.getpid(),
                                                        "written": time.time()}))
        return {"obj": folder / "mesh.obj", "params": folder / "params.json"}


def setup(model: str) -> str:
    return model


def run(state: str, image: Path, target: Path, mode: str) -> dict:
    check_image_file(image)
    if "noface" in image.name:
        raise NoFaceError(f"no face found in {image}")
    paths = save_whole(_Result(image), target)
    return {"files": sorted(p.name for p in paths.values()), "pid": os.getpid()}


FAKE = Worker(setup, run)
