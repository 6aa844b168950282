"""Accuracy on held-out faces that do not share the fit's assumptions (issue #15), per |yaw| bin.

    python benchmarks/bench_accuracy.py [--n 60] [--seed 0] [--quick] [--ablation] [--fov-sweep]

The set is `facerecon.evaluation.heldout` (ICT faces deformed 2-4 mm RMS beyond the model, painted
albedo, point/area lights with cast shadows and specular, tone curve, sensor noise, JPEG, textured
backgrounds, FOV 15-70 deg, |yaw| balanced over 0-15, 15-30, 30-45, 45-60), 512 x 512 px.
Every row reconstructs the same faces; each is scored by the NoW protocol and as the fraction of
the gap from the mean face ("nothing") to the model fitted to the ground truth ("floor") that it
closes, both baselines scored in the same run. Rows: fast and full with detected landmarks, the
same with the true focal length given ("known focal"), the same with the ground-truth MediaPipe
points ("ground-truth landmarks"); `--ablation` adds full-mode config variants (ABLATIONS: one line
each). `--fov-sweep` renders the same faces at 15, 30, 45, 60 and 70 deg horizontal FOV instead and
reports the median error of fast and full at each. The issue's targets are printed with met / NOT MET.
--quick: 8 faces (2 per bin), 4 in the FOV sweep. --mode fast: only the fast rows.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from facerecon.evaluation.calibration import calibrate
from facerecon.evaluation.heldout import HELDOUT_YAW_BINS, HeldoutScene, generate_heldout_set, horizontal_fov_deg
from facerecon.harness.synthetic_eval import reconstruct_and_score, summarize_results
from facerecon.landmarks import create_detector
from facerecon.models import load_model
from facerecon.pipeline import PipelineConfig, Reconstructor

IMAGE_SIZE = 512
SWEEP_FOVS_DEG = (15.0, 30.0, 45.0, 60.0, 70.0)
TARGET_FAST_GAP, TARGET_FAST_BIN_GAP = 0.20, 0.0
TARGET_FULL_GAP, TARGET_FULL_BIN_GAP = 0.40, 0.15
TARGET_SWEEP_SPREAD = 0.10  # (max - min) / min of the median error across the sweep


def with_terms(config: PipelineConfig, **weights: float) -> PipelineConfig:
    """`config` with some photometric-fit term weights replaced (`PhotometricFitConfig.terms`)."""
    photometric = config.photometric
    return dataclasses.replace(config, photometric=dataclasses.replace(
        photometric, terms={**photometric.terms, **weights}))


def with_landmark_terms(config: PipelineConfig, **weights: float) -> PipelineConfig:
    """`config` with some fast-fit term weights replaced (`LandmarkFitConfig.terms`)."""
    landmark = config.landmark
    return dataclasses.replace(config, landmark=dataclasses.replace(landmark, terms={**landmark.terms, **weights}))


def with_albedo(config: PipelineConfig, **priors: float) -> PipelineConfig:
    """`config` with some albedo priors replaced (`PhotometricFitConfig.albedo`)."""
    photometric = config.photometric
    return dataclasses.replace(config, photometric=dataclasses.replace(
        photometric, albedo=dataclasses.replace(photometric.albedo, **priors)))


def with_correlated(config: PipelineConfig, inflation: float) -> PipelineConfig:
    """`config` with the correlated landmark noise on, its stds inflated by `inflation`."""
    return dataclasses.replace(config, correlated_noise=True, correlated_inflation=inflation)


def find_field(config, name: str, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """Path of field names to a field `name` anywhere in a tree of config dataclasses."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == name:
            return path + (f.name,)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            found = find_field(value, name, path + (f.name,))
            if found:
                return found
    return None


def with_field(name: str, value) -> Callable[[PipelineConfig], PipelineConfig | None]:
    """A config variant setting the field `name` (found anywhere in the config tree) to `value`;
    it gives None (row not available) when no such field exists."""
    def variant(config):
        path = find_field(config, name)
        return None if path is None else _replace_at(config, path, value)
    return variant


def _replace_at(config, path: tuple[str, ...], value):
    if len(path) == 1:
        return dataclasses.replace(config, **{path[0]: value})
    return dataclasses.replace(config, **{path[0]: _replace_at(getattr(config, path[0]), path[1:], value)})


