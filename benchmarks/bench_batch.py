#!/usr/bin/env python
"""Throughput of `facerecon batch` in fast mode: 2 local workers against 1, whole process as a user
runs it (model loads included), on the same photos in the same run.

Baselines, measured here: `facerecon batch --workers 1` (one process, one thread per library, as
each worker runs), and `facerecon reconstruct` of all photos in one call (one process, the
libraries' default threads). The photos are the astronaut, mirrored and cropped, so no result is a
copy of another. On a shared CPU the figures move with other people's load: read the ratios.

Two throughputs per batch run: whole process (photos / wall time of the command: start-up, model
loads and each worker's first, cold photo included, so it depends on the batch size), and steady
state (from the manifest's `finished_s`: photos finished after every worker's first photo, over
the time from then to the last one; what a long batch converges to).

    python benchmarks/bench_batch.py [--quick] [--photos N] [--workers N]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def wall(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and all its workers)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    run = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({run.returncode}): {run.stderr[-2000:]}")
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def steady_rate(manifest: Path, workers: int) -> float:
    """Photos per second after every worker has finished its first photo: (N - w) / (t_N - t_w)
    over the sorted finish times t of the run's `manifest` (nan when N <= w)."""
    done = json.loads(manifest.read_text())["done"].values()
    t = sorted(v["finished_s"] for v in done)
    w = min(workers, len(t))
    return (len(t) - w) / (t[-1] - t[w - 1]) if len(t) > w and t[-1] > t[w - 1] else float("nan")


def photos(folder: Path, n: int) -> list[Path]:
    import numpy as np
    from PIL import Image
    from skimage import data

    base = data.astronaut()
    folder.mkdir(parents=True)
    out = []
    for i in range(n):
        img = base[:, ::-1] if i % 2 else base
        # 12 crops (the face stays whole), then the crop window shifted by 4 px for the next 24
        c, shift = 8 * (i // 2 % 12), 4 * (i // 24)
        img = np.ascontiguousarray(img[c: 512 - c, max(0, c - shift): 512 - c - shift])
        out.append(folder / f"photo{i:02d}.jpg")
        Image.fromarray(img).save(out[-1], quality=92)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 photos, no `reconstruct` baseline")
    parser.add_argument("--photos", type=int, default=None, help="number of photos (default 8, 4 with --quick)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    n = args.photos or (4 if args.quick else 8)
    cli = [sys.executable, "-m", "facerecon.cli"]
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        files = photos(tmp / "in", n)
        wall(cli + ["reconstruct", str(files[0]), "-o", str(tmp / "warm")])  # fill the caches (numba, model)
        rows = []
        one = wall(cli + ["batch", str(tmp / "in"), "-o", str(tmp / "w1"), "--workers", "1"])
        rows.append(("batch --workers 1", *one, steady_rate(tmp / "w1" / "manifest.json", 1)))
        many = wall(cli + ["batch", str(tmp / "in"), "-o", str(tmp / "wN"), "--workers", str(args.workers)])
        rows.append((f"batch --workers {args.workers}", *many,
                     steady_rate(tmp / "wN" / "manifest.json", args.workers)))
        if not args.quick:
            rows.append(("reconstruct (one process)",
                         *wall(cli + ["reconstruct", *map(str, files), "-o", str(tmp / "rec")]), float("nan")))
        done = json.loads((tmp / "wN" / "manifest.json").read_text())["done"].values()
        per_photo = [v["seconds"] for v in done]
        peak_mb = max(v["worker_peak_rss_mb"] for v in done)
    print(f"facerecon batch, fast mode, {n} photos, {os.cpu_count()} CPUs (load average now "
          f"{os.getloadavg()[0]:.1f}); whole-process wall time, model loads included")
    print("CPU s/photo: CPU time of the command and its workers per photo (what scaling costs in work)")
    print("steady: photos/s after every worker's first photo (what a long batch converges to)")
    print(f"{'run':28s} {'wall s':>8s} {'photos/s':>9s} {'per worker':>11s} {'vs batch -w 1':>14s} "
          f"{'CPU s/photo':>12s} {'steady /s':>10s} {'steady vs -w 1':>15s}")
    base_steady = rows[0][3]
    for name, seconds, cpu, steady in rows:
        workers = args.workers if name.endswith(f"--workers {args.workers}") else 1
        rate = n / seconds
        print(f"{name:28s} {seconds:8.1f} {rate:9.3f} {rate / workers:11.3f} {one[0] / seconds:13.2f}x {cpu / n:12.2f} "
              f"{steady:10.3f} {steady / base_steady:14.2f}x")
    print(f"with {args.workers} workers: {sum(per_photo) / n:.2f} s per photo inside a worker, "
          f"peak memory of a worker {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
