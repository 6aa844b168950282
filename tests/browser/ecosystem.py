"""The ecosystem's real tools for the tests: the Khronos glTF validator (npm `gltf-validator`) and
three.js in headless Debian Chromium (npm `puppeteer-core`, which downloads no browser).

Installed by `.ci/run` (apt-get chromium, `npm ci`). Where they are absent the tests that need them
skip with the reason, except with FACERECON_REQUIRE_ECOSYSTEM=1 (set in CI), where they fail.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / "node_modules"
CHROMIUM = Path("/usr/bin/chromium")
HERE = Path(__file__).resolve().parent


def required() -> bool:
    """Whether missing tools are a failure (CI) rather than a skip."""
    return os.environ.get("FACERECON_REQUIRE_ECOSYSTEM") == "1"


def missing(*packages: str, chromium: bool = False) -> str | None:
    """Why the named npm packages (and Chromium) cannot be used here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm)"
    absent = [p for p in packages if not (NODE_MODULES / p / "package.json").is_file()]
    if absent:
        return f"npm packages {absent} not installed (run `npm ci` in the repository root)"
    if chromium and not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} not found (apt-get install chromium)"
    return None


def need(*packages: str, chromium: bool = False) -> None:
    """Skip the calling test (fail it under FACERECON_REQUIRE_ECOSYSTEM=1) when tools are missing."""
    reason = missing(*packages, chromium=chromium)
    if reason is not None:
        (pytest.fail if required() else pytest.skip)(reason)


class GltfValidator:
    """One `node validate_gltf.mjs` process for the whole session; `check(path)` -> its summary
    {errors, warnings, infos, messages}."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(["node", str(HERE / "validate_gltf.mjs")], cwd=REPO, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
        self._lock = threading.Lock()
        atexit.register(self.close)

    def check(self, path: str | Path) -> dict:
        with self._lock:
            self._proc.stdin.write(f"{Path(path).resolve()}\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the glTF validator process ended (exit code {self._proc.poll()})")
        return json.loads(line)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait(timeout=10)


_validator: GltfValidator | None = None


def gltf_validator() -> GltfValidator | None:
    """The session's validator, or None where it is not installed (a failure under
    FACERECON_REQUIRE_ECOSYSTEM=1)."""
    global _validator
    if _validator is None:
        reason = missing("gltf-validator")
        if reason is not None:
            if required():
                pytest.fail(reason)
            return None
        _validator = GltfValidator()
    return _validator


def assert_khronos_valid(path: str | Path) -> None:
    """Zero errors and zero warnings from the Khronos validator (nothing checked where it is absent)."""
    validator = gltf_validator()
    if validator is None:
        return
    report = validator.check(path)
    assert report["errors"] == 0 and report["warnings"] == 0, f"{path}: {report['messages']}"
