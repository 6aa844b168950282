import json
from pathlib import Path

import numpy as np
import torch

from facerecon.detail_outputs import write_extras
from facerecon.fitting import FaceState, correspondence_on
from facerecon.geometry.meshfiles import read_ply
from facerecon.io.maps import PngScale, load_png16
from facerecon.landmarks import FaceLandmarks, load_correspondence
from facerecon.reconstruction import Reconstruction, register_model
from facerecon.render import render_mesh

SH = np.r_[[[1.0, 1.0, 1.0]], [[0.2, 0.2, 0.2]], [[0.3, 0.3, 0.3]], [[0.6, 0.6, 0.6]], np.zeros((5, 3))]


def _reconstruction(model, head, with_light=True) -> Reconstruction:
    register_model("ict-detail-test", model)
    emb = load_correspondence(head)
    corr = correspondence_on(head, emb.as_embedding(), sliding=emb.sliding.cpu().numpy())
    weights = np.where(emb.iris.cpu().numpy() | ~emb.valid.cpu().numpy(), 0.0, 1.0)
    albedo = np.full((head.num_vertices, 3), 0.6)
    state = FaceState.single(np.zeros(model.num_identity), np.zeros(model.num_expression), np.zeros(3),
                             np.array([0.0, -30.0, -500.0]), 700.0, np.array([160.0, 160.0]), (320, 320),
                             sh=SH if with_light else None, albedo=albedo if with_light else None)
    verts = model.mean.double().numpy()
    with torch.no_grad():
        img = render_mesh(torch.as_tensor(verts[None]).float(), model.triangles, state.pinhole(),
                          colors=torch.full((model.num_vertices, 3), 0.6), sh=torch.as_tensor(SH[None]).float(),
                          antialias=False).image[0].numpy()
        pts = state.project(model.landmark_points(torch.as_tensor(verts[None]).float(),
                                                  load_correspondence(model))[0].double().numpy())
    lm = FaceLandmarks(np.array([60.0, 60.0, 260.0, 260.0]), 0.99, pts, None, "mediapipe478")
    photo = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    return Reconstruction(state=state, mode="full" if with_light else "fast", model_source="ict-detail-test",
                          view_name="head", landmarks=lm, photo=photo, correspondence=corr, landmark_weights=weights)


def test_write_extras_writes_every_map_and_the_params(ict_model, ict_head, tmp_path):
    rec = _reconstruction(ict_model, ict_head)
    paths = write_extras(rec, tmp_path)
    for name in ("displacement", "normals", "uncertainty_ply", "uncertainty_png", "extras"):
        assert paths[name].is_file()
    extras = json.loads(paths["extras"].read_text())
    disp = extras["displacement"]
    d = load_png16(paths["displacement"], PngScale(disp["offset"], disp["scale"]))
    assert d.shape == (disp["size"], disp["size"]) and np.abs(d).max() <= 1.0 + 1e-6
    assert extras["detail"]["rms_mm"] < 0.1  # an undetailed face keeps a small map
    verts, _, _ = read_ply(paths["uncertainty_ply"])
    assert verts.shape == (ict_model.num_vertices, 3) and b"property float std" in paths["uncertainty_ply"].read_bytes()
    assert extras["uncertainty"]["face_mean_mm"] > 0
    assert 0.7 < extras["metric_scale"] < 1.4 and extras["metric_scale_std"] > 0
    assert set(extras["gaze"]["arkit"]) >= {"eyeLookInLeft", "eyeLookUpRight"}


def test_fast_mode_reports_detail_unavailable(ict_model, ict_head, tmp_path):
    rec = _reconstruction(ict_model, ict_head, with_light=False)
    paths = write_extras(rec, tmp_path, metric=False, uncertainty=False)
    extras = json.loads(paths["extras"].read_text())
    assert "unavailable" in extras["detail"] and "displacement" not in paths


def test_extras_rewrite_the_meshes_with_the_normal_map_and_in_true_mm(ict_model, ict_head, tmp_path):
    from facerecon.io import read_glb

    from .browser.ecosystem import assert_khronos_valid

    rec = _reconstruction(ict_model, ict_head)
    rec.save(tmp_path)
    paths = write_extras(rec, tmp_path)
    params = json.loads((tmp_path / "params.json").read_text())
    s = params["metric"]["metric_scale"]
    assert params["metric"]["meshes_in_true_mm"] and s == json.loads(paths["extras"].read_text())["metric_scale"]
    assert params["displacement"]["file"] == "displacement.png"
    glb = read_glb(tmp_path / "mesh.glb")
    assert "normalTexture" in glb["gltf"]["materials"][0]
    assert_khronos_valid(tmp_path / "mesh.glb")
    mtl = (tmp_path / "mesh.mtl").read_text()
    assert "norm normals.png" in mtl and (tmp_path / "normals.png").is_file()
    verts, _, _ = read_ply(tmp_path / "mesh.ply")
    mesh = rec.mesh.compact()
    assert np.allclose(verts, mesh.vertices * s, atol=1e-3)
    assert np.allclose(glb["positions"].max(0) * 1000, mesh.base_vertices.max(0) * s, atol=1e-2)


