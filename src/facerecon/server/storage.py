"""Jobs and their folders: random ids, expiry and a bound on disk use.

A job id is `secrets.token_urlsafe(16)` (128 random bits): nothing can be guessed or enumerated, and
a path is only ever built from an id that matches `ID_PATTERN` *and* is a known job, and from file
names the job's own result lists, so no request reaches outside its job's folder.
"""
from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22}$")
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


@dataclass
class Job:
    """One reconstruction request: its photos (`inputs`, saved in its folder; `names`, the client's
    file names) and, once done, `result`: what the worker returned (faces and their files)."""

    id: str
    folder: Path
    mode: str
    images: int
    state: str = QUEUED
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    progress: float = 0.0
    stage: str = "waiting for a worker"
    error: str | None = None
    result: dict | None = None
    bytes: int = 0
    inputs: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    @property
    def finished_state(self) -> bool:
        return self.state in (DONE, FAILED)


class StorageFull(Exception):
    """No room for an upload even after the finished jobs were deleted."""


class JobStore:
    """Job records (in memory) and their folders under `root` (on disk).

    Args:
        root: the data folder (None: a new temporary folder, removed by `close`).
        ttl_s: finished jobs are deleted this long after they finished.
        max_bytes: bound on the bytes of all job folders together.
    """

    def __init__(self, root: Path | None, ttl_s: float, max_bytes: int) -> None:
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="facerecon-serve-")) if root is None else Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def create(self, mode: str, images: int, upload_bytes: int) -> Job:
        """A new job with an empty folder; room for `upload_bytes` (the upload and its expected
        results) is made first.

        Raises:
            StorageFull: the unfinished jobs alone leave no room.
        """
        self.sweep()
        with self._lock:
            used = sum(j.bytes for j in self._jobs.values())
            if used + upload_bytes > self.max_bytes:
                for old in sorted((j for j in self._jobs.values() if j.finished_state), key=lambda j: j.finished):
                    self._delete(old)
                    used -= old.bytes
                    if used + upload_bytes <= self.max_bytes:
                        break
            if used + upload_bytes > self.max_bytes:
                raise StorageFull(f"{used / 1e6:.0f} MB of {self.max_bytes / 1e6:.0f} MB are held by jobs in progress")
            while True:
                job_id = secrets.token_urlsafe(16)
                if job_id not in self._jobs:
                    break
            folder = self.root / job_id
            folder.mkdir()
            job = Job(job_id, folder, mode, images, bytes=upload_bytes)
            self._jobs[job_id] = job
            return job

    def get(self, job_id: str) -> Job | None:
        """The job, or None for an unknown, malformed or expired id."""
        if not ID_PATTERN.match(job_id):
            return None
        with self._lock:
            return self._jobs.get(job_id)

    def finished(self, job: Job) -> None:
        """Account the job's files once it finished."""
        job.bytes = sum(p.stat().st_size for p in job.folder.rglob("*") if p.is_file())

    def delete(self, job: Job) -> None:
        with self._lock:
            self._delete(job)

    def _delete(self, job: Job) -> None:
        self._jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def sweep(self, now: float | None = None) -> int:
        """Delete finished jobs older than the time to live; returns how many."""
        now = time.time() if now is None else now
        with self._lock:
            old = [j for j in self._jobs.values() if j.finished_state and now - j.finished > self.ttl_s]
            for j in old:
                self._delete(j)
        return len(old)

    def used_bytes(self) -> int:
        with self._lock:
            return sum(j.bytes for j in self._jobs.values())

    def close(self) -> None:
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)
