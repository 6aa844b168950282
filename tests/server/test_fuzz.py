"""Fuzzed uploads against a real server: every one is answered 4xx with a reason, never 5xx, and
the server keeps serving (a good upload after them all still finishes)."""
from __future__ import annotations

import random

import pytest

from facerecon.server import ServerConfig, create_app

from . import fakes
from .live import live_server, multipart, post_photos, request, wait_finished
from .test_app import jpeg
from .test_uploads import png_header_only

LIMIT = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = ServerConfig(workers=1, max_upload_bytes=LIMIT, max_images=4, max_pixels=4_000_000,
                          data_dir=tmp_path_factory.mktemp("data"))
    with live_server(create_app(config, fakes.FAST)) as base:
        yield base


def _post(base: str, body: bytes, ctype: str | None, extra: dict | None = None):
    headers = {} if ctype is None else {"Content-Type": ctype}
    return request(base, "POST", "/v1/reconstructions", body, {**headers, **(extra or {})})


rng = random.Random(21)
CASES = {
    "random bytes": lambda: multipart([("x.jpg", rng.randbytes(5000), "image/jpeg")]),
    "random bytes after a JPEG marker": lambda: multipart([("x.jpg", b"\xff\xd8\xff\xe0" + rng.randbytes(3000), "image/jpeg")]),
    "truncated JPEG": lambda: multipart([("t.jpg", jpeg(640, 480)[:2500], "image/jpeg")]),
    "huge dimensions in the header": lambda: multipart([("big.png", png_header_only(50000, 40000), "image/png")]),
    "over the pixel limit": lambda: multipart([("big.png", png_header_only(3000, 2000), "image/png")]),
    "0 bytes": lambda: multipart([("empty.jpg", b"", "image/jpeg")]),
    "many files": lambda: multipart([(f"{k}.jpg", jpeg(), "image/jpeg") for k in range(30)]),
    "a GIF": lambda: multipart([("a.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif")]),
    "no image field": lambda: multipart([("a.jpg", jpeg(), "image/jpeg")], field_name="photo"),
    "image as a text field": lambda: (b"--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nhello\r\n--b--\r\n",
                                      "multipart/form-data; boundary=b"),
    "bad mode": lambda: multipart([("a.jpg", jpeg(), "image/jpeg")], {"mode": "../../etc"}),
    "garbage multipart": lambda: (rng.randbytes(2000), "multipart/form-data; boundary=zz"),
    "multipart without boundary": lambda: (b"--x\r\n\r\n", "multipart/form-data"),
    "JSON instead of multipart": lambda: (b'{"image": "aGVsbG8="}', "application/json"),
    "no content type": lambda: (b"abc", None),
    "over the size limit": lambda: multipart([("a.jpg", b"\xff\xd8\xff" + bytes(LIMIT + 10), "image/jpeg")]),
    "a file name that climbs": lambda: multipart([("../../../../tmp/evil.jpg", b"not an image", "image/jpeg")]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_upload_is_a_4xx_with_a_reason(server, case):
    body, ctype = CASES[case]()
    reply = _post(server, body, ctype)
    assert 400 <= reply.status < 500, (case, reply)
    assert reply.json()["detail"], reply


def test_a_lying_content_length_is_refused(server):
    body, ctype = multipart([("a.jpg", jpeg(), "image/jpeg")])
    assert _post(server, body, ctype, {"Content-Length": str(LIMIT * 10)}).status == 413


def test_random_fuzz_then_the_server_still_works(server):
    statuses = []
    for k in range(40):
        kind = k % 4
        data = jpeg(80, 60)
        if kind == 0:
            data = rng.randbytes(rng.randint(0, 4000))
        elif kind == 1:
            data = data[: rng.randint(0, len(data) - 1)]
        elif kind == 2:
            data = bytearray(data)
            for _ in range(20):
                data[rng.randrange(100, len(data))] = rng.randrange(256)
            data = bytes(data)
        else:
            data = png_header_only(rng.randint(1, 70000), rng.randint(1, 70000))
        reply = post_photos(server, [("f.jpg", data, rng.choice(["image/jpeg", "text/plain", "application/pdf"]))])
        statuses.append(reply.status)
        if reply.status == 202:  # a corrupted JPEG can still decode: it must then finish, not vanish
            assert wait_finished(server, reply.json()["id"])["status"] in ("done", "failed")
    assert all(s < 500 for s in statuses), statuses
    good = post_photos(server, [("ok.jpg", jpeg(), "image/jpeg")])
    assert good.status == 202 and wait_finished(server, good.json()["id"])["status"] == "done"
    assert request(server, "GET", "/v1/health").status == 200
