"""Synthetic video clips with exact ground truth, rendered with the project's renderer: a random
identity and albedo (as `evaluation.synthetic` draws them) in front of a cluttered background, and
per frame a known expression, head pose and translation.

Two kinds:
- "moving": the head turns (yaw +-25 deg, pitch +-10, roll +-5, translation +-15 mm) while the jaw
  opens, the mouth smiles and the eyes blink, on smooth curves of a few seconds' period;
- "still": one pose and one mild expression for the whole clip; only the sensor noise (Gaussian,
  `noise_sigma`, independent per frame) changes, so any motion a tracker reports is jitter.

    truth = write_clip("clip.mp4", model, n_frames=90, kind="still")
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UsageError
from ..evaluation.synthetic import _random_albedo, _random_background, _Scene
from ..io.video import VideoWriter
from ..models import MorphableModel
from ..render import PinholeCamera, SHLight, euler_deg_to_matrix, matrix_to_axis_angle, render_mesh

KINDS = ("moving", "still")
# ICT expressions the moving clip animates, with (amplitude, period s, phase)
_MOVES = {"jawOpen": (0.6, 2.1, 0.0), "mouthSmile_L": (0.7, 3.3, 1.0), "mouthSmile_R": (0.7, 3.3, 1.2),
          "eyeBlink_L": (1.0, 1.7, 2.0), "eyeBlink_R": (1.0, 1.7, 2.0), "browInnerUp_L": (0.6, 2.7, 0.5),
          "browInnerUp_R": (0.6, 2.7, 0.5)}
_STILL = {"mouthSmile_L": 0.3, "mouthSmile_R": 0.3, "jawOpen": 0.1}


@dataclass
class ClipTruth:
    """The parameters a clip was rendered from (T frames).

    Attributes:
        timestamps_s: (T,). identity: (K,). expression: (T, E). rotation: (T, 3) axis-angle.
        translation: (T, 3) mm. pose_deg: (T, 3) yaw, pitch, roll. focal: px. image_size: (H, W).
    """

    timestamps_s: np.ndarray
    identity: np.ndarray
    expression: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    pose_deg: np.ndarray
    focal: float
    image_size: tuple[int, int]


def clip_frames(model: MorphableModel, n_frames: int, kind: str = "moving", size: tuple[int, int] = (480, 640),
                fps: float = 30.0, seed: int = 0, noise_sigma: float = 0.01,
                truth: ClipTruth | None = None) -> Iterator[np.ndarray]:
    """The clip's frames, (H, W, 3) uint8, one at a time; `truth` (from `clip_truth`) or drawn here."""
    if model.parent_vertices is not None:
        raise UsageError("clip_frames needs the full model (eyes, teeth), not a view")
    truth = truth if truth is not None else clip_truth(model, n_frames, kind, size, fps, seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    scene = _Scene(model)
    h, w = size
    albedo = torch.as_tensor(np.clip(_random_albedo(scene.layout, rng), 0, 1), dtype=torch.float32)
    background = torch.as_tensor(_random_background(rng, max(h, w))[:h, :w], dtype=torch.float32)[None]
    sh = SHLight.ambient_directional(1, 0.55, 0.45, (0.3, 0.3, 0.9)).coefficients
    identity = torch.as_tensor(truth.identity, dtype=torch.float32)[None]
    f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    for i in range(len(truth.timestamps_s)):
        with torch.no_grad():
            v = model.vertices(identity, f32(truth.expression[i])[None])
            cam = PinholeCamera(f32(truth.rotation[i])[None], f32(truth.translation[i])[None], f32([truth.focal]),
                                f32([w / 2.0, h / 2.0])[None], (h, w))
            out = render_mesh(v, scene.triangles, cam, colors=albedo[None], sh=sh, background=background,
                              antialias=True)
        image = out.image[0].double().numpy() + rng.normal(0.0, noise_sigma, (h, w, 3))
        yield (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def clip_truth(model: MorphableModel, n_frames: int, kind: str = "moving", size: tuple[int, int] = (480, 640),
               fps: float = 30.0, seed: int = 0) -> ClipTruth:
    """The per-frame parameters of a clip (see the module docstring)."""
    if kind not in KINDS:
        raise UsageError(f"kind must be one of {KINDS}, got {kind!r}")
    if n_frames < 1:
        raise UsageError(f"n_frames must be >= 1, got {n_frames}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    h, w = size
    identity = rng.normal(0.0, 0.8, model.num_identity)
    names = list(model.expression_names)
    t = np.arange(n_frames) / fps
    expression = np.zeros((n_frames, len(names)))
    if kind == "moving":
        for name, (amp, period, phase) in _MOVES.items():
            if name in names:
                wave = 0.5 - 0.5 * np.cos(2 * math.pi * t / period + phase)
                if name.startswith("eyeBlink"):
                    wave = wave ** 8  # short blinks
                expression[:, names.index(name)] = amp * wave
        ypr = np.stack([25 * np.sin(2 * math.pi * t / 3.0), 10 * np.sin(2 * math.pi * t / 2.3 + 0.7),
                        5 * np.sin(2 * math.pi * t / 4.1)], 1)
        shift = np.stack([15 * np.sin(2 * math.pi * t / 3.7), 8 * np.sin(2 * math.pi * t / 2.9), 10 * np.sin(t)], 1)
    else:
        for name, value in _STILL.items():
            if name in names:
                expression[:, names.index(name)] = value
        ypr = np.tile([8.0, -4.0, 2.0], (n_frames, 1))
        shift = np.zeros((n_frames, 3))
    focal = 1.1 * w
    with torch.no_grad():
        v0 = model.vertices(torch.as_tensor(identity, dtype=torch.float32)[None])[0].double().numpy()
    face = v0[model.regions["face"].cpu().numpy()] if "face" in model.regions else v0
    depth = focal * np.ptp(face[:, 1]) / (0.45 * h)
    centre = face.mean(0)
    rotation = np.zeros((n_frames, 3))
    translation = np.zeros((n_frames, 3))
    for i in range(n_frames):
        m = euler_deg_to_matrix(torch.tensor(ypr[i], dtype=torch.float64))
        rotation[i] = matrix_to_axis_angle(m).numpy()
        translation[i] = np.array([0.0, 0.0, -depth]) - m.numpy() @ centre + shift[i]
    return ClipTruth(t, identity, expression, rotation, translation, ypr, float(focal), (h, w))


def write_clip(path: str | Path, model: MorphableModel, n_frames: int, kind: str = "moving",
               size: tuple[int, int] = (480, 640), fps: float = 30.0, seed: int = 0,
               noise_sigma: float = 0.01) -> ClipTruth:
    """Render a clip into an MP4 at `path` (streamed: one frame in memory); returns its truth."""
    truth = clip_truth(model, n_frames, kind, size, fps, seed)
    with VideoWriter(path, fps=fps, crf=18) as out:
        for i, frame in enumerate(clip_frames(model, n_frames, kind, size, fps, seed, noise_sigma, truth)):
            out.write(frame, truth.timestamps_s[i])
    return truth
