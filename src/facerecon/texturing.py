"""A full texture of the head from one photo, in one UV atlas that covers every material.

ICT-FaceKit lays its UVs out on 7 tiles side by side (u in [0, 7]) and several materials share a
tile; `FaceTexturer` re-packs them into one square atlas per material (the face gets about 60 % of
the texels) and, per photo, fills it:

- face skin: the photo unwrapped into UV space where the face is visible (back-facing, occluded,
  silhouette and grazing texels weighted down), the fitted SH shading divided out; what the photo
  does not show is copied from the mirrored side (the model's symmetry map turned into a texel
  correspondence), then taken from the fitted albedo (or the photo's median skin colour in fast
  mode), all three blended band by band so that no seam shows and the photo's detail stays;
- back of the head and neck: the face's colour along their common seam, smoothed and extended
  over the back (a screened harmonic extension on the mesh), so it continues the face's skin;
- eyes: sclera, an iris of the colour sampled in the photo at MediaPipe's iris points, with a dark
  pupil and a limbal ring, painted from the eyeball's geometry (the cornea shell is painted too,
  as the renderers here are opaque); teeth; gums and tongue, darker deeper in the mouth; lashes
  a shadowed skin tone (they are opaque cards without alpha).

Everything that depends only on the model (atlas, per-texel triangles and barycentrics, mirror
correspondence, seam extension, eye pattern) is computed once in `FaceTexturer(model, size)`;
`bake` then costs a z-buffer and a few passes over the texels. `FaceTexturer.for_model` keeps it
per process and on disk (`<cache_dir>/texturer/<key>.npz`, the key a hash of the model's geometry,
UVs, materials and this code), so a new process loads it instead of building it again. Units: mm, camera space as in
docs/conventions.md; colours linear RGB in [0, 1].
"""
from __future__ import annotations

import hashlib
import os
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch

from .errors import ModelError, UsageError
from .models import MorphableModel
from .models.manager import cache_dir
from .render import PinholeCamera, sh_shading, vertex_normals
from .render.bake import (
    atlas_uv,
    bilinear,
    depth_map,
    divide_shading,
    fill_by_correspondence,
    multiband_blend,
    nearest_texels,
    padding_gather,
    rasterize_uv,
    unwrap_image,
    TexelGrid,
)
from .render import bake as _bake_module

FACE = "M_Face"
BACK = "M_BackHead"
HIDDEN_GROUPS = ("M_EyeOcclusion", "M_LacrimalFluid", "M_EyeBlend")  # see-through shells
# share of the atlas per material: the face gets 64 % of the texels at 1024 (60 % at 256, where the
# padding takes more), the rest go into the strips beside and below it
ATLAS_WEIGHTS = {FACE: 0.68, BACK: 0.035, "M_Teeth": 0.035, "M_GumsTongue": 0.035, "M_IrisLeft": 0.035,
                 "M_IrisRight": 0.035, "M_ScleraLeft": 0.035, "M_ScleraRight": 0.035, "M_EyeLashes": 0.01,
                 "M_EyeOcclusion": 0.004, "M_LacrimalFluid": 0.004, "M_EyeBlend": 0.004}
OTHER_WEIGHT = 0.035  # a material not listed above
SOURCE_NONE, SOURCE_PHOTO, SOURCE_MIRRORED, SOURCE_FALLBACK, SOURCE_MATERIAL = range(5)
DEFAULT_SKIN = np.array([0.70, 0.55, 0.45])
DEFAULT_IRIS = np.array([0.25, 0.17, 0.10])
SCLERA = np.array([0.85, 0.83, 0.80])
PUPIL = np.array([0.02, 0.02, 0.02])
TEETH = np.array([0.85, 0.82, 0.75])
GUMS = np.array([0.55, 0.25, 0.25])
LASH_SHADE = 0.7  # lashes are opaque cards here (no alpha): a shadowed lid edge, not black paint
MOUTH_DARK = np.array([0.05, 0.02, 0.02])
IRIS_RADIUS_MM = 5.8  # ICT's iris disc ends there (measured on the mean eye)
PUPIL_FRACTION = 0.38
LIMBUS_FRACTION = 0.86  # the limbal ring darkens the iris from this fraction of its radius outwards
MIRROR_MAX_MM = 3.0  # a texel's mirror must lie this close to a face texel to be used
CORE_REGION = "narrow_face"  # the model's region photographed as is (outside it: skin colours only)
SEAM_SMOOTH_MM = 12.0
DISK_CACHE_KEEP = 4  # texturer files kept in the disk cache (about 70 MB each at 1024)  # the seam colours are averaged over this distance before being extended


