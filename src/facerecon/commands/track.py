"""`facerecon track VIDEO -o OUT`: expressions.csv, track.json, animation.glb and preview.mp4.

The video is checked (`io.video.probe_video`) before the model and MediaPipe load, so a bad file
answers at once (exit 4). A stream that breaks part-way still gets its files for the frames read
before the break, then exits 4; a video without any face exits 3 and writes nothing.
"""
from __future__ import annotations

import json
import sys

from ..errors import FaceReconError
from .outputs import check_output_folder, writing_outputs

FILES = ("expressions.csv", "track.json", "animation.glb", "preview.mp4")


def track_command(video: str, out: str, model: str = "ict", smoothing: str = "rts", preview: bool = True,
                  offline: bool = False, as_json: bool = False) -> int:
    """Track `video` into `out`; returns the exit code."""
    from ..io.video import probe_video, read_frames
    from ..tracking import PartialTrackError, TrackConfig, VideoTracker
    from ..tracking.files import write_animation, write_expressions_csv, write_preview, write_track_json

    info = probe_video(video)
    folder = check_output_folder(out)  # before the tracking, not after it
    config = TrackConfig(smoothing=smoothing)
    exit_code = 0
    with VideoTracker(model, config, download=not offline) as tracker:
        try:
            track = tracker.track(video)
        except PartialTrackError as exc:
            print(f"facerecon: error: {exc}; writing the {exc.track.num_frames} frames read before it",
                  file=sys.stderr)
            track, exit_code = exc.track, exc.exit_code
    with writing_outputs():  # a full disk or a lost folder: one line, exit 7
        folder.mkdir(parents=True, exist_ok=True)
        written = [write_expressions_csv(track, folder / "expressions.csv"),
                   write_track_json(track, folder / "track.json")]
        if track.reference is not None:
            written.append(write_animation(track, folder / "animation.glb"))
        if preview:
            try:
                written.append(write_preview(track, read_frames(video, 640), folder / "preview.mp4",
                                             fps=info.average_fps or 30.0))
            except FaceReconError as exc:  # the same break as above: the preview stops there
                if exit_code == 0:
                    raise
                print(f"facerecon: preview stopped early: {exc}", file=sys.stderr)
    counts = {s: track.status.count(s) for s in ("tracked", "interpolated", "lost")}
    fit_frames = max(counts["tracked"], 1)
    summary = {"video": video, "out": str(folder), "frames": track.num_frames, **counts,
               "ms_per_frame_landmarks": round(1000 * track.timings_s["decode_and_landmarks_s"] / track.num_frames, 2),
               "ms_per_frame_fit": round(1000 * track.timings_s["fit_s"] / fit_frames, 2),
               "cpu_ms_per_frame_landmarks": round(1000 * track.timings_s["decode_and_landmarks_cpu_s"]
                                                   / track.num_frames, 2),
               "cpu_ms_per_frame_fit": round(1000 * track.timings_s["fit_cpu_s"] / fit_frames, 2),
               "files": [p.name for p in written]}
    print(json.dumps(summary, indent=1) if as_json else
          f"{video}: {track.num_frames} frames ({counts['tracked']} tracked, {counts['interpolated']} interpolated, "
          f"{counts['lost']} without a face) -> {folder}/ ({', '.join(p.name for p in written)})")
    return exit_code
