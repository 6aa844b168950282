"""Data maps as files: a 16-bit greyscale PNG with the scale that turns it back into values, and a
PLY whose vertices carry one scalar attribute (e.g. a per-vertex std in mm).

A 16-bit PNG stores q in [0, 65535]; the value is `offset + scale * q` (`PngScale`), written by
whoever writes the PNG into a JSON beside it (params.json's `displacement`).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError

MAX_16 = 65535


@dataclass(frozen=True)
class PngScale:
    """value = offset + scale * stored integer (mm per step for a displacement map)."""

    offset: float
    scale: float

    def to_dict(self) -> dict:
        return asdict(self)


def save_png16(path: str | os.PathLike, values: np.ndarray, lo: float, hi: float) -> PngScale:
    """Write (H, W) finite `values`, clipped to [lo, hi], as a 16-bit greyscale PNG; returns its scale."""
    from PIL import Image

    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or not np.isfinite(v).all():
        raise UsageError(f"a 16-bit map needs finite (H, W) values, got shape {v.shape}")
    if not hi > lo:
        raise UsageError(f"the map's range must have hi > lo, got [{lo}, {hi}]")
    q = np.round((np.clip(v, lo, hi) - lo) / (hi - lo) * MAX_16).astype(np.uint16)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(q).save(path)  # uint16 -> mode "I;16"
    return PngScale(float(lo), float(hi - lo) / MAX_16)


def load_png16(path: str | os.PathLike, scale: PngScale) -> np.ndarray:
    """(H, W) float64 values of a 16-bit PNG written by `save_png16`."""
    from PIL import Image

    with Image.open(path) as im:
        q = np.asarray(im).astype(np.float64)
    if q.ndim != 2:
        raise UsageError(f"{path} is not a greyscale map (shape {q.shape})")
    return scale.offset + scale.scale * q


def save_ply_scalar(path: str | os.PathLike, vertices: np.ndarray, triangles: np.ndarray, values: np.ndarray,
                    name: str = "std", colors: np.ndarray | None = None) -> Path:
    """Binary little-endian PLY of (V, 3) vertices, (F, 3) triangles and a (V,) float32 vertex property
    `name` (plus uchar colours from (V, 3) floats in [0, 1], when given)."""
    v = np.asarray(vertices, dtype=np.float32)
    f = np.asarray(triangles, dtype=np.int32)
    s = np.asarray(values, dtype=np.float32)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or s.shape != (len(v),):
        raise UsageError(f"vertices {v.shape}, triangles {f.shape} and values {s.shape} do not fit together")
    if not name.isidentifier():
        raise UsageError(f"a PLY property name must be an identifier, got {name!r}")
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise UsageError("triangle indices out of range")
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), (name, "<f4")]
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(v)}",
              "property float x", "property float y", "property float z", f"property float {name}"]
    if colors is not None:
        c = np.asarray(colors, dtype=np.float64)
        if c.shape != v.shape:
            raise UsageError(f"colors must have shape {v.shape}, got {c.shape}")
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    header += [f"element face {len(f)}", "property list uchar int vertex_indices", "end_header"]
    rec = np.zeros(len(v), dtype=fields)
    rec["x"], rec["y"], rec["z"], rec[name] = v[:, 0], v[:, 1], v[:, 2], s
    if colors is not None:
        rgb = np.round(np.clip(c, 0, 1) * 255).astype(np.uint8)
        rec["red"], rec["green"], rec["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    faces = np.zeros(len(f), dtype=[("n", "u1"), ("i", "<i4", (3,))])
    faces["n"], faces["i"] = 3, f
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        fh.write(rec.tobytes())
        fh.write(faces.tobytes())
    return path


def heat_colors(values: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """(N, 3) colours in [0, 1] for (N,) values: blue (lo, default the minimum) through green and
    yellow to red (hi, default the 98th percentile)."""
    v = np.asarray(values, dtype=np.float64)
    lo = float(np.min(v)) if lo is None else lo
    hi = float(np.percentile(v, 98)) if hi is None else hi
    t = np.clip((v - lo) / max(hi - lo, 1e-12), 0, 1)
    stops = np.array([[0.1, 0.2, 0.9], [0.1, 0.8, 0.3], [0.95, 0.85, 0.1], [0.85, 0.1, 0.1]])
    x = t * (len(stops) - 1)
    i = np.minimum(x.astype(int), len(stops) - 2)
    w = (x - i)[:, None]
    return stops[i] * (1 - w) + stops[i + 1] * w
