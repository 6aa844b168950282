"""The exported ICT head in the ecosystem's real tools: the Khronos validator, and three.js
(GLTFLoader, OBJLoader + MTLLoader) in headless Debian Chromium driven by puppeteer-core.

Saves the rendering to out/ci-artifacts/three_chromium.png (GLB left with jawOpen 0.6, OBJ right).
Skips with the reason where node_modules or /usr/bin/chromium are absent; fails instead under
FACERECON_REQUIRE_ECOSYSTEM=1 (CI).
"""
from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import threading

import pytest

from facerecon.models.arkit import ARKIT_NAMES, ICT_EXTRAS

from ..io.meshes import ict_export_mesh
from .ecosystem import HERE, NODE_MODULES, REPO, assert_khronos_valid, need

ARTIFACTS = REPO / "out" / "ci-artifacts"


@pytest.fixture(scope="module")
def site(tmp_path_factory, ict_model):
    """A folder with page.html, three.js and the exported mesh.glb / mesh.obj + mesh.mtl + albedo.png."""
    root = tmp_path_factory.mktemp("site")
    mesh = ict_export_mesh(ict_model, texture_size=256)
    for ext in ("glb", "obj"):
        mesh.export(root / f"mesh.{ext}")
    shutil.copy(HERE / "page.html", root / "page.html")
    (root / "three").symlink_to(NODE_MODULES / "three")
    return root


@pytest.fixture(scope="module")
def served(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript",
                      ".mjs": "text/javascript", ".glb": "model/gltf-binary"}

    def log_message(self, *args) -> None:
        pass


def test_khronos_validator_on_the_ict_head(site):
    need("gltf-validator")
    assert_khronos_valid(site / "mesh.glb")


def test_three_js_in_chromium_loads_glb_and_obj(served, site):
    need("three", "puppeteer-core", chromium=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "three_chromium.png"
    run = subprocess.run(["node", str(HERE / "render_three.mjs"), served, str(shot)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    report = out["report"]
    assert "error" not in report, (report, out["console"])
    assert out["failedRequests"] == []
    assert report["morphNames"] == sorted(ARKIT_NAMES + ICT_EXTRAS)
    assert report["glbTexture"] and report["glbTextureSize"] == [256, 256]
    assert report["objTexture"] and report["objHasNormals"]
    assert report["jawOpenChangedPixels"] > 200, report
    assert report["objLitPixels"] > 0.05 * 320 * 320, report
    assert shot.is_file() and shot.stat().st_size > 1000
    assert not [c for c in out["console"] if c.startswith(("error", "pageerror"))], out["console"]


@pytest.fixture(scope="module")
def astronaut_site(tmp_path_factory, ict_dir):
    """The astronaut's real reconstruction (fast mode, photo texture) as `Reconstruction.save` writes it."""
    import numpy as np
    from skimage import data

    from facerecon.pipeline import Reconstructor

    root = tmp_path_factory.mktemp("astronaut")
    with Reconstructor() as rec:
        result = rec.reconstruct(data.astronaut().astype(np.float32) / 255.0, mode="fast")[0]
    result.save(root)
    shutil.copy(HERE / "page.html", root / "page.html")
    (root / "three").symlink_to(NODE_MODULES / "three")
    return root


@pytest.mark.parametrize("yaw", [0, 90, 180])
def test_three_js_shows_the_astronauts_textured_head_from_every_side(astronaut_site, yaw):
    need("three", "puppeteer-core", chromium=True)
    assert_khronos_valid(astronaut_site / "mesh.glb")
    handler = functools.partial(_QuietHandler, directory=str(astronaut_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"astronaut_three_yaw{yaw}.png"
        run = subprocess.run(["node", str(HERE / "render_three.mjs"), f"http://127.0.0.1:{server.server_address[1]}",
                              str(shot), f"yaw={yaw}"], cwd=REPO, capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    report = out["report"]
    assert "error" not in report, (report, out["console"])
    assert out["failedRequests"] == []
    assert report["morphNames"] == sorted(ARKIT_NAMES + ICT_EXTRAS)
    assert report["glbTexture"] and report["glbTextureSize"] == [1024, 1024] and report["objTexture"]
    assert report["objLitPixels"] > 0.05 * 320 * 320, report
