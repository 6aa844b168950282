"""`facerecon batch INPUT_DIR -o OUT [--workers N] [--mode fast|full] [--ray [ADDRESS]]`: a folder of
photos, one result folder per photo, on local worker processes or on Ray.

- Work: every image under INPUT_DIR (recursively, hidden files skipped, by extension) goes to
  `OUT/<its path without the extension>/` (the extension is kept in the name when two photos differ
  only by it). Each worker holds one `Reconstructor` (the model is loaded once per worker) and writes
  through `save_whole`, so a folder under OUT is either a complete result or absent.
- Local workers are spawned processes with torch, BLAS and numba limited to one thread each (two
  workers on two cores then do not fight over them); they die with the parent (Linux
  PR_SET_PDEATHSIG), so a killed run leaves no worker writing behind its back.
- `--ray` runs the same work as Ray actors (one model per actor): without ADDRESS on a local
  `ray.init()` cluster, with ADDRESS on that cluster (OUT must then be a folder every node writes).
- Resumable: `OUT/manifest.json` lists the finished and failed photos; it is rewritten atomically
  (temporary file + rename) after each photo. A rerun skips what is done, retries what failed, and
  removes the hidden partial folders a killed run left. It refuses an OUT made in another mode.
- `OUT/failures.csv` (image, exit_code, error) lists the photos that failed; bad files never stop
  the run. The exit code is 0 when nothing failed, else the first failure's (README).
"""
from __future__ import annotations

import csv
import io
import json
import os
import resource
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FaceReconError, ImageError, UsageError
from ..io.images import check_image_file
from .outputs import check_output_folder
from .reconstruct import Interrupted, _signals_raise_interrupted, save_whole

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
MANIFEST = "manifest.json"
FAILURES = "failures.csv"
MANIFEST_FORMAT = "facerecon-batch-manifest/1"
# environment variables that size the native thread pools, read when torch / numpy / numba load
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
# the face mesh's thread count (`landmarks.mediapipe_detector.THREADS_VAR`, not imported here: that
# module loads torch, and a worker calls `limit_threads` first thing)
MESH_THREADS_VAR = "FACERECON_MESH_THREADS"


# ---------------------------------------------------------------------------- the work of one worker
def limit_threads(n: int) -> None:
    """Size torch's, the BLAS libraries', numba's and the face mesh's thread pools to `n` in this
    process: the environment for the libraries not loaded yet and for detectors made later (call it
    first thing in a worker process), the running pools of those already loaded."""
    for var in _THREAD_VARS:
        os.environ[var] = str(n)
    os.environ[MESH_THREADS_VAR] = "1" if n < 2 else "2"
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def load_reconstructor(model: str) -> Any:
    """The per-worker state of the real work: a `Reconstructor` of `model` (loaded once)."""
    from ..pipeline import Reconstructor

    return Reconstructor(model)


