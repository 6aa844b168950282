"""One real reconstruction end to end through the API (real worker process, real model): two photos
of one person in one job, files served, the GLB valid for the Khronos validator."""
from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from facerecon.server import ServerConfig, create_app

from ..browser.ecosystem import assert_khronos_valid
from .live import live_server, post_photos, request, wait_finished


def _encoded(photo: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, fmt)
    return buf.getvalue()


def test_two_photos_reconstructed_and_served(tmp_path, ict_dir):
    from skimage import data

    photo = data.astronaut()
    files = [("astronaut.jpg", _encoded(photo, "JPEG"), "image/jpeg"),
             ("mirrored.png", _encoded(np.ascontiguousarray(photo[:, ::-1]), "PNG"), "image/png")]
    with live_server(create_app(ServerConfig(workers=1, data_dir=tmp_path / "data"))) as base:
        reply = post_photos(base, files, mode="fast")
        assert reply.status == 202, reply
        job = wait_finished(base, reply.json()["id"], timeout=600)
        assert job["status"] == "done", job
        assert job["note"] is None  # fitted together as one person (facerecon.person)
        assert [f["name"] for f in job["faces"]] == ["astronaut.jpg", "mirrored.png"]
        face = job["faces"][0]
        assert set(face["files"]) == {"albedo.png", "landmarks.json", "mesh.glb", "mesh.mtl", "mesh.obj", "mesh.ply",
                                      "overlay.png", "params.json"}
        assert face["model_vertices"] > 10000 and face["landmark_rms_px"] < 10
        assert abs(face["pose_deg"][0] + job["faces"][1]["pose_deg"][0]) < 5  # mirrored photo, mirrored yaw
        assert len(face["arkit"]) == 52
        glb = request(base, "GET", face["files"]["mesh.glb"])
        assert glb.status == 200 and glb.headers["content-type"] == "model/gltf-binary" and glb.body[:4] == b"glTF"
        (tmp_path / "mesh.glb").write_bytes(glb.body)
        assert_khronos_valid(tmp_path / "mesh.glb")
        params = json.loads(request(base, "GET", face["files"]["params.json"]).body)
        assert params["mode"] == "fast"
        overlay = request(base, "GET", face["files"]["overlay.png"])
        assert Image.open(io.BytesIO(overlay.body)).size == (512, 512)
