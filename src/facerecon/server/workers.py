"""A bounded pool of worker processes for the server's jobs.

Each of `workers` threads owns one spawned child process that loads the model once
(`JobRunner.setup`) and then runs jobs one at a time, sending progress over a pipe. The pool holds
at most `queue_size` waiting jobs (`submit` raises `QueueFull` with a Retry-After estimate beyond
that). A job that runs past the timeout has its child killed and replaced; a child that dies fails
only the job it had. Every job that was accepted ends `done` or `failed` with a reason: at shutdown
the waiting ones fail with "the server stopped".
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..commands.batch import die_with_parent, limit_threads
from ..errors import FaceReconError
from .storage import DONE, FAILED, RUNNING, Job

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class JobRunner:
    """What a worker process does: `state = setup(model)` once, then `run(state, spec, progress)`
    per job, where spec = {"folder", "inputs", "names", "mode"} and progress(fraction, stage).
    `run` returns a small JSON-ready dict (the job's result) and raises `FaceReconError` for a
    failure the user caused. Both must be module-level functions (the child process imports them)."""

    setup: Callable[[str], Any]
    run: Callable[[Any, dict, Progress], dict]


class QueueFull(Exception):
    """The queue is full; `retry_after` is an estimate in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the queue is full; retry in about {retry_after} s")
        self.retry_after = retry_after


class _Timeout(Exception):
    pass


class _Died(Exception):
    pass


class _JobFailed(Exception):
    pass


def _child_main(conn, runner: JobRunner, model: str, threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle; it stops us
    die_with_parent()
    limit_threads(threads)
    setup_error = None
    try:
        state = runner.setup(model)
    except FaceReconError as exc:
        setup_error = str(exc)
    except Exception as exc:
        traceback.print_exc()
        setup_error = f"internal error while loading the model: {type(exc).__name__}: {exc}"
    while True:
        try:
            spec = conn.recv()
        except (EOFError, OSError):
            return
        if setup_error is not None:
            conn.send(("failed", setup_error))
            continue
        try:
            result = runner.run(state, spec, lambda fraction, stage: conn.send(("progress", (fraction, stage))))
            conn.send(("done", result))
        except FaceReconError as exc:
            conn.send(("failed", str(exc)))
        except Exception as exc:
            traceback.print_exc()
            conn.send(("failed", f"internal error: {type(exc).__name__}: {exc}"))


class _Child:
    """One spawned worker process and the pipe to it."""

    def __init__(self, runner: JobRunner, model: str, threads: int) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(target=_child_main, args=(child_conn, runner, model, threads), daemon=True,
                                name="facerecon-worker")
        self.proc.start()
        child_conn.close()

    def run(self, spec: dict, timeout_s: float, progress: Progress) -> dict:
        try:
            self.conn.send(spec)
        except OSError:
            raise _Died(self.proc.exitcode) from None
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.conn.poll(left):
                raise _Timeout
            try:
                kind, payload = self.conn.recv()
            except (EOFError, OSError):
                self.proc.join(5)
                raise _Died(self.proc.exitcode) from None
            if kind == "progress":
                progress(*payload)
            elif kind == "done":
                return payload
            else:
                raise _JobFailed(payload)

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(10)
        try:
            self.conn.close()
        except OSError:  # closed already by the pool's shutdown, which may race with a job's end
            pass


class WorkerPool:
    """`workers` worker processes fed from a queue of at most `queue_size` waiting jobs.

    Args:
        runner: what each worker does.
        model: passed to `runner.setup` in each worker.
        timeout_s: per job, from the moment a worker takes it.
        on_finished: called (in a pool thread) with each job once it is done or failed.
    """

    def __init__(self, runner: JobRunner, model: str, workers: int, queue_size: int, timeout_s: float,
                 on_finished: Callable[[Job], None]) -> None:
        self.runner, self.model = runner, model
        self.workers, self.queue_size, self.timeout_s = workers, queue_size, timeout_s
        self.threads_per_worker = max(1, (os.cpu_count() or 1) // workers)
        self._on_finished = on_finished
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._waiting = 0
        self._lock = threading.Lock()
        self._mean_s = 10.0  # running mean of job durations, for Retry-After
        self._closed = False
        self._children: list[_Child | None] = [None] * workers
        self._threads = [threading.Thread(target=self._serve, args=(k,), daemon=True, name=f"facerecon-pool-{k}")
                         for k in range(workers)]
        for t in self._threads:
            t.start()

    @property
    def waiting(self) -> int:
        return self._waiting

    def retry_after(self) -> int:
        """Seconds until a queue place is likely free (at least 1)."""
        return max(1, min(600, math.ceil(self._mean_s * max(1, self._waiting) / self.workers)))

    def check_room(self) -> None:
        """Raise `QueueFull` when a job submitted now would be refused."""
        if self._waiting >= self.queue_size or self._closed:
            raise QueueFull(self.retry_after())

    def submit(self, job: Job) -> None:
        """Queue `job`. Raises `QueueFull` when `queue_size` jobs are already waiting."""
        with self._lock:
            self.check_room()
            self._waiting += 1
            self._queue.put(job)

    def close(self) -> None:
        """Fail the waiting jobs, stop the workers (killing their processes) and join the threads."""
        with self._lock:
            self._closed = True
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    self._waiting -= 1
                    self._finish(job, FAILED, "the server stopped before this job started")
            for _ in self._threads:
                self._queue.put(None)
        for child in self._children:
            if child is not None:
                child.kill()
        for t in self._threads:
            t.join(15)

    def _serve(self, slot: int) -> None:
        try:
            self._children[slot] = self._new_child()  # the model loads while no job waits
        except Exception:
            traceback.print_exc()  # the first job retries, and fails with the reason
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                self._waiting -= 1
            job.state, job.started, job.stage = RUNNING, time.time(), "starting"
            state, error, result = self._run(slot, job)
            self._mean_s = 0.8 * self._mean_s + 0.2 * (time.time() - job.started)
            job.result = result
            self._finish(job, state, error)

    def _new_child(self) -> _Child:
        return _Child(self.runner, self.model, self.threads_per_worker)

    def _run(self, slot: int, job: Job) -> tuple[str, str | None, dict | None]:
        """(state, error, result) of one job on the slot's child (started or replaced as needed)."""
        child = self._children[slot]
        try:
            if child is None or not child.proc.is_alive():
                child = self._children[slot] = self._new_child()
        except Exception as exc:
            return FAILED, f"could not start a worker process: {type(exc).__name__}: {exc}", None
        spec = {"folder": str(job.folder), "inputs": job.inputs, "names": job.names, "mode": job.mode}
        try:
            return DONE, None, child.run(spec, self.timeout_s, lambda f, s: self._progress(job, f, s))
        except _JobFailed as exc:
            return FAILED, str(exc), None
        except _Timeout:
            error = f"stopped after {self.timeout_s:.0f} s, the server's time limit per job"
        except _Died as exc:
            error = ("the server stopped while this job ran" if self._closed
                     else f"the worker process ended unexpectedly (exit code {exc.args[0]})")
        except Exception as exc:  # e.g. a result that cannot be unpickled: this job fails, not the pool
            error = f"internal error: {type(exc).__name__}: {exc}"
        child.kill()  # its state is unknown: the next job gets a new process
        self._children[slot] = None
        return FAILED, error, None

    @staticmethod
    def _progress(job: Job, fraction: float, stage: str) -> None:
        job.progress, job.stage = max(0.0, min(1.0, float(fraction))), str(stage)

    def _finish(self, job: Job, state: str, error: str | None) -> None:
        job.error = error
        job.finished = time.time()
        job.progress = 1.0 if state == DONE else job.progress
        job.stage = f"finished in {job.finished - job.started:.1f} s" if state == DONE else "failed"
        job.state = state  # last: a reader that sees `done` sees the result too
        self._on_finished(job)
