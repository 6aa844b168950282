"""`facerecon retarget --source TRACK_DIR --target RECON_DIR -o anim.glb`: the expression curves and
head motion of a track applied to another reconstruction.

The target is the output folder of `facerecon reconstruct`: its params.json names the model (it
must be the track's: the expression weights mean the same blendshapes) and its mesh.glb is that
person's head (identity, texture and the morph targets under the same names), which is animated
with the track's per-frame weights (the exact ICT weights from track.json), rotation and
translation, and the track's video camera.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np

from ..errors import ImageError, UsageError
from .outputs import check_output_file, writing_outputs


def target_mesh(folder: str | Path):
    """The `io.Mesh` of a reconstruction folder's mesh.glb (mm, neutral base, morph targets, texture)
    and its params.json."""
    from PIL import Image

    from ..io import Mesh, read_glb
    from ..io.gltf import MM_PER_METRE

    folder = Path(folder)
    params_path, glb_path = folder / "params.json", folder / "mesh.glb"
    for p in (params_path, glb_path):
        if not p.is_file():
            raise ImageError(f"{p}: not found; give the output folder of `facerecon reconstruct`")
    try:
        params = json.loads(params_path.read_text())
        params["model"]["name"], params["identity"]  # noqa: B018
    except (ValueError, KeyError, TypeError) as exc:
        raise ImageError(f"{params_path}: not a readable params.json ({exc})") from None
    try:
        glb = read_glb(glb_path)
    except Exception as exc:  # ModelError and what a malformed file raises
        raise ImageError(f"{glb_path}: not a readable mesh.glb ({exc})") from None
    if not glb["morph_targets"]:
        raise UsageError(f"{glb_path} has no morph targets to animate")
    texture = None
    if glb["texture_png"] is not None:
        with Image.open(io.BytesIO(glb["texture_png"])) as im:
            texture = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
    positions = glb["positions"].astype(np.float64) * MM_PER_METRE
    targets = {k: v.astype(np.float64) * MM_PER_METRE for k, v in glb["morph_targets"].items()}
    has_uv = glb["uv"] is not None
    mesh = Mesh(positions, glb["indices"], uv=glb["uv"] if has_uv else None,
                uv_triangles=glb["indices"] if has_uv else None, texture=texture if has_uv else None,
                normals=glb["normals"], morph_targets=targets, base_vertices=positions)
    return mesh, params


def retarget_command(source: str, target: str, out: str) -> int:
    """Write the animated GLB; returns the exit code."""
    from ..io.animation import write_animated_glb
    from ..tracking.files import read_track_json, track_from_dict

    check_output_file(out)
    track = track_from_dict(read_track_json(source))
    mesh, params = target_mesh(target)
    if params["model"]["name"] != track.model_name:
        raise UsageError(f"the track was made with model {track.model_name!r}, the target with "
                         f"{params['model']['name']!r}; retarget between reconstructions of the same model")
    h, w = track.image_size
    with writing_outputs():
        path = write_animated_glb(out, mesh, track.animation(list(mesh.morph_targets)),
                                  2 * math.atan(h / (2 * track.focal)), w / h)
    print(f"{source} -> {target}: {int(track.has_values.sum())} frames animated -> {path}")
    return 0
