"""The extra outputs of issue 20 for one `Reconstruction`: fine detail maps, per-vertex uncertainty,
metric scale and gaze, written beside what `Reconstruction.save` writes; and for several photos of
one person (`compute_person_detail`), the shared static detail map and each photo's dynamic part.

    paths = save_with_extras(rec, "out/", detail=True, metric=True)   # rec.save with the extras
    paths = write_extras(rec, "out/", detail=True, metric=True)       # beside an earlier rec.save

Files: displacement.png (16-bit, mm = offset + scale * value, the scale in extras.json's and
params.json's `displacement`; in the model's own UV layout), normals.png (tangent-space normal map
of the detailed surface in the mesh files' atlas layout, 8-bit, OpenGL convention: +y up the
texture), uncertainty.ply (the mesh with a per-vertex `std` property, mm, and heat colours),
uncertainty.png (that heat map drawn over the photo), extras.json (`displacement`, `detail`,
`uncertainty`, `metric_scale`, `metric_scale_std`, `gaze`; what could not be computed is an
{"unavailable": why} entry, never a missing key or a traceback).

The meshes carry what the extras change (`save_with_extras` writes each once; `write_extras`
after `Reconstruction.save` writes them again): with a normal map, mesh.glb carries it as its
material's `normalTexture` and mesh.mtl names it (`norm`, `map_Bump`); with a metric scale, mesh.obj / .ply / .glb and uncertainty.ply are in true mm (every
position times `metric_scale`) and params.json's `metric` says so.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .errors import FaceReconError, FitError
from .fitting.detail import DetailConfig, atlas_normal_map, fit_detail
from .fitting.person_detail import PersonDetailConfig
from .fitting.gaze import eyes, fit_gaze, iris_centre
from .fitting.metric_scale import IRIS_DIAMETER_MM, IRIS_DIAMETER_STD_MM, estimate_metric_scale, model_size_std
from .fitting.uncertainty import shape_posterior, vertex_uncertainty
from .geometry.mesh import vertex_normals
from .io.export import supported_formats
from .io.images import save_image
from .io.maps import heat_colors, save_ply_scalar, save_png16
from .landmarks import load_correspondence
from .render import render_mesh

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


NEEDS_LIGHT = "fine detail needs the full mode's SH light (--mode full)"
NORMAL_MAP_SIZE = 512  # texels per side of normals.png (the atlas; the face gets about 60 % of it)


def _displacement_entry(path: Path, d: np.ndarray, max_mm: float) -> dict:
    """Write (S, S) `d` (mm) as a 16-bit PNG at `path`; its params/extras entry (offset, scale, layout)."""
    scale = save_png16(path, d, -max_mm, max_mm)
    return {"file": path.name, "units": "mm along the coarse normals = offset + scale * value",
            **scale.to_dict(), "size": int(d.shape[0]),
            "uv": "the model's own UV layout (not the mesh files' atlas), row 0 at v = 1"}


def _normal_map(rec: "Reconstruction", verts: np.ndarray, det, folder: Path, paths: dict,
                info: dict, write: bool = True) -> np.ndarray | None:
    """normals.png of `det` on `verts` in the mesh's atlas (when it has one; written unless not
    `write`: a mesh export that carries the map writes it); the map or None."""
    atlas = rec.texture_uv()
    if atlas is None:
        return None
    nmap = atlas_normal_map(rec.model, verts, det, atlas, NORMAL_MAP_SIZE)
    paths["normals"] = folder / "normals.png"
    if write:
        save_image(paths["normals"], nmap)
    info["normal_map"] = {"file": "normals.png", "uv": "the mesh files' atlas (mesh.obj vt, mesh.glb TEXCOORD_0)",
                          "convention": "tangent space, +y up the image (OpenGL / glTF)"}
    return nmap


def _feature_points(model, verts: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.landmark_points(torch.as_tensor(verts[None], dtype=model.dtype),
                                     load_correspondence(model))[0].double().numpy()


def write_detail(rec: "Reconstruction", folder: Path, config: DetailConfig | None = None,
                 write_normals: bool = True) -> tuple[dict, dict, np.ndarray | None]:
    """displacement.png and normals.png; (paths, extras entries, the normal map in the mesh's atlas).
    Needs a full-mode fit (light, albedo). `write_normals=False`: normals.png is left to the mesh
    export that carries the map (its path is still returned)."""
    cfg = config or DetailConfig()
    model = rec.model
    verts = rec.vertices()
    if rec.sh is None:
        return {}, {"detail": {"unavailable": NEEDS_LIGHT}}, None
    det = fit_detail(model, verts, rec.state, rec.photo_float, rec.vertex_colors(), sh=rec.sh, config=cfg,
                     triangles=_visible_triangles(model), feature_points=_feature_points(model, verts))
    paths = {"displacement": folder / "displacement.png"}
    entry = _displacement_entry(paths["displacement"], det.displacement, det.max_mm)
    info = {"rms_mm": round(det.rms_mm(), 5), "texel_mm": round(det.texel_mm, 4), "seconds": round(det.seconds, 3),
            "texels_fitted": det.losses["final"]["texels_fitted"]}
    nmap = _normal_map(rec, verts, det, folder, paths, info, write=write_normals)
    return paths, {"displacement": entry, "detail": info}, nmap


@dataclass
class PersonDetail:
    """What `compute_person_detail` made: the maps it wrote by name, person.json's entries, the
    normal map of the static detail on the neutral mesh and each photo's (None where there is none),
    and each photo's extras.json / params.json entries."""

    paths: dict[str, Path]
    entries: dict
    neutral_normal_map: np.ndarray | None
    photo_normal_maps: list
    photo_extras: list


def compute_person_detail(person: Any, folders: list[Path], person_folder: Path,
                          config: PersonDetailConfig | None = None) -> PersonDetail:
    """The several-photo detail fit (`fitting.person_detail`) of a full-mode `person.PersonReconstruction`
    `person` (a layer above: not imported here); writes the displacement maps, and leaves the
    meshes (which carry the normal maps, normals.png included), params.json and extras.json to
    the caller (`PersonReconstruction.save`: each mesh written once).

    `person_folder`: displacement.png, the shared static map (16-bit, scale in person.json's
    `displacement`); its normal map is for the neutral mesh. Each photo's folder (`folders`, in
    `person.photos`' order): displacement.png, that photo's combined map D_static + D_photo (what
    explains the photo, so the file means what a one-photo reconstruction's does; its normal map
    and meshes use it), and displacement_dynamic.png, the photo's expression-dependent part D_photo
    alone (0 off the texels it shows); both scales in the photo's entries (`displacement`,
    `displacement_dynamic`). A photo that shows none of the face region gets no maps (its entries
    say why). Without the full mode's light: no maps, person.json's `detail` says so.
    """
    from .fitting.person_detail import DetailPhoto, fit_person_detail

    recs = person.photos
    if any(r.sh is None for r in recs):
        return PersonDetail({}, {"detail": {"unavailable": NEEDS_LIGHT}}, None, [None] * len(recs),
                            [{"detail": {"unavailable": NEEDS_LIGHT}} for _ in recs])
    model = recs[0].model
    photos = []
    for r in recs:
        verts = r.vertices()
        photos.append(DetailPhoto(verts, r.state, r.photo_float, r.vertex_colors(), r.sh,
                                  _feature_points(model, verts)))
    fit = fit_person_detail(model, photos, config, triangles=_visible_triangles(model))
    static = fit.static
    person_folder.mkdir(parents=True, exist_ok=True)
    paths = {"person/displacement": person_folder / "displacement.png"}
    entry = _displacement_entry(paths["person/displacement"], static.displacement, static.max_mm)
    info = {"static_rms_mm": round(static.rms_mm(), 5), "texel_mm": round(static.texel_mm, 4),
            "seconds": round(fit.seconds, 3), "texels_seen_once": fit.losses["final"]["texels_seen_once"],
            "texels_seen_twice_or_more": fit.losses["final"]["texels_seen_twice_or_more"],
            "photos": {folders[k].name: {"dynamic_rms_mm": round(fit.dynamic_rms_mm(k), 5)} if fit.dynamic[k] is not None
                       else _unavailable(FitError(fit.skipped[k])) for k in range(len(recs))},
            "meaning": "displacement.png is the detail all photos share (static); each photo's folder holds its "
                       "combined map (displacement.png) and its expression-dependent part (displacement_dynamic.png)"}
    neutral = person.neutral_reconstruction()
    found: dict = {}
    neutral_map = _normal_map(neutral, neutral.vertices(), static, person_folder, found, info, write=False)
    paths.update({f"person/{k}": v for k, v in found.items()})
    photo_maps, photo_extras = [], []
    for k, (rec, folder) in enumerate(zip(recs, folders)):
        extras: dict = {}
        pmap = None
        if fit.dynamic[k] is None:
            extras["detail"] = _unavailable(FitError(fit.skipped[k]))
        else:
            folder.mkdir(parents=True, exist_ok=True)
            combined = fit.combined(k)
            own = {"displacement": folder / "displacement.png", "displacement_dynamic": folder / "displacement_dynamic.png"}
            extras["displacement"] = _displacement_entry(own["displacement"], combined.displacement, combined.max_mm)
            extras["displacement"]["meaning"] = "this photo's detail: the person's static map + its dynamic part"
            extras["displacement_dynamic"] = _displacement_entry(own["displacement_dynamic"], fit.dynamic[k],
                                                                 combined.max_mm)
            extras["displacement_dynamic"]["meaning"] = "the expression-dependent part alone (0 where unseen)"
            detail = {"rms_mm": round(combined.rms_mm(), 5), "dynamic_rms_mm": round(fit.dynamic_rms_mm(k), 5),
                      "static": "../person/displacement.png"}
            pmap = _normal_map(rec, rec.vertices(), combined, folder, own, detail, write=False)
            extras["detail"] = detail
            paths.update({f"{folder.name}/{n}": v for n, v in own.items()})
        photo_maps.append(pmap)
        photo_extras.append(extras)
    return PersonDetail(paths, {"displacement": entry, "detail": info}, neutral_map, photo_maps, photo_extras)


def write_photo_extras(folder: Path, extras: dict) -> dict[str, Path]:
    """A photo's extras.json, and its params.json (written by `Reconstruction.save`) gaining the
    `displacement` entries; the paths by name."""
    _update_params(folder, extras, False)
    (folder / "extras.json").write_text(json.dumps(extras, indent=1))
    return {"extras": folder / "extras.json"}


def write_uncertainty(rec: "Reconstruction", folder: Path, metric_scale: float = 1.0) -> tuple[dict, dict]:
    """uncertainty.ply and uncertainty.png from the fast fit's Laplace approximation (the PLY's
    positions and std times `metric_scale`)."""
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
    save_ply_scalar(paths["uncertainty_ply"], verts * metric_scale, tris, std * metric_scale, "std", colors)
    with torch.no_grad():
        out = render_mesh(torch.as_tensor(verts[None], dtype=torch.float32), torch.as_tensor(tris),
                          rec.state.pinhole(scale=rec.photo_scale), colors=torch.as_tensor(colors, dtype=torch.float32),
                          background=torch.as_tensor(rec.photo_float[None]), antialias=True)
    save_image(paths["uncertainty_png"], out.image[0].clamp(0, 1).numpy())
    return paths, {"uncertainty": {"file": "uncertainty.ply", "property": "std",
                                   "meaning": "std along the vertex normal, mm (Laplace approximation)",
                                   "face_mean_mm": round(float(std[face].mean() * metric_scale), 4),
                                   "face_max_mm": round(float(std[face].max() * metric_scale), 4),
                                   "heat_map_max_mm": round(hi * metric_scale, 4)}}


def metric_and_gaze(rec: "Reconstruction", iris_mm: float = IRIS_DIAMETER_MM,
                    iris_std_mm: float = IRIS_DIAMETER_STD_MM) -> dict:
    """extras entries metric_scale, metric_scale_std, metric and gaze; the iris is `iris_mm` +- `iris_std_mm`
    across (default: the adult population's; pass a known size with std 0)."""
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
                                  focal_known=rec.focal_source != "estimated", face_depth_mm=face_depth,
                                  iris_mm=iris_mm, iris_std_mm=iris_std_mm)
        out["metric_scale"], out["metric_scale_std"] = round(m.scale, 5), round(m.std, 5)
        out["metric"] = {"iris_scale": round(m.iris_scale, 5), "iris_std": round(m.iris_std, 5),
                         "prior_std": round(m.prior_std, 5), "iris_px": [round(float(x), 3) for x in m.iris_px],
                         "meaning": "multiply the meshes and translation by metric_scale for true millimetres"}
    except FaceReconError as err:
        out["metric_scale"] = out["metric_scale_std"] = None
        out["metric"] = _unavailable(err)
    return out


