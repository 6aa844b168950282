"""The web app end to end in headless Debian Chromium (puppeteer-core): upload the astronaut photo,
wait for the three.js viewer, check the vertex count the page reports against the GLB the server
made, a non-empty canvas that the jawOpen slider and the wireframe toggle change, and save the
screenshot to out/ci-artifacts/viewer_chromium.png. Also: the committed static files are the build
of web/ (esbuild). Skips where the tools are absent; fails instead under FACERECON_REQUIRE_ECOSYSTEM=1."""
from __future__ import annotations

import filecmp
import importlib.util
import json
import struct
import subprocess

import pytest

from .ecosystem import HERE, REPO, need, required

ARTIFACTS = REPO / "out" / "ci-artifacts"
STATIC = REPO / "src" / "facerecon" / "server" / "static"


def _need_server_extra() -> None:
    missing = [m for m in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(m) is None]
    if missing:
        (pytest.fail if required() else pytest.skip)(f"the server extra is not installed ({missing})")


def glb_vertex_count(glb: bytes) -> int:
    """Vertices of every primitive of a GLB (the POSITION accessors' counts)."""
    length, kind = struct.unpack_from("<I4s", glb, 12)
    assert kind == b"JSON"
    doc = json.loads(glb[20:20 + length])
    return sum(doc["accessors"][p["attributes"]["POSITION"]]["count"] for m in doc["meshes"] for p in m["primitives"])


def test_the_committed_viewer_is_the_build_of_web(tmp_path):
    need("esbuild", "three")
    run = subprocess.run(["node", str(REPO / "web" / "build.mjs"), str(tmp_path)], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    names = sorted(p.name for p in STATIC.iterdir())
    assert names == sorted(p.name for p in tmp_path.iterdir()) == ["index.html", "style.css", "viewer.js"]
    _, mismatch, errors = filecmp.cmpfiles(STATIC, tmp_path, names, shallow=False)
    assert not mismatch and not errors, f"rebuild the viewer: npm run build:web ({mismatch})"


def test_upload_and_view_the_astronaut_in_chromium(tmp_path, ict_dir):
    need("puppeteer-core", chromium=True)
    _need_server_extra()
    from skimage import data
    from PIL import Image

    from facerecon.server import ServerConfig, create_app

    from ..server.live import live_server, request

    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(photo, quality=92)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "viewer_chromium.png"
    with live_server(create_app(ServerConfig(workers=1, data_dir=tmp_path / "data"))) as base:
        run = subprocess.run(["node", str(HERE / "viewer_chromium.mjs"), base, str(photo), str(shot)], cwd=REPO,
                             capture_output=True, text=True, timeout=480)
        assert run.returncode == 0, run.stderr[-3000:]
        out = json.loads(run.stdout.strip().splitlines()[-1])
        report = out["report"]
        assert report is not None, out
        job = request(base, "GET", f"/v1/reconstructions/{report['jobId']}").json()
        glb = request(base, "GET", job["faces"][0]["files"]["mesh.glb"]).body
    assert out["error"] is None and out["failedRequests"] == [], out
    assert not [c for c in out["console"] if c.startswith(("error", "pageerror"))], out["console"]
    assert report["vertices"] == glb_vertex_count(glb)
    assert out["stats"].startswith(f"{report['vertices']} vertices")
    assert report["faces"] == 1 and report["morphTargets"] >= 52 and report["sliders"] == report["morphTargets"]
    assert out["litPixels"] > 0.1 * 640 * 640, out
    assert out["jawChangedPixels"] > 200 and out["wireframeChangedPixels"] > 200, out
    assert shot.is_file() and shot.stat().st_size > 10_000
