"""The extra outputs of issue 20 for one `Reconstruction`: fine detail maps, per-vertex uncertainty,
metric scale and gaze, written beside what `Reconstruction.save` writes.

    paths = write_extras(rec, "out/", detail=True, metric=True)

Files: displacement.png (16-bit, mm = offset + scale * value, the scale in extras.json's
`displacement`), normals.png (tangent-space normal map of the detailed surface, 8-bit, OpenGL
convention: +y up the texture), uncertainty.ply (the mesh with a per-vertex `std` property, mm, and
heat colours), uncertainty.png (that heat map drawn over the photo), extras.json (`displacement`,
`detail`, `uncertainty`, `metric_scale`, `metric_scale_std`, `gaze`; what could not be computed is
an {"unavailable": why} entry, never a missing key or a traceback).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .errors import FaceReconError, FitError
from .fitting.detail import DetailConfig, fit_detail, uv_maps
from .fitting.gaze import eyes, fit_gaze, iris_centre
from .fitting.metric_scale import estimate_metric_scale, model_size_std
from .fitting.uncertainty import shape_posterior, vertex_uncertainty
from .geometry.mesh import vertex_normals
from .io.images import save_image
from .io.maps import heat_colors, save_ply_scalar, save_png16
from .landmarks import load_correspondence
from .render import render_mesh
from .render.normal_map import tangent_space_normal_map

if TYPE_CHECKING:
    from .reconstruction import Reconstruction

HIDDEN_GROUPS = ("M_EyeOcclusion", "M_LacrimalFluid", "M_EyeBlend")


def _visible_triangles(model) -> np.ndarray:
    keep = np.ones(int(model.triangles.shape[0]), dtype=bool)
    for g in HIDDEN_GROUPS:
        if g in model.triangle_groups:
            keep[model.triangle_groups[g].cpu().numpy()] = False
    return model.triangles.cpu().numpy()[keep]


def _unavailable(err: Exception) -> dict:
    return {"unavailable": str(err)}


def write_detail(rec: "Reconstruction", folder: Path, config: DetailConfig | None = None) -> tuple[dict, dict]:
    """displacement.png and normals.png; (paths, extras entries). Needs a full-mode fit (light, albedo)."""
    cfg = config or DetailConfig()
    model = rec.model
    verts = rec.vertices()
    if rec.sh is None:
        return {}, {"detail": {"unavailable": "fine detail needs the full mode's SH light (--mode full)"}}
    with torch.no_grad():
        feats = model.landmark_points(torch.as_tensor(verts[None], dtype=model.dtype),
                                      load_correspondence(model))[0].double().numpy()
    det = fit_detail(model, verts, rec.state, rec.photo_float, rec.vertex_colors(), sh=rec.sh, config=cfg,
                     triangles=_visible_triangles(model), feature_points=feats)
    paths = {"displacement": folder / "displacement.png", "normals": folder / "normals.png"}
    scale = save_png16(paths["displacement"], det.displacement, -det.max_mm, det.max_mm)
    maps = uv_maps(model, verts, det.displacement.shape[0])
    nmap = tangent_space_normal_map(maps.positions.double(), maps.normals.double(),
                                    torch.as_tensor(det.displacement[None]).double(), maps.inside)
    save_image(paths["normals"], nmap[0].numpy())
    entry = {"file": "displacement.png", "units": "mm along the coarse normals = offset + scale * value",
             **scale.to_dict(), "size": int(det.displacement.shape[0]), "uv": "the mesh's UV layout, row 0 at v = 1"}
    info = {"rms_mm": round(det.rms_mm(), 5), "texel_mm": round(det.texel_mm, 4), "seconds": round(det.seconds, 3),
            "normal_map": "normals.png", "texels_fitted": det.losses["final"]["texels_fitted"]}
    return paths, {"displacement": entry, "detail": info}


def write_uncertainty(rec: "Reconstruction", folder: Path) -> tuple[dict, dict]:
    """uncertainty.ply and uncertainty.png from the fast fit's Laplace approximation."""
    model, view = rec.model, rec.view
    post = shape_posterior(view, [rec.correspondence], rec.landmarks.points[None], rec.landmark_weights, rec.state,
                           focal_fixed=rec.focal_source != "estimated")
    verts = rec.vertices()
    tris = _visible_triangles(model)
    normals = vertex_normals(verts, model.triangles.cpu().numpy())
    unc = vertex_uncertainty(post, model, normals=normals)
    std = unc.normal_std
    face = model.regions["face"].cpu().numpy() if "face" in model.regions else np.arange(len(verts))
    hi = float(np.percentile(std[face], 98))
    colors = heat_colors(std, 0.0, hi)
    paths = {"uncertainty_ply": folder / "uncertainty.ply", "uncertainty_png": folder / "uncertainty.png"}
    save_ply_scalar(paths["uncertainty_ply"], verts, tris, std, "std", colors)
    with torch.no_grad():
        out = render_mesh(torch.as_tensor(verts[None], dtype=torch.float32), torch.as_tensor(tris),
                          rec.state.pinhole(scale=rec.photo_scale), colors=torch.as_tensor(colors, dtype=torch.float32),
                          background=torch.as_tensor(rec.photo_float[None]), antialias=True)
    save_image(paths["uncertainty_png"], out.image[0].clamp(0, 1).numpy())
    return paths, {"uncertainty": {"file": "uncertainty.ply", "property": "std",
                                   "meaning": "std along the vertex normal, mm (Laplace approximation)",
                                   "face_mean_mm": round(float(std[face].mean()), 4),
                                   "face_max_mm": round(float(std[face].max()), 4), "heat_map_max_mm": round(hi, 4)}}


