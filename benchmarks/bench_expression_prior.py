"""Does MediaPipe's blendshape network help the fast fit? (issue #15, step 4)

    python benchmarks/bench_expression_prior.py [--set offmodel|heldout] [--n 60] [--seed 0]
                                                [--weights 1,3,10,30] [--quick]

One synthetic set with known sparse expressions (`offmodel`: the project's renderer, surface 1-2 mm
off the model, yaw +-60; `heldout`: evaluation.heldout's painted textures and photographic lighting,
deformations beyond ICT, 512 px, |yaw| balanced over the bins) is
fitted by the pipeline's fast fit (MediaPipe points, the same landmark weights, and the landmark
error model's second pass when its data file is packaged) in several variants on the same detections:
- baseline: today's fit (expression prior toward 0, start at the neutral face);
- init: the fit starts from the network's expression (pose from the fitter's own initial estimate);
- init + prior w: and the `expression_to_blendshapes` term pulls toward it with weight w;
- prior w, no init: the term alone.
Rows: expression error (MAE of the 53 ICT weights against the truth, and over the truly active ones),
identity/shape NoW error (mm) with the fraction of the mean-face -> floor gap it closes, and both
per |yaw| bin. The network's estimate itself and its left/right-swapped version are printed as a check
of the side convention. Faces where MediaPipe or the network finds no face are left out of every row.
--quick: 6 faces, weights 10.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from facerecon.errors import ModelError, NoFaceError
from facerecon.evaluation.calibration import calibrate, gap_fraction, score_vertices
from facerecon.evaluation.now import summarize
from facerecon.evaluation.heldout import generate_heldout_set
from facerecon.evaluation.synthetic import generate_synthetic_set
from facerecon.fitting.expression_prior import TERM, blendshapes_to_expression
from facerecon.harness.synthetic_eval import YAW_BINS, yaw_bin
from facerecon.landmarks.error_model import LandmarkErrorModel
from facerecon.landmarks.face_landmarker import BlendshapeEstimator
from facerecon.models import load_model
from facerecon.pipeline import PipelineConfig, Reconstructor

BINS = YAW_BINS[:4]  # the off-model set stays within +-60


def fast_fit(rec: Reconstructor, points, size, weights, cfg, init_expression=None, extras=None):
    """The pipeline's fast fit (Reconstructor._fit_face), optionally started from an expression."""
    init = None
    if init_expression is not None:
        # the fitter's own initial pose (0 iterations), with the network's expression
        pose = rec.fast_fitter.fit(points, size, weights, dataclasses.replace(cfg, iterations=0))
        init = pose.state.replace(expression=init_expression[None])
    fast = rec.fast_fitter.fit(points, size, weights, cfg, init=init, extras=extras)
    model = rec._error_model()
    if model is not None:
        p2, w2 = rec._apply_error_model(model, points, weights, fast)
        fast = rec.fast_fitter.fit(p2, size, w2, cfg, init=fast, extras=extras)
    return fast


