"""A bounded load test on loopback: 200 uploads, 8 at a time, against a real server with a cheap job
runner and a small queue. No 5xx; 429s (queue full) are counted; every accepted job finishes.
Latencies are printed and written to out/ci-artifacts/server_load.json, never asserted."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from facerecon.server import ServerConfig, create_app

from . import fakes
from .live import live_server, post_photos, request, wait_finished
from .test_app import jpeg

REQUESTS, CONCURRENCY = 200, 8
ARTIFACTS = Path(__file__).resolve().parents[2] / "out" / "ci-artifacts"


def test_200_uploads_8_concurrent(tmp_path):
    photo = jpeg(320, 240)
    config = ServerConfig(workers=1, queue_size=8, data_dir=tmp_path)
    with live_server(create_app(config, fakes.FAST)) as base:
        warm = post_photos(base, [("warm.jpg", photo, "image/jpeg")]).json()["id"]
        assert wait_finished(base, warm)["status"] == "done"  # the worker process is up

        def one(k: int):
            t = time.perf_counter()
            reply = post_photos(base, [(f"{k}.jpg", photo, "image/jpeg")])
            return reply, time.perf_counter() - t

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            results = list(pool.map(one, range(REQUESTS)))
        statuses = [r.status for r, _ in results]
        accepted = [r.json()["id"] for r, _ in results if r.status == 202]
        final = [wait_finished(base, job_id, timeout=120)["status"] for job_id in accepted]
        assert request(base, "GET", "/v1/health").status == 200
    latency_ms = np.array([s for _, s in results]) * 1000
    summary = {"requests": REQUESTS, "concurrency": CONCURRENCY, "accepted_202": statuses.count(202),
               "refused_429": statuses.count(429), "5xx": sum(s >= 500 for s in statuses),
               "p50_ms": round(float(np.percentile(latency_ms, 50)), 1),
               "p95_ms": round(float(np.percentile(latency_ms, 95)), 1)}
    print(f"\nload test: {summary}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "server_load.json").write_text(json.dumps(summary, indent=1))
    assert set(statuses) <= {202, 429}, sorted(set(statuses))
    assert all(r.headers.get("retry-after", "").isdigit() for r, _ in results if r.status == 429)
    assert final == ["done"] * len(accepted)  # nothing accepted was lost
    assert len(accepted) > 0
