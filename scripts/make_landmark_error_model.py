"""Learn MediaPipe's landmark error model from synthetic renders: per point, its bias and noise
relative to the true surface point, and the correlation of the noise across points, as a function
of |yaw| (issue #15, step 2).

    python scripts/make_landmark_error_model.py [--mesh v2|v1] [--n 840] [--seed 7000] [--rank 16] [--residuals cache.npz]

One model per face mesh of the detector (`MediaPipeDetector(mesh=...)`), written to its packaged file.

Renders off-model ICT faces with the project's synthetic generator (seeds disjoint from every
benchmark's), runs the MediaPipe detector, and compares each detected point with the model's
correspondence point on the ground-truth mesh, projected (`ground_truth_mediapipe_points`), in units
of the face size (the box diagonal of the true points). Faces turned to the left are mirrored onto
the right (x negated, points permuted by the canonical face's mirror map), so each |yaw| bin pools
both sides. Per bin and point: the median residual (bias) and a robust std; per bin, a low-rank +
diagonal covariance of the de-biased residual vectors (`landmarks.error_model.estimate_noise_factors`:
whole contours slide together). Held-out benchmarks are rendered by other code (`evaluation.heldout`),
so this is learned on one image formation and tested on another.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from facerecon.evaluation.synthetic import generate_synthetic_set, ground_truth_mediapipe_points
from facerecon.landmarks import create_detector, load_correspondence
from facerecon.landmarks.correspondence import load_canonical_face
from facerecon.landmarks.error_model import BIN_EDGES_DEG, DEFAULT_RANK, ERROR_MODEL_FILES, estimate_error_model
from facerecon.landmarks.mediapipe_detector import ERROR_MODELS
from facerecon.models import load_model

DATA = Path(__file__).resolve().parents[1] / "src" / "facerecon" / "data"


def render_residuals(model, n: int, seed: int, size: int, mesh: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 478, 2) detected - true points in face sizes and (N,) yaw of the N <= n faces detected."""
    emb = load_correspondence(model).as_embedding()
    top = BIN_EDGES_DEG[-1]
    residuals, yaws = [], []
    with create_detector("mediapipe", mesh=mesh) as det:
        for start in range(0, n, 30):
            faces = generate_synthetic_set(model, min(30, n - start), seed + start, off_model=True,
                                           image_size=size, yaw_range=(-top, top))
            for face in faces:
                found = det.detect(face.image)
                if not found:
                    continue
                truth = ground_truth_mediapipe_points(model, face, emb)
                # the detection nearest the true face (a render holds one face, but be safe)
                points = min(found, key=lambda f: np.linalg.norm(f.points.mean(0) - truth.mean(0))).points
                size_px = float(np.linalg.norm(np.ptp(truth, axis=0)))
                residuals.append((points - truth) / size_px)
                yaws.append(face.yaw_deg)
            print(f"  {start + min(30, n - start)} faces rendered", flush=True)
    return np.stack(residuals), np.array(yaws)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=840)
    parser.add_argument("--seed", type=int, default=7000)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--mesh", default="v2", choices=sorted(ERROR_MODELS), help="the detector's face mesh")
    parser.add_argument("--out", default=None, help="default: the packaged file of --mesh's model")
    parser.add_argument("--rank", type=int, default=DEFAULT_RANK, help="rank of the correlated noise model")
    parser.add_argument("--residuals", default=None,
                        help="an .npz cache of the detector residuals: read when it exists, else written")
    args = parser.parse_args()
    t0 = time.perf_counter()
    args.out = args.out or str(DATA / ERROR_MODEL_FILES[ERROR_MODELS[args.mesh]])
    mirror = load_canonical_face().mirror
    if args.residuals and Path(args.residuals).exists():
        cached = np.load(args.residuals)
        residuals, yaws = cached["residuals"].astype(np.float64), cached["yaw_deg"].astype(np.float64)
        print(f"read {len(yaws)} faces' residuals from {args.residuals}")
    else:
        residuals, yaws = render_residuals(load_model("ict"), args.n, args.seed, args.size, args.mesh)
        if args.residuals:
            np.savez_compressed(args.residuals, residuals=residuals.astype(np.float32), yaw_deg=yaws)
    model, counts = estimate_error_model(residuals, yaws, mirror, rank=args.rank)
    edges, sigma = model.bin_edges_deg, model.sigma
    np.savez_compressed(args.out, bin_edges_deg=edges, bias=model.bias.astype(np.float32),
                        sigma=sigma.astype(np.float32), factors=model.factors.astype(np.float16),
                        diagonal=model.diagonal.astype(np.float32), counts=counts, mirror=mirror.astype(np.int64),
                        seed=np.int64(args.seed), faces=np.int64(len(yaws)), image_size=np.int64(args.size))
    print(f"{len(yaws)} of {args.n} faces detected; faces per |yaw| bin {dict(zip(edges[:-1].tolist(), counts.tolist()))}")
    inner = np.setdiff1d(np.arange(residuals.shape[1]), np.arange(468, 478))
    for b in range(len(edges) - 1):
        total = model.diagonal[b].sum() + (model.factors[b] ** 2).sum()
        print(f"  |yaw| {edges[b]:>2.0f}-{edges[b + 1]:<2.0f}: median sigma {100 * np.median(sigma[b, inner]):.2f} % of "
              f"the face, 90th pct {100 * np.percentile(sigma[b, inner], 90):.2f} %, median |bias| "
              f"{100 * np.median(np.linalg.norm(model.bias[b, inner], axis=1)):.2f} %, rank-{model.factors.shape[3]} "
              f"factors hold {100 * (model.factors[b] ** 2).sum() / total:.0f} % of the variance")
    print(f"wrote {args.out} ({Path(args.out).stat().st_size // 1024} KB) in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