def reconstruct_item(reconstructor: Any, image: Path, target: Path, mode: str) -> dict:
    """Reconstruct the largest face of `image` into the folder `target`, whole or not at all.

    Returns:
        {"faces_detected", "files", "seconds", "landmark_rms_px", "worker_peak_rss_mb"} (JSON-ready;
        the last is this worker process's peak resident memory so far).
    Raises:
        FaceReconError: unreadable image, no face, a fit that failed.
    """
    t = time.perf_counter()
    check_image_file(image)
    face = reconstructor.reconstruct(image, mode=mode)[0]
    paths = save_whole(face, target)
    return {"faces_detected": face.faces_detected, "files": sorted(p.name for p in paths.values()),
            "seconds": round(time.perf_counter() - t, 3), "landmark_rms_px": round(face.landmark_error_px(), 3),
            "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


@dataclass(frozen=True)
class Worker:
    """What one worker does: `state = setup(model)` once, then `run(state, image, target, mode)` per
    photo (returning a JSON-ready dict). Both must be module-level functions, so that a spawned
    process or a Ray actor can import them; tests give cheap ones."""

    setup: Callable[[str], Any] = load_reconstructor
    run: Callable[[Any, Path, Path, str], dict] = reconstruct_item


_state: dict[str, Any] = {}  # the worker process's own: its Worker and its state


def _init_process(worker: Worker, model: str, threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    die_with_parent()
    limit_threads(threads)
    _state["worker"] = worker
    try:
        _state["value"] = worker.setup(model)
    except FaceReconError as exc:  # a missing model: every photo then fails with this reason
        _state["setup_error"] = exc


def _run_in_process(image: str, target: str, mode: str) -> dict:
    if "setup_error" in _state:
        exc = _state["setup_error"]
        return {"error": str(exc), "exit_code": exc.exit_code}
    return _guarded(_state["worker"].run, _state["value"], Path(image), Path(target), mode)


def _guarded(run: Callable, *args) -> dict:
    """`run(*args)`, with a failure as {"error", "exit_code"} instead of an exception (an interrupt
    still propagates)."""
    try:
        return run(*args)
    except FaceReconError as exc:
        return {"error": str(exc), "exit_code": exc.exit_code}
    except Exception as exc:  # a bug on one photo must not stop the other photos
        return {"error": f"internal error: {type(exc).__name__}: {exc}", "exit_code": 1}


def die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent dies (a killed batch leaves no orphan)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class RayWorker:
    """A Ray actor's body: one model per actor (`ray.remote(RayWorker)` in `_run_ray`)."""

    def __init__(self, worker: Worker, model: str, threads: int) -> None:
        limit_threads(threads)
        self.worker = worker
        self.setup_error: FaceReconError | None = None
        try:
            self.state = worker.setup(model)
        except FaceReconError as exc:
            self.setup_error = exc

    def run(self, image: str, target: str, mode: str) -> dict:
        if self.setup_error is not None:
            return {"error": str(self.setup_error), "exit_code": self.setup_error.exit_code}
        return _guarded(self.worker.run, self.state, Path(image), Path(target), mode)


# ---------------------------------------------------------------------------- the run
@dataclass(frozen=True)
class BatchItem:
    """One photo: its path relative to INPUT_DIR and its result folder relative to OUT (POSIX)."""

    source: str
    out: str


def find_images(input_dir: str | os.PathLike, exclude: str | os.PathLike | None = None) -> list[BatchItem]:
    """Every image file under `input_dir` by extension (hidden files and folders skipped, and those
    under `exclude`: an OUT inside INPUT_DIR holds overlay.png and albedo.png), sorted.

    Raises:
        ImageError: `input_dir` is not a folder.
    """
    root = Path(input_dir)
    if not root.is_dir():
        raise ImageError(f"{root}: not a folder" if root.exists() else f"{root}: folder not found")
    skip = None if exclude is None else Path(exclude).resolve()
    rels = sorted(p.relative_to(root) for p in root.rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts)
                  and not (skip is not None and p.resolve().is_relative_to(skip)))
    stems: dict[str, int] = {}
    for r in rels:
        key = r.with_suffix("").as_posix()
        stems[key] = stems.get(key, 0) + 1
    items = []
    for r in rels:
        stem = r.with_suffix("").as_posix()
        out = stem if stems[stem] == 1 else f"{stem}_{r.suffix[1:].lower()}"
        items.append(BatchItem(r.as_posix(), out))
    return items


class Manifest:
    """OUT/manifest.json: {"format", "mode", "done": {source: summary}, "failed": {source: error}},
    rewritten whole through a temporary file and a rename after every change. A summary holds the
    worker's result (`reconstruct_item`: files, seconds, ...) and `finished_s`, when the photo
    finished in seconds since the start of the run that did it."""

    def __init__(self, out: Path, mode: str) -> None:
        self.path = out / MANIFEST
        self.mode = mode
        self.done: dict[str, dict] = {}
        self.failed: dict[str, dict] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
                if data.get("format") != MANIFEST_FORMAT:
                    raise ValueError(f"format {data.get('format')!r}")
            except (OSError, ValueError, AttributeError) as exc:
                raise UsageError(f"{self.path} is not a facerecon batch manifest ({exc}); use another -o") from None
            if data["mode"] != mode:
                raise UsageError(f"{out} holds a batch run in mode {data['mode']!r}; rerun with --mode "
                                 f"{data['mode']} to continue it, or choose another -o")
            self.done, self.failed = dict(data["done"]), dict(data["failed"])

    def record(self, item: BatchItem, result: dict) -> None:
        if "error" in result:
            self.failed[item.source] = {"out": item.out, "error": result["error"], "exit_code": result["exit_code"]}
            self.done.pop(item.source, None)
        else:
            self.done[item.source] = {"out": item.out, **result}
            self.failed.pop(item.source, None)
        self.write()

    def write(self) -> None:
        data = {"format": MANIFEST_FORMAT, "mode": self.mode, "done": self.done, "failed": self.failed}
        _write_atomically(self.path, json.dumps(data, indent=1))

    def write_failures(self) -> Path:
        """OUT/failures.csv from the manifest's failures (image, exit_code, error)."""
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["image", "exit_code", "error"])
        for source in sorted(self.failed):
            writer.writerow([source, self.failed[source]["exit_code"], self.failed[source]["error"]])
        path = self.path.with_name(FAILURES)
        _write_atomically(path, buf.getvalue())
        return path


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _remove_partials(out: Path) -> None:
    """What a killed run leaves: hidden `.NAME.partial-*` / `.NAME.old-*` folders (`save_whole`) and
    `.manifest.json.tmp-*` files (`_write_atomically`)."""
    for p in out.rglob(".*"):
        if p.is_dir() and (".partial-" in p.name or ".old-" in p.name):
            shutil.rmtree(p, ignore_errors=True)
        elif p.is_file() and p.parent == out and ".tmp-" in p.name:
            p.unlink(missing_ok=True)