def output_mesh(rec: "Reconstruction", normal_map: np.ndarray | None = None, metric_scale: float = 1.0):
    """`rec.mesh` with `normal_map` ((S, S, 3) in the atlas of `rec.texture_uv()`, as normals.png)
    and every position times `metric_scale` (the same object when neither changes it)."""
    mesh = rec.mesh
    if metric_scale != 1.0:
        targets = None if mesh.morph_targets is None else {k: v * metric_scale for k, v in mesh.morph_targets.items()}
        base = None if mesh.base_vertices is None else mesh.base_vertices * metric_scale
        mesh = mesh.with_changes(vertices=mesh.vertices * metric_scale, morph_targets=targets, base_vertices=base)
    if normal_map is not None:
        mesh = mesh.with_changes(normal_map=normal_map, normal_map_file="normals.png")
    return mesh  # the texture is the same object: encoded once


def rewrite_meshes(rec: "Reconstruction", folder: Path, normal_map: np.ndarray | None = None,
                   metric_scale: float = 1.0) -> dict[str, Path]:
    """The mesh files again (after `Reconstruction.save`), as `output_mesh` makes them: all of them
    when the scale changes them, else mesh.glb and mesh.mtl only (mesh.obj and mesh.ply do not change)."""
    from .io.obj import mtl_text

    mesh = output_mesh(rec, normal_map, metric_scale)
    formats = supported_formats() if metric_scale != 1.0 else ["glb"]
    paths = {fmt: mesh.export(folder / f"mesh.{fmt}") for fmt in formats}
    if metric_scale == 1.0 and mesh.texture is not None and (folder / "mesh.mtl").is_file():
        (folder / "mesh.mtl").write_text(mtl_text(mesh.texture_file, normal_ref=mesh.normal_map_file))
    if (folder / "mesh.mtl").is_file():
        paths["mtl"] = folder / "mesh.mtl"
    return paths