def swap_sides(names, values):
    """Expression weights with every _L and _R exchanged (a mirrored side convention)."""
    index = {n: k for k, n in enumerate(names)}
    out = values.copy()
    for k, n in enumerate(names):
        for a, b in (("_L", "_R"), ("_R", "_L")):
            if n.endswith(a) and n[:-2] + b in index:
                out[k] = values[index[n[:-2] + b]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("offmodel", "heldout"), default="offmodel")
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", default="1,3,10,30")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 6 if args.quick else args.n
    prior_weights = [10.0] if args.quick else [float(w) for w in args.weights.split(",")]

    try:
        LandmarkErrorModel.load()
        use_error_model = True
    except ModelError:
        use_error_model = False
    model = load_model("ict")
    t0 = time.perf_counter()
    faces = (generate_heldout_set(model, n, args.seed) if args.set == "heldout"
             else generate_synthetic_set(model, n, args.seed, off_model=True))
    rec = Reconstructor(model, config=PipelineConfig(landmark_error_model=use_error_model))
    view = rec.view
    names = list(view.expression_names)
    assert names == list(model.expression_names)
    cal = calibrate(faces, view)
    print(f"{n} {args.set} faces (seed {args.seed}), generated and calibrated in {time.perf_counter() - t0:.0f} s; "
          f"landmark error model pass: {'on' if use_error_model else 'off (data file missing)'}")

    base_cfg = rec.config.landmark
    variants = {"baseline": (0.0, False), "init": (0.0, True)}
    for w in prior_weights:
        variants[f"init + prior {w:g}"] = (w, True)
    variants[f"prior {prior_weights[-1]:g}, no init"] = (prior_weights[-1], False)

    rows = {k: {"expr": [], "active": [], "dist": [], "face": []} for k in
            ["network alone", "network, sides swapped", "zero expression", *variants]}
    skipped, net_s = [], []
    with BlendshapeEstimator() as estimator:
        for face in faces:
            found = rec.detector.detect(face.image)
            if not found:
                skipped.append(face.name)
                continue
            lm = found[0]
            t = time.perf_counter()
            try:
                shapes = estimator.estimate(face.image, box=lm.box)
            except NoFaceError:
                skipped.append(face.name)
                continue
            net_s.append(time.perf_counter() - t)
            target = blendshapes_to_expression(names, shapes.scores)
            truth = face.truth.params.expression[0]
            active = truth > 0.05
            for label, e in (("network alone", target), ("network, sides swapped", swap_sides(names, target)),
                             ("zero expression", np.zeros_like(target))):
                rows[label]["expr"].append(np.abs(e - truth).mean())
                rows[label]["active"].append(np.abs(e - truth)[active].mean() if active.any() else np.nan)
                rows[label]["face"].append(face)
            size = face.image.shape[:2]
            for label, (w, use_init) in variants.items():
                cfg = dataclasses.replace(base_cfg, terms={**base_cfg.terms, TERM: w})
                fit = fast_fit(rec, lm.points, size, rec.landmark_weights.copy(), cfg,
                               target if use_init else None, {"blendshapes": target} if w else None)
                p = fit.state.params
                e = p.expression[0]
                with torch.no_grad():
                    verts = view.vertices(torch.as_tensor(p.identity, dtype=view.dtype),
                                          torch.as_tensor(p.expression, dtype=view.dtype))[0].double().numpy()
                r = rows[label]
                r["expr"].append(np.abs(e - truth).mean())
                r["active"].append(np.abs(e - truth)[active].mean() if active.any() else np.nan)
                r["dist"].append(score_vertices(face, view, verts).distances)
                r["face"].append(face)
    rec.close()

    used = rows["baseline"]["face"]
    print(f"scored {len(used)} faces; skipped (no face found): {skipped or 'none'}; "
          f"network {1000 * np.median(net_s):.0f} ms per face (median)")
    bin_of = [yaw_bin(f.yaw_deg) for f in used]
    counts = [bin_of.count(k) for k in range(len(BINS))]
    nothing = summarize([cal.nothing[f.name] for f in used])
    floor = summarize([cal.floor[f.name] for f in used])
    nothing_bin = [summarize([cal.nothing[f.name] for f, b in zip(used, bin_of) if b == k])["mean"]
                   if counts[k] else np.nan for k in range(len(BINS))]
    floor_bin = [summarize([cal.floor[f.name] for f, b in zip(used, bin_of) if b == k])["mean"]
                 if counts[k] else np.nan for k in range(len(BINS))]
    labels = [f"[{lo:g},{hi:g})" for lo, hi in BINS]

    print("\nexpression error: MAE of the 53 ICT weights (all | truly active > 0.05), overall and per |yaw| bin")
    print(f"{'':<26}{'all':>7}{'active':>8}" + "".join(f"{b:>10}" for b in labels))
    print(f"{'faces':<26}{len(used):>7}{'':>8}" + "".join(f"{c:>10}" for c in counts))
    for label, r in rows.items():
        expr = np.array(r["expr"])
        cells = "".join(f"{expr[np.array(bin_of) == k].mean():>10.4f}" if counts[k] else f"{'-':>10}"
                        for k in range(len(BINS)))
        print(f"{label:<26}{expr.mean():>7.4f}{np.nanmean(r['active']):>8.3f}{cells}")

    print("\nshape: NoW error (mm, pooled mean) and the gap closed, (nothing - result) / (nothing - floor)")
    print(f"{'':<26}{'mean':>7}{'gap':>8}" + "".join(f"{b:>14}" for b in labels))
    print(f"{'nothing (mean face)':<26}{nothing['mean']:>7.3f}{'':>8}" + "".join(f"{v:>14.3f}" for v in nothing_bin))
    print(f"{'floor (fit to gt)':<26}{floor['mean']:>7.3f}{'':>8}" + "".join(f"{v:>14.3f}" for v in floor_bin))
    for label in variants:
        d = rows[label]["dist"]
        err = summarize(d)
        cells = ""
        for k in range(len(BINS)):
            if not counts[k]:
                cells += f"{'-':>14}"
                continue
            m = summarize([x for x, b in zip(d, bin_of) if b == k])["mean"]
            cells += f"{m:>7.3f} ({100 * gap_fraction(m, nothing_bin[k], floor_bin[k]):>3.0f}%)"
        print(f"{label:<26}{err['mean']:>7.3f}{100 * gap_fraction(err, nothing, floor):>7.1f}%{cells}")


if __name__ == "__main__":
    main()
