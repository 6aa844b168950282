"""Reading video frames one at a time (PyAV, which bundles its own FFmpeg libraries: no system
ffmpeg) and writing an MP4 (the tracker's preview).

What `read_frames` does:
- Frames are decoded and handed out one at a time (a generator): memory stays at one decoded
  frame plus the decoder's few reference frames, whatever the clip's length.
- Timestamps come from each frame's presentation time (pts x time base), so a variable frame
  rate clip keeps its real timing; they are in seconds from the first frame (the first frame is
  at 0). A frame without a pts gets the previous timestamp plus one average frame period.
- Frames larger than `max_side` on their longer side are downscaled by FFmpeg's scaler while
  converting to RGB (a 4K frame becomes 1280 x 720 by default, `LANDMARK_MAX_SIDE`): landmarks
  need no more, and a 3840 x 2160 RGB frame would cost 25 MB and ~20 ms to convert. `VideoFrame.scale`
  is the factor to map the frame's pixels back to the video's (`points / scale`).
- A missing or empty file, a file that is not a video container, a container without a video
  stream (audio only), a video with zero decodable frames, and a corrupt or truncated stream raise
  `ImageError` (exit code 4) naming the file and the problem. A stream that breaks after some
  frames raises `ImageError` when the break is reached, after those frames were handed out, so a
  caller keeps what it did with them (`VideoDecodeError.frames_read` says how many). FFmpeg reads
  a file cut short as far as it goes without complaint; where the container's index says how many
  frames there are (MP4, MOV), fewer decoded frames raise `VideoDecodeError` after the last one.

Pixels follow docs/conventions.md (origin at the top-left corner); images are uint8 RGB (H, W, 3).
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import ImageError, UsageError

# Frames are downscaled for landmarks to at most this many pixels on their longer side.
LANDMARK_MAX_SIDE = 1280


class VideoDecodeError(ImageError):
    """A video stream that broke (corrupt or truncated) after `frames_read` good frames."""

    def __init__(self, message: str, frames_read: int) -> None:
        super().__init__(message)
        self.frames_read = frames_read


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds (from its container header; `frame_count` and `duration_s` may be
    None when the container does not say).

    Attributes:
        path: the file. width, height: frame size in pixels. average_fps: frames per second (the
        container's average rate). frame_count: frames, or None. duration_s: seconds, or None.
        codec: the video codec's name.
    """

    path: str
    width: int
    height: int
    average_fps: float
    frame_count: int | None
    duration_s: float | None
    codec: str


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame.

    Attributes:
        index: 0-based frame number in decoding (presentation) order.
        timestamp_s: presentation time in seconds from the first frame.
        image: (h, w, 3) uint8 RGB, downscaled to at most the reader's `max_side`.
        scale: image pixels per video pixel (1.0 when not downscaled).
        video_size: (H, W) of the video itself.
    """

    index: int
    timestamp_s: float
    image: np.ndarray
    scale: float
    video_size: tuple[int, int]


def _open_container(path: str | os.PathLike):
    """The opened PyAV container and its first video stream; `ImageError` for every bad case."""
    import av

    from .images import check_input_file

    p = check_input_file(path)
    try:
        container = av.open(str(p), mode="r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise ImageError(f"{p}: not a readable video file ({_reason(exc)})") from None
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        container.close()
        raise ImageError(f"{p}: no video stream (the file holds {', '.join(kinds)}); give a video file")
    stream = container.streams.video[0]
    if not stream.codec_context.width or not stream.codec_context.height:
        container.close()
        raise ImageError(f"{p}: the video stream has no frame size (corrupt header)")
    return container, stream


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """The header of a video file, without decoding frames. `ImageError` as `read_frames`."""
    container, stream = _open_container(path)
    with container:
        rate = stream.average_rate or stream.guessed_rate
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        return VideoInfo(str(path), int(stream.codec_context.width), int(stream.codec_context.height),
                         float(rate) if rate else 0.0, int(stream.frames) or None, duration,
                         stream.codec_context.name)


def read_frames(path: str | os.PathLike, max_side: int | None = LANDMARK_MAX_SIDE) -> Iterator[VideoFrame]:
    """The frames of a video file, one at a time (see the module docstring).

    Args:
        path: a video file (MP4, MOV, MKV, WebM, AVI: whatever FFmpeg reads).
        max_side: frames are downscaled to at most this many pixels on their longer side (None:
            full size).

    Raises:
        ImageError: the file is missing, empty, not a video, has no video stream or no frames.
        VideoDecodeError: the stream is corrupt or truncated (after the frames before the break).
    """
    import av

    if max_side is not None and int(max_side) < 16:
        raise UsageError(f"max_side must be >= 16 pixels, got {max_side}")
    container, stream = _open_container(path)
    stream.thread_type = "AUTO"
    big_h, big_w = int(stream.codec_context.height), int(stream.codec_context.width)
    scale = 1.0 if max_side is None else min(1.0, max_side / max(big_h, big_w))
    out_w, out_h = max(2, round(big_w * scale)), max(2, round(big_h * scale))
    rate = stream.average_rate or stream.guessed_rate or Fraction(30)
    period = 1.0 / float(rate)
    expected = int(stream.frames or 0)  # from the container's index (MP4, MOV); 0 when unknown
    count = 0
    first_time = last_time = None
    try:
        with container:
            frames = container.decode(stream)
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                except (av.error.FFmpegError, ValueError) as exc:
                    raise VideoDecodeError(f"{path}: the video stream is corrupt or truncated after {count} "
                                           f"frames ({_reason(exc)})", count) from None
                t = None if frame.pts is None or frame.time_base is None else float(frame.pts * frame.time_base)
                if t is None:
                    t = (last_time + period) if last_time is not None else 0.0
                if first_time is None:
                    first_time = t
                if last_time is not None and t <= last_time:
                    t = last_time + 1e-6  # duplicated pts: keep timestamps increasing
                last_time = t
                if scale < 1.0:
                    image = frame.to_ndarray(format="rgb24", width=out_w, height=out_h)
                else:
                    image = frame.to_ndarray(format="rgb24")
                yield VideoFrame(count, t - first_time, image, out_w / big_w if scale < 1.0 else 1.0, (big_h, big_w))
                count += 1
    except av.error.FFmpegError as exc:  # raised while closing or demuxing
        raise VideoDecodeError(f"{path}: the video stream is corrupt or truncated after {count} frames "
                               f"({_reason(exc)})", count) from None
    if count == 0:
        raise ImageError(f"{path}: the video has no decodable frames")
    if expected and count + 1 < expected:
        raise VideoDecodeError(f"{path}: truncated: its header lists {expected} frames, {count} could be decoded",
                               count)


def frames_from_arrays(images: Iterable[np.ndarray], fps: float = 30.0,
                       max_side: int | None = LANDMARK_MAX_SIDE) -> Iterator[VideoFrame]:
    """`VideoFrame`s from in-memory images ((H, W, 3) uint8, or float in [0, 1]) at a constant
    `fps`, downscaled like `read_frames`. `ImageError` when there are none."""
    from ..landmarks.base import as_uint8_rgb

    if not (math.isfinite(fps) and fps > 0):
        raise UsageError(f"fps must be a positive number, got {fps!r}")
    count = 0
    for image in images:
        img = as_uint8_rgb(image)
        h, w = img.shape[:2]
        scale = 1.0 if max_side is None else min(1.0, max_side / max(h, w))
        if scale < 1.0:
            from PIL import Image

            size = (max(2, round(w * scale)), max(2, round(h * scale)))
            img = np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR, reducing_gap=2.0))
            scale = size[0] / w
        yield VideoFrame(count, count / fps, img, scale, (h, w))
        count += 1
    if count == 0:
        raise ImageError("no frames were given")


class VideoWriter:
    """Writes RGB frames into an MP4 (H.264 when PyAV's FFmpeg has it, else MPEG-4 part 2).

    Frames are encoded as they arrive (nothing is kept). Odd sizes are padded by one pixel
    (yuv420p needs even ones). Timestamps are kept at millisecond precision, so a variable frame
    rate input keeps its timing.

        with VideoWriter("preview.mp4", fps=30) as out:
            out.write(image_uint8, timestamp_s=t)

    Args:
        path: the file to write (its folder must exist).
        fps: the nominal frame rate (used for frames written without a timestamp).
        crf: H.264 quality (lower is better; 23 is FFmpeg's default).
    """

    def __init__(self, path: str | os.PathLike, fps: float = 30.0, crf: int = 23) -> None:
        import av

        if not (math.isfinite(fps) and fps > 0):
            raise UsageError(f"fps must be a positive number, got {fps!r}")
        self.path = Path(path)
        self.fps = float(fps)
        try:
            self._container = av.open(str(self.path), mode="w", format="mp4")
        except (av.error.FFmpegError, OSError) as exc:
            raise ImageError(f"{self.path}: cannot write ({_reason(exc)})") from None
        self._codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self._crf = int(crf)
        self._stream = None
        self._size: tuple[int, int] | None = None
        self._last_pts = -1
        self.frames_written = 0

    def write(self, image: np.ndarray, timestamp_s: float | None = None) -> None:
        """Encode one (H, W, 3) uint8 RGB frame; every frame must have the first one's size."""
        import av

        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise UsageError(f"frames must be (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}")
        h, w = img.shape[:2]
        if self._stream is None:
            self._size = (h, w)
            self._stream = self._container.add_stream(self._codec, rate=round(self.fps))
            self._stream.width, self._stream.height = w + w % 2, h + h % 2
            self._stream.pix_fmt = "yuv420p"
            self._stream.codec_context.time_base = Fraction(1, 1000)
            if self._codec == "libx264":
                self._stream.options = {"crf": str(self._crf), "preset": "veryfast"}
        elif (h, w) != self._size:
            raise UsageError(f"frame {self.frames_written} is {w}x{h}; the video is {self._size[1]}x{self._size[0]}")
        if h % 2 or w % 2:
            img = np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        t = self.frames_written / self.fps if timestamp_s is None else float(timestamp_s)
        pts = max(int(round(t * 1000)), self._last_pts + 1)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        frame.pts, frame.time_base = pts, Fraction(1, 1000)
        self._last_pts = pts
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and finish the file (a writer that got no frame leaves no file)."""
        if self._container is None:
            return
        container, self._container = self._container, None
        if self._stream is not None:
            for packet in self._stream.encode():
                container.mux(packet)
        container.close()
        if self._stream is None:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '", 1)[0] if text else type(exc).__name__
