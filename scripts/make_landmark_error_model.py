"""Learn MediaPipe's landmark error model from synthetic renders: per point, its bias and noise
relative to the true surface point, as a function of |yaw| (issue #15, step 2).

    python scripts/make_landmark_error_model.py [--n 420] [--seed 7000] [--out src/facerecon/data/...]

Renders off-model ICT faces with the project's synthetic generator (seeds disjoint from every
benchmark's), runs the MediaPipe detector, and compares each detected point with the model's
correspondence point on the ground-truth mesh, projected (`ground_truth_mediapipe_points`), in units
of the face size (the box diagonal of the true points). Faces turned to the left are mirrored onto
the right (x negated, points permuted by the canonical face's mirror map), so each |yaw| bin pools
both sides. Per bin and point: the median residual (bias) and a robust std (1.4826 MAD of the
distance from it). Held-out benchmarks are rendered by other code (`evaluation.heldout`), so this
is learned on one image formation and tested on another.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from facerecon.evaluation.synthetic import generate_synthetic_set, ground_truth_mediapipe_points
from facerecon.landmarks import create_detector, load_correspondence
from facerecon.landmarks.correspondence import load_canonical_face
from facerecon.landmarks.error_model import BIN_EDGES_DEG, ERROR_MODEL_FILE, estimate_error_model
from facerecon.models import load_model

OUT = Path(__file__).resolve().parents[1] / "src" / "facerecon" / "data" / ERROR_MODEL_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=420)
    parser.add_argument("--seed", type=int, default=7000)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    t0 = time.perf_counter()
    model = load_model("ict")
    emb = load_correspondence(model).as_embedding()
    mirror = load_canonical_face().mirror
    top = BIN_EDGES_DEG[-1]
    residuals, yaws = [], []
    with create_detector("mediapipe") as det:
        for start in range(0, args.n, 30):
            faces = generate_synthetic_set(model, min(30, args.n - start), args.seed + start, off_model=True,
                                           image_size=args.size, yaw_range=(-top, top))
            for face in faces:
                found = det.detect(face.image)
                if not found:
                    continue
                truth = ground_truth_mediapipe_points(model, face, emb)
                # the detection nearest the true face (a render holds one face, but be safe)
                points = min(found, key=lambda f: np.linalg.norm(f.points.mean(0) - truth.mean(0))).points
                size = float(np.linalg.norm(np.ptp(truth, axis=0)))
                r = (points - truth) / size
                residuals.append(r)
                yaws.append(face.yaw_deg)
    residuals, yaws = np.stack(residuals), np.array(yaws)
    model, counts = estimate_error_model(residuals, yaws, mirror)
    edges, bias, sigma = model.bin_edges_deg, model.bias, model.sigma
    nb = len(edges) - 1
    np.savez_compressed(args.out, bin_edges_deg=edges, bias=bias.astype(np.float32), sigma=sigma.astype(np.float32),
                        counts=counts, mirror=mirror.astype(np.int64), seed=np.int64(args.seed),
                        faces=np.int64(len(yaws)), image_size=np.int64(args.size))
    print(f"{len(yaws)} of {args.n} faces detected; faces per |yaw| bin {dict(zip(edges[:-1].tolist(), counts.tolist()))}")
    inner = np.setdiff1d(np.arange(residuals.shape[1]), np.arange(468, 478))
    for b in range(nb):
        print(f"  |yaw| {edges[b]:>2.0f}-{edges[b + 1]:<2.0f}: median sigma {100 * np.median(sigma[b, inner]):.2f} % of "
              f"the face, 90th pct {100 * np.percentile(sigma[b, inner], 90):.2f} %, median |bias| "
              f"{100 * np.median(np.linalg.norm(bias[b, inner], axis=1)):.2f} %")
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
