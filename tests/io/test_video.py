"""io.video: frames streamed with their real timestamps, downscaling, the MP4 writer, and a typed
error for every kind of bad file."""
from __future__ import annotations

import numpy as np
import pytest

av = pytest.importorskip("av", reason="PyAV (the `av` wheel) is not installed")

from facerecon.errors import ImageError, UsageError  # noqa: E402
from facerecon.io.video import (VideoDecodeError, VideoWriter, frames_from_arrays, probe_video,  # noqa: E402
                                read_frames)


def _frame(k: int, h: int = 120, w: int = 160) -> np.ndarray:
    """A frame whose mean level encodes k (so decoded frames can be matched to written ones)."""
    img = np.full((h, w, 3), 20 + 30 * k, dtype=np.uint8)
    img[: h // 4, : w // 4] = 255
    return img


def _write(path, times, h=120, w=160):
    with VideoWriter(path, fps=30) as out:
        for k, t in enumerate(times):
            out.write(_frame(k, h, w), t)
    return path


def test_variable_frame_rate_timestamps_survive(tmp_path):
    times = [0.0, 0.033, 0.1, 0.2, 0.21, 0.5]
    path = _write(tmp_path / "vfr.mp4", times)
    frames = list(read_frames(path))
    assert [f.index for f in frames] == list(range(6))
    np.testing.assert_allclose([f.timestamp_s for f in frames], times, atol=1.5e-3)
    levels = [f.image[60:, 80:].mean() for f in frames]
    np.testing.assert_allclose(levels, [20 + 30 * k for k in range(6)], atol=3)
    info = probe_video(path)
    assert (info.width, info.height, info.frame_count) == (160, 120, 6)


def test_large_frames_are_downscaled_for_landmarks(tmp_path):
    path = _write(tmp_path / "big.mp4", [0.0, 0.04], h=240, w=320)
    frames = list(read_frames(path, max_side=160))
    assert frames[0].image.shape == (120, 160, 3)
    assert frames[0].scale == pytest.approx(0.5)
    assert frames[0].video_size == (240, 320)
    assert list(read_frames(path, max_side=None))[0].image.shape == (240, 320, 3)


def test_odd_sizes_are_padded_to_even(tmp_path):
    path = _write(tmp_path / "odd.mp4", [0.0], h=61, w=81)
    assert list(read_frames(path))[0].video_size == (62, 82)


def test_writer_rejects_bad_frames(tmp_path):
    with VideoWriter(tmp_path / "x.mp4") as out:
        out.write(_frame(0))
        with pytest.raises(UsageError, match="the video is"):
            out.write(_frame(1, 60, 80))
        with pytest.raises(UsageError, match="uint8"):
            out.write(_frame(1).astype(np.float32))


def test_missing_empty_and_junk_files(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        list(read_frames(tmp_path / "nope.mp4"))
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        list(read_frames(tmp_path / "empty.mp4"))
    (tmp_path / "junk.mp4").write_bytes(np.random.default_rng(0).integers(0, 255, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(ImageError, match="not a readable video"):
        list(read_frames(tmp_path / "junk.mp4"))


def test_audio_only_file(tmp_path):
    path = tmp_path / "sound.m4a"
    container = av.open(str(path), "w")
    stream = container.add_stream("aac", rate=16000)
    for k in range(5):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, k * 1024
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    with pytest.raises(ImageError, match="no video stream .*audio"):
        list(read_frames(path))


def test_truncated_file_raises_after_the_good_frames(tmp_path):
    path = tmp_path / "full.mp4"
    rng = np.random.default_rng(1)
    container = av.open(str(path), "w", format="mp4", options={"movflags": "faststart"})
    stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=30)
    stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
    for _ in range(40):
        img = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    got = []
    with pytest.raises(VideoDecodeError, match="truncated") as info:
        for frame in read_frames(cut):
            got.append(frame.index)
    assert 0 < len(got) < 40 and info.value.frames_read == len(got)
    assert info.value.exit_code == 4


def test_zero_frame_video(tmp_path):
    path = tmp_path / "none.mkv"
    container = av.open(str(path), "w")
    stream = container.add_stream("mpeg4", rate=30)
    stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
    container.close()
    with pytest.raises(ImageError):
        list(read_frames(path))


def test_frames_from_arrays():
    frames = list(frames_from_arrays([np.zeros((100, 300, 3), np.uint8)] * 3, fps=10, max_side=150))
    assert [f.timestamp_s for f in frames] == [0.0, 0.1, 0.2]
    assert frames[0].image.shape == (50, 150, 3) and frames[0].scale == pytest.approx(0.5)
    with pytest.raises(ImageError, match="no frames"):
        list(frames_from_arrays([]))