def _update_params(folder: Path, extras: dict, scaled: bool) -> None:
    """params.json (when `Reconstruction.save` wrote one) gains `displacement` and `metric`."""
    path = folder / "params.json"
    if not path.is_file():
        return
    params = json.loads(path.read_text())
    for key in ("displacement", "displacement_dynamic"):
        if key in extras:
            params[key] = extras[key]
    if "metric_scale" in extras:
        why = extras.get("metric", {}).get("unavailable", "")
        params["metric"] = {"metric_scale": extras["metric_scale"], "metric_scale_std": extras["metric_scale_std"],
                            "meshes_in_true_mm": scaled,
                            "meaning": "mesh.obj, mesh.ply, mesh.glb and uncertainty.ply are in true mm: the fit's "
                                       "model-space mm times metric_scale; identity, expression, pose, translation, "
                                       "camera and landmarks.json stay at the fit's (the model's) scale" if scaled
                            else f"no metric scale ({why}): the meshes are at the model's scale"}
    path.write_text(json.dumps(params, indent=1))


@dataclass
class Extras:
    """What `compute_extras` made: the files it wrote by name, the extras.json entries, the normal map
    in the meshes' atlas (or None) and the scale the meshes take (1.0: none)."""

    paths: dict[str, Path]
    entries: dict
    normal_map: np.ndarray | None
    metric_scale: float


