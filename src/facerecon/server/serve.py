"""`facerecon serve [--host 127.0.0.1] [--port 8000] [--workers N]`: the web app and HTTP API.
(Here and not in `commands/`: the server is a layer above the commands.)

Needs the optional extra `facerecon[server]` (FastAPI, uvicorn, python-multipart). It listens on
the loopback address by default; another --host makes the service reachable from the network, where
anyone who can reach it can use it (there are no accounts), so the command says so.
"""
from __future__ import annotations

import ipaddress
import signal
import sys

from ..errors import UsageError


def serve_command(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> int:
    """Run the server until Ctrl-C or SIGTERM, which stop it gracefully (the jobs in progress fail
    with "the server stopped", the worker processes end); returns 0."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {port}")
    if workers < 1:
        raise UsageError(f"--workers must be >= 1, got {workers}")
    try:
        import uvicorn

        from .app import create_app
        from .config import ServerConfig
    except ImportError as exc:
        raise UsageError(f"facerecon serve needs the server extra: pip install 'facerecon[server]' ({exc})") from None
    if not _is_loopback(host):
        print(f"facerecon: warning: listening on {host}: anyone who can reach this address can use the server",
              file=sys.stderr)
    print(f"facerecon: serving on http://{host}:{port}/ (API docs at /docs); Ctrl-C stops", file=sys.stderr)
    # uvicorn handles SIGINT/SIGTERM while it runs, then raises the signal again for the handler
    # found before it: these make that a normal end instead of a death by signal
    stopped_by: list[int] = []
    saved = {s: signal.signal(s, lambda signum, frame: stopped_by.append(signum))
             for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.run(create_app(ServerConfig(workers=workers)), host=host, port=port, log_level="warning")
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
    print("facerecon: server stopped" + (f" by {signal.Signals(stopped_by[0]).name}" if stopped_by else ""),
          file=sys.stderr)
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