def batch_command(input_dir: str, out: str, workers: int = 1, mode: str = "fast", model: str = "ict",
                  ray_address: str | None = None, worker: Worker = Worker()) -> int:
    """Reconstruct every photo under `input_dir` into `out` (see the module docstring).

    Args:
        workers: local processes, or Ray actors with `ray_address`.
        ray_address: None for local processes; "local" for a new local Ray cluster; else the
            address of a running one (`ray.init(address=...)`).
        worker: what each worker does (the real reconstruction by default).

    Returns:
        0 when every photo is done, else the exit code of the first failure; 130 / 143 when
        interrupted by SIGINT / SIGTERM (the finished photos are kept and the manifest lists them).
    """
    if workers < 1:
        raise UsageError(f"--workers must be >= 1, got {workers}")
    if mode not in ("fast", "full"):
        raise UsageError(f"--mode must be fast or full, got {mode!r}")
    root, out_root = Path(input_dir), check_output_folder(out)
    items = find_images(root, exclude=out_root)
    if not items:
        raise ImageError(f"{root}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    out_root.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out_root, mode)
    _remove_partials(out_root)
    todo = [it for it in items if it.source not in manifest.done or not (out_root / it.out / "params.json").is_file()]
    skipped = len(items) - len(todo)
    if skipped:
        print(f"batch: {skipped} of {len(items)} photo(s) already done in {out_root}/, {len(todo)} to go",
              file=sys.stderr)
    jobs = [(it, str(root / it.source), str(out_root / it.out)) for it in todo]
    where = f"Ray ({ray_address})" if ray_address else "local processes"
    t0 = time.perf_counter()
    finished = 0
    from tqdm import tqdm

    bar = tqdm(total=len(items), initial=skipped, desc="batch", unit="photo", file=sys.stderr, dynamic_ncols=True)
    try:
        with _signals_raise_interrupted():
            try:
                results = (_run_ray(ray_address, jobs, workers, mode, model, worker) if ray_address
                           else _run_local(jobs, workers, mode, model, worker))
                for item, result in results:
                    if "error" not in result:  # when it finished, seconds since this run began
                        result = {**result, "finished_s": round(time.perf_counter() - t0, 3)}
                    manifest.record(item, result)
                    finished += 1
                    bar.update(1)
                    if "error" in result:
                        bar.write(f"batch: {item.source}: {result['error']}", file=sys.stderr)
            except Interrupted as stop:
                bar.close()
                print(f"facerecon: batch interrupted by {signal.Signals(stop.signum).name}; "
                      f"{len(manifest.done)} of {len(items)} photo(s) done in {out_root}/; rerun the same "
                      f"command to continue", file=sys.stderr)
                return stop.exit_code
    finally:
        bar.close()
        if manifest.failed or (out_root / FAILURES).exists():
            manifest.write_failures()
    seconds = time.perf_counter() - t0
    rate = finished / seconds if seconds > 0 else 0.0
    print(f"batch: {len(manifest.done)} done, {len(manifest.failed)} failed, {skipped} skipped; {finished} photo(s) "
          f"in {seconds:.1f} s on {workers} worker(s) ({where}): {rate:.3f} photos/s, "
          f"{rate / workers:.3f} per worker" + (f"; failures in {out_root / FAILURES}" if manifest.failed else ""),
          file=sys.stderr)
    codes = [manifest.failed[s]["exit_code"] for s in sorted(manifest.failed)]
    return codes[0] if codes else 0


def _run_local(jobs: list, workers: int, mode: str, model: str, worker: Worker) -> Iterator[tuple[BatchItem, dict]]:
    """The jobs on `workers` spawned processes, as (item, result) in order of completion. A worker
    that dies (a crash in native code) fails the photos in progress; a new pool goes on with the rest."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pending = list(jobs)
    while pending:
        pool = ProcessPoolExecutor(min(workers, len(pending)), mp_context=mp.get_context("spawn"),
                                   initializer=_init_process, initargs=(worker, model, 1))
        queue = iter(list(pending))
        futures: dict = {}
        broken = False
        try:
            # two photos per worker in flight, so an interrupt or a crash loses little
            while not broken:
                for job in _take(queue, 2 * workers - len(futures)):
                    futures[pool.submit(_run_in_process, job[1], job[2], mode)] = job
                if not futures:
                    break
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for f in done:
                    job = futures.pop(f)
                    pending.remove(job)
                    try:
                        result = f.result()
                    except BrokenProcessPool:
                        broken = True
                        result = {"error": "a worker process died while reconstructing this photo", "exit_code": 1}
                    yield job[0], result
        finally:
            _stop_pool(pool)


def _take(it: Iterator, n: int) -> list:
    out = []
    while len(out) < n:
        x = next(it, None)
        if x is None:
            break
        out.append(x)
    return out


def _stop_pool(pool) -> None:
    """Shut a pool down without waiting for the photos in progress (their partial folders are
    hidden and removed by the next run)."""
    # ProcessPoolExecutor has no public way to stop running tasks: its processes are killed here
    for p in list((getattr(pool, "_processes", None) or {}).values()):
        p.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def _run_ray(address: str, jobs: list, workers: int, mode: str, model: str,
             worker: Worker) -> Iterator[tuple[BatchItem, dict]]:
    """The jobs on `workers` Ray actors (one model each), as (item, result) in order of completion."""
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'facerecon[ray]'") from None

    started = not ray.is_initialized()
    if started:
        env = {"env_vars": {v: "1" for v in _THREAD_VARS}}
        if address == "local":
            ray.init(num_cpus=workers, include_dashboard=False, runtime_env=env, log_to_driver=False)
        else:
            ray.init(address=address, runtime_env=env, log_to_driver=False)
    try:
        actor_class = ray.remote(num_cpus=1)(RayWorker)
        idle = [actor_class.remote(worker, model, 1) for _ in range(min(workers, len(jobs)))]
        queue = iter(jobs)
        running: dict = {}  # object ref -> (job, actor)
        while True:
            while idle:
                job = next(queue, None)
                if job is None:
                    break
                actor = idle.pop()
                running[actor.run.remote(job[1], job[2], mode)] = (job, actor)
            if not running:
                break
            [ref], _ = ray.wait(list(running), num_returns=1)
            job, actor = running.pop(ref)
            try:
                result = ray.get(ref)
                idle.append(actor)
            except ray.exceptions.RayError as exc:  # the actor died: a new one takes its place
                result = {"error": f"Ray: {type(exc).__name__}: {exc}", "exit_code": 1}
                idle.append(actor_class.remote(worker, model, 1))
            yield job[0], result
    finally:
        if started:
            ray.shutdown()