@dataclass
class TextureInfo:
    """Coverage of the face texels by each source (fractions of the face's blending weight):
    photo (seen), mirrored (copied from the other side), fallback (fitted or median albedo);
    iris_color (3,) the colour used for the irises; skin (3,) the median skin albedo; source
    (S, S) uint8 where each texel's colour comes from: SOURCE_* (the dominant one on the face)."""

    photo: float
    mirrored: float
    fallback: float
    iris_color: np.ndarray
    skin: np.ndarray
    source: np.ndarray

    def to_dict(self) -> dict:
        return {"photo": round(self.photo, 4), "mirrored": round(self.mirrored, 4),
                "fallback": round(self.fallback, 4), "iris_color": [round(float(c), 4) for c in self.iris_color],
                "skin": [round(float(c), 4) for c in self.skin]}


class FaceTexturer:
    """Per-model state to bake a photo into a (size x size) atlas; build once, `bake` per photo.

    model: an ICT-like MorphableModel with uv, uv_triangles, symmetry and material groups (at least
    M_Face). Attributes: uv (T, 2) float32 the atlas UVs (use them with the model's uv_triangles);
    size.
    """

    _cache: "weakref.WeakKeyDictionary[MorphableModel, dict[int, FaceTexturer]]" = weakref.WeakKeyDictionary()

    @classmethod
    def for_model(cls, model: MorphableModel, size: int = 1024, disk: bool = True) -> "FaceTexturer":
        """The cached texturer of `model` at `size`: from this process's cache, else from the disk
        cache (`disk_cache_path`), else built (and then stored on disk when `disk`). An unreadable
        or stale cache file is rebuilt; a cache folder that cannot be written is skipped."""
        per_model = cls._cache.setdefault(model, {})
        if size not in per_model:
            path = disk_cache_path(model, size) if disk else None
            texturer = cls._load(path) if path is not None else None
            if texturer is None:
                texturer = cls(model, size)
                if path is not None:
                    texturer._store(path)
            per_model[size] = texturer
        return per_model[size]

    # the model-only state as named arrays (sparse matrices and the grid split into their parts)
    def _store(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {}
        for name, value in vars(self).items():
            if isinstance(value, np.ndarray):
                arrays[f"a.{name}"] = value
            elif isinstance(value, scipy.sparse.csr_matrix):
                for part in ("data", "indices", "indptr"):
                    arrays[f"s.{name}.{part}"] = getattr(value, part)
                arrays[f"s.{name}.shape"] = np.asarray(value.shape, np.int64)
            elif isinstance(value, TexelGrid):
                arrays[f"g.{name}.shape"] = np.asarray(value.shape, np.int64)
                arrays[f"g.{name}.factor"] = np.asarray(value.factor, np.int64)
                for part in ("cell", "corners", "bilinear"):
                    arrays[f"g.{name}.{part}"] = getattr(value, part)
            elif isinstance(value, int):
                arrays[f"i.{name}"] = np.asarray(value, np.int64)
            else:  # pragma: no cover - a new attribute type must be taught to the cache
                raise TypeError(f"FaceTexturer.{name}: cannot cache a {type(value).__name__}")
        for key in list(arrays):  # int64 indices stored as int32 (half the file), widened on load
            a = arrays[key]
            if a.dtype == np.int64 and a.size and -2**31 <= a.min() and a.max() < 2**31:
                arrays[key + "~"] = arrays.pop(key).astype(np.int32)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, path)
            # keep the few newest (one per model and size in use): stale keys are left by upgrades
            old = sorted(path.parent.glob("*.npz"), key=lambda f: f.stat().st_mtime, reverse=True)
            for f in old[DISK_CACHE_KEEP:]:
                f.unlink(missing_ok=True)
        except OSError:  # a read-only or full cache: the texturer still works, only slower next time
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass

    @classmethod
    def _load(cls, path: Path) -> "FaceTexturer | None":
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k.rstrip("~"): data[k].astype(np.int64) if k.endswith("~") else data[k]
                          for k in data.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            return None  # absent, truncated or not an npz: build it again
        texturer = cls.__new__(cls)
        try:
            for key in sorted(arrays):
                kind, name, *part = key.split(".")
                if kind == "a":
                    setattr(texturer, name, arrays[key])
                elif kind == "i":
                    setattr(texturer, name, int(arrays[key]))
                elif kind == "s" and part == ["shape"]:
                    setattr(texturer, name, scipy.sparse.csr_matrix(
                        (arrays[f"s.{name}.data"], arrays[f"s.{name}.indices"], arrays[f"s.{name}.indptr"]),
                        shape=tuple(int(x) for x in arrays[key])))
                elif kind == "g" and part == ["shape"]:
                    setattr(texturer, name, TexelGrid(
                        tuple(int(x) for x in arrays[key]), int(arrays[f"g.{name}.factor"]),
                        arrays[f"g.{name}.cell"], arrays[f"g.{name}.corners"], arrays[f"g.{name}.bilinear"]))
        except (KeyError, ValueError, TypeError):
            return None
        missing = set(_TEXTURER_FIELDS) - set(vars(texturer))
        return None if missing else texturer

    def __init__(self, model: MorphableModel, size: int = 1024) -> None:
        if model.uv is None or model.uv_triangles is None:
            raise ModelError(f"model {model.name!r} has no UV coordinates; a texture needs them")
        if FACE not in model.triangle_groups:
            raise ModelError(f"model {model.name!r} has no {FACE} material group; the texturer needs ICT's materials")
        if not 16 <= size <= 8192:
            raise UsageError(f"texture size must be in [16, 8192], got {size}")
        self.size = size
        self.num_vertices = model.num_vertices
        tri = model.triangles.cpu().numpy().astype(np.int64)
        self.triangles = tri
        uv_tri = model.uv_triangles.cpu().numpy().astype(np.int64)
        mean = model.mean.detach().cpu().double().numpy()
        groups = {k: v.cpu().numpy().astype(np.int64) for k, v in model.triangle_groups.items()}
        grouped = np.zeros(len(tri), dtype=bool)
        for ids in groups.values():
            grouped[ids] = True
        if not grouped.all():
            groups["_rest"] = np.flatnonzero(~grouped)
        names = sorted(groups, key=lambda g: (-ATLAS_WEIGHTS.get(g, OTHER_WEIGHT), g))
        atlas = atlas_uv(model.uv.cpu().numpy(), uv_tri, [groups[g] for g in names],
                         [ATLAS_WEIGHTS.get(g, OTHER_WEIGHT) for g in names], padding=max(2, size // 256) / size)
        self.uv = atlas.astype(np.float32)
        raster = rasterize_uv(self.uv, uv_tri, size)
        group_of = np.empty(len(tri), dtype=object)
        for g in names:
            group_of[groups[g]] = g
        tex_group = group_of[raster.triangle]
        hidden = [g for g in HIDDEN_GROUPS if g in groups]
        self.occluders = tri[np.isin(group_of, hidden, invert=True)]

        def part(*gs: str):
            keep = np.isin(group_of, gs)
            sub = raster.select(keep)
            return sub.texel, sub.interpolation_matrix(tri, self.num_vertices)

        # face: interpolation, mirror correspondence
        self.face_texel, self.face_w = part(FACE)
        face_pts = self.face_w @ mean
        sym = model.symmetry.cpu().numpy()
        self.face_mirror = nearest_texels(face_pts, self.face_w @ mean[sym], MIRROR_MAX_MM)
        self.face_grid = TexelGrid.build(self.face_texel, size, factor=4)
        # the inner face (no neck, ears or scalp) is trusted as photographed; elsewhere only skin-like
        # colours are (clothes, hair and background often cover those parts)
        try:
            inner = np.zeros(self.num_vertices)
            inner[model.region_vertices((CORE_REGION,)).cpu().numpy()] = 1.0
            self.face_core = np.clip(self.face_w @ inner, 0, 1).astype(np.float32)
        except UsageError:
            self.face_core = np.ones(len(self.face_texel), np.float32)

        # back of the head: extension of the seam's colours
        self.back_texel, self.back_w = part(BACK)
        self._init_back(tri, groups, mean, face_pts)

        # eyes, mouth, lashes: a static base plus, on eye texels, a multiple of the iris colour
        self.static_texel = np.zeros(0, np.int64)
        self.static_rgb = np.zeros((0, 3), np.float32)
        self.eye_texel, eye_w = part("M_IrisLeft", "M_IrisRight", "M_ScleraLeft", "M_ScleraRight")
        self.eye_base, self.eye_iris = _eye_pattern(eye_w @ mean, mean, tri, groups)
        self.lash_texel, _ = part("M_EyeLashes")
        for gs, paint in ((("M_Teeth",), _teeth), (("M_GumsTongue",), _gums)):
            texel, w = part(*gs)
            self.static_texel = np.concatenate([self.static_texel, texel])
            self.static_rgb = np.concatenate([self.static_rgb, paint(w @ mean).astype(np.float32)])
        self.skin_texel = np.flatnonzero(np.isin(tex_group, hidden + ["_rest"]))
        self.skin_texel = raster.texel[self.skin_texel]
        covered = np.zeros(size * size, dtype=bool)
        covered[raster.texel] = True
        self.pad_dst, self.pad_src = padding_gather(covered.reshape(size, size), radius=max(2, size // 256))
        self.used_texel = raster.texel

    def _init_back(self, tri: np.ndarray, groups: dict[str, np.ndarray], mean: np.ndarray,
                   face_pts: np.ndarray) -> None:
        face_v = np.unique(tri[groups[FACE]])
        back_v = np.unique(tri[groups[BACK]]) if BACK in groups else np.zeros(0, np.int64)
        seam = np.intersect1d(face_v, back_v)
        self.back_vertices = back_v
        if len(seam) == 0 or len(back_v) == 0:
            self.seam_texel = np.zeros(0, np.int64)
            self.back_from_seam = np.zeros((len(back_v), 0))
            self.back_from_skin = np.ones(len(back_v))
            return
        self.seam_texel = nearest_texels(face_pts, mean[seam], np.inf)
        d2 = ((mean[seam][:, None] - mean[seam][None]) ** 2).sum(-1)
        smooth = np.exp(-d2 / (2 * SEAM_SMOOTH_MM**2))
        smooth /= smooth.sum(1, keepdims=True)
        # screened harmonic extension over the back's mesh graph, the seam fixed: (L + eps) x = eps skin
        local = -np.ones(self.num_vertices, np.int64)
        local[back_v] = np.arange(len(back_v))
        t = local[tri[groups[BACK]]]
        i = np.concatenate([t[:, 0], t[:, 1], t[:, 2]])
        j = np.concatenate([t[:, 1], t[:, 2], t[:, 0]])
        adj = scipy.sparse.coo_matrix((np.ones(len(i)), (i, j)), shape=(len(back_v),) * 2).tocsr()
        adj = ((adj + adj.T) > 0).astype(np.float64)
        lap = scipy.sparse.diags(np.asarray(adj.sum(1)).ravel()) - adj
        is_seam = np.isin(back_v, seam)
        free, fixed = np.flatnonzero(~is_seam), np.flatnonzero(is_seam)
        eps = 1e-3
        a_ff = (lap[free][:, free] + eps * scipy.sparse.identity(len(free))).tocsc()
        solve = scipy.sparse.linalg.splu(a_ff)
        seam_pos = {v: k for k, v in enumerate(seam)}
        order = np.array([seam_pos[v] for v in back_v[fixed]])
        from_fixed = solve.solve(-(lap[free][:, fixed]).toarray())  # (n_free, n_fixed)
        ext = np.zeros((len(back_v), len(seam)))
        ext[free[:, None], order[None, :]] = from_fixed
        ext[fixed, order] = 1.0
        self.back_from_seam = ext @ smooth  # (n_back, n_seam) from the raw seam colours
        self.back_from_skin = 1.0 - self.back_from_seam.sum(1)

    # ------------------------------------------------------------------------------------ bake
    def bake(self, vertices: np.ndarray, camera: PinholeCamera, image: np.ndarray, sh: np.ndarray | None = None,
             albedo: np.ndarray | None = None, iris_points: np.ndarray | None = None,
             occluders: np.ndarray | None = None) -> tuple[np.ndarray, TextureInfo]:
        """Bake a photo into the atlas.

        vertices (V, 3) the full model's vertices in camera space (mm); camera a PinholeCamera of
        batch 1 (only its intrinsics and image_size are used: the vertices are already in camera
        space); image (H, W, 3) float in [0, 1]; sh (9, 3) the fitted SH light (camera space) or
        None (flat ambient: the photo's colours are the albedo); albedo (V, 3) the fitted
        per-vertex albedo or None; iris_points (10, 2) px MediaPipe's iris points (468-477: centre
        then 4 boundary points, for each eye) or None; occluders (F', 3) the triangles that can
        hide the face (default: the model's less its see-through shells). Returns (texture
        (S, S, 3) float32 in [0, 1] for the atlas uv `self.uv`, TextureInfo).
        """
        v = _check(vertices, (self.num_vertices, 3), "vertices")
        if image.ndim != 3 or image.shape[2] != 3:
            raise UsageError(f"image must have shape (H, W, 3), got {image.shape}")
        if tuple(image.shape[:2]) != tuple(camera.image_size):
            raise UsageError(f"image is {image.shape[:2]} but the camera's image_size is {camera.image_size}")
        image = np.asarray(image, dtype=np.float32)
        if not np.isfinite(image).all():
            raise UsageError("image contains NaN or inf")
        if sh is not None:
            sh = _check(sh, (9, 3), "sh")
        if albedo is not None:
            albedo = _check(albedo, (self.num_vertices, 3), "albedo")
        size = self.size
        tex = np.zeros((size * size, 3), np.float32)

        # face: the photo where seen, de-shaded
        vt = torch.as_tensor(v)[None]
        normals = vertex_normals(vt, torch.as_tensor(self.triangles))[0].numpy()
        facing = -(normals * v).sum(1) / np.maximum(np.linalg.norm(v, axis=1), 1e-9)
        shading = (np.ones_like(v) if sh is None
                   else sh_shading(torch.as_tensor(normals)[None], torch.as_tensor(sh)[None])[0].numpy())
        # float32 like face_w: a float64 operand would make scipy copy the matrix to float64 every call
        per_texel = self.face_w @ np.concatenate([v, facing[:, None], shading], 1).astype(np.float32)
        depth, scale = depth_map(camera, v, self.occluders if occluders is None else occluders)
        facing_t = per_texel[:, 3]
        front = np.flatnonzero(facing_t > 0)  # the others cannot be seen: skip them
        colors = np.zeros((len(facing_t), 3), np.float32)
        w_a = np.zeros(len(facing_t), np.float32)
        colors[front], w_a[front] = unwrap_image(image, camera, per_texel[front, :3], facing_t[front], depth, scale)
        alb_a = divide_shading(colors, per_texel[:, 4:].astype(np.float32))
        core = w_a * self.face_core
        skin = _weighted_median(alb_a, core) if (core > 0.5).sum() > 50 else DEFAULT_SKIN
        like = _skin_likeness(self.face_grid.smooth(alb_a), skin) ** 2  # of the area, so that edges do not count
        w_a = w_a * (self.face_core + (1 - self.face_core) * like)
        # the mirrored side, then the fitted or median albedo
        alb_b, w_b = fill_by_correspondence(alb_a, w_a, self.face_mirror)
        alb_c = (np.broadcast_to(skin.astype(np.float32), alb_a.shape) if albedo is None
                 else np.clip(self.face_w @ albedo.astype(np.float32), 0, 1))
        wt_a = w_a
        wt_b = (1 - w_a) * w_b
        wt_c = (1 - w_a) * (1 - w_b) + 1e-3
        face = multiband_blend(self.face_grid, np.stack([alb_a, alb_b, alb_c]),
                               np.stack([w_a > 0, w_b > 0, np.ones_like(w_a, bool)]), np.stack([wt_a, wt_b, wt_c]))
        tex[self.face_texel] = face
        total = float(wt_a.sum() + wt_b.sum() + wt_c.sum())

        # back of the head and neck: the seam's colours extended
        if len(self.back_vertices):
            seam = tex[self.face_texel[self.seam_texel]] if len(self.seam_texel) else np.zeros((0, 3))
            vc = np.zeros((self.num_vertices, 3))
            vc[self.back_vertices] = self.back_from_seam @ seam + self.back_from_skin[:, None] * skin
            tex[self.back_texel] = self.back_w @ vc.astype(np.float32)

        # eyes and the rest
        iris = _iris_color(image, iris_points)
        if sh is not None:
            iris = iris / np.maximum(sh_shading(torch.tensor([[[0.0, 0.0, 1.0]]], dtype=torch.float64),
                                                torch.as_tensor(sh)[None])[0, 0].numpy(), 0.05)
        iris = np.clip(iris, 0, 1)
        tex[self.eye_texel] = self.eye_base + self.eye_iris[:, None] * iris.astype(np.float32)
        tex[self.static_texel] = self.static_rgb
        tex[self.skin_texel] = skin
        tex[self.lash_texel] = skin * LASH_SHADE
        tex[self.pad_dst] = tex[self.pad_src]
        source = np.full(size * size, SOURCE_NONE, np.uint8)
        source[self.used_texel] = SOURCE_MATERIAL
        source[self.face_texel] = np.where(wt_a >= np.maximum(wt_b, wt_c), SOURCE_PHOTO,
                                           np.where(wt_b >= wt_c, SOURCE_MIRRORED, SOURCE_FALLBACK))
        info = TextureInfo(photo=float(wt_a.sum()) / total, mirrored=float(wt_b.sum()) / total,
                           fallback=float(wt_c.sum()) / total, iris_color=iris, skin=np.asarray(skin, np.float64),
                           source=source.reshape(size, size))
        return np.clip(tex.reshape(size, size, 3), 0, 1), info

_TEXTURER_FIELDS = ("size", "num_vertices", "triangles", "uv", "occluders", "face_texel", "face_w", "face_mirror",
                    "face_grid", "face_core", "back_texel", "back_w", "back_vertices", "seam_texel",
                    "back_from_seam", "back_from_skin", "static_texel", "static_rgb", "eye_texel", "eye_base",
                    "eye_iris", "lash_texel", "skin_texel", "pad_dst", "pad_src", "used_texel")


def disk_cache_path(model: MorphableModel, size: int) -> Path:
    """Where `FaceTexturer.for_model` keeps the texturer of `model` at `size`: named by a hash of
    everything the texturer reads from the model (mean shape, triangles, UVs, symmetry, material
    groups, the trusted face region) and of the code that builds it (this module and
    render/bake.py), so a changed model or a new release never reads a stale file."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"texturer-v1 size={size} V={model.num_vertices}".encode())
    for source in (__file__, _bake_module.__file__):
        h.update(Path(source).read_bytes())
    tensors = [model.mean, model.triangles, model.uv, model.uv_triangles, model.symmetry]
    for t in tensors:
        h.update(b"-" if t is None else np.ascontiguousarray(t.detach().cpu().numpy()).tobytes())
    for name in sorted(model.triangle_groups):
        h.update(name.encode())
        h.update(np.ascontiguousarray(model.triangle_groups[name].cpu().numpy()).tobytes())
    try:
        h.update(np.ascontiguousarray(model.region_vertices((CORE_REGION,)).cpu().numpy()).tobytes())
    except UsageError:
        h.update(b"no-core-region")
    return cache_dir() / "texturer" / f"{h.hexdigest()}.npz"


def face_texture(vertices: np.ndarray, triangles: np.ndarray | None, camera: PinholeCamera, image: np.ndarray,
                 sh: np.ndarray | None, albedo: np.ndarray | None, model: MorphableModel,
                 iris_points: np.ndarray | None = None, size: int = 1024) -> tuple[np.ndarray, np.ndarray, dict]:
    """A full head texture from a photo (see the module docstring).

    vertices (V, 3) the full model's vertices in camera space (mm); triangles (F', 3) the triangles
    that may hide the face in the photo, or None for the model's opaque ones; camera, image
    (H, W, 3) float [0, 1], sh (9, 3) or None (fast mode), albedo (V, 3) or None, iris_points
    (10, 2) px or None: see `FaceTexturer.bake`. Returns (texture (S, S, 3) float32, atlas uv
    (T, 2) float32 to use with model.uv_triangles, info dict of coverage fractions and colours).
    The per-model work is cached (`FaceTexturer.for_model`).
    """
    texturer = FaceTexturer.for_model(model, size)
    tex, info = texturer.bake(vertices, camera, image, sh=sh, albedo=albedo, iris_points=iris_points,
                              occluders=None if triangles is None else np.asarray(triangles, dtype=np.int64))
    return tex, texturer.uv, info.to_dict()


# ---------------------------------------------------------------------------------------- helpers
def _check(a, shape: tuple[int, int], name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.shape != shape:
        raise UsageError(f"{name} must have shape {shape}, got {a.shape}")
    if not np.isfinite(a).all():
        raise UsageError(f"{name} contains NaN or inf")
    return a


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-channel median of the values (K, 3) whose weight is above 0.5 (of every 7th of them:
    enough for a median)."""
    return np.median(values[weights > 0.5][::7], axis=0).astype(np.float64)


def _skin_likeness(rgb: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """(K,) in [0, 1]: 1 for colours (K, 3) of the skin's chroma and about its brightness, 0 for
    much darker or brighter ones (clothes, hair, background) or ones of another hue."""
    rgb = np.asarray(rgb, dtype=np.float32)  # float32 throughout: ~5x quicker on a face's ~650k texels
    skin = np.asarray(skin, dtype=np.float32)
    lum = rgb.sum(1) + np.float32(1e-3)
    ratio = lum / (skin.sum() + np.float32(1e-3))
    chroma = np.abs(rgb / lum[:, None] - (skin / (skin.sum() + np.float32(1e-3)))[None]).sum(1)
    return (np.clip(1 - np.abs(np.log(ratio)) / np.float32(0.5), 0, 1)
            * np.clip(1 - chroma / np.float32(0.12), 0, 1)).astype(np.float32)


def _iris_color(image: np.ndarray, points: np.ndarray | None) -> np.ndarray:
    """Median colour of the iris annulus (between the pupil and the limbus), both eyes pooled, the
    brightest third dropped (sclera, highlights); the default brown without points."""
    if points is None:
        return DEFAULT_IRIS.copy()
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (10, 2) or not np.isfinite(points).all():
        raise UsageError(f"iris_points must be MediaPipe's 10 iris points (10, 2) px, got {points.shape}")
    h, w = image.shape[:2]
    samples = []
    for eye in (points[:5], points[5:]):
        centre = eye[0]
        radius = float(np.linalg.norm(eye[1:] - centre, axis=1).mean())
        if radius < 0.5:
            continue
        ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        rad = np.linspace(0.45, 0.85, 5) * radius
        x = centre[0] + np.outer(rad, np.cos(ang)).ravel()
        y = centre[1] + np.outer(rad, np.sin(ang)).ravel()
        ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        if ok.any():
            samples.append(bilinear(image, x[ok] - 0.5, y[ok] - 0.5))
    if not samples:
        return DEFAULT_IRIS.copy()
    s = np.concatenate(samples)
    lum = s.mean(1)
    keep = lum <= np.quantile(lum, 2 / 3)
    return np.median(s[keep], axis=0).astype(np.float64)


def _eye_pattern(points: np.ndarray, mean: np.ndarray, tri: np.ndarray, groups: dict[str, np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(base (K, 3), iris weight (K,)) for eye texels at model-space points (K, 3): colour = base +
    weight * iris colour. Each eye looks along +z from the front-most point of its sclera."""
    fronts = []
    for side in ("Left", "Right"):
        g = "M_Sclera" + side if "M_Sclera" + side in groups else "M_Iris" + side
        if g in groups:
            vids = np.unique(tri[groups[g]])
            fronts.append(mean[vids[np.argmax(mean[vids, 2])]])
    if not fronts:
        return np.broadcast_to(SCLERA, points.shape).astype(np.float32), np.zeros(len(points), np.float32)
    fronts = np.array(fronts)
    near = np.argmin(((points[:, None, :2] - fronts[None, :, :2]) ** 2).sum(-1), axis=1)
    d = points - fronts[near]
    r = np.hypot(d[:, 0], d[:, 1]) / IRIS_RADIUS_MM
    front = d[:, 2] > -4.5
    ang = np.arctan2(d[:, 1], d[:, 0])
    streaks = 1 + 0.12 * np.sin(23 * ang) * np.sin(7 * ang + 1.3) + 0.15 * (r - 0.6)
    iris_w = np.where(r < LIMBUS_FRACTION, streaks, streaks * np.clip(1 - (r - LIMBUS_FRACTION) / 0.2, 0.35, 1))
    iris_w = np.clip(iris_w, 0, 1.3)
    in_iris = front & (r >= PUPIL_FRACTION) & (r < 1.0)
    pupil = front & (r < PUPIL_FRACTION)
    # sclera a little darker toward the back and, softly, toward the limbus
    back_fall = np.clip(1 + d[:, 2] / 40, 0.6, 1)[:, None]
    base = SCLERA[None] * back_fall * np.clip(0.85 + 0.15 * (r - 1) / 0.4, 0.85, 1)[:, None]
    base = np.where(pupil[:, None], PUPIL[None], base)
    base = np.where(in_iris[:, None], 0.0, base)
    return base.astype(np.float32), np.where(in_iris, iris_w, 0).astype(np.float32)


def _mouth_depth(points: np.ndarray) -> np.ndarray:
    """How far inside the mouth (0 at the lips' front, 1 deep in the socket) points (K, 3) lie."""
    return np.clip((100.0 - points[:, 2]) / 60.0, 0, 1)


def _teeth(points: np.ndarray) -> np.ndarray:
    k = _mouth_depth(points)[:, None]
    return TEETH[None] * (1 - 0.6 * k)


def _gums(points: np.ndarray) -> np.ndarray:
    k = _mouth_depth(points)[:, None] ** 0.7
    return GUMS[None] * (1 - k) + MOUTH_DARK[None] * k
