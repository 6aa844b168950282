"""Cheap job runners injected into the app (module-level: the worker processes import them)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from facerecon.server.workers import JobRunner


def setup(model: str) -> dict:
    return {"model": model, "pid": os.getpid()}


def run(state: dict, spec: dict, progress) -> dict:
    """A result like the real one: one face per photo with a params.json."""
    progress(0.5, "pretending")
    time.sleep(0.01)
    faces = []
    for i, name in enumerate(spec["names"]):
        folder = Path(spec["folder"]) / "faces" / str(i)
        folder.mkdir(parents=True)
        (folder / "params.json").write_text(json.dumps({"worker_pid": state["pid"], "mode": spec["mode"]}))
        faces.append({"image": i, "name": name, "files": ["params.json"], "model_vertices": 3,
                      "pose_deg": [0.0, 0.0, 0.0], "landmark_rms_px": 0.0, "quality": {}, "arkit": None})
    return {"faces": faces, "errors": [], "note": None}


def run_slowly(state: dict, spec: dict, progress) -> dict:
    """Longer than any test's job timeout when the photo is named slow*, else `run`."""
    if spec["names"][0].startswith("slow"):
        time.sleep(120)
    return run(state, spec, progress)


def run_or_crash(state: dict, spec: dict, progress) -> dict:
    """The worker process dies on a photo named crash*."""
    if spec["names"][0].startswith("crash"):
        os._exit(7)
    return run(state, spec, progress)


FAST = JobRunner(setup, run)
SLOW = JobRunner(setup, run_slowly)
CRASHY = JobRunner(setup, run_or_crash)