def compute_extras(rec: "Reconstruction", folder: str | Path, detail: bool = True, metric: bool = True,
                   uncertainty: bool = True, detail_config: DetailConfig | None = None,
                   write_normals: bool = True) -> Extras:
    """The extra outputs (module docstring) written into `folder`, all but the meshes and params.json
    (which the caller writes with them: `save_with_extras`, `write_extras`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    extras: dict = {}
    if metric:
        extras.update(metric_and_gaze(rec))
    scale = extras.get("metric_scale") or 1.0
    nmap = None
    if detail:
        try:
            p, e, nmap = write_detail(rec, folder, detail_config, write_normals=write_normals)
        except FaceReconError as err:
            p, e = {}, {"detail": _unavailable(err)}
        paths.update(p)
        extras.update(e)
    if uncertainty:
        try:
            p, e = write_uncertainty(rec, folder, scale)
        except FaceReconError as err:
            p, e = {}, {"uncertainty": _unavailable(err)}
        paths.update(p)
        extras.update(e)
    paths["extras"] = folder / "extras.json"
    paths["extras"].write_text(json.dumps(extras, indent=1))
    return Extras(paths, extras, nmap, scale)


def save_with_extras(rec: "Reconstruction", folder: str | Path, detail: bool = True, metric: bool = True,
                     uncertainty: bool = True, detail_config: DetailConfig | None = None) -> dict[str, Path]:
    """`rec.save(folder)` with the extra outputs, each mesh written once (with the normal map and in
    true mm where the extras say so); returns every path by name."""
    rec.check_finite()  # before seconds of extras, as rec.save would
    folder = Path(folder)
    ex = compute_extras(rec, folder, detail, metric, uncertainty, detail_config, write_normals=False)
    paths = rec.save(folder, mesh=output_mesh(rec, ex.normal_map, ex.metric_scale))
    _update_params(folder, ex.entries, ex.metric_scale != 1.0)
    paths.update(ex.paths)
    return paths


def write_extras(rec: "Reconstruction", folder: str | Path, detail: bool = True, metric: bool = True,
                 uncertainty: bool = True, detail_config: DetailConfig | None = None) -> dict[str, Path]:
    """Write the extra outputs (module docstring) into `folder` beside what `rec.save` wrote there,
    writing the meshes again where the extras change them; returns their paths by name
    ("extras": extras.json), with the meshes' paths when they were written again."""
    rec.check_finite()
    folder = Path(folder)
    ex = compute_extras(rec, folder, detail, metric, uncertainty, detail_config)
    paths = dict(ex.paths)
    if ex.normal_map is not None or ex.metric_scale != 1.0:
        paths.update(rewrite_meshes(rec, folder, ex.normal_map, ex.metric_scale))
    _update_params(folder, ex.entries, ex.metric_scale != 1.0)
    return paths