@dataclass
class Row:
    """One benchmark row: a mode, where the landmarks come from, whether the true focal length is
    given, a config variant (None: the default config; a variant may return None = unavailable), and
    the detector's face mesh (None: the default; "v1" the legacy one, with its own error model)."""

    label: str
    mode: str
    landmarks: str = "detector"
    known_focal: bool = False
    config: Callable[[PipelineConfig], PipelineConfig | None] | None = None
    mesh: str | None = None


ROWS = [
    Row("fast", "fast"),
    Row("full", "full"),
    Row("fast, known focal", "fast", known_focal=True),
    Row("full, known focal", "full", known_focal=True),
    Row("fast, ground-truth landmarks", "fast", landmarks="gt"),
    Row("full, ground-truth landmarks", "full", landmarks="gt"),
]
# full-mode variants for --ablation: add a row here (label, mode, config variant)
ABLATIONS = [
    Row("fast, legacy face mesh (v1)", "fast", mesh="v1"),
    Row("full, legacy face mesh (v1)", "full", mesh="v1"),
    Row("fast, no landmark error model", "fast", config=with_field("landmark_error_model", False)),
    Row("fast, no outline term", "fast", config=lambda c: with_landmark_terms(c, outline=0.0)),
    Row("full, no outline term", "full", config=lambda c: with_landmark_terms(c, outline=0.0)),
    # the photo pipeline's expression prior (3) at LandmarkFitConfig's own default, which the tracker keeps
    Row("fast, expression prior 0.3", "fast", config=lambda c: with_landmark_terms(c, expression_prior=0.3)),
    Row("full, expression prior 0.3", "full", config=lambda c: with_landmark_terms(c, expression_prior=0.3)),
    Row("fast, correlated noise", "fast", config=with_field("correlated_noise", True)),
    Row("full, correlated noise", "full", config=with_field("correlated_noise", True)),
    Row("fast, correlated noise x2", "fast", config=lambda c: with_correlated(c, 2.0)),
    Row("fast, correlated noise x8", "fast", config=lambda c: with_correlated(c, 8.0)),
    Row("full, no landmark error model", "full", config=with_field("landmark_error_model", False)),
    Row("full, no photometric term", "full", config=lambda c: with_terms(c, photometric=0.0)),
    # the full fitter with neither image term: what its optimiser and priors give on the landmarks alone,
    # the baseline the photometric and silhouette rows add to
    Row("full, landmarks only", "full", config=lambda c: with_terms(c, photometric=0.0, silhouette=0.0)),
    Row("full, no silhouette term", "full", config=lambda c: with_terms(c, silhouette=0.0)),
    Row("full, silhouette at every yaw", "full", config=with_field("silhouette_min_yaw_deg", 0.0)),
    Row("full, no albedo symmetry", "full", config=lambda c: with_albedo(c, symmetry=0.0)),
    Row("full + corrective", "full", config=with_field("corrective", True)),
    # the photometric fit's schedule before 2026-12-06 (PhotometricFitConfig.levels: one level of 12 at 224 px since)
    Row("full, former schedule (112 px x 16, 224 px x 10)", "full",
        config=with_field("levels", ((112, 16), (224, 10)))),
]


class KnownFocal:
    """A Reconstructor whose `reconstruct(image, mode)` passes the true focal length of the face
    the image belongs to (looked up by the image object), for reconstruct_and_score."""

    def __init__(self, inner: Reconstructor, faces) -> None:
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_focal", {id(f.image): f.focal for f in faces})

    def reconstruct(self, image, mode: str = "fast"):
        return self._inner.reconstruct(image, mode, focal=self._focal[id(image)])

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def __setattr__(self, name, value) -> None:
        setattr(self._inner, name, value)


def run_rows(faces, model, rows: list[Row]) -> dict[str, dict | None]:
    """Reconstruct and score `faces` for every row (one detector and one model for all of them)."""
    base = PipelineConfig()
    results: dict[str, dict | None] = {}
    with Reconstructor(model, config=base) as first:
        cal = calibrate(faces, first.view)
        others: dict[int, Reconstructor] = {}
        detectors = {getattr(first.detector, "mesh", None): first.detector}
        for row in rows:
            config = base if row.config is None else row.config(base)
            if config is None:
                results[row.label] = None
                continue
            if row.mesh is not None and row.mesh not in detectors:
                detectors[row.mesh] = create_detector("mediapipe", mesh=row.mesh)
            detector = first.detector if row.mesh is None else detectors[row.mesh]
            if config is base and detector is first.detector:
                rec = first
            else:
                rec = others.setdefault(id(row), Reconstructor(model, config=config, detector=detector))
            runner = KnownFocal(rec, faces) if row.known_focal else rec
            scored = reconstruct_and_score(faces, runner, row.mode, row.landmarks)
            results[row.label] = summarize_results(faces, scored, cal)
        for detector in detectors.values():
            if detector is not first.detector:
                detector.close()
    return results


