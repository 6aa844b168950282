"""Render a shaded head to a PNG: ``python -m facerecon.commands.render_demo out.png [--size 512] [--yaw 25]``.

Uses the ICT-FaceKit neutral head from $FACERECON_MODEL_DIR/ict-facekit-light/ict_facekit_light.npz
(face, head and eyeballs), or a sphere when the model is not there. It lives with the commands,
not in `render`, because it knows what a face model file is.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..geometry.rotation import euler_deg_to_matrix, matrix_to_axis_angle
from ..render import PinholeCamera, SHLight, icosphere, render_mesh

ICT_FILE = Path("ict-facekit-light") / "ict_facekit_light.npz"
SKIN, SCLERA, IRIS, PUPIL = (0.80, 0.60, 0.50), (0.92, 0.90, 0.88), (0.30, 0.20, 0.12), (0.03, 0.03, 0.03)
MATERIAL_COLOURS = {"M_Face": SKIN, "M_BackHead": SKIN, "M_ScleraLeft": SCLERA, "M_ScleraRight": SCLERA,
                    "M_IrisLeft": IRIS, "M_IrisRight": IRIS}


def load_ict_head(path: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> vertices (N, 3) mm, triangles (F, 3), colours (N, 3) from the ICT light npz."""
    data = np.load(path)
    vertices = torch.tensor(data["neutral"] * 10.0)  # cm -> mm
    materials = [str(m) for m in data["materials"]]
    keep = np.zeros(len(data["triangles"]), bool)
    colours = np.tile(np.asarray(SKIN, np.float32), (len(vertices), 1))
    for index, name in enumerate(materials):
        if name in MATERIAL_COLOURS:
            sel = data["triangle_material"] == index
            keep |= sel
            colours[data["triangles"][sel].reshape(-1)] = MATERIAL_COLOURS[name]
    # the sclera mesh includes the cornea, in front of the iris mesh: paint the iris onto it
    for side in ("Left", "Right"):
        sclera = np.unique(data["triangles"][data["triangle_material"] == materials.index(f"M_Sclera{side}")])
        iris = np.unique(data["triangles"][data["triangle_material"] == materials.index(f"M_Iris{side}")])
        centre = data["neutral"][sclera].mean(0)
        axis = data["neutral"][iris].mean(0) - centre
        axis /= np.linalg.norm(axis)
        rays = data["neutral"][sclera] - centre
        cos = rays @ axis / np.linalg.norm(rays, axis=1)
        colours[sclera[cos > 0.93]] = IRIS
        colours[sclera[cos > 0.985]] = PUPIL
    return vertices, torch.tensor(data["triangles"][keep]).long(), torch.tensor(colours)


def find_model() -> Path | None:
    root = os.environ.get("FACERECON_MODEL_DIR")
    if root and (Path(root) / ICT_FILE).is_file():
        return Path(root) / ICT_FILE
    return None


def render_demo(size: int = 512, yaw_deg: float = 25.0) -> tuple[np.ndarray, str]:
    """-> (H, W, 3) uint8 image and a description of what was rendered."""
    path = find_model()
    if path is not None:
        vertices, triangles, colours = load_ict_head(path)
        what = f"ICT-FaceKit neutral head ({len(vertices)} vertices, {len(triangles)} triangles) from {path}"
    else:
        vertices, triangles = icosphere(5, radius=100.0)
        colours = torch.tensor([SKIN]).expand(len(vertices), 3)
        what = f"a sphere (no {ICT_FILE} under $FACERECON_MODEL_DIR)"
    used = vertices[triangles.unique()]
    centre = (used.max(0).values + used.min(0).values) / 2
    extent = (used.max(0).values - used.min(0).values).max().item()
    fov = 12.0
    distance = 0.5 * extent / math.tan(math.radians(fov) / 2) / 0.9 + extent / 2
    camera = PinholeCamera.looking_at_origin(distance, (size, size), fov_deg=fov)
    camera.rotation = matrix_to_axis_angle(euler_deg_to_matrix(torch.tensor([[yaw_deg, 0.0, 0.0]])))
    background = torch.full((1, size, size, 3), 0.18)
    out = render_mesh((vertices - centre)[None], triangles, camera, colors=colours[None],
                      sh=SHLight.ambient_directional().coefficients, background=background)
    image = (out.image[0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    return image, what


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="PNG file to write")
    parser.add_argument("--size", type=int, default=512, help="image width and height in pixels")
    parser.add_argument("--yaw", type=float, default=25.0, help="head turn in degrees (+ = toward its left)")
    args = parser.parse_args(argv)
    image, what = render_demo(args.size, args.yaw)
    if find_model() is None:
        print(f"FACERECON_MODEL_DIR has no {ICT_FILE}: rendering a sphere instead", file=sys.stderr)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(args.output)
    print(f"wrote {args.output}: {what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
