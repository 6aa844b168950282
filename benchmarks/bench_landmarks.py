#!/usr/bin/env python
"""Landmark detection speed on scikit-image's astronaut photo (512x512), per backend.

Reports, in ms per image: the first call (graph creation + first detection) and the steady state
(median), for `detect` (face detector + face mesh on the face crop) and, as the baseline measured
in the same run, MediaPipe's face mesh alone on the whole image (`detect_full_image`) and the face
detector alone. The same on a 2000x2000 canvas with the astronaut pasted small, where the
full-image mesh finds no face (why `detect` tiles and crops).

    python benchmarks/bench_landmarks.py [--quick]
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


if __name__ == "__main__":
    raise SystemExit(main())
