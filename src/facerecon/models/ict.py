"""ICT-FaceKit (Light) loaders: the converted `.npz` and the original published folder of OBJ files.

ICT-FaceKit is MIT-licensed (USC Institute for Creative Technologies). It ships centimetres; we
convert to millimetres. Identity weights are ~N(0, 1); the 53 expressions are ARKit-named
blendshapes with weights in [0, 1].
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelError
from .morphable import LandmarkEmbedding, MorphableModel
from ..geometry.meshfiles import read_obj

CM_TO_MM = 10.0
NPZ_NAME = "ict_facekit_light.npz"
NEUTRAL_OBJ = "generic_neutral_mesh.obj"
INDEX_JSON = "vertex_indices.json"
NUM_VERTICES = 26719

# Vertex ranges [start, end) of the mesh parts, as documented by ICT-FaceKit's README.
REGION_RANGES: dict[str, tuple[int, int]] = {
    "face": (0, 9409),
    "narrow_face": (0, 6706),
    "head_and_neck": (9409, 11248),
    "mouth_socket": (11248, 13294),
    "eye_socket_left": (13294, 13678),
    "eye_socket_right": (13678, 14062),
    "gums_and_tongue": (14062, 17039),
    "teeth": (17039, 21451),
    "eyeball_left": (21451, 23021),
    "eyeball_right": (23021, 24591),
    "lacrimal_fluid_left": (24591, 24795),
    "lacrimal_fluid_right": (24795, 24999),
    "eye_blend_left": (24999, 25023),
    "eye_blend_right": (25023, 25047),
    "eye_occlusion_left": (25047, 25199),
    "eye_occlusion_right": (25199, 25351),
    "eyelashes_left": (25351, 26035),
    "eyelashes_right": (26035, 26719),
}

_NPZ_KEYS = ("neutral", "identity_basis", "expression_basis", "expression_names", "triangles", "uv",
             "uv_triangles", "landmarks68")


def load_ict_npz(path: str | Path, cache: bool = True) -> MorphableModel:
    """Load the converted ICT-FaceKit Light `.npz` (see the README beside the shared model).

    The npz is compressed (0.3 s to inflate, plus 0.1 s to convert to mm); with `cache`, the
    arrays are kept uncompressed and in mm under `cache_dir()/converted/` and memory-mapped on
    later loads (see `_cache_folder` for the key).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: file not found")
    folder = _cache_folder(path) if cache else None
    if folder is not None and folder.is_dir():
        try:
            arrays = {f.stem: np.load(f, mmap_mode="c", allow_pickle=False) for f in folder.glob("*.npy")}
            return _from_arrays(path, arrays, length_scale=1.0)
        except (ModelError, ValueError, OSError, KeyError):
            pass  # a damaged cache entry: load the source again (and leave the entry for a rewrite)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in _NPZ_KEYS if k not in data.files]
            if missing:
                raise ModelError(f"{path}: not an ICT-FaceKit npz, missing arrays {missing}")
            arrays = {k: data[k] for k in data.files}
    except ModelError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise ModelError(f"{path}: corrupt or truncated npz ({type(exc).__name__}: {exc})") from None
    model = _from_arrays(path, arrays, length_scale=CM_TO_MM)
    if folder is not None and not folder.is_dir():
        _write_cache(folder, {**arrays, **{k: (arrays[k] * np.float32(CM_TO_MM)).astype(np.float32)
                                           for k in _LENGTH_KEYS}})
    return model


# arrays in centimetres in the npz, millimetres in the cache
_LENGTH_KEYS = ("neutral", "identity_basis", "expression_basis")
_CACHE_FORMAT = 1


def _cache_folder(path: Path) -> Path | None:
    """Where the converted form of `path` is cached, or None when there is no usable cache folder.

    The key is the source's resolved path, size and modification time (ns), not its SHA-256: hashing
    22 MB would cost about as much as the compressed load the cache saves, and a model file replaced
    in place changes its size or mtime.
    """
    from .manager import cache_dir

    try:
        st = path.stat()
        ident = f"{_CACHE_FORMAT}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    except OSError:
        return None
    return cache_dir() / "converted" / f"ict-{hashlib.sha256(ident.encode()).hexdigest()[:20]}"


