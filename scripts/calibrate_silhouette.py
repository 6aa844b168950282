"""Calibrate the full fit's silhouette term weight on TRAINING renders (issue #15, step 5).

    python scripts/calibrate_silhouette.py [--n 48] [--seed 9100] [--weights 0,300,1000,3000] [--min-yaw 0]

The silhouette term (`fitting.silhouette`, ReDA-style: the rendered face's outline against
MediaPipe's person segmentation where the face meets the background) is registered with weight 0
until calibrated. This prints, for each weight, the full mode's NoW gap closed overall and per |yaw|
bin and the median fit time, on off-model faces from the project's generator (cluttered random
backgrounds) with a seed no benchmark uses; the held-out benchmark (`benchmarks/bench_accuracy.py`)
is never used here.
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


def with_silhouette(config: PipelineConfig, weight: float, min_yaw: float) -> PipelineConfig:
    terms = dict(config.photometric.terms, silhouette=weight)
    return dataclasses.replace(config, silhouette_min_yaw_deg=min_yaw,
                               photometric=dataclasses.replace(config.photometric, terms=terms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--seed", type=int, default=9100)
    parser.add_argument("--weights", default="0,300,1000,3000")
    parser.add_argument("--min-yaw", type=float, default=0.0, help="PipelineConfig.silhouette_min_yaw_deg")
    args = parser.parse_args()
    model = load_model("ict")
    faces = generate_synthetic_set(model, args.n, args.seed, off_model=True, image_size=320)
    with Reconstructor(model) as first:
        cal = calibrate(faces, first.view)
        for weight in [float(w) for w in args.weights.split(",")]:
            config = with_silhouette(PipelineConfig(), weight, args.min_yaw)
            with Reconstructor(model, config=config, detector=first.detector) as rec:
                scored = reconstruct_and_score(faces, rec, "full")
            r = summarize_results(faces, scored, cal)
            fit_s = np.median([s.fit_s for s in scored if s.distances is not None])
            bins = " ".join(f"{100 * b['gap_fraction']:5.1f}%" if b["faces"] else "    -" for b in r["per_yaw_bin"])
            print(f"silhouette {weight:>6g} from |yaw| {args.min_yaw:g}: gap {100 * r['gap_fraction']['mean']:5.1f} %  "
                  f"mean {r['error_mm']['mean']:.4f} mm  fit {fit_s:.2f} s  gap per |yaw| bin {bins}", flush=True)


if __name__ == "__main__":
    main()
