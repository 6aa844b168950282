"""Measure test-time augmentation of MediaPipe's face mesh on TRAINING renders (issue #15).

    python scripts/measure_landmark_tta.py [--n 60] [--seed 7000] [--size 320] [--mesh v2|v1]

For each off-model face of the project's generator (seeds as `make_landmark_error_model.py`; no
benchmark's), the face box is found once, then the face mesh runs on several crops around it: the
detector's own crop (box side x 2, centred), its horizontal mirror image (points un-flipped and
relabelled by the canonical face's mirror map), and crops of other scales and offsets. Variants
average these (mean or per-coordinate median) and are compared with the true points
(`ground_truth_mediapipe_points`) in face sizes (box diagonal of the true points), per |yaw| bin:
the raw RMS, and the RMS after removing a per-point, per-bin bias learned on the other half of the
faces (what is left for the fit once the error model de-biases), and the time of the mesh passes.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from facerecon.evaluation.synthetic import generate_synthetic_set, ground_truth_mediapipe_points
from facerecon.landmarks import create_detector, load_correspondence
from facerecon.landmarks.base import as_uint8_rgb
from facerecon.landmarks.correspondence import load_canonical_face
from facerecon.landmarks.schemes import MEDIAPIPE_IRIS
from facerecon.models import load_model

BINS = (0.0, 15.0, 30.0, 45.0, 60.0)
# (scale of the box side, x offset, y offset in box sides); the first is the detector's own crop
CROPS = ((2.0, 0.0, 0.0), (1.7, 0.0, 0.0), (2.4, 0.0, 0.0), (2.0, 0.08, 0.06), (2.0, -0.08, -0.06))


def mesh_in_crop(det, img: np.ndarray, box: np.ndarray, scale: float, dx: float, dy: float, flip: bool,
                 mesh: str) -> np.ndarray | None:
    """(478, 3) points (u, v, w) px of face mesh `mesh` ("v2" or "v1", as `MediaPipeDetector(mesh=...)`)
    for the face nearest the crop centre, in a square crop of side `scale` x the box's longer side
    centred at the box centre + (dx, dy) box sides; with `flip` the crop is mirrored first and the
    points mapped back (x un-flipped, labels mirrored)."""
    bw = max(box[2] - box[0], box[3] - box[1])
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return det._mesh_in_crop(img, cx + dx * bw, cy + dy * bw, scale * bw, flip, mesh)


def collect(n: int, seed: int, size: int, mesh: str):
    """Per face: (V, 478, 3) points of every (crop, flip) pass or NaN, the truth, the face size, yaw,
    and the mean seconds per pass."""
    model = load_model("ict")
    emb = load_correspondence(model).as_embedding()
    mirror = load_canonical_face().mirror
    passes = [(c, f) for c in CROPS for f in (False, True)]
    out, truths, sizes, yaws, secs = [], [], [], [], []
    with create_detector("mediapipe", mesh=mesh) as det:
        for start in range(0, n, 30):
            faces = generate_synthetic_set(model, min(30, n - start), seed + start, off_model=True, image_size=size,
                                           yaw_range=(-BINS[-1], BINS[-1]))
            for face in faces:
                img = as_uint8_rgb(face.image)
                truth = ground_truth_mediapipe_points(model, face, emb)
                boxes = det.detect_boxes(img)
                if not boxes:
                    continue
                box = min(boxes, key=lambda b: np.hypot(*((b[0][:2] + b[0][2:]) / 2 - truth.mean(0))))[0]
                pts = np.full((len(passes), 478, 3), np.nan)
                t0 = time.perf_counter()
                for k, ((s, dx, dy), flip) in enumerate(passes):
                    p = mesh_in_crop(det, img, box, s, dx, dy, flip, mesh)
                    if p is not None:
                        pts[k] = p
                secs.append((time.perf_counter() - t0) / len(passes))
                if np.isnan(pts[0]).any():
                    continue
                out.append(pts)
                truths.append(truth)
                sizes.append(float(np.linalg.norm(np.ptp(truth, axis=0))))
                yaws.append(face.yaw_deg)
            print(f"  {start + min(30, n - start)} faces rendered", flush=True)
    return np.stack(out), np.stack(truths), np.array(sizes), np.array(yaws), float(np.mean(secs)), passes, mirror


def combine(pts: np.ndarray, ks: list[int], how: str) -> np.ndarray:
    """(N, 478, 3) the mean or median of passes `ks` (passes that found no face are skipped)."""
    sel = pts[:, ks]
    return np.nanmedian(sel, axis=1) if how == "median" else np.nanmean(sel, axis=1)


def debiased(res: np.ndarray, yaws: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Residuals (N, L, 2) minus a per-bin per-point median bias learned on the other half of the
    faces (faces turned left mirrored onto the right, as the error model does)."""
    r = res.copy()
    left = yaws < 0
    r[left] = r[left][:, mirror] * np.array([-1.0, 1.0])
    a = np.abs(yaws)
    half = np.arange(len(r)) % 2
    out = np.empty_like(r)
    for b in range(len(BINS) - 1):
        in_bin = (a >= BINS[b]) & (a <= BINS[b + 1])
        for h in (0, 1):
            test, train = in_bin & (half == h), in_bin & (half != h)
            if test.any():
                out[test] = r[test] - (np.median(r[train], axis=0) if train.any() else 0.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7000)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--mesh", default="v2", choices=("v2", "v1"), help="the detector's face mesh")
    args = parser.parse_args()
    t0 = time.perf_counter()
    pts, truth, sizes, yaws, sec, passes, mirror = collect(args.n, args.seed, args.size, args.mesh)
    plain = [k for k, (_, f) in enumerate(passes) if not f]
    variants = {
        "single crop (now)": ([0], "mean"),
        "flip mean": ([0, 1], "mean"),
        f"{len(plain)} crops mean": (plain, "mean"),
        f"{len(plain)} crops median": (plain, "median"),
        "flip + 2.4 plain median": ([0, 1, 4], "median"),
        "flip + 2.4 flip median": ([0, 1, 5], "median"),
        "flip + 1.7 plain median": ([0, 1, 2], "median"),
        "2.0, 2.4 + flips mean": ([0, 1, 4, 5], "mean"),
        "2.0, 2.4 + flips median": ([0, 1, 4, 5], "median"),
        "3 scales+flips mean": ([k for k, (c, _) in enumerate(passes) if c in CROPS[:3]], "mean"),
        "2 offsets+flips mean": ([k for k, (c, _) in enumerate(passes) if c in CROPS[3:]], "mean"),
        f"{len(passes)} crops+flips mean": (list(range(len(passes))), "mean"),
        f"{len(passes)} crops+flips median": (list(range(len(passes))), "median"),
    }
    skin = np.setdiff1d(np.arange(478), MEDIAPIPE_IRIS)
    a = np.abs(yaws)
    bins = [(a >= lo) & (a <= hi) for lo, hi in zip(BINS[:-1], BINS[1:])]
    print(f"{len(yaws)} of {args.n} faces (seed {args.seed}, {args.size} px); faces per |yaw| bin "
          + " ".join(str(int(b.sum())) for b in bins) + f"; one mesh pass {1000 * sec:.1f} ms")
    head = " ".join(f"{lo:>2.0f}-{hi:<2.0f}" for lo, hi in zip(BINS[:-1], BINS[1:]))
    print(f"{'RMS % of the face size':<26} {'all':>5} | {head} || de-biased: all | {head}")
    # how far the mirrored crop's points are from the plain crop's, RMS in face sizes
    apart = np.sqrt(((pts[:, 1, skin, :2] - pts[:, 0, skin, :2]) ** 2).sum(-1).mean(-1)) / sizes
    apart = np.where(np.isnan(apart), np.inf, apart)
    print("plain vs mirrored crop, RMS % of the face: percentiles 50/90/99/max "
          + " ".join(f"{100 * np.percentile(apart, q):.2f}" for q in (50, 90, 99, 100)))
    combined = {name: combine(pts, ks, how) for name, (ks, how) in variants.items()}
    for t in (0.02, 0.03, 0.04):
        combined[f"flip mean if apart < {100 * t:g} %"] = np.where((apart < t)[:, None, None], combined["flip mean"],
                                                                  pts[:, 0])
        variants[f"flip mean if apart < {100 * t:g} %"] = ([0, 1], "mean")
    for name, (ks, how) in variants.items():
        res = (combined[name][:, :, :2] - truth) / sizes[:, None, None]
        res = res[:, skin]
        rms = np.sqrt((res ** 2).sum(-1).mean(-1))
        deb = debiased(res, yaws, _skin_mirror(mirror, skin))
        drms = np.sqrt((deb ** 2).sum(-1).mean(-1))
        cells = " ".join(f"{100 * rms[b].mean():5.2f}" for b in bins)
        dcells = " ".join(f"{100 * drms[b].mean():5.2f}" for b in bins)
        print(f"{name:<26} {100 * rms.mean():5.2f} | {cells} || {100 * drms.mean():13.2f} | {dcells}  "
              f"({len(ks)} passes, {1000 * sec * len(ks):.0f} ms)")
    print(f"{time.perf_counter() - t0:.0f} s")


def _skin_mirror(mirror: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """The mirror map restricted to the non-iris points, as indices into `skin`."""
    pos = np.full(len(mirror), -1)
    pos[skin] = np.arange(len(skin))
    return pos[mirror[skin]]


if __name__ == "__main__":
    main()
