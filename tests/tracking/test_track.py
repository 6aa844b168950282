"""tracking.track on a synthetic clip with known parameters: everything tracked, pose and expression
close to the truth, one identity; gaps flagged and interpolated; the files and the commands."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from facerecon.cli import main
from facerecon.io.animation import read_animation
from facerecon.io.video import frames_from_arrays
from facerecon.models.arkit import ARKIT_NAMES
from facerecon.tracking import TrackConfig, VideoTracker
from facerecon.tracking.files import (CSV_COLUMNS, track_dict, track_from_dict, write_animation,
                                      write_expressions_csv)
from facerecon.tracking.synthetic import clip_frames, clip_truth, write_clip

from ..browser.ecosystem import assert_khronos_valid

N, SIZE = 24, (240, 320)


@pytest.fixture(scope="module")
def clip(ict_model):
    truth = clip_truth(ict_model, N, "moving", SIZE)
    return list(clip_frames(ict_model, N, "moving", SIZE, truth=truth)), truth


@pytest.fixture(scope="module")
def tracker(ict_model):
    with VideoTracker("ict") as t:
        yield t


@pytest.fixture(scope="module")
def tracked(tracker, clip):
    return tracker.track(clip[0], fps=30)


def test_tracks_a_synthetic_clip_close_to_the_truth(tracked, clip, ict_model):
    _, truth = clip
    assert tracked.status == ["tracked"] * N
    pose_error = np.abs(tracked.pose_deg() - truth.pose_deg)
    assert np.median(pose_error[:, :2]) < 6.0, pose_error
    j = list(ict_model.expression_names).index("jawOpen")
    assert np.corrcoef(tracked.expression[:, j], truth.expression[:, j])[0, 1] > 0.8
    assert np.mean(np.abs(tracked.expression - truth.expression)) < 0.2  # the fast fit's own accuracy
    assert tracked.identity.shape == (ict_model.num_identity,) and 0 < len(tracked.keyframes) <= 8
    assert tracked.reference is not None
    np.testing.assert_allclose(tracked.timestamps_s, np.arange(N) / 30)


def test_gaps_are_interpolated_or_left_empty(tracker, clip):
    frames, _ = clip
    blank = np.full_like(frames[0], 128)
    holed = [blank if 8 <= i < 11 else f for i, f in enumerate(frames)]
    t = tracker.track(holed)
    assert t.status[8:11] == ["interpolated"] * 3 and t.status[7] == t.status[11] == "tracked"
    assert not t.face_found[8:11].any() and np.isfinite(t.expression[8:11]).all()
    tracker.config = TrackConfig(max_gap_frames=2)
    try:
        t = tracker.track(holed)
    finally:
        tracker.config = TrackConfig()
    assert t.status[8:11] == ["lost"] * 3 and np.isnan(t.expression[8:11]).all()


def test_files(tracked, tmp_path):
    path = write_expressions_csv(tracked, tmp_path / "expressions.csv")
    rows = list(csv.reader(path.open()))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == N + 1
    assert rows[0][4:56] == list(ARKIT_NAMES) and rows[1][2] == "1"
    glb = write_animation(tracked, tmp_path / "animation.glb")
    assert_khronos_valid(glb)
    anim = read_animation(glb)
    assert sorted(p for _, p in anim["channels"]) == ["rotation", "translation", "weights"]
    assert anim["weights"].shape == (N, 56)
    back = track_from_dict(json.loads(json.dumps(track_dict(tracked))))
    np.testing.assert_allclose(back.expression, tracked.expression, atol=1e-5)


def test_track_and_retarget_commands(tracked, ict_model, tmp_path):
    video = tmp_path / "clip.mp4"
    write_clip(video, ict_model, 12, "still", SIZE)
    out = tmp_path / "out"
    assert main(["track", str(video), "-o", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"expressions.csv", "track.json", "animation.glb", "preview.mp4"}
    assert_khronos_valid(out / "animation.glb")
    target = tmp_path / "recon"
    tracked.reference.save(target)  # what `facerecon reconstruct` writes
    anim = tmp_path / "anim.glb"
    assert main(["retarget", "--source", str(out), "--target", str(target), "-o", str(anim)]) == 0
    assert_khronos_valid(anim)
    assert read_animation(anim)["weights"].shape[0] == 12


def test_bad_videos_exit_with_the_documented_codes(tmp_path, capsys):
    assert main(["track", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o")]) == 4
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 5000)
    assert main(["track", str(tmp_path / "junk.mp4"), "-o", str(tmp_path / "o")]) == 4
    assert "not a readable video" in capsys.readouterr().err
    assert main(["retarget", "--source", str(tmp_path), "--target", str(tmp_path), "-o", "x.glb"]) == 4


def test_no_face_anywhere_exits_3(tmp_path):
    from facerecon.io.video import VideoWriter

    with VideoWriter(tmp_path / "empty.mp4") as out:
        for _ in range(3):
            out.write(np.full((120, 160, 3), 90, np.uint8))
    assert main(["track", str(tmp_path / "empty.mp4"), "-o", str(tmp_path / "o")]) == 3
    assert not (tmp_path / "o").exists()


def test_an_output_folder_taken_by_a_file_is_refused_before_tracking(tmp_path, capsys, monkeypatch):
    from facerecon.io.video import VideoWriter
    from facerecon.tracking import VideoTracker

    with VideoWriter(tmp_path / "clip.mp4") as out:
        for _ in range(3):
            out.write(np.full((120, 160, 3), 90, np.uint8))
    (tmp_path / "o").write_text("a file")
    monkeypatch.setattr(VideoTracker, "track", lambda *a, **k: pytest.fail("tracked before checking the output"))
    assert main(["track", str(tmp_path / "clip.mp4"), "-o", str(tmp_path / "o")]) == 7
    assert "exists and is not a folder" in capsys.readouterr().err


def test_a_truncated_video_keeps_what_was_tracked(ict_model, tmp_path):
    import av

    video = tmp_path / "clip.mp4"
    truth = clip_truth(ict_model, 16, "still", SIZE)
    container = av.open(str(video), "w", format="mp4", options={"movflags": "faststart"})
    stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=30)
    stream.width, stream.height, stream.pix_fmt = SIZE[1], SIZE[0], "yuv420p"
    stream.options = {"g": "4"}
    for frame in clip_frames(ict_model, 16, "still", SIZE, truth=truth):
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    data = video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "out"
    assert main(["track", str(cut), "-o", str(out), "--no-preview"]) == 4
    doc = json.loads((out / "track.json").read_text())
    assert 0 < len(doc["frames"]) < 16 and "truncated" in doc["error"]


def test_frames_use_the_pipelines_error_model_correction(tracker, tracked):
    from facerecon.landmarks.error_model import LandmarkErrorModel
    from facerecon.tracking.debias import debiased_landmarks

    rec = tracker.reconstructor
    points = tracked.landmarks[5].astype(np.float64)
    first = rec.fast_fitter.fit(points, tracked.image_size, rec.landmark_weights)
    model = LandmarkErrorModel.load(tracker.landmarks.error_model)  # the video-mode mesh's (v1)
    assert tracker.landmarks.error_model == "mediapipe478"
    np.testing.assert_array_equal(tracker._error_model.bias, model.bias)
    ours = debiased_landmarks(model, rec.fast_fitter, points, rec.landmark_weights, first, rec.config)
    pipeline = rec._apply_error_model(model, points, rec.landmark_weights, first)
    np.testing.assert_allclose(ours[0], pipeline[0])
    np.testing.assert_allclose(ours[1], pipeline[1])
    assert not np.allclose(ours[0], points) and not np.allclose(ours[1], rec.landmark_weights)


def test_identity_is_the_joint_fit_of_the_keyframes(tracker, tracked):
    from facerecon.tracking import identity_from_keyframes

    rec = tracker.reconstructor
    points = [tracked.landmarks[i].astype(np.float64) for i in tracked.keyframes[:4]]
    calls = []

    def debias(p, fit):
        calls.append(fit)
        return p, rec.landmark_weights

    identity, focal, joint = identity_from_keyframes(rec.fast_fitter, points, tracked.image_size,
                                                     rec.landmark_weights, debias=debias)
    state = joint.state.to_numpy()
    assert len(calls) == 4 and state.params.identity.shape == (1, rec.view.num_identity)
    assert state.params.expression.shape[0] == 4
    np.testing.assert_array_equal(identity, state.params.identity[0])
    assert focal == pytest.approx(float(np.median(state.camera.focal)))
    mean_identity, _, none = identity_from_keyframes(rec.fast_fitter, points, tracked.image_size,
                                                     rec.landmark_weights, joint=False)
    singles = [rec.fast_fitter.fit(p, tracked.image_size, rec.landmark_weights).state.to_numpy() for p in points]
    assert none is None
    np.testing.assert_allclose(mean_identity, np.mean([s.params.identity[0] for s in singles], axis=0))
    assert not np.allclose(identity, mean_identity, atol=1e-3)  # the joint fit is not the average


def test_rts_smoothing_smooths_without_losing_accuracy(tracker, clip):
    frames, truth = clip
    obs = tracker.observe(frames_from_arrays(frames, 30.0))
    tracks = {}
    try:
        for smoothing in ("none", "rts"):
            tracker.config = TrackConfig(smoothing=smoothing)
            tracks[smoothing] = tracker.fit(obs)
    finally:
        tracker.config = TrackConfig()
    roughness = {k: np.abs(np.diff(t.rotation, 2, axis=0)).mean() + np.abs(np.diff(t.expression, 2, axis=0)).mean()
                 for k, t in tracks.items()}
    assert roughness["rts"] < 0.8 * roughness["none"], roughness
    errors = {k: np.abs(t.expression - truth.expression).mean() for k, t in tracks.items()}
    assert errors["rts"] < errors["none"] + 0.01, errors
