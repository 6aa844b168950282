"""`facerecon eval now --pred DIR --gt DIR`: the NoW error of a folder of predictions.

Folder layout, paired by NAME:
    pred DIR:  NAME.obj (or .ply)  predicted mesh
               NAME.txt, NAME.npy, NAME_lmks.npy or NAME_lmks.txt   7 NoW landmarks (7, 3)
    gt DIR:    NAME.obj or NAME.ply  ground-truth scan (its vertices are measured), mm
               NAME_lmks.txt, NAME_lmks.npy or NAME_lmks.pp   7 NoW landmarks (7, 3), mm
The 7 landmarks are, in order, the 68-point landmarks 36, 39, 42, 45, 33, 48, 54 (see `now`).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..errors import FaceReconError, ImageError, UsageError
from ..evaluation.files import MESH_SUFFIXES, read_landmarks, read_mesh
from ..evaluation.now import now_errors, summarize

PRED_LANDMARK_NAMES = ("{}.txt", "{}.npy", "{}_lmks.npy", "{}_lmks.txt")
GT_LANDMARK_NAMES = ("{}_lmks.txt", "{}_lmks.npy", "{}_lmks.pp")
_MAX_LISTED = 10


def eval_now_command(
    pred_dir: str | os.PathLike, gt_dir: str | os.PathLike, as_json: bool, metrical: bool = False
) -> int:
    """Print the NoW errors (per scan and pooled) of the predictions in pred_dir; return the exit code.

    Args:
        pred_dir: folder of predicted meshes and their 7 landmarks.
        gt_dir: folder of ground-truth scans and their 7 landmarks.
        as_json: print JSON instead of a table.
        metrical: the metrical variant (no scale estimated; predictions must be in mm).

    Returns:
        0, or the typed error's exit code (4 for missing or unreadable files) after a one-line
        message on stderr.
    """
    try:
        report = evaluate_now_folder(pred_dir, gt_dir, metrical=metrical)
    except FaceReconError as err:
        print(f"facerecon eval now: error: {err}", file=sys.stderr)
        return err.exit_code
    print(json.dumps(report, indent=2) if as_json else format_now_table(report))
    return 0


def evaluate_now_folder(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike, metrical: bool = False) -> dict:
    """NoW errors of every NAME in pred_dir against gt_dir.

    Returns:
        {"protocol", "metrical", "unit", "scans": {NAME: {median, mean, std, points}},
         "all": {median, mean, std, points}} with all points of all scans pooled in "all".
    """
    pairs = _pair_files(Path(pred_dir), Path(gt_dir))
    scans, pooled = {}, []
    for name, (pred_mesh, pred_lmks, gt_mesh, gt_lmks) in pairs.items():
        vertices, triangles = read_mesh(pred_mesh)
        if len(triangles) == 0:
            raise ImageError(f"{pred_mesh}: the predicted mesh has no faces")
        scan_points, _ = read_mesh(gt_mesh)
        try:
            result = now_errors(
                vertices, triangles, read_landmarks(pred_lmks, 7),
                scan_points, read_landmarks(gt_lmks, 7), scale=not metrical,
            )
        except UsageError as err:
            raise ImageError(f"{name}: cannot evaluate: {err}") from None
        scans[name] = {**summarize([result.distances]), "points": int(result.distances.size)}
        pooled.append(result.distances)
    return {
        "protocol": "NoW",
        "metrical": metrical,
        "unit": "mm",
        "scans": scans,
        "all": {**summarize(pooled), "points": int(sum(d.size for d in pooled))},
    }


def format_now_table(report: dict) -> str:
    """The report of `evaluate_now_folder` as a fixed-width text table."""
    alignment = "rigid (metrical)" if report["metrical"] else "similarity"
    title = f"NoW scan-to-mesh error (mm), {alignment} landmark alignment + refinement"
    width = max([len(n) for n in report["scans"]] + [len("all (pooled)")])
    lines = [title, f"{'name':<{width}}  {'points':>8}  {'median':>8}  {'mean':>8}  {'std':>8}"]
    rows = list(report["scans"].items()) + [("all (pooled)", report["all"])]
    for k, (name, s) in enumerate(rows):
        if k == len(rows) - 1:
            lines.append("-" * len(lines[1]))
        lines.append(f"{name:<{width}}  {s['points']:>8d}  {s['median']:>8.4f}  {s['mean']:>8.4f}  {s['std']:>8.4f}")
    return "\n".join(lines)


def _pair_files(pred_dir: Path, gt_dir: Path) -> dict[str, tuple[Path, Path, Path, Path]]:
    """NAME -> (pred mesh, pred landmarks, gt scan, gt landmarks); ImageError listing what is missing."""
    for label, folder in (("prediction", pred_dir), ("ground-truth", gt_dir)):
        if not folder.is_dir():
            raise ImageError(f"{label} folder not found: {folder}")
    pred_meshes, gt_meshes = _meshes_by_name(pred_dir), _meshes_by_name(gt_dir)
    if not pred_meshes:
        raise ImageError(f"no predicted meshes (NAME.obj or NAME.ply) in {pred_dir}")
    problems = []
    problems += [f"no ground-truth scan {name}.obj/.ply in {gt_dir}" for name in pred_meshes if name not in gt_meshes]
    problems += [f"no prediction {name}.obj in {pred_dir}" for name in gt_meshes if name not in pred_meshes]
    pairs = {}
    for name in sorted(set(pred_meshes) & set(gt_meshes)):
        pred_lmks = _first_existing(pred_dir, PRED_LANDMARK_NAMES, name)
        gt_lmks = _first_existing(gt_dir, GT_LANDMARK_NAMES, name)
        if pred_lmks is None:
            problems.append(f"no predicted landmarks for {name} in {pred_dir} (" + " or ".join(
                p.format(name) for p in PRED_LANDMARK_NAMES) + ")")
        if gt_lmks is None:
            problems.append(f"no scan landmarks for {name} in {gt_dir} (" + " or ".join(
                p.format(name) for p in GT_LANDMARK_NAMES) + ")")
        pairs[name] = (pred_meshes[name], pred_lmks, gt_meshes[name], gt_lmks)
    if problems:
        more = len(problems) - _MAX_LISTED
        listed = "\n  ".join(problems[:_MAX_LISTED]) + (f"\n  ... and {more} more" if more > 0 else "")
        raise ImageError(f"{len(problems)} missing file(s); every NAME needs all four files:\n  {listed}")
    return pairs


def _meshes_by_name(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for suffix in reversed(MESH_SUFFIXES):  # the first suffix wins when both exist
        found.update({p.stem: p for p in folder.glob(f"*{suffix}") if p.is_file()})
    return found


def _first_existing(folder: Path, patterns: tuple[str, ...], name: str) -> Path | None:
    return next((folder / p.format(name) for p in patterns if (folder / p.format(name)).is_file()), None)


def eval_synthetic_command(n: int, seed: int, mode: str, off_model: bool, out: str | os.PathLike | None,
                           as_json: bool, landmarks: str = "detector", metrical: bool = False) -> int:
    """Print the synthetic benchmark (a table with its calibration, or JSON); return the exit code.

    Generates n faces (or loads them from `out` when it already holds that set), reconstructs them
    in `mode` with detected landmarks and scores them by the NoW protocol. facerecon errors (a missing
    model: exit code 5) propagate to the CLI, which prints them.
    """
    from ..harness.synthetic_eval import evaluate_synthetic, format_synthetic_report, json_ready

    if n < 1:
        raise UsageError(f"--n must be >= 1, got {n}")
    report = evaluate_synthetic(n=n, seed=seed, mode=mode, off_model=off_model, out=out, landmarks=landmarks,
                                metrical=metrical)
    print(json.dumps(json_ready(report), indent=2) if as_json else format_synthetic_report(report))
    return 0
