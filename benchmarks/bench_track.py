"""Video tracking benchmark (issue 19): accuracy, jitter, lag, speed and memory of `facerecon.tracking`.

Two synthetic clips rendered with the project's renderer from known parameters (tracking/synthetic.py):
a moving head with expressions, and a still head whose only change is sensor noise. Methods, side by side:
- frame_by_frame: the pipeline's single-photo fast mode on each frame alone (identity re-fitted each
  frame; a second pass on landmarks de-biased by the detector's error model, as `Reconstructor` does);
- fbf_plain: the same without the error model (one pass: what the tracker was compared with before);
- rts:       the tracker (joint identity from keyframes, warm start, error model) with the
             forward-backward smoother (the default);
- rts_mean_identity: rts with the identity the mean of the keyframes' single-frame fits (not joint);
- none:      the tracker without smoothing;
- term:      the tracker with the causal temporal_smoothness objective term;
- one_euro:  the tracker with a one-euro filter after each fit;
- mediapipe: MediaPipe's raw per-frame landmarks (2D only: landmark jitter in px).
Reported: expression error (mean |w - w_true| over ICT's 53 weights; "animated": over the 7 the moving
clip animates, where lag shows), head-pose error (geodesic, deg),
still-clip jitter (mean frame-to-frame motion of the head's vertices in camera space, mm, where the
frame-by-frame fit's free focal length makes the depth jump; in model space with the pose removed, mm;
and of the projected landmarks, px), lag (moving clip only; the still clip's is meaningless) (frames by which yaw and jawOpen trail the truth, by cross-correlation),
steady-state ms per frame (decode + landmarks, fit; wall) and process CPU ms per frame (the whole track,
identity included) and peak RSS for two clip lengths (the slope gives
the memory of a 10-minute clip). The CPU is shared with other developers: timings are noisy.

    PYTHONPATH=src python benchmarks/bench_track.py [--frames 90] [--cache /tmp/bench_track]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from facerecon.geometry.rotation import axis_angle_to_matrix_np
from facerecon.io.video import VideoWriter, read_frames
from facerecon.models import load_model
from facerecon.tracking import TrackConfig, VideoTracker
from facerecon.landmarks.error_model import LandmarkErrorModel
from facerecon.tracking.debias import debiased_landmarks
from facerecon.tracking.identity import personalised_view
from facerecon.tracking.synthetic import clip_truth, write_clip


ANIMATED = ("jawOpen", "mouthSmile_L", "mouthSmile_R", "eyeBlink_L", "eyeBlink_R", "browInnerUp_L", "browInnerUp_R")


def clip(cache: Path, model, kind: str, n: int):
    path = cache / f"{kind}_{n}.mp4"
    if path.is_file():
        return path, clip_truth(model, n, kind)
    cache.mkdir(parents=True, exist_ok=True)
    return path, write_clip(path, model, n, kind, noise_sigma=0.02 if kind == "still" else 0.01)


def geodesic_deg(r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    out = []
    for a, b in zip(r1, r2):
        m = axis_angle_to_matrix_np(a) @ axis_angle_to_matrix_np(b).T
        out.append(np.degrees(np.arccos(np.clip((np.trace(m) - 1) / 2, -1, 1))))
    return np.array(out)


def camera_vertices(view, identity: np.ndarray, expression: np.ndarray, rotation: np.ndarray,
                    translation: np.ndarray) -> np.ndarray:
    """(T, V, 3) camera-space head vertices; identity (K,) or (T, K)."""
    mean = view.mean.double().numpy()
    idb = view.identity_basis.double().numpy()
    exb = view.expression_basis.double().numpy()
    ids = np.broadcast_to(identity, (len(expression), identity.shape[-1]))
    out = []
    for a, e, r, t in zip(ids, expression, rotation, translation):
        v = mean + np.tensordot(a, idb[: len(a)], 1) + np.tensordot(e, exb, 1)
        out.append(v @ axis_angle_to_matrix_np(r).T + t)
    return np.array(out)


def lag_frames(estimate: np.ndarray, truth: np.ndarray, max_lag: int = 8) -> int:
    """The shift (frames) of `estimate` behind `truth` with the highest correlation."""
    e, t = estimate - estimate.mean(), truth - truth.mean()
    best = max(range(0, max_lag + 1), key=lambda k: float(np.dot(e[k:], t[: len(t) - k]) / max(len(t) - k, 1)))
    return best


def second_pass(rec, model, points: np.ndarray, size: tuple[int, int], first):
    """The pipeline's fast mode's second pass (`Reconstructor._fit_face`): points de-biased at `first`'s yaw."""
    q, w = debiased_landmarks(model, rec.fast_fitter, points, rec.landmark_weights, first, rec.config)
    return rec.fast_fitter.fit(q, size, w, rec.config.landmark, init=first)