def metric_and_gaze(rec: "Reconstruction") -> dict:
    """extras entries metric_scale, metric_scale_std, metric and gaze."""
    model = rec.model
    verts = rec.vertices()
    points = rec.landmarks.points
    out: dict = {}
    try:
        gaze = fit_gaze(model, verts, rec.state, points)
        out["gaze"] = gaze.to_dict()
        found = eyes(model, verts)
        depths = np.array([-rec.state.camera_points(iris_centre(found[s], *gaze.angles_deg[s])[None])[0, 2]
                           for s in ("right", "left")])
    except FaceReconError as err:
        out["gaze"] = _unavailable(err)
        depths = None
    try:
        if depths is None:
            raise FitError("no eyes to measure the irises on")
        face = model.regions["narrow_face"].cpu().numpy()
        face_depth = float(-rec.state.camera_points(verts[face].mean(0)[None])[0, 2])
        m = estimate_metric_scale(points, depths, float(rec.state.camera.focal[0]), model_size_std(rec.view),
                                  focal_known=rec.focal_source != "estimated", face_depth_mm=face_depth)
        out["metric_scale"], out["metric_scale_std"] = round(m.scale, 5), round(m.std, 5)
        out["metric"] = {"iris_scale": round(m.iris_scale, 5), "iris_std": round(m.iris_std, 5),
                         "prior_std": round(m.prior_std, 5), "iris_px": [round(float(x), 3) for x in m.iris_px],
                         "meaning": "multiply the meshes and translation by metric_scale for true millimetres"}
    except FaceReconError as err:
        out["metric_scale"] = out["metric_scale_std"] = None
        out["metric"] = _unavailable(err)
    return out


def write_extras(rec: "Reconstruction", folder: str | Path, detail: bool = True, metric: bool = True,
                 uncertainty: bool = True, detail_config: DetailConfig | None = None) -> dict[str, Path]:
    """Write the extra outputs (module docstring) into `folder`; returns their paths by name ("extras":
    extras.json, whose `displacement` entry is what params.json needs for displacement.png)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    extras: dict = {}
    steps = [(detail, lambda: write_detail(rec, folder, detail_config), "detail"),
             (uncertainty, lambda: write_uncertainty(rec, folder), "uncertainty")]
    for wanted, step, name in steps:
        if not wanted:
            continue
        try:
            p, e = step()
        except FaceReconError as err:
            p, e = {}, {name: _unavailable(err)}
        paths.update(p)
        extras.update(e)
    if metric:
        extras.update(metric_and_gaze(rec))
    paths["extras"] = folder / "extras.json"
    paths["extras"].write_text(json.dumps(extras, indent=1))
    return paths
