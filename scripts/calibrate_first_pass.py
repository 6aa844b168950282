"""Choose the fast fit's first-pass schedule on TRAINING renders (issue #15 speed; PipelineConfig.first_pass_*).

    python scripts/calibrate_first_pass.py [--n 48] [--seed 9100]

With the landmark error model, the fast fit runs twice: the first pass only places the face (its
yaw picks the error model's bin, its pose which points are self-occluded) and starts the second.
This prints, for several first-pass schedules (identity modes, iterations, outline updates), the NoW
gap closed (overall and per |yaw| bin) and the median fit time per face, on off-model faces from the
project's generator with a seed no benchmark uses. The held-out benchmark is never used here.
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from facerecon.evaluation.calibration import calibrate
from facerecon.evaluation.synthetic import generate_synthetic_set
from facerecon.harness.synthetic_eval import reconstruct_and_score, summarize_results
from facerecon.models import load_model
from facerecon.pipeline import PipelineConfig, Reconstructor

FULL = dict(first_pass_identity=None, first_pass_iterations=None, first_pass_sliding_updates=None)
CELLS = [
    ("full first pass", FULL),
    ("20 modes", dict(FULL, first_pass_identity=20)),
    ("no identity", dict(FULL, first_pass_identity=0)),
    ("20 modes, 6 it, 2 outline", dict(first_pass_identity=20, first_pass_iterations=6, first_pass_sliding_updates=2)),
    ("20 modes, 4 it, 1 outline", dict(first_pass_identity=20, first_pass_iterations=4, first_pass_sliding_updates=1)),
    ("10 modes, 5 it, 2 outline", dict(first_pass_identity=10, first_pass_iterations=5, first_pass_sliding_updates=2)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--seed", type=int, default=9100)
    args = parser.parse_args()
    model = load_model("ict")
    faces = generate_synthetic_set(model, args.n, args.seed, off_model=True, image_size=320)
    with Reconstructor(model) as first:
        cal = calibrate(faces, first.view)
        for label, changes in CELLS:
            rec = Reconstructor(model, config=dataclasses.replace(PipelineConfig(), **changes), detector=first.detector)
            scored = reconstruct_and_score(faces, rec, "fast")
            r = summarize_results(faces, scored, cal)
            fit_ms = 1e3 * np.median([s.fit_s for s in scored if s.distances is not None])
            bins = " ".join(f"{100 * b['gap_fraction']:5.1f}%" if b["faces"] else "    -" for b in r["per_yaw_bin"])
            print(f"{label:<27} gap {100 * r['gap_fraction']['mean']:5.1f} %  mean {r['error_mm']['mean']:.4f} mm  "
                  f"fit {fit_ms:5.1f} ms  gap per |yaw| bin {bins}", flush=True)


if __name__ == "__main__":
    main()
