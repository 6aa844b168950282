"""Reconstruction speed and accuracy, fast against full mode, with the mean face as the baseline.

    python benchmarks/bench_reconstruct.py [--quick] [--n N]

Speed: ms per image of each mode on the astronaut photo (skimage.data.astronaut(), wall time of
`Reconstructor.reconstruct`, best of a few runs after one warm-up) and on the synthetic on-model set
(fit time only, from `rec.timings`). Accuracy: NoW error (mm) and landmark error (px) of each mode on
a synthetic on-model set generated here, beside the mean face ("nothing") and the model fitted to the
ground truth ("floor") scored in the same run. --quick: 3 faces, one timing run (< 90 s).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from skimage import data

from facerecon.evaluation.calibration import calibrate
from facerecon.evaluation.synthetic import generate_synthetic_set
from facerecon.harness.synthetic_eval import reconstruct_and_score, summarize_results
from facerecon.models import load_model
from facerecon.pipeline import MODES, Reconstructor


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 faces and one timing run, for CI")
    parser.add_argument("--n", type=int, help="synthetic faces (default 10, 3 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n = args.n or (3 if args.quick else 10)
    repeats = 1 if args.quick else 3
    t_start = time.perf_counter()

    model = load_model("ict")
    photo = data.astronaut().astype(np.float32) / 255.0
    faces = generate_synthetic_set(model, n, args.seed)
    with Reconstructor(model) as rec:
        photo_s = {}
        for mode in MODES:
            rec.reconstruct(photo, mode)  # warm-up: JIT compilation, the full fitter's set-up
            photo_s[mode] = best_of(repeats, lambda: rec.reconstruct(photo, mode))
        cal = calibrate(faces, rec.view)
        results = {mode: summarize_results(faces, reconstruct_and_score(faces, rec, mode), cal) for mode in MODES}

    fast, full = results["fast"], results["full"]
    print(f"reconstruction: fast vs full mode ({model.name}, head view), {n} synthetic on-model faces, "
          f"seed {args.seed}")
    print("speed (ms per image)                 fast      full   full/fast")
    print(f"  astronaut 512x512 (wall)       {photo_s['fast'] * 1e3:>8.0f}  {photo_s['full'] * 1e3:>8.0f}"
          f"  {photo_s['full'] / photo_s['fast']:>9.1f}x")
    print(f"  synthetic 256x256 (fit only)   {fast['seconds_per_image'] * 1e3:>8.0f}  "
          f"{full['seconds_per_image'] * 1e3:>8.0f}  {full['seconds_per_image'] / fast['seconds_per_image']:>9.1f}x")
    cal_all = full["calibration"]
    nothing = cal_all["nothing"]
    print(f"accuracy (NoW scan-to-mesh, mm; {fast['scored']}/{n} faces detected)")
    print(f"  {'':<22}{'median':>8}{'mean':>8}{'std':>8}{'mean/nothing':>14}{'gap closed':>12}{'lmk px':>8}")
    for label, e in (("nothing (mean face)", nothing), ("floor (fit to gt)", cal_all["floor"])):
        print(f"  {label:<22}{e['median']:>8.3f}{e['mean']:>8.3f}{e['std']:>8.3f}{e['mean'] / nothing['mean']:>14.2f}")
    for mode, r in results.items():
        e = r["error_mm"]
        print(f"  {mode + ' mode':<22}{e['median']:>8.3f}{e['mean']:>8.3f}{e['std']:>8.3f}"
              f"{e['mean'] / r['calibration']['nothing']['mean']:>14.2f}{100 * r['gap_fraction']['mean']:>11.0f}%"
              f"{r['landmark_error_px']:>8.2f}")
    print(f"  full/fast mean error: {full['error_mm']['mean'] / fast['error_mm']['mean']:.2f}")
    print(f"benchmark wall time: {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