def _pct(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{100 * x:.0f}%"


def _num(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:.3f}"


def _bins(result: dict) -> list[dict]:
    return result["per_yaw_bin"][: len(HELDOUT_YAW_BINS)]


def print_table(faces, results: dict[str, dict | None]) -> None:
    n = len(faces)
    bins = [f"[{lo:g},{hi:g}{']' if k == len(HELDOUT_YAW_BINS) - 1 else ')'}"
            for k, (lo, hi) in enumerate(HELDOUT_YAW_BINS)]
    print("NoW scan-to-mesh error (mm), similarity alignment + refinement; gap = (nothing - row) / (nothing - floor);")
    print("per |yaw| bin: mean error (gap closed)")
    print(f"{'':<30}{'found':>7}{'median':>8}{'mean':>7}{'gap':>6}" + "".join(f"{b:>15}" for b in bins)
          + f"{'s/img':>7}")
    first = next(r for r in results.values() if r is not None)
    counts = [b["faces"] for b in _bins(first)]
    print(f"{'faces per |yaw| bin':<58}" + "".join(f"{c:>15d}" for c in counts))
    cal = first["calibration"]
    for label, key in (("nothing (mean face)", "nothing"), ("floor (model fit to gt)", "floor")):
        e = cal[key]
        print(f"{label:<30}{first['scored']:>7d}{e['median']:>8.3f}{e['mean']:>7.3f}{'':>6}"
              + "".join(f"{_num(v):>15}" for v in cal[f"{key}_per_yaw_bin"][: len(HELDOUT_YAW_BINS)]))
    for label, r in results.items():
        if r is None:
            print(f"{label:<30}not available: no such field in facerecon's config")
            continue
        e = r["error_mm"]
        cells = "".join(f"{_num(b['mean']) + (' (' + _pct(b['gap_fraction']) + ')' if b['faces'] else ''):>15}"
                        for b in _bins(r))
        seconds = r["seconds_per_image"] + (r["detect_seconds"] if np.isfinite(r["detect_seconds"]) else 0.0)
        found = f"{r['scored']}/{n}"
        print(f"{label:<30}{found:>7}{e['median']:>8.3f}{e['mean']:>7.3f}"
              f"{_pct(r['gap_fraction']['mean']):>6}{cells}{seconds:>7.2f}")
        if r["scored"] < n:
            c = r["calibration"]
            print(f"{'  its faces: nothing / floor':<30}{r['scored']:>7d}{c['nothing']['median']:>8.3f}"
                  f"{c['nothing']['mean']:>7.3f}  /  {c['floor']['median']:.3f} {c['floor']['mean']:.3f}")


def targets(results: dict[str, dict | None]) -> list[tuple[str, str, bool]]:
    """(what, measured, met) for each of the issue's targets the rows measure."""
    out = []
    for label, overall, per_bin in (("fast", TARGET_FAST_GAP, TARGET_FAST_BIN_GAP),
                                    ("full", TARGET_FULL_GAP, TARGET_FULL_BIN_GAP)):
        r = results.get(label)
        if r is None:
            continue
        g = r["gap_fraction"]["mean"]
        out.append((f"{label} closes >= {overall:.0%} of the gap", _pct(g), bool(g >= overall)))
        gaps = [b["gap_fraction"] for b in _bins(r) if b["faces"]]
        worst = min(gaps) if gaps else float("nan")
        out.append((f"{label} closes >= {per_bin:.0%} in every |yaw| bin", f"min {_pct(worst)}",
                    bool(gaps) and worst >= per_bin))
        known = results.get(f"{label}, known focal")
        if known is not None:
            k = known["gap_fraction"]["mean"]
            out.append((f"{label}: known focal >= estimated focal", f"{_pct(k)} vs {_pct(g)}", bool(k >= g)))
    return out


def print_targets(checks: list[tuple[str, str, bool]]) -> None:
    print(f"\n{'targets (issue #15, detected landmarks)':<50}{'measured':>16}")
    for text, measured, ok in checks:
        print(f"  {text:<48}{measured:>16}   {'met' if ok else 'NOT MET'}")


def fov_sweep(model, n: int, seed: int) -> list[tuple[str, str, bool]]:
    """The same faces at each of SWEEP_FOVS_DEG: median error of fast and full, detected landmarks."""
    scene = HeldoutScene(model)
    print(f"FOV sweep: the same {n} held-out faces (seed {seed}, {IMAGE_SIZE} px) at each horizontal FOV; "
          "NoW median error (mm), detected landmarks")
    print(f"{'FOV (deg)':>10}{'found':>7}{'nothing':>9}{'floor':>8}{'fast':>8}{'full':>8}{'fast gap':>10}{'full gap':>10}")
    medians: dict[str, list[float]] = {"fast": [], "full": []}
    for fov in SWEEP_FOVS_DEG:
        faces = generate_heldout_set(model, n, seed, IMAGE_SIZE, fov_deg=fov, scene=scene)
        results = run_rows(faces, model, [Row("fast", "fast"), Row("full", "full")])
        fast, full = results["fast"], results["full"]
        c = fast["calibration"]
        for mode, r in (("fast", fast), ("full", full)):
            medians[mode].append(r["error_mm"]["median"])
        found = f"{fast['scored']}/{n}"
        print(f"{fov:>10.0f}{found:>7}{c['nothing']['median']:>9.3f}{c['floor']['median']:>8.3f}"
              f"{fast['error_mm']['median']:>8.3f}{full['error_mm']['median']:>8.3f}"
              f"{_pct(fast['gap_fraction']['mean']):>10}{_pct(full['gap_fraction']['mean']):>10}")
    checks = []
    for mode, values in medians.items():
        v = np.asarray(values)
        spread = float((np.nanmax(v) - np.nanmin(v)) / np.nanmin(v)) if np.isfinite(v).any() else float("nan")
        checks.append((f"{mode}: median error varies < {TARGET_SWEEP_SPREAD:.0%} over FOV", _pct(spread),
                       bool(spread < TARGET_SWEEP_SPREAD)))
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, help="faces (default 60; 8 with --quick; the FOV sweep 8, 4 with --quick)")
    parser.add_argument("--quick", action="store_true", help="8 faces (2 per |yaw| bin), for CI-like runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ablation", action="store_true", help="also run the full-mode config variants")
    parser.add_argument("--fov-sweep", action="store_true", help="the same faces at 15-70 deg FOV instead")
    parser.add_argument("--mode", choices=("fast", "full"), default=None,
                        help="only the rows of this mode (a quicker look while developing)")
    parser.add_argument("--rows", default=None,
                        help="only the rows with these labels, separated by ';' (e.g. 'fast;full, known focal')")
    args = parser.parse_args()
    t_start = time.perf_counter()
    model = load_model("ict")

    if args.fov_sweep:
        n = args.n or (4 if args.quick else 8)
        print_targets(fov_sweep(model, n, args.seed))
        print(f"benchmark wall time: {time.perf_counter() - t_start:.0f} s")
        return

    n = args.n or (8 if args.quick else 60)
    t = time.perf_counter()
    faces = generate_heldout_set(model, n, args.seed, IMAGE_SIZE)
    t_gen = time.perf_counter() - t
    rows = [r for r in ROWS + (ABLATIONS if args.ablation else []) if args.mode in (None, r.mode)]
    if args.rows:
        wanted = {w.strip() for w in args.rows.split(";")}
        rows = [r for r in rows if r.label in wanted]
    results = run_rows(faces, model, rows)

    fovs = [horizontal_fov_deg(f) for f in faces]
    disp = [f.displacement_rms_mm for f in faces]
    print(f"issue #15 held-out set: {n} faces (seed {args.seed}, {IMAGE_SIZE} px, generated in {t_gen:.0f} s), "
          f"FOV {min(fovs):.0f}-{max(fovs):.0f} deg, deformation RMS {min(disp):.2f}-{max(disp):.2f} mm, "
          f"|yaw| {min(abs(f.yaw_deg) for f in faces):.0f}-{max(abs(f.yaw_deg) for f in faces):.0f} deg")
    print_table(faces, results)
    print_targets(targets(results))
    print(f"benchmark wall time: {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
