"""Readers (and the one writer) for the files of evaluation data sets, in numpy only.

- Meshes: Wavefront OBJ and PLY (ascii, binary little and big endian); polygons are split into
  triangles as fans; only positions and faces are read.
- 3D landmarks: `.npy`, whitespace/comma separated `.txt`, MeshLab picked points `.pp` (NoW scans).
- 2D landmarks: the iBUG `.pts` format (300W, Multi-PIE 68 points). Its coordinates are stored and
  returned as they are; 300W counts pixels from 1 (the centre of the top-left pixel is (1, 1)) while
  facerecon puts that centre at (0.5, 0.5) (docs/conventions.md): pass `one_based=True` to convert.

Everything unreadable raises ImageError (exit code 4) with the path and what is wrong.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..errors import ImageError, ModelError, UsageError
from ..geometry.meshfiles import read_obj, read_ply

MESH_SUFFIXES = (".obj", ".ply")


# --------------------------------------------------------------------------------------- meshes


def read_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) float64 and triangles (F, 3) int64 of an OBJ or PLY file.

    A file with vertices but no faces (a point cloud) returns (0, 3) triangles.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"mesh file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise ImageError(f"{path}: unsupported mesh format {suffix!r}; use .obj or .ply")
    try:
        if suffix == ".obj":
            obj = read_obj(path, allow_empty=True)
            vertices, triangles = obj.vertices, obj.triangles
        else:
            vertices, triangles, _ = read_ply(path)
    except ModelError as err:
        raise ImageError(str(err)) from None
    if len(vertices) == 0:
        raise ImageError(f"{path}: the mesh has no vertices")
    if not np.isfinite(vertices).all():
        raise ImageError(f"{path}: the mesh has NaN or infinite vertex coordinates")
    if len(triangles) and (triangles.min() < 0 or triangles.max() >= len(vertices)):
        raise ImageError(f"{path}: a face refers to a vertex that does not exist")
    return vertices, triangles


def read_landmarks(path: str | os.PathLike, n_points: int | None = None) -> np.ndarray:
    """3D landmarks (K, 3) float64 from a .npy, .txt (one point a line) or MeshLab .pp file.

    Args:
        path: the file.
        n_points: the number of points the file must hold (7 for NoW), or None for any.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"landmark file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            points = np.load(path, allow_pickle=False)
        elif suffix == ".txt":
            with open(path, encoding="utf-8") as fh:
                points = np.array(
                    [[float(x) for x in line.replace(",", " ").split()] for line in fh if line.strip()]
                )
        elif suffix == ".pp":
            points = np.array(
                [[float(p.attrib[k]) for k in "xyz"] for p in ET.parse(path).getroot().iter("point")]
            )
        else:
            raise ImageError(f"{path}: unsupported landmark format {suffix!r}; use .npy, .txt or .pp")
    except (ValueError, KeyError, OSError, ET.ParseError, UnicodeDecodeError) as err:
        raise ImageError(f"{path}: not a readable landmark file ({err})") from None
    points = np.asarray(points, dtype=np.float64)
    if points.ndim == 1 and points.size % 3 == 0:
        points = points.reshape(-1, 3)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ImageError(f"{path}: expected one 'x y z' point a row, got an array of shape {points.shape}")
    if n_points is not None and len(points) != n_points:
        raise ImageError(f"{path}: expected {n_points} landmarks, found {len(points)}")
    if not np.isfinite(points).all():
        raise ImageError(f"{path}: landmarks contain NaN or inf")
    return points


def read_pts(path: str | os.PathLike, one_based: bool = False) -> np.ndarray:
    """2D points (N, 2) float64 of an iBUG .pts file ('version: 1', 'n_points: N', '{', 'x y'..., '}').

    Args:
        path: the file.
        one_based: the file counts pixels from 1 (300W, iBUG): subtract 0.5 to return facerecon
            pixel coordinates (top-left pixel centre at (0.5, 0.5)).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"landmark file not found: {path}")
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        lines = [line for line in lines if line]
        header = {}
        k = 0
        while k < len(lines) and lines[k] != "{":
            key, _, value = lines[k].partition(":")
            header[key.strip()] = value.strip()
            k += 1
        n = int(header["n_points"])
        if k + n + 1 >= len(lines) or lines[k + n + 1] != "}":
            raise ValueError(f"expected '{{', {n} 'x y' lines and '}}'")
        points = np.array([[float(x) for x in line.split()] for line in lines[k + 1 : k + 1 + n]])
    except (ValueError, KeyError, IndexError, OSError, UnicodeDecodeError) as err:
        raise ImageError(f"{path}: not a readable .pts file ({err})") from None
    if points.shape != (n, 2) or not np.isfinite(points).all():
        raise ImageError(f"{path}: expected {n} finite 'x y' points, got shape {points.shape}")
    return points - 0.5 if one_based else points


def write_pts(path: str | os.PathLike, points: np.ndarray, one_based: bool = False) -> None:
    """Write 2D points (N, 2) as an iBUG .pts file (one_based: add 0.5, the inverse of read_pts)."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise UsageError(f"points must have shape (N, 2), got {p.shape}")
    if one_based:
        p = p + 0.5
    rows = "\n".join(f"{x!r} {y!r}" for x, y in p.tolist())  # repr: the shortest exact decimal
    Path(path).write_text(f"version: 1\nn_points: {len(p)}\n{{\n{rows}\n}}\n", encoding="utf-8")
