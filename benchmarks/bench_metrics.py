"""Scan-to-mesh distance: exact BVH search against numpy brute force, measured in the same run.

    python benchmarks/bench_metrics.py [--quick]

Full: 100k scan points against a 20k-triangle face-like surface (the target is < 2 s on a 2-core
CPU). --quick: 20k points against 5k triangles. Brute force runs on a subset of the points and is
scaled to all of them (its cost is linear in the number of points); its answers on that subset
must match the fast path.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from facerecon.evaluation.distance import MeshDistanceIndex, scan_to_mesh_distance_brute_force


def face_like_surface(cells: int) -> tuple[np.ndarray, np.ndarray]:
    """A (cells + 1)^2 height-field grid, 2 cells^2 triangles, about face-sized (mm)."""
    n = cells + 1
    x, y = np.meshgrid(np.linspace(-80, 80, n), np.linspace(-100, 100, n))
    z = 40 * np.exp(-(x**2 + y**2) / 3000) + 15 * np.exp(-(x**2 / 80 + (y + 5) ** 2 / 400)) + 2 * np.sin(x / 7)
    i, j = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
    a = (i * n + j).ravel()
    triangles = np.concatenate([np.stack([a, a + 1, a + n + 1], 1), np.stack([a, a + n + 1, a + n], 1)])
    return np.stack([x, y, z], -1).reshape(-1, 3), triangles


def best_of(repeats: int, fn):
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI")
    args = parser.parse_args()
    n_points, cells, n_brute = (20_000, 50, 50) if args.quick else (100_000, 100, 200)

    vertices, triangles = face_like_surface(cells)
    rng = np.random.default_rng(0)
    points = vertices[rng.integers(0, len(vertices), n_points)] + rng.normal(scale=2.0, size=(n_points, 3))

    t = time.perf_counter()
    MeshDistanceIndex(vertices, triangles[:1]).query(points[:1])  # numba compile or cache load
    first_call = time.perf_counter() - t
    build, index = best_of(3, lambda: MeshDistanceIndex(vertices, triangles))
    query, fast = best_of(3, lambda: index.query(points))
    brute, slow = best_of(1, lambda: scan_to_mesh_distance_brute_force(points[:n_brute], vertices, triangles))
    brute_all = brute * n_points / n_brute
    error = np.abs(fast.distances[:n_brute] - slow.distances).max()

    rows = [
        ("first call (JIT compile / cache load)", f"{first_call:.2f} s"),
        ("BVH build", f"{build:.3f} s"),
        ("exact BVH query", f"{query:.3f} s"),
        ("fast total (build + query)", f"{build + query:.3f} s"),
        (f"brute force, {n_brute} points", f"{brute:.2f} s -> {brute_all:.0f} s for all (scaled)"),
        ("ratio brute force / fast", f"{brute_all / (build + query):.0f}x"),
        ("max |fast - brute| on the subset", f"{error:.2e} mm"),
    ]
    print(f"scan-to-mesh distance: {n_points} points x {len(triangles)} triangles")
    for label, value in rows:
        print(f"  {label + ':':<40}{value}")
    if error > 1e-9:
        raise SystemExit("fast and brute-force distances disagree")


if __name__ == "__main__":
    main()
