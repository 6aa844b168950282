"""A real uvicorn server on 127.0.0.1 (a free port) in a thread, and a small stdlib HTTP client."""
from __future__ import annotations

import contextlib
import http.client
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import uvicorn


@contextlib.contextmanager
def live_server(app) -> Iterator[str]:
    """Serve `app` on a free loopback port; yields its base URL. The app's lifespan runs (its
    worker processes start and stop with it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the uvicorn server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()


class Reply:
    def __init__(self, status: int, headers: dict, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:300]!r})"


def request(base: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 60) -> Reply:
    host = urlsplit(base)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def multipart(files: list[tuple[str, bytes, str]], fields: dict | None = None,
              field_name: str = "image") -> tuple[bytes, str]:
    """A multipart/form-data body of (file name, bytes, content type) files and text fields."""
    boundary = secrets.token_hex(12)
    parts = []
    for k, v in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    for name, data, ctype in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; filename="{name}"\r\n'
                     f"Content-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post_photos(base: str, files: list[tuple[str, bytes, str]], mode: str | None = "fast", **kw) -> Reply:
    body, ctype = multipart(files, {} if mode is None else {"mode": mode}, **kw)
    return request(base, "POST", "/v1/reconstructions", body, {"Content-Type": ctype})


def wait_finished(base: str, job_id: str, timeout: float = 300) -> dict:
    """Poll a job until it is done or failed; its last status."""
    deadline = time.monotonic() + timeout
    while True:
        status = request(base, "GET", f"/v1/reconstructions/{job_id}").json()
        if status["status"] in ("done", "failed") or time.monotonic() > deadline:
            return status
        time.sleep(0.05)
