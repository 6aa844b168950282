#!/usr/bin/env python
"""Wall time of the `facerecon` command line, whole process, as a user sees it.

Spawns the CLI (`python -m facerecon.cli`) and reports seconds for: `--help`, a missing file, one
photo in fast mode, one in full mode, and 10 photos in one call (per photo). The baseline, measured
in the same run, is the old order of work for a missing file: importing the pipeline (torch,
MediaPipe) and building the model and detector before the input is looked at.

When the optional `dlib` extra is installed, every reconstruction also runs the identity metric (a
textured render and two dlib embeddings); the one-photo rows are then also timed as `make install`
leaves things, without the extra (dlib hidden from the process), and both are printed.

    python benchmarks/bench_cli.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
OLD_MISSING = ("from facerecon.pipeline import Reconstructor\nr = Reconstructor('ict')\n"
               "from facerecon.io.images import load_image\n"
               "try:\n    load_image('missing.png')\nexcept Exception:\n    pass\nr.close()")
# the CLI as `make install` leaves it: the `dlib` extra's module made unimportable in this process
WITHOUT_DLIB = ("import sys\nsys.modules['dlib'] = None\nfrom facerecon.cli import run\n"
                "sys.argv = ['facerecon'] + sys.argv[1:]\nrun()")


def dlib_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("dlib") is not None


def wall(cmd: list[str], repeats: int, cwd: str) -> float:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repeat each")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    from PIL import Image
    from skimage import data

    cli = [sys.executable, "-m", "facerecon.cli"]
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        photos = []
        for i in range(10):
            p = Path(tmp) / f"photo{i}.jpg"
            Image.fromarray(data.astronaut()).save(p, quality=92)
            photos.append(str(p))
        # warm the caches a first user run fills (numba kernels, the converted model)
        wall(cli + ["reconstruct", photos[0], "-o", f"{tmp}/warm", "--mode", "full"], 1, tmp)
        rows = [
            ("--help", wall(cli + ["--help"], repeats, tmp), None),
            ("missing file", wall(cli + ["reconstruct", "missing.png", "-o", "o"], repeats, tmp),
             wall([sys.executable, "-c", OLD_MISSING], repeats, tmp)),
            ("one photo, fast", wall(cli + ["reconstruct", photos[0], "-o", f"{tmp}/f"], repeats, tmp), None),
            ("one photo, full", wall(cli + ["reconstruct", photos[0], "-o", f"{tmp}/F", "--mode", "full"],
                                     repeats, tmp), None),
        ]
        if dlib_installed():
            bare = [sys.executable, "-c", WITHOUT_DLIB]
            rows += [
                ("one photo, fast, no dlib", wall(bare + ["reconstruct", photos[0], "-o", f"{tmp}/fb"], repeats, tmp),
                 None),
                ("one photo, full, no dlib",
                 wall(bare + ["reconstruct", photos[0], "-o", f"{tmp}/Fb", "--mode", "full"], repeats, tmp), None),
            ]
        ten = wall(cli + ["reconstruct", *photos, "-o", f"{tmp}/ten"], 1, tmp)
    extra = "the dlib extra installed: the identity metric runs" if dlib_installed() else "no dlib extra"
    print(f"bench_cli: whole-process wall time, median of {repeats}, {os.cpu_count()} CPUs ({extra})")
    for name, s, base in rows:
        ratio = f"   x{s / base:.3f} vs loading everything first ({base:.2f} s)" if base else ""
        print(f"  {name:28s} {s:7.2f} s{ratio}")
    print(f"  {'10 photos, fast, one call':28s} {ten:7.2f} s   {ten / 10:.2f} s per photo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
