"""What a server worker does with a job: its photos -> one result folder per face, `faces/<k>/`,
each written whole by `save_whole` (mesh.obj/.mtl/.ply/.glb, albedo.png, params.json, overlay.png,
landmarks.json).

Several photos of one job are the same person. They are fitted together by
`facerecon.person.reconstruct_person` where that module exists; until then each photo is
reconstructed on its own and the result's `note` says so.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ..commands.batch import load_reconstructor
from ..commands.reconstruct import save_whole
from ..errors import FaceReconError, NoFaceError
from .workers import JobRunner, Progress

SEPARATE_NOTE = ("the photos were reconstructed separately: fitting several photos of one person together "
                 "needs facerecon.person, which this installation does not have")


def run_job(reconstructor: Any, spec: dict, progress: Progress) -> dict:
    """Reconstruct the largest face of each photo of `spec` (see `JobRunner`).

    Returns:
        {"faces": [{"image", "name", "files", "model_vertices", "pose_deg", "landmark_rms_px", "quality",
        "arkit"}], "errors": [{"image", "name", "error"}], "note"}.
    Raises:
        FaceReconError: no photo gave a face (the first photo's error).
    """
    folder, inputs, names, mode = Path(spec["folder"]), spec["inputs"], spec["names"], spec["mode"]
    joint = _person_fit()
    note = None if len(inputs) == 1 or joint else SEPARATE_NOTE
    faces, errors = [], []
    if joint is not None and len(inputs) > 1:
        progress(0.1, f"fitting {len(inputs)} photos together")
        fitted = [(i, r) for i, r in enumerate(joint(reconstructor, inputs, mode=mode))]
    else:
        fitted = []
        for i, path in enumerate(inputs):
            progress(i / len(inputs), f"photo {i + 1} of {len(inputs)}: fitting")
            try:
                fitted.append((i, reconstructor.reconstruct(path, mode=mode)[0]))
            except FaceReconError as exc:
                errors.append({"image": i, "name": names[i], "error": str(exc).replace(path, names[i])})
    for k, (i, rec) in enumerate(fitted):
        progress((i + 0.5) / len(inputs), f"photo {i + 1} of {len(inputs)}: writing meshes")
        target = folder / "faces" / str(k)
        save_whole(rec, target)
        faces.append({"image": i, "name": names[i], "files": sorted(p.name for p in target.iterdir()),
                      "model_vertices": int(rec.vertices().shape[0]), "pose_deg": [round(x, 2) for x in rec.pose_deg],
                      "landmark_rms_px": round(rec.landmark_error_px(), 3), "quality": rec.quality.to_dict(),
                      "arkit": rec.to_dict()["arkit_blendshapes"]})
    if not faces:
        raise NoFaceError(errors[0]["error"] if errors else "no face found")
    return {"faces": faces, "errors": errors, "note": note}


def _person_fit():
    """`facerecon.person.reconstruct_person` where it exists, else None."""
    if importlib.util.find_spec("facerecon.person") is None:
        return None
    from .. import person

    return getattr(person, "reconstruct_person", None)


RECONSTRUCT = JobRunner(setup=load_reconstructor, run=run_job)