def run_methods(tracker: VideoTracker, model, path: Path, truth, methods: list[str]) -> dict:
    import torch

    view = model.view("head")
    rec = tracker.reconstructor
    out = {}
    names = list(model.expression_names)
    true_v = camera_vertices(view, truth.identity, truth.expression, truth.rotation, truth.translation)
    for method in methods:
        if method in ("frame_by_frame", "fbf_plain"):
            obs = tracker.observe(read_frames(path))
            t0 = time.perf_counter()
            fits = [rec.fast_fitter.fit(p.astype(np.float64), obs.image_size, rec.landmark_weights)
                    for p in obs.points]
            if method == "frame_by_frame":
                model = LandmarkErrorModel.load()
                fits = [second_pass(rec, model, p.astype(np.float64), obs.image_size, f)
                        for p, f in zip(obs.points, fits)]
            fit_s = time.perf_counter() - t0
            ident = np.stack([f.state.params.identity[0] for f in fits])
            expr = np.stack([f.state.params.expression[0] for f in fits])
            rot = np.stack([f.state.params.rotation[0] for f in fits])
            trans = np.stack([f.state.params.translation[0] for f in fits])
            proj = np.stack([f.state.project(f.correspondence.points(
                view.vertices(torch.as_tensor(f.state.params.identity, dtype=view.dtype),
                              torch.as_tensor(f.state.params.expression, dtype=view.dtype))[0].double().numpy()))
                for f in fits])
            timings = {"fit_ms": 1000 * fit_s / len(fits)}
        elif method == "mediapipe":
            obs = tracker.observe(read_frames(path))
            pts = np.stack(obs.points).astype(np.float64)
            out[method] = {"landmark_jitter_px": float(np.mean(np.linalg.norm(np.diff(pts, axis=0), axis=2)))}
            continue
        else:
            tracker.config = (TrackConfig(smoothing="rts", joint_identity=False) if method == "rts_mean_identity"
                              else TrackConfig(smoothing=method))
            t0, c0 = time.perf_counter(), time.process_time()
            tr = tracker.track(path)
            total, cpu = time.perf_counter() - t0, time.process_time() - c0
            ident, expr, rot, trans = tr.identity, tr.expression, tr.rotation, tr.translation
            pv = personalised_view(view, tr.identity)
            basis = pv.expression_basis.double().numpy()
            mean = pv.mean.double().numpy()
            corr = rec.correspondence
            proj = []
            for i in range(tr.num_frames):
                v = mean + np.tensordot(expr[i], basis, 1)
                y = corr.points(v) @ axis_angle_to_matrix_np(rot[i]).T + trans[i]
                h, w = tr.image_size
                proj.append(np.stack([w / 2 + tr.focal * y[:, 0] / -y[:, 2], h / 2 - tr.focal * y[:, 1] / -y[:, 2]], 1))
            proj = np.array(proj)
            n = tr.num_frames
            timings = {"decode_landmarks_ms": 1000 * tr.timings_s["decode_and_landmarks_s"] / n,
                       "decode_landmarks_cpu_ms": 1000 * tr.timings_s["decode_and_landmarks_cpu_s"] / n,
                       "fit_cpu_ms": 1000 * tr.timings_s["fit_cpu_s"] / n,
                       "fit_ms": 1000 * tr.timings_s["fit_s"] / n, "identity_s": tr.timings_s["identity_s"],
                       "total_ms_incl_identity": 1000 * total / n, "cpu_ms_incl_identity": 1000 * cpu / n}
        v = camera_vertices(view, ident, expr, rot, trans)
        shape = camera_vertices(view, ident, expr, np.zeros_like(rot), np.zeros_like(trans))
        j = names.index("jawOpen")
        animated = [names.index(k) for k in ANIMATED if k in names]
        out[method] = {
            "expression_error": float(np.mean(np.abs(expr - truth.expression))),
            "expression_error_animated": float(np.mean(np.abs(expr - truth.expression)[:, animated])),
            "pose_error_deg": float(np.mean(geodesic_deg(rot, truth.rotation))),
            "vertex_error_mm": float(np.mean(np.linalg.norm(v - true_v, axis=2))),
            "jitter_mm": float(np.mean(np.linalg.norm(np.diff(v, axis=0), axis=2))),
            "shape_jitter_mm": float(np.mean(np.linalg.norm(np.diff(shape, axis=0), axis=2))),
            "landmark_jitter_px": float(np.mean(np.linalg.norm(np.diff(proj, axis=0), axis=2))),
            "lag_yaw_frames": lag_frames(rot[:, 1], truth.rotation[:, 1]),
            "lag_jaw_frames": lag_frames(expr[:, j], truth.expression[:, j]),
            **timings,
        }
    return out


