"""The worker pool on its own: one model per worker process, the queue bound, a per-job timeout and a
crashed worker that each fail only their job, and nothing lost at shutdown."""
from __future__ import annotations

import json
import time

import pytest

from facerecon.server.storage import DONE, FAILED, JobStore
from facerecon.server.workers import QueueFull, WorkerPool

from . import fakes


def _job(store: JobStore, name: str = "photo.jpg"):
    job = store.create("fast", 1, 0)
    job.inputs, job.names = [str(job.folder / "in.jpg")], [name]
    return job


def _wait(jobs, timeout=120):
    deadline = time.monotonic() + timeout
    while not all(j.finished_state for j in jobs):
        assert time.monotonic() < deadline, [j.state for j in jobs]
        time.sleep(0.02)


@pytest.fixture
def store(tmp_path):
    return JobStore(tmp_path / "data", 3600, 10 ** 9)


def test_each_worker_loads_once_and_runs_many_jobs(store):
    finished = []
    pool = WorkerPool(fakes.FAST, "ict", workers=2, queue_size=20, timeout_s=60, on_finished=finished.append)
    try:
        jobs = [_job(store) for _ in range(10)]
        for j in jobs:
            pool.submit(j)
        _wait(jobs)
    finally:
        pool.close()
    assert [j.state for j in jobs] == [DONE] * 10 and len(finished) == 10
    pids = {json.loads((j.folder / "faces" / "0" / "params.json").read_text())["worker_pid"] for j in jobs}
    assert 1 <= len(pids) <= 2  # two processes at most, each reused


def test_a_full_queue_refuses_with_retry_after_and_shutdown_fails_what_waits(store):
    pool = WorkerPool(fakes.SLOW, "ict", workers=1, queue_size=2, timeout_s=60, on_finished=lambda j: None)
    slow = _job(store, "slow.jpg")
    pool.submit(slow)
    deadline = time.monotonic() + 60
    while slow.state != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    waiting = [_job(store), _job(store)]
    for j in waiting:
        pool.submit(j)
    with pytest.raises(QueueFull) as info:
        pool.submit(_job(store))
    assert info.value.retry_after >= 1
    pool.close()
    assert slow.state == FAILED and [j.state for j in waiting] == [FAILED, FAILED]
    assert all("server stopped" in j.error for j in waiting)


def test_a_job_past_the_timeout_fails_and_the_next_one_runs(store):
    pool = WorkerPool(fakes.SLOW, "ict", workers=1, queue_size=4, timeout_s=2, on_finished=lambda j: None)
    try:
        slow, fine = _job(store, "slow.jpg"), _job(store)
        pool.submit(slow)
        pool.submit(fine)
        _wait([slow, fine])
    finally:
        pool.close()
    assert slow.state == FAILED and "time limit" in slow.error
    assert fine.state == DONE


def test_a_crashed_worker_fails_its_job_only(store):
    pool = WorkerPool(fakes.CRASHY, "ict", workers=1, queue_size=4, timeout_s=60, on_finished=lambda j: None)
    try:
        crash, fine = _job(store, "crash.jpg"), _job(store)
        pool.submit(crash)
        pool.submit(fine)
        _wait([crash, fine])
    finally:
        pool.close()
    assert crash.state == FAILED and "exit code 7" in crash.error
    assert fine.state == DONE
