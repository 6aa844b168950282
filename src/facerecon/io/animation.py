"""An animated glTF binary: one mesh with morph targets, and a glTF animation of its morph weights
and of its node's rotation and translation over time (the tracker's `animation.glb`).

The mesh part is `facerecon.io.gltf`'s GLB (the registry's exporter, so textures, UV seams and
sparse morph targets are written the same way); this module appends the animation to that file's
JSON and binary buffer. The document then holds:
- node 0, the head: the mesh, in model space (metres, as every GLB here), placed by the animated
  rotation (model -> camera, a unit quaternion) and translation (camera space, metres);
- node 1, a perspective camera at the origin looking down -z (glTF's camera convention is ours,
  docs/conventions.md), with the video's vertical field of view: looking through it shows the
  head where it was in the video;
- one animation "track" with three channels: node 0's "weights" (every morph target's weight per
  key), "rotation" and "translation", all LINEAR over the same key times (seconds from the first
  key). Quaternion signs are chosen so consecutive keys are on the same hemisphere, so the
  interpolation never takes the long way round.
Three.js (`GLTFLoader` + `AnimationMixer`) and Blender's importer play it as it is.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .gltf import MM_PER_METRE, _accessor_data, _GlbBuilder, _parse_container, export_glb
from .mesh import Mesh

_LINEAR = "LINEAR"


@dataclass
class HeadAnimation:
    """Keyframes of a head: morph weights and rigid pose over time.

    Attributes:
        times_s: (T,) strictly increasing key times in seconds.
        weights: (T, K) the weight of each of the mesh's K morph targets (the mesh's order) per key.
        rotation: (T, 3) axis-angle, model -> camera.
        translation: (T, 3) mm, camera space.
    """

    times_s: np.ndarray
    weights: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray

    def __post_init__(self) -> None:
        self.times_s = np.asarray(self.times_s, dtype=np.float64).reshape(-1)
        n = len(self.times_s)
        if n == 0:
            raise UsageError("an animation needs at least one key")
        self.weights = np.asarray(self.weights, dtype=np.float64)
        self.rotation = np.asarray(self.rotation, dtype=np.float64)
        self.translation = np.asarray(self.translation, dtype=np.float64)
        if self.weights.ndim != 2 or self.weights.shape[0] != n:
            raise UsageError(f"weights must be (T, K) with T = {n} keys, got {self.weights.shape}")
        for name in ("rotation", "translation"):
            if getattr(self, name).shape != (n, 3):
                raise UsageError(f"{name} must be ({n}, 3), got {getattr(self, name).shape}")
        for name in ("times_s", "weights", "rotation", "translation"):
            if not np.isfinite(getattr(self, name)).all():
                raise UsageError(f"animation {name} contain NaN or inf (leave untracked frames out of the keys)")
        if n > 1 and not (np.diff(self.times_s) > 0).all():
            raise UsageError("animation key times must be strictly increasing")

    @property
    def num_keys(self) -> int:
        return len(self.times_s)


def quaternions_wxyz(rotation: np.ndarray) -> np.ndarray:
    """(T, 4) unit quaternions (w, x, y, z) of (T, 3) axis-angle rotations, signs made continuous
    (the first with w >= 0, each next one on the same hemisphere as the one before)."""
    r = np.asarray(rotation, dtype=np.float64).reshape(-1, 3)
    angle = np.linalg.norm(r, axis=1)
    # sin(a/2)/a, with its limit 1/2 at a = 0
    k = np.where(angle > 1e-12, np.sin(angle / 2) / np.maximum(angle, 1e-12), 0.5)
    q = np.concatenate([np.cos(angle / 2)[:, None], r * k[:, None]], axis=1)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    if len(q) and q[0, 0] < 0:
        q[0] = -q[0]
    for i in range(1, len(q)):
        if q[i] @ q[i - 1] < 0:
            q[i] = -q[i]
    return q


def animated_glb_bytes(mesh: Mesh, animation: HeadAnimation, yfov_rad: float | None = None,
                       aspect_ratio: float | None = None) -> bytes:
    """`mesh` (its morph targets in its order) as a GLB with `animation` (see the module docstring).

    Args:
        mesh: an `io.Mesh` with K morph targets (e.g. `Reconstruction.mesh`: ARKit's 52 names plus
            ICT's four halves); its `morph_weights` are replaced by the first key's.
        animation: T keys of K weights, rotation and translation.
        yfov_rad, aspect_ratio: the video camera's vertical field of view and width / height; the
            camera node is left out when not given.

    Returns:
        The file's bytes.
    """
    k = len(mesh.morph_targets or {})
    if animation.weights.shape[1] != k:
        raise UsageError(f"the animation has {animation.weights.shape[1]} weights per key; the mesh has {k} "
                         "morph targets")
    if k == 0:
        raise UsageError("the mesh has no morph targets to animate")
    if yfov_rad is not None and not (0 < yfov_rad < np.pi and aspect_ratio and aspect_ratio > 0):
        raise UsageError(f"need 0 < yfov_rad < pi and aspect_ratio > 0, got {yfov_rad}, {aspect_ratio}")
    first = dataclasses.replace(mesh, morph_weights=[float(w) for w in animation.weights[0]])
    data = next(iter(export_glb(first.compact(), "head").values()))
    problems: list[str] = []
    gltf, binary = _parse_container(data, problems)
    if gltf is None:  # our own exporter's output: cannot happen unless it is broken
        raise UsageError(f"the mesh GLB could not be re-read: {problems}")
    b = _GlbBuilder()
    b.gltf = gltf
    size = int(gltf["buffers"][0]["byteLength"])
    b.parts, b.size = [binary[:size]], size

    quats = quaternions_wxyz(animation.rotation)[:, [1, 2, 3, 0]].astype(np.float32)  # glTF: x, y, z, w
    trans = (animation.translation / MM_PER_METRE).astype(np.float32)
    times = (animation.times_s - animation.times_s[0]).astype(np.float32)
    if len(times) > 1 and not (np.diff(times) > 0).all():
        raise UsageError("key times are too close together for float32 seconds")
    head = gltf["nodes"][0]
    head["name"] = "head"
    head["rotation"] = [float(x) for x in quats[0]]
    head["translation"] = [float(x) for x in trans[0]]
    time_acc = b.accessor(times)
    gltf["accessors"][time_acc]["min"] = [float(times.min())]
    gltf["accessors"][time_acc]["max"] = [float(times.max())]
    outputs = {"weights": b.accessor(animation.weights.astype(np.float32).reshape(-1)),
               "rotation": b.accessor(quats), "translation": b.accessor(trans)}
    samplers, channels = [], []
    for path, acc in outputs.items():
        samplers.append({"input": time_acc, "output": acc, "interpolation": _LINEAR})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": 0, "path": path}})
    gltf["animations"] = [{"name": "track", "samplers": samplers, "channels": channels}]
    if yfov_rad is not None:
        gltf["cameras"] = [{"name": "video", "type": "perspective",
                            "perspective": {"yfov": float(yfov_rad), "aspectRatio": float(aspect_ratio),
                                            "znear": 0.01, "zfar": 100.0}}]
        gltf["nodes"].append({"name": "video_camera", "camera": 0})
        gltf["scenes"][0]["nodes"] = [0, len(gltf["nodes"]) - 1]
    return b.to_glb()


def write_animated_glb(path: str | Path, mesh: Mesh, animation: HeadAnimation, yfov_rad: float | None = None,
                       aspect_ratio: float | None = None) -> Path:
    """Write `animated_glb_bytes(...)` to `path` (its folder is created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(animated_glb_bytes(mesh, animation, yfov_rad, aspect_ratio))
    return path


def read_animation(path: str | Path) -> dict:
    """The first animation of a GLB as arrays, for tests and round trips.

    Returns:
        {"channels": [(node, path)], "times_s": (T,), "weights": (T, K), "rotation_xyzw": (T, 4),
        "translation_m": (T, 3)}: each channel's keys (all on the same times here).
    """
    data = Path(path).read_bytes()
    problems: list[str] = []
    gltf, binary = _parse_container(data, problems)
    if gltf is None or not gltf.get("animations"):
        raise UsageError(f"{path}: no animation ({'; '.join(problems) or 'the document has none'})")
    anim = gltf["animations"][0]
    out: dict = {"channels": [(c["target"]["node"], c["target"]["path"]) for c in anim["channels"]]}
    for channel in anim["channels"]:
        sampler = anim["samplers"][channel["sampler"]]
        times = _accessor_data(gltf, binary, sampler["input"]).astype(np.float64)
        values = _accessor_data(gltf, binary, sampler["output"]).astype(np.float64)
        out["times_s"] = times
        key = {"weights": "weights", "rotation": "rotation_xyzw", "translation": "translation_m"}[channel["target"]["path"]]
        out[key] = values.reshape(len(times), -1)
    return out