def memory_child(path: str) -> None:
    import resource

    from facerecon.tracking import track

    t = track(path)
    print(json.dumps({"frames": t.num_frames, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "cpu_ms_per_frame": {k[:-6]: round(1000 * t.timings_s[k] / t.num_frames, 2)
                                           for k in ("decode_and_landmarks_cpu_s", "fit_cpu_s", "identity_cpu_s")}}))


def looped(cache: Path, source: Path, repeats: int) -> Path:
    """`source`'s frames `repeats` times over (a longer clip for the memory slope, rendered once)."""
    path = cache / f"{source.stem}_x{repeats}.mp4"
    if not path.is_file():
        frames = [f.image for f in read_frames(source, None)]
        with VideoWriter(path, fps=30) as out:
            for r in range(repeats):
                for f in frames if r % 2 == 0 else frames[::-1]:
                    out.write(f)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--cache", default="/tmp/bench_track")
    ap.add_argument("--memory-child")
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    cache = Path(args.cache)
    model = load_model("ict")
    methods = ["rts", "rts_mean_identity", "term", "one_euro", "none", "frame_by_frame", "fbf_plain", "mediapipe"]
    report = {}
    with VideoTracker("ict") as tracker:
        for kind in ("moving", "still"):
            path, truth = clip(cache, model, kind, args.frames)
            report[kind] = run_methods(tracker, model, path, truth, methods)
    keys = ["expression_error", "expression_error_animated", "pose_error_deg", "jitter_mm", "shape_jitter_mm",
            "landmark_jitter_px", "lag_yaw_frames", "lag_jaw_frames", "decode_landmarks_ms", "fit_ms",
            "decode_landmarks_cpu_ms", "fit_cpu_ms", "total_ms_incl_identity", "cpu_ms_incl_identity"]
    for kind, rows in report.items():
        print(f"\n{kind} clip, {args.frames} frames 640x480")
        print(f"{'method':18s}" + "".join(f"{k[:14]:>15s}" for k in keys))
        for method, row in rows.items():
            print(f"{method:18s}" + "".join(f"{row[k]:15.3f}" if k in row else f"{'-':>15s}" for k in keys))
    still = report["still"]
    base = still["frame_by_frame"]
    for m in ("rts", "term", "one_euro", "none"):
        print(f"still jitter {m} / frame_by_frame: camera space {still[m]['jitter_mm'] / base['jitter_mm']:.3f}, "
              f"model space (pose removed) {still[m]['shape_jitter_mm'] / base['shape_jitter_mm']:.3f}; "
              f"moving expression error ratio: "
              f"{report['moving'][m]['expression_error'] / report['moving']['frame_by_frame']['expression_error']:.3f}")
    if not args.skip_memory:
        path, _ = clip(cache, model, "moving", args.frames)
        mem = []
        for repeats in (8, 32):  # 720 and 2880 frames: shorter clips' peaks are within the heap's noise
            long = looped(cache, path, repeats)
            res = subprocess.run([sys.executable, __file__, "--memory-child", str(long)], capture_output=True, text=True)
            mem.append(json.loads(res.stdout.strip().splitlines()[-1]))
        slope = (mem[1]["peak_rss_mb"] - mem[0]["peak_rss_mb"]) / (mem[1]["frames"] - mem[0]["frames"])
        ten_min = mem[0]["peak_rss_mb"] + slope * (18000 - mem[0]["frames"])
        print(f"\npeak RSS: {mem[0]['frames']} frames {mem[0]['peak_rss_mb']:.0f} MB, {mem[1]['frames']} frames "
              f"{mem[1]['peak_rss_mb']:.0f} MB; slope {slope * 1024:.1f} kB/frame -> 10 min at 30 fps ~ {ten_min:.0f} MB")
        report["memory"] = {"runs": mem, "slope_kb_per_frame": slope * 1024, "ten_minutes_mb": ten_min}
    (cache / "report.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
