"""Job folders: random ids, lookups that never build a path from a client's string, expiry, the disk bound."""
from __future__ import annotations

import pytest

from facerecon.server.storage import DONE, ID_PATTERN, JobStore, StorageFull


def _store(tmp_path, ttl=100.0, max_bytes=10_000):
    return JobStore(tmp_path / "data", ttl, max_bytes)


def test_ids_are_random_url_safe_and_folders_live_under_the_root(tmp_path):
    store = _store(tmp_path)
    jobs = [store.create("fast", 1, 10) for _ in range(50)]
    assert len({j.id for j in jobs}) == 50
    assert all(ID_PATTERN.match(j.id) and j.folder.parent == store.root and j.folder.is_dir() for j in jobs)
    assert store.get(jobs[0].id) is jobs[0]


@pytest.mark.parametrize("bad", ["", "..", "../../etc/passwd", "a" * 22 + "/..", "%2e%2e", "A" * 21, "A" * 23,
                                 "abc def ghi jkl mno pq"])
def test_malformed_or_unknown_ids_find_nothing(tmp_path, bad):
    store = _store(tmp_path)
    store.create("fast", 1, 10)
    assert store.get(bad) is None
    assert store.get("A" * 22) is None


def test_finished_jobs_expire_and_unfinished_ones_stay(tmp_path):
    store = _store(tmp_path, ttl=10.0)
    done, running = store.create("fast", 1, 10), store.create("fast", 1, 10)
    done.state, done.finished = DONE, 1000.0
    assert store.sweep(now=1005.0) == 0
    assert store.sweep(now=1011.0) == 1
    assert store.get(done.id) is None and not done.folder.exists()
    assert store.get(running.id) is running and running.folder.is_dir()


def test_the_disk_bound_evicts_the_oldest_finished_jobs_then_refuses(tmp_path):
    store = _store(tmp_path, max_bytes=1000)
    old, new = store.create("fast", 1, 0), store.create("fast", 1, 0)
    for job, t in ((old, 1.0), (new, 2.0)):
        (job.folder / "mesh.glb").write_bytes(b"x" * 400)
        job.state, job.finished = DONE, 1e12 + t  # far in the future: not expired
        store.finished(job)
    assert store.used_bytes() == 800
    third = store.create("fast", 1, 300)  # needs room: the oldest goes
    assert store.get(old.id) is None and store.get(new.id) is new and not old.folder.exists()
    assert store.used_bytes() == 700
    with pytest.raises(StorageFull):
        store.create("fast", 1, 800)  # `new` goes, but `third` is in progress and stays
    assert store.get(third.id) is third


def test_a_temporary_root_is_removed_on_close(tmp_path):
    store = JobStore(None, 10.0, 1000)
    store.create("fast", 1, 1)
    root = store.root
    store.close()
    assert not root.exists()
