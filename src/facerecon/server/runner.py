"""What a server worker does with a job: its photos -> one result folder per face, `faces/<k>/`,
each written whole by `save_whole` (mesh.obj/.mtl/.ply/.glb, albedo.png, params.json, overlay.png,
landmarks.json).

Several photos of one job are the same person: they are fitted together with one shared identity
(`facerecon.person.PersonReconstructor`); photos of different people fail the job with the reason.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..commands.batch import load_reconstructor
from ..commands.reconstruct import save_whole
from ..errors import FaceReconError, NoFaceError
from .workers import JobRunner, Progress

def run_job(reconstructor: Any, spec: dict, progress: Progress) -> dict:
    """Reconstruct the largest face of each photo of `spec` (see `JobRunner`).

    Returns:
        {"faces": [{"image", "name", "files", "model_vertices", "pose_deg", "landmark_rms_px", "quality",
        "arkit"}], "errors": [{"image", "name", "error"}], "note"}.
    Raises:
        FaceReconError: no photo gave a face (the first photo's error).
    """
    folder, inputs, names, mode = Path(spec["folder"]), spec["inputs"], spec["names"], spec["mode"]
    note = None
    faces, errors = [], []
    if len(inputs) > 1:
        from ..person import PersonReconstructor

        progress(0.1, f"fitting {len(inputs)} photos together")
        person = PersonReconstructor(reconstructor=reconstructor).reconstruct(inputs, mode=mode, names=names)
        fitted = [(names.index(n), r) for n, r in zip(person.names, person.photos)]
        errors = [{"image": names.index(n), "name": n, "error": why} for n, why in person.skipped.items()]
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


RECONSTRUCT = JobRunner(setup=load_reconstructor, run=run_job)
