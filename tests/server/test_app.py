"""The HTTP API against a real uvicorn server on 127.0.0.1, with a cheap job runner: 202 + polling +
files, ids that reveal nothing, 429 with Retry-After, expiry, OpenAPI, the viewer's files."""
from __future__ import annotations

import io
import json
import time

import pytest
from PIL import Image

from facerecon.models.arkit import ARKIT_NAMES
from facerecon.server import ServerConfig, create_app

from . import fakes
from .live import live_server, post_photos, request, wait_finished


def jpeg(w: int = 64, h: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (150, 110, 90)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = ServerConfig(workers=1, queue_size=8, data_dir=tmp_path_factory.mktemp("data"))
    with live_server(create_app(config, fakes.FAST)) as base:
        yield base


def test_a_job_is_accepted_polled_and_its_files_served(server):
    reply = post_photos(server, [("me.jpg", jpeg(), "image/jpeg"), ("me2.png", jpeg(), "text/plain")], mode="full")
    assert reply.status == 202, reply
    job = reply.json()
    assert reply.headers["location"] == job["url"] == f"/v1/reconstructions/{job['id']}"
    assert job["status"] in ("queued", "running", "done") and job["images"] == 2 and job["mode"] == "full"
    status = wait_finished(server, job["id"])
    assert status["status"] == "done" and status["progress"] == 1.0 and status["expires_at"] > time.time()
    assert [f["name"] for f in status["faces"]] == ["me.jpg", "me2.png"]  # a JPEG sent as text/plain is a JPEG
    link = status["faces"][1]["files"]["params.json"]
    got = request(server, "GET", link)
    assert got.status == 200 and got.headers["content-type"] == "application/json"
    assert json.loads(got.body)["mode"] == "full"


def test_unknown_ids_files_and_traversal_attempts_are_404(server):
    job = wait_finished(server, post_photos(server, [("a.jpg", jpeg(), "image/jpeg")]).json()["id"])
    base = job["url"]
    for path in ["/v1/reconstructions/" + "A" * 22, "/v1/reconstructions/..", "/v1/reconstructions/%2e%2e%2fetc",
                 f"{base}/faces/0/../../inputs/0.jpg", f"{base}/faces/0/..%2f..%2finputs%2f0.jpg",
                 f"{base}/faces/0/inputs", f"{base}/faces/1/params.json", f"{base}/faces/-1/params.json",
                 f"{base}/faces/0/%2e%2e"]:
        reply = request(server, "GET", path)
        assert reply.status == 404, (path, reply)
    assert request(server, "GET", f"{base}/faces/x/params.json").status == 422


def test_delete_removes_a_finished_job(server):
    job = wait_finished(server, post_photos(server, [("a.jpg", jpeg(), "image/jpeg")]).json()["id"])
    assert request(server, "DELETE", job["url"]).status == 204
    assert request(server, "GET", job["url"]).status == 404


def test_openapi_meta_health_and_the_viewer(server):
    schema = request(server, "GET", "/openapi.json").json()
    upload = schema["paths"]["/v1/reconstructions"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert {"202", "413", "415", "429"} <= set(upload["responses"])
    meta = request(server, "GET", "/v1/meta").json()
    assert meta["arkit_names"] == list(ARKIT_NAMES) and meta["limits"]["max_upload_bytes"] == 20 * 1024 * 1024
    assert request(server, "GET", "/v1/health").json()["status"] == "ok"
    page = request(server, "GET", "/")
    assert page.status == 200 and b'src="viewer.js"' in page.body
    script = request(server, "GET", "/viewer.js")
    assert script.status == 200 and "javascript" in script.headers["content-type"]
    assert b"https://" not in page.body  # nothing from a CDN


def test_a_full_queue_answers_429_with_retry_after(tmp_path):
    config = ServerConfig(workers=1, queue_size=1, data_dir=tmp_path)
    with live_server(create_app(config, fakes.SLOW)) as base:
        running = post_photos(base, [("slow.jpg", jpeg(), "image/jpeg")]).json()
        deadline = time.monotonic() + 60
        while request(base, "GET", running["url"]).json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert post_photos(base, [("a.jpg", jpeg(), "image/jpeg")]).status == 202
        full = post_photos(base, [("b.jpg", jpeg(), "image/jpeg")])
        assert full.status == 429 and int(full.headers["retry-after"]) >= 1
        assert "queue is full" in full.json()["detail"]


def test_results_expire(tmp_path):
    config = ServerConfig(workers=1, result_ttl_s=0.5, data_dir=tmp_path)
    with live_server(create_app(config, fakes.FAST)) as base:
        job = wait_finished(base, post_photos(base, [("a.jpg", jpeg(), "image/jpeg")]).json()["id"])
        assert job["status"] == "done"
        deadline = time.monotonic() + 30
        while request(base, "GET", job["url"]).status != 404:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert not (tmp_path / job["id"]).exists()


def test_a_job_over_its_time_limit_fails_with_the_reason(tmp_path):
    config = ServerConfig(workers=1, job_timeout_s=1.5, data_dir=tmp_path)
    with live_server(create_app(config, fakes.SLOW)) as base:
        slow = post_photos(base, [("slow.jpg", jpeg(), "image/jpeg")]).json()
        fine = post_photos(base, [("fine.jpg", jpeg(), "image/jpeg")]).json()
        assert wait_finished(base, slow["id"])["error"].startswith("stopped after 2 s")
        assert wait_finished(base, fine["id"])["status"] == "done"


def test_no_disk_room_answers_503_with_retry_after(tmp_path):
    config = ServerConfig(workers=1, max_disk_bytes=50_000, result_bytes_per_image=40_000, data_dir=tmp_path)
    with live_server(create_app(config, fakes.FAST)) as base:
        first = post_photos(base, [("a.jpg", jpeg(), "image/jpeg")])
        assert first.status == 202
        second = post_photos(base, [("b.jpg", jpeg(), "image/jpeg")])  # the first's reservation is held
        if second.status == 202:  # the first had finished already: its real size is small
            assert wait_finished(base, second.json()["id"])["status"] == "done"
        big = post_photos(base, [("c.jpg", jpeg(), "image/jpeg"), ("d.jpg", jpeg(), "image/jpeg")])
        assert big.status == 503 and big.headers["retry-after"] == "60" and "disk" in big.json()["detail"]
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            j for j in (first.json()["id"], second.json().get("id")) if j)  # nothing left of the refused one