def _write_cache(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the arrays as .npy files into a temporary sibling, then rename it to `folder` (so a
    reader never sees a partial entry, and of two concurrent writers one simply wins). Best effort:
    an unwritable cache only costs the next load its speed."""
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir(parents=True)
        for key, value in arrays.items():
            np.save(tmp / f"{key}.npy", np.ascontiguousarray(value), allow_pickle=False)
        os.replace(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def _from_arrays(path: Path, arrays: dict[str, np.ndarray], length_scale: float) -> MorphableModel:
    missing = [k for k in _NPZ_KEYS if k not in arrays]
    if missing:
        raise ModelError(f"{path}: not an ICT-FaceKit npz, missing arrays {missing}")
    regions = dict(REGION_RANGES)
    if "region_names" in arrays and "region_ranges" in arrays:
        regions = {str(n): (int(a), int(b)) for n, (a, b) in zip(arrays["region_names"], arrays["region_ranges"])}
    extra = {}
    for key in ("fitting_vertices", "rigid_vertices"):
        if key in arrays:
            extra[key.replace("_vertices", "")] = arrays[key].astype(np.int64)
    groups = {}
    if "triangle_material" in arrays and "materials" in arrays:
        tm = arrays["triangle_material"].astype(np.int64)
        groups = {str(name): np.nonzero(tm == i)[0] for i, name in enumerate(arrays["materials"])}
    return _build(
        source=str(path),
        neutral=arrays["neutral"],
        identity=arrays["identity_basis"],
        expression=arrays["expression_basis"],
        expression_names=[str(n) for n in arrays["expression_names"]],
        triangles=arrays["triangles"], uv=arrays["uv"], uv_triangles=arrays["uv_triangles"],
        landmarks68=arrays["landmarks68"], region_ranges=regions, extra_regions=extra, triangle_groups=groups,
        length_scale=length_scale,
    )


def load_ict_folder(folder: str | Path, require_complete: bool = False) -> MorphableModel:
    """Load the original ICT-FaceKit folder layout (`FaceXModel/`): `generic_neutral_mesh.obj`,
    `identity000.obj`..`identity099.obj`, one OBJ per expression named in `vertex_indices.json`.

    Identity and expression files that are absent are skipped (the model then has fewer modes)
    unless `require_complete` is set, in which case all 100 identities and every listed expression
    must be there.
    """
    folder = Path(folder)
    neutral_path = folder / NEUTRAL_OBJ
    index_path = folder / INDEX_JSON
    for p in (neutral_path, index_path):
        if not p.is_file():
            raise ModelError(f"{p}: file not found; an ICT-FaceKit folder needs {NEUTRAL_OBJ} and {INDEX_JSON}")
    try:
        index = json.loads(index_path.read_text())
        expression_list = list(index["expressions"])
        landmarks = np.asarray(index["idx_to_landmark_verts"], dtype=np.int64)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{index_path}: not an ICT-FaceKit vertex_indices.json ({exc})") from None
    neutral = read_obj(neutral_path)
    if neutral.uv_triangles is None:
        raise ModelError(f"{neutral_path}: faces carry no UV indices")

    def offsets(names: list[str]) -> tuple[list[str], list[np.ndarray]]:
        found, out = [], []
        for name in names:
            p = folder / f"{name}.obj"
            if not p.is_file():
                if require_complete:
                    raise ModelError(f"{p}: file not found (the ICT-FaceKit folder is incomplete)")
                continue
            target = read_obj(p, positions_only=True).vertices
            if target.shape != neutral.vertices.shape:
                raise ModelError(f"{p}: {len(target)} vertices, the neutral mesh has {len(neutral.vertices)}")
            found.append(name)
            out.append(target - neutral.vertices)
        return found, out

    _, identity = offsets([f"identity{i:03d}" for i in range(100)])
    expr_names, expression = offsets(expression_list)
    v = len(neutral.vertices)
    groups = {name: np.nonzero(neutral.triangle_material == i)[0] for i, name in enumerate(neutral.materials)}
    extra = {}
    for key, name in (("idx_to_fitting_verts", "fitting"), ("idx_to_rigid_verts", "rigid")):
        if key in index:
            extra[name] = np.asarray(index[key], dtype=np.int64)
    return _build(
        source=str(folder), neutral=neutral.vertices,
        identity=np.stack(identity) if identity else np.zeros((0, v, 3)),
        expression=np.stack(expression) if expression else np.zeros((0, v, 3)),
        expression_names=expr_names, triangles=neutral.triangles, uv=neutral.uv,
        uv_triangles=neutral.uv_triangles, landmarks68=landmarks,
        region_ranges=REGION_RANGES if v == NUM_VERTICES else {}, extra_regions=extra, triangle_groups=groups,
    )


def save_ict_npz(model: MorphableModel, path: str | Path) -> None:
    """Write a model loaded from ICT-FaceKit in the converted `.npz` layout (centimetres, float32)."""
    if model.landmarks68 is None:
        raise ModelError("cannot save an ICT npz without 68-point landmarks")
    tris = model.triangles.cpu().numpy()
    lm_tri = model.landmarks68.triangle_ids.cpu().numpy()
    lm_bary = model.landmarks68.barycentric.cpu().numpy()
    lm_vertices = tris[lm_tri, lm_bary.argmax(1)]
    names = [n for n in REGION_RANGES if n in model.regions]
    ranges = [(int(model.regions[n].min()), int(model.regions[n].max()) + 1) for n in names]
    materials = list(model.triangle_groups)
    tri_mat = np.full(len(tris), -1, dtype=np.int16)
    for i, name in enumerate(materials):
        tri_mat[model.triangle_groups[name].cpu().numpy()] = i
    arrays = dict(
        neutral=(model.mean.cpu().numpy() / CM_TO_MM).astype(np.float32),
        identity_basis=(model.identity_basis.cpu().numpy() / CM_TO_MM).astype(np.float32),
        expression_basis=(model.expression_basis.cpu().numpy() / CM_TO_MM).astype(np.float32),
        expression_names=np.asarray(model.expression_names),
        identity_names=np.asarray([f"identity{i:03d}" for i in range(model.num_identity)]),
        triangles=tris.astype(np.int32), uv=model.uv.cpu().numpy().astype(np.float32),
        uv_triangles=model.uv_triangles.cpu().numpy().astype(np.int32),
        triangle_material=tri_mat, materials=np.asarray(materials),
        landmarks68=lm_vertices.astype(np.int32),
        region_names=np.asarray(names), region_ranges=np.asarray(ranges, dtype=np.int32).reshape(-1, 2),
    )
    for key in ("fitting", "rigid"):
        if key in model.regions:
            arrays[f"{key}_vertices"] = model.regions[key].cpu().numpy().astype(np.int32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def _build(source: str, neutral, identity, expression, expression_names, triangles, uv, uv_triangles,
           landmarks68, region_ranges, extra_regions, triangle_groups, length_scale: float = CM_TO_MM) -> MorphableModel:
    neutral = np.asarray(neutral)
    v = neutral.shape[0] if neutral.ndim == 2 else -1
    for label, basis in (("identity_basis", identity), ("expression_basis", expression)):
        if basis.ndim != 3 or basis.shape[1:] != (v, 3):
            raise ModelError(f"{source}: {label} has shape {basis.shape}, expected (K, {v}, 3)")
    def f32(a, s: float = 1.0) -> torch.Tensor:
        a = np.asarray(a, dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(a * np.float32(s) if s != 1.0 else a))  # no copy of a map

    i64 = lambda a: torch.from_numpy(np.ascontiguousarray(np.asarray(a, dtype=np.int64)))  # noqa: E731
    tri = i64(triangles)
    if tri.ndim != 2 or tri.shape[1] != 3 or int(tri.max()) >= v or int(tri.min()) < 0:
        raise ModelError(f"{source}: triangles must be (F, 3) indices into {v} vertices")
    regions = {name: torch.arange(a, b) for name, (a, b) in region_ranges.items() if b <= v}
    regions.update({name: i64(idx) for name, idx in extra_regions.items()})
    lm = np.asarray(landmarks68, dtype=np.int64)
    if lm.shape != (68,) or lm.min() < 0 or lm.max() >= v:
        raise ModelError(f"{source}: landmarks68 must be 68 vertex indices in [0, {v})")
    face_mask = torch.zeros(v)
    face_mask[regions["narrow_face"] if "narrow_face" in regions else torch.arange(v)] = 1.0
    return MorphableModel(
        name="ict", version="ICT-FaceKit light (da5f95a)", mean=f32(neutral, length_scale),
        identity_basis=f32(identity, length_scale), identity_std=torch.ones(identity.shape[0]),
        expression_basis=f32(expression, length_scale), expression_names=tuple(expression_names),
        expression_kind="blendshape", triangles=tri, uv=f32(uv), uv_triangles=i64(uv_triangles),
        regions=regions, landmarks68=LandmarkEmbedding.from_vertices(lm, tri), face_mask=face_mask,
        triangle_groups={k: i64(v_) for k, v_ in triangle_groups.items()}, source=source,
    )
