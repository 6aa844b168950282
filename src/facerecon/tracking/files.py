"""The files of a track: expressions.csv, track.json, animation.glb and preview.mp4.

expressions.csv has one row per frame: `timestamp_s, frame, face_found, status`, the 52 ARKit
blendshape names exactly as Apple spells them (`models.arkit.ARKIT_NAMES`, weights from
`arkit_weights`), `yaw_deg, pitch_deg, roll_deg` (R = Ry(yaw) Rx(pitch) Rz(roll)), `qw, qx, qy, qz`
(the same rotation, model -> camera) and `tx_mm, ty_mm, tz_mm` (camera space,
docs/conventions.md). `face_found` is 1 where the frame's landmarks were found; interpolated frames
(status "interpolated") have values with face_found 0; lost frames have empty cells.

track.json holds the identity, the camera, the model, the keyframes, timings and per frame the
status, the landmark fit's RMS (px), how the landmarks were found and the ICT expression weights
(what `retarget` reads, exactly, where the CSV's ARKit weights average ICT's split halves).
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import ImageError, UsageError
from ..io.animation import write_animated_glb
from ..models.arkit import ARKIT_NAMES
from .track import Track

POSE_COLUMNS = ("yaw_deg", "pitch_deg", "roll_deg", "qw", "qx", "qy", "qz", "tx_mm", "ty_mm", "tz_mm")
CSV_COLUMNS = ("timestamp_s", "frame", "face_found", "status") + ARKIT_NAMES + POSE_COLUMNS


def write_expressions_csv(track: Track, path: str | Path) -> Path:
    """Write expressions.csv (see the module docstring); returns the path."""
    path = Path(path)
    curves = track.arkit_curves()
    pose = np.concatenate([track.pose_deg(), track.quaternions_wxyz(), track.translation], axis=1)
    found = track.face_found
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(CSV_COLUMNS)
        for i in range(track.num_frames):
            values = [_cell(x) for x in np.concatenate([curves[i], pose[i]])]
            out.writerow([f"{track.timestamps_s[i]:.6f}", i, int(found[i]), track.status[i], *values])
    return path


def _cell(x: float) -> str:
    return "" if not math.isfinite(x) else f"{x:.6g}"


def track_dict(track: Track) -> dict:
    """What track.json holds (JSON-ready)."""
    h, w = track.image_size
    frames = []
    for i in range(track.num_frames):
        entry = {"frame": i, "timestamp_s": round(float(track.timestamps_s[i]), 6), "status": track.status[i],
                 "found_by": track.found_by[i]}
        if math.isfinite(track.rms_px[i]):
            entry["rms_px"] = round(float(track.rms_px[i]), 4)
        if track.status[i] != "lost":
            entry["expression"] = [round(float(x), 5) for x in track.expression[i]]
            entry["rotation_axis_angle"] = [round(float(x), 7) for x in track.rotation[i]]
            entry["translation_mm"] = [round(float(x), 4) for x in track.translation[i]]
        frames.append(entry)
    counts = {s: track.status.count(s) for s in ("tracked", "interpolated", "lost")}
    return {
        "facerecon_version": __version__,
        "source": track.source,
        "model": {"name": track.model_name, "source": track.model_source},
        "units": "mm; model space +y up, +z toward the camera; camera looks down -z (docs/conventions.md)",
        "identity": [round(float(x), 6) for x in track.identity],
        "camera": {"model": "pinhole", "focal_px": round(float(track.focal), 4), "image_size": [int(h), int(w)],
                   "principal_px": [w / 2.0, h / 2.0],
                   "fov_x_deg": round(math.degrees(2 * math.atan(w / (2 * track.focal))), 3)},
        "expression_names": list(track.expression_names),
        "keyframes": [int(k) for k in track.keyframes],
        "frames_by_status": counts,
        "error": track.error,
        "timings_s": {k: (round(float(v), 4) if isinstance(v, float) else v) for k, v in track.timings_s.items()},
        "frames": frames,
    }


def write_track_json(track: Track, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(track_dict(track)))
    return path


ANIMATION_TEXTURE_SIZE = 512  # the 1024 bake lifts `facerecon track` from ~630 MB to ~1.07 GB


def write_animation(track: Track, path: str | Path, mesh=None) -> Path:
    """animation.glb: `mesh` (default: the track's reference reconstruction's textured head, ARKit
    targets, a 512 x 512 texture: it bounds the command's peak memory) animated by the track's frames
    with values, with the video's camera."""
    if mesh is None:
        if track.reference is None:
            raise UsageError("the track has no reference frame to build the mesh from")
        mesh = track.reference.mesh_with(ANIMATION_TEXTURE_SIZE)
    h, w = track.image_size
    yfov = 2 * math.atan(h / (2 * track.focal))
    return write_animated_glb(path, mesh, track.animation(list(mesh.morph_targets)), yfov, w / h)


def write_preview(track: Track, frames, path: str | Path, fps: float = 30.0, max_side: int = 640) -> Path:
    """preview.mp4: each frame with the tracked head shaded over it (frames without values as they are),
    streamed (one frame in memory). Rendered on one torch thread: the meshes are small, and torch's
    pool stalls when the other cores are busy (287 -> 43 ms CPU per frame measured on a loaded machine).

    Args:
        frames: the video's frames again (`io.video.read_frames(source, max_side)`), in order.
    """
    import torch

    from ..fitting.photometric_fit import torch_threads

    from ..io.video import VideoWriter
    from ..reconstruction import cached_model
    from ..render import PinholeCamera
    from ..render.overlay import shaded_overlay

    model = cached_model(track.model_source)
    view = model.view("head")
    tris = view.triangles.cpu().numpy()
    ident = torch.as_tensor(track.identity, dtype=view.dtype)[None]
    ok = track.has_values
    h, w = track.image_size
    f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    with VideoWriter(path, fps=fps) as out, torch_threads(1):
        for frame in frames:
            i = frame.index
            if i >= track.num_frames:
                break
            image = frame.image
            if ok[i]:
                s = frame.scale
                with torch.no_grad():
                    v = view.vertices(ident, torch.as_tensor(track.expression[i], dtype=view.dtype)[None])[0]
                cam = PinholeCamera(f32(track.rotation[i])[None], f32(track.translation[i])[None],
                                    f32([track.focal * s]), f32([w / 2.0 * s, h / 2.0 * s])[None], image.shape[:2])
                image = shaded_overlay(image.astype(np.float32) / 255, v.numpy(), tris, cam)
            out.write(image, float(track.timestamps_s[i]))
    return path


def read_track_json(folder: str | Path) -> dict:
    """The track.json of a `facerecon track` output folder (`ImageError` when missing or unreadable)."""
    path = Path(folder) / "track.json"
    if not path.is_file():
        raise ImageError(f"{path}: not found; give the output folder of `facerecon track`")
    try:
        data = json.loads(path.read_text())
        data["frames"], data["identity"], data["expression_names"]  # noqa: B018
    except (ValueError, KeyError, TypeError) as exc:
        raise ImageError(f"{path}: not a readable track.json ({exc})") from None
    return data


def track_from_dict(data: dict) -> Track:
    """A `Track` (without landmarks or reference) from `track_dict`'s output, e.g. to retarget it."""
    frames = data["frames"]
    n, e = len(frames), len(data["expression_names"])
    expression, rotation, translation = np.full((n, e), np.nan), np.full((n, 3), np.nan), np.full((n, 3), np.nan)
    for i, f in enumerate(frames):
        if f["status"] != "lost":
            expression[i], rotation[i], translation[i] = f["expression"], f["rotation_axis_angle"], f["translation_mm"]
    cam = data["camera"]
    return Track(np.array([f["timestamp_s"] for f in frames], dtype=np.float64), [f["status"] for f in frames],
                 [f.get("found_by", "") for f in frames], np.asarray(data["identity"], dtype=np.float64),
                 float(cam["focal_px"]), tuple(cam["image_size"]), expression, rotation, translation,
                 np.zeros((n, 0, 2), np.float32), np.array([f.get("rms_px", np.nan) for f in frames]),
                 list(data["keyframes"]), dict(data.get("timings_s", {})), data["model"]["source"],
                 data["model"]["name"], tuple(data["expression_names"]), data.get("source"), error=data.get("error"))