def test_without_a_metric_scale_only_the_glb_and_mtl_change(ict_model, ict_head, tmp_path):
    rec = _reconstruction(ict_model, ict_head)
    rec.save(tmp_path)
    obj, ply = (tmp_path / "mesh.obj").read_bytes(), (tmp_path / "mesh.ply").read_bytes()
    paths = write_extras(rec, tmp_path, metric=False)
    assert "obj" not in paths and (tmp_path / "mesh.obj").read_bytes() == obj
    assert (tmp_path / "mesh.ply").read_bytes() == ply
    assert "norm normals.png" in (tmp_path / "mesh.mtl").read_text()
    assert "metric" not in json.loads((tmp_path / "params.json").read_text())


def test_save_with_extras_writes_each_mesh_once_and_the_same_files(ict_model, ict_head, tmp_path, monkeypatch):
    from facerecon.detail_outputs import save_with_extras
    from facerecon.io import Mesh

    rec = _reconstruction(ict_model, ict_head)
    rec.save(tmp_path / "two_steps")
    write_extras(rec, tmp_path / "two_steps")
    exported: list[str] = []
    real_export = Mesh.export
    monkeypatch.setattr(Mesh, "export", lambda self, path: exported.append(Path(path).suffix) or real_export(self, path))
    paths = save_with_extras(rec, tmp_path / "once")
    assert sorted(exported) == [".glb", ".obj", ".ply"]  # one write each
    one, two = tmp_path / "once", tmp_path / "two_steps"
    assert sorted(p.name for p in one.iterdir()) == sorted(p.name for p in two.iterdir())
    assert {p.name for p in paths.values()} == {p.name for p in one.iterdir()}
    for name in ("mesh.glb", "mesh.obj", "mesh.ply", "mesh.mtl", "normals.png", "displacement.png", "uncertainty.ply"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    assert json.loads((one / "params.json").read_text())["metric"] == json.loads((two / "params.json").read_text())["metric"]


def test_person_detail_writes_the_static_map_and_each_photos_parts(ict_model, ict_head, tmp_path, monkeypatch):
    from facerecon.io import Mesh, read_glb
    from facerecon.person import PersonReconstruction

    recs = [_reconstruction(ict_model, ict_head), _reconstruction(ict_model, ict_head)]
    person = PersonReconstruction(recs[0].state, recs, ["a", "b"], np.ones(2), np.zeros(2), np.zeros(2), [{}, {}],
                                  mode="full")
    exported: list[str] = []
    real_export = Mesh.export
    monkeypatch.setattr(Mesh, "export", lambda self, path: exported.append(
        f"{Path(path).parent.name}/{Path(path).name}:{self.normal_map is not None}") or real_export(self, path))
    paths = person.save(tmp_path, detail=True)
    # every mesh written once, after the detail fit: each carries its normal map
    assert sorted(exported) == sorted(f"{d}/mesh.{f}:True" for d in ("person", "a", "b") for f in ("glb", "obj", "ply"))
    for d in ("person", "a", "b"):
        assert "normals.png" in (tmp_path / d / "mesh.mtl").read_text()
        assert "normalTexture" in read_glb(tmp_path / d / "mesh.glb")["gltf"]["materials"][0]
    summary = json.loads((tmp_path / "person" / "person.json").read_text())
    disp = summary["displacement"]
    static = load_png16(tmp_path / "person" / "displacement.png", PngScale(disp["offset"], disp["scale"]))
    assert static.shape == (disp["size"], disp["size"]) and np.abs(static).max() < 0.3
    assert (tmp_path / "person" / "normals.png").is_file() and paths["person/displacement"].is_file()
    assert set(summary["detail"]["photos"]) == {"a", "b"}
    for name in ("a", "b"):
        params = json.loads((tmp_path / name / "params.json").read_text())
        for key in ("displacement", "displacement_dynamic"):
            d = load_png16(tmp_path / name / params[key]["file"], PngScale(params[key]["offset"], params[key]["scale"]))
            assert d.shape == static.shape
        assert (tmp_path / name / "normals.png").is_file()
        assert json.loads((tmp_path / name / "extras.json").read_text())["detail"]["static"] == "../person/displacement.png"


def test_person_detail_in_fast_mode_says_why_not(ict_model, ict_head, tmp_path):
    from facerecon.person import PersonReconstruction

    recs = [_reconstruction(ict_model, ict_head, with_light=False)] * 2
    person = PersonReconstruction(recs[0].state, recs, ["a", "b"], np.ones(2), np.zeros(2), np.zeros(2), [{}, {}])
    person.save(tmp_path, detail=True)
    summary = json.loads((tmp_path / "person" / "person.json").read_text())
    assert "full" in summary["detail"]["unavailable"] and not (tmp_path / "person" / "displacement.png").exists()
