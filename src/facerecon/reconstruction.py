"""What a reconstruction is: a fitted `FaceState` plus the photo's landmarks, and the meshes,
pictures and files made from them.

A `Reconstruction` is light: it holds the state, the landmarks, a copy of the photo (uint8, at most
`PHOTO_MAX_SIDE` px) and per-vertex arrays, never the model's bases. Meshes, textures and files are
made on demand from the model, which is looked up by `model_source` in a per-process cache
(`register_model`; a pickled Reconstruction sent to another process loads it there once). Internals
are plain arrays (numpy, mm, model space); the user-facing objects are convenient
(`rec.mesh.export("face.glb")`, `rec.save("out/")`), in the manner of trimesh.
"""
from __future__ import annotations

import functools
import json
import weakref
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .errors import FitError, UsageError
from .fitting.correspondence import VertexCorrespondence
from .fitting.state import FaceState
from .io import Mesh, supported_formats
from .landmarks import FaceLandmarks
from .models import MorphableModel, load_model
from .models.arkit import arkit_targets, arkit_weights, gltf_weights, uses_ict_names
from .render import render_mesh, torch_kernels, visible_vertices
from .render.overlay import draw_dots, shaded_overlay
from .render.shading import SHLight


def _one_shot_render(method):
    """`method`'s renders take the plain-torch kernels (`render.torch_kernels`): each runs once per
    result, where numba's start-up would cost more than the render."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with torch_kernels():
            return method(*args, **kwargs)
    return wrapper


# ICT materials that are see-through shells (tear film, eye shadowing): never rendered opaque
_HIDDEN_GROUPS = ("M_EyeOcclusion", "M_LacrimalFluid", "M_EyeBlend")
# albedo of the parts a photo cannot show (linear RGB)
_GROUP_ALBEDO = {
    "M_Teeth": (0.85, 0.82, 0.75), "M_ScleraLeft": (0.85, 0.83, 0.80), "M_ScleraRight": (0.85, 0.83, 0.80),
    "M_IrisLeft": (0.25, 0.17, 0.10), "M_IrisRight": (0.25, 0.17, 0.10), "M_EyeLashes": (0.08, 0.06, 0.05),
    "M_GumsTongue": (0.55, 0.25, 0.25),
}
PHOTO_MAX_SIDE = 1024  # the photo copy a reconstruction keeps (overlays are drawn at this size)

_MODELS: dict[str, MorphableModel] = {}


def register_model(source: str, model: MorphableModel) -> None:
    """Make `model` the one reconstructions with this `model_source` use in this process."""
    _MODELS[source] = model


def cached_model(source: str) -> MorphableModel:
    """The model registered (or loaded once) for `source`: a registered key, a name or a path."""
    if source not in _MODELS:
        name = source.split("@", 1)[0]  # "ict@<id>": an in-memory model; another process loads by name
        _MODELS[source] = load_model(name)
    return _MODELS[source]


@dataclass
class QualityFlags:
    """What the pipeline noticed about a face (params.json `quality` lists the ones that are set).

    Attributes:
        multiple_faces: more than one face in the photo.
        tiny_face: the face is narrower than the pipeline's minimum (px).
        extreme_yaw: |yaw| beyond the supported range: the yaw in degrees, else None.
        poor_landmark_fit: the landmark RMS (px) when it exceeds 5 % of the face size, else None.
        full_mode_reverted_to_fast: why full mode kept the fast result, else None.
        full_mode_failed: the full fit's error, else None.
        weak_detection: how the face was found when no face detector found it, only the face mesh's
            own whole-image fallback (`FaceLandmarks.found_by`, e.g. "rotated_90+mesh_fallback"): such
            a "face" may be a face-like pattern (an animal, a drawing); else None.
    """

    multiple_faces: bool = False
    tiny_face: bool = False
    extreme_yaw: float | None = None
    poor_landmark_fit: float | None = None
    full_mode_reverted_to_fast: str | None = None
    full_mode_failed: str | None = None
    weak_detection: str | None = None

    @staticmethod
    def weak(found_by: str) -> str | None:
        """The `weak_detection` value for a face found by `found_by`."""
        return found_by if "mesh_fallback" in found_by else None

    def to_dict(self) -> dict:
        """The flags that are set (JSON-ready)."""
        return {k: v for k, v in asdict(self).items() if v not in (None, False)}

    def __bool__(self) -> bool:
        return bool(self.to_dict())


@dataclass
class Reconstruction:
    """One reconstructed face. Geometry is in model space (mm, neutral head pose); `state` holds the
    pose, camera and appearance that place it in the photo (one image, B = 1).

    Attributes:
        state: the fitted `FaceState` (numpy); its albedo is per vertex of the fitted view (full mode).
        mode: "fast" or "full". model_source: key of the model in the per-process cache.
        view_name: the model view that was fitted ("head").
        landmarks: the detected 478 points. photo: (h, w, 3) uint8 copy of the photo, at most
            PHOTO_MAX_SIDE px (the state's camera is in the original photo's pixels).
        correspondence, landmark_weights: the landmarks the fit used, on the view's vertices.
        corrective: (V_view,) mm along the view's mean normals (full mode option), or None.
        quality, losses, timings: what happened. face_index, faces_detected, source: where it came from.
        identity_similarity: {"cosine": float} / {"unavailable": why}, filled by the optional post-step.
        focal_source: where the focal length came from: "estimated", "given" or "exif:<tag>".
    """

    state: FaceState
    mode: str
    model_source: str
    view_name: str
    landmarks: FaceLandmarks
    photo: np.ndarray
    correspondence: VertexCorrespondence
    landmark_weights: np.ndarray
    corrective: np.ndarray | None = None
    quality: QualityFlags = field(default_factory=QualityFlags)
    losses: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    face_index: int = 0
    faces_detected: int = 1
    source: str | None = None
    identity_similarity: dict = field(default_factory=dict)
    focal_source: str = "estimated"

    def __getstate__(self) -> dict:
        # caches (meshes, colours) are rebuilt on demand: a pickled result carries arrays and the state only
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    # ------------------------------------------------------------------ the model
    @property
    def model(self) -> MorphableModel:
        """The full model (from the per-process cache)."""
        return cached_model(self.model_source)

    @property
    def view(self) -> MorphableModel:
        """The fitted view of the model."""
        model = self.model
        try:
            return model.view(self.view_name)
        except UsageError:
            return model

    @property
    def params(self):
        """The fitted `FaceParams` (B = 1)."""
        return self.state.params

    @property
    def pose_deg(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees (R = Ry(yaw) Rx(pitch) Rz(roll))."""
        return tuple(float(x) for x in self.state.params.pose_deg()[0])

    @property
    def albedo(self) -> np.ndarray | None:
        """(V_view, 3) fitted per-vertex albedo (full mode), or None."""
        a = self.state.appearance.albedo
        return None if a is None else a[0]

    @property
    def sh(self) -> np.ndarray | None:
        """(9, 3) fitted SH light in camera space (full mode), or None."""
        sh = self.state.appearance.sh
        return None if sh is None else sh[0]

    @property
    def photo_float(self) -> np.ndarray:
        return self.photo.astype(np.float32) / 255.0

    @property
    def photo_scale(self) -> float:
        """Size of the kept photo copy relative to the original."""
        return self.photo.shape[1] / self.state.camera.image_size[1]

    # ------------------------------------------------------------------ geometry
    def vertices(self, full: bool = True, expression: bool = True) -> np.ndarray:
        """(V, 3) vertices in model space (mm); the full model (eyes, teeth) or the fitted view."""
        key = ("vertices", full, expression)
        cache = self.__dict__.setdefault("_cache", {})
        if key in cache:
            return cache[key]
        model = self.model if full else self.view
        to = dict(dtype=model.dtype, device=model.device)
        a = torch.as_tensor(self.params.identity, **to)
        e = torch.as_tensor(self.params.expression, **to)
        with torch.no_grad():
            v = model.vertices(a, e if expression else None)[0].cpu().double().numpy()
        if self.corrective is not None:
            from .geometry.mesh import vertex_normals

            view = self.view
            n = vertex_normals(view.mean.detach().cpu().double().numpy(), view.triangles.cpu().numpy())
            offset = self.corrective[:, None] * n
            if full and view.parent_vertices is not None:
                v[view.parent_vertices.cpu().numpy()] += offset
            else:
                v += offset
        cache[key] = v
        return v

    def camera_vertices(self, full: bool = True) -> np.ndarray:
        """(V, 3) vertices in camera space (mm)."""
        return self.state.camera_points(self.vertices(full))

    def projected_landmarks(self) -> np.ndarray:
        """(L, 2) the model's landmark points projected into the photo (px)."""
        return self.state.project(self.correspondence.points(self.vertices(full=False)))

    def fitted_landmarks68(self) -> dict[str, np.ndarray]:
        """The fitted model's iBUG-68 points, on the two standard conventions.

        Returns:
            {"3d_model": (68, 3) mm on the fitted mesh (the model's own 68-point embedding, jaw on the
            3D surface: AFLW2000-3D's convention), "3d_camera": the same in camera space,
            "2d": their projection (68, 2) px, "contour_2d": (68, 2) px with the jaw (points 0-16) on
            the visible outline of the face, as 300W annotates it (the fit's sliding outline points)}.
        """
        from .landmarks import MEDIAPIPE_TO_IBUG68

        m = self.model
        with torch.no_grad():
            v = torch.as_tensor(self.vertices(full=True)[None], dtype=m.dtype)
            pts = m.landmark_points(v)[0].cpu().double().numpy()
        contour = self.state.project(pts)
        contour[:17] = self.projected_landmarks()[MEDIAPIPE_TO_IBUG68[:17]]
        return {"3d_model": pts, "3d_camera": self.state.camera_points(pts), "2d": self.state.project(pts),
                "contour_2d": contour}

    def landmark_error_px(self) -> float:
        """RMS reprojection error over the landmarks used in the fit (px)."""
        d = np.linalg.norm(self.projected_landmarks() - self.landmarks.points, axis=1)
        keep = self.landmark_weights > 0
        return float(np.sqrt(np.mean(d[keep] ** 2)))

    @property
    def mesh(self) -> Mesh:
        """The full head with UVs, the UV albedo texture (1024 x 1024) and the expressions as morph
        targets: ARKit's 52 names (plus ICT's split halves) for ICT-named models, the model's own
        otherwise. `mesh_with(texture_size)` for another texture size."""
        return self.mesh_with(1024)

    def mesh_with(self, texture_size: int = 1024) -> Mesh:
        """`mesh` with a (texture_size x texture_size) texture (and PLY colours sampled from it); a
        smaller one costs less time and memory (e.g. 512 for an animation's mesh)."""
        m = self.model
        names = list(m.expression_names)
        weights = self.params.expression[0]
        targets = _morph_targets(m)
        if uses_ict_names(names):
            w_main, w_extra = gltf_weights(names, weights)
            morph_weights = list(w_main) + list(w_extra)
        else:
            morph_weights = [float(x) for x in weights]
        return Mesh(
            vertices=self.vertices(full=True), triangles=self._visible_triangles(),
            uv=self.texture_uv(texture_size),
            uv_triangles=None if m.uv_triangles is None else m.uv_triangles.cpu().numpy()[self._visible_triangle_ids()],
            texture=self.texture(texture_size), texture_file="albedo.png", colors=self._mesh_colors(texture_size),
            morph_targets=targets,
            morph_weights=morph_weights, base_vertices=self.vertices(full=True, expression=False),
        )

    def _visible_triangle_ids(self) -> np.ndarray:
        m = self.model
        keep = np.ones(int(m.triangles.shape[0]), dtype=bool)
        for g in _HIDDEN_GROUPS:
            if g in m.triangle_groups:
                keep[m.triangle_groups[g].cpu().numpy()] = False
        return np.nonzero(keep)[0]

    def _visible_triangles(self) -> np.ndarray:
        return self.model.triangles.cpu().numpy()[self._visible_triangle_ids()]

    # ------------------------------------------------------------------ colour
    def vertex_colors(self) -> np.ndarray:
        """(V_full, 3) albedo per vertex of the full model: the fitted albedo (full mode) or the
        photo's colour (fast mode) on visible skin, mirrored across the face where occluded, and
        material defaults for what a photo cannot show (teeth, eyes)."""
        cache = self.__dict__.setdefault("_cache", {})
        if "colors" in cache:
            return cache["colors"]
        m = self.model
        view = self.view
        n = m.num_vertices
        colors = np.zeros((n, 3))
        known = np.zeros(n, dtype=bool)
        view_ids = view.parent_vertices.cpu().numpy() if view.parent_vertices is not None else np.arange(n)
        seen = self._visible_view_vertices()
        if self.albedo is not None:
            colors[view_ids] = self.albedo
        else:
            colors[view_ids[seen]] = self._observed_view_colors()[seen]
        known[view_ids[seen]] = True
        sym = m.symmetry.cpu().numpy()
        mirror = ~known & known[sym]
        colors[mirror] = colors[sym[mirror]]
        known |= mirror
        skin = np.median(colors[known], axis=0) if known.any() else np.array([0.7, 0.55, 0.45])
        colors[~known] = skin
        for group, rgb in _GROUP_ALBEDO.items():
            if group in m.triangle_groups:
                vids = np.unique(m.triangles[m.triangle_groups[group]].cpu().numpy())
                colors[vids] = rgb
        cache["colors"] = np.clip(colors, 0, 1)
        return cache["colors"]

    def _mesh_colors(self, texture_size: int = 1024) -> np.ndarray:
        """(V_full, 3) vertex colours for formats without textures (PLY): the texture sampled at each
        vertex's UV (mean over its UV corners), or `vertex_colors()` without a texture."""
        m = self.model
        tex, uv = self._texture(texture_size)
        if tex is None or m.uv_triangles is None:
            return self.vertex_colors()
        from scipy.ndimage import map_coordinates

        size = tex.shape[0]
        tris = m.triangles.cpu().numpy().ravel()
        corners = uv[m.uv_triangles.cpu().numpy().ravel()]
        rows, cols = (1.0 - corners[:, 1]) * size - 0.5, corners[:, 0] * size - 0.5
        rgb = np.stack([map_coordinates(tex[..., k], [rows, cols], order=1, mode="nearest") for k in range(3)], 1)
        n = m.num_vertices
        total = np.stack([np.bincount(tris, rgb[:, k], minlength=n) for k in range(3)], 1)
        count = np.bincount(tris, minlength=n)
        used = count > 0
        # vertices no triangle uses have no UV: the per-vertex colours (a render) only for them
        colors = np.zeros((n, 3)) if used.all() else self.vertex_colors().copy()
        colors[used] = total[used] / count[used, None]
        return np.clip(colors, 0, 1)

    @_one_shot_render
    def _visible_view_vertices(self) -> np.ndarray:
        h, w = self.state.camera.image_size
        cam = self.state.pinhole(scale=min(1.0, 512.0 / max(h, w)))
        with torch.no_grad():
            v = torch.as_tensor(self.vertices(full=False)[None], dtype=torch.float32)
            out = render_mesh(v, self.view.triangles, cam, antialias=False)
            screen = cam.to_screen(v)[0].numpy()
        return visible_vertices(out.depth[0].numpy(), screen, 2.0)

    def _observed_view_colors(self) -> np.ndarray:
        from scipy.ndimage import map_coordinates

        uv = self.state.project(self.vertices(full=False)) * self.photo_scale - 0.5
        photo = self.photo_float
        cols = np.stack([map_coordinates(photo[..., k], [uv[:, 1], uv[:, 0]], order=1, mode="nearest")
                         for k in range(3)], 1)
        return cols.astype(np.float64)

    def texture(self, size: int = 1024) -> np.ndarray | None:
        """(size, size, 3) albedo texture of the whole head in the atlas layout of `texture_uv()`: the
        photo unwrapped with per-texel visibility and the fitted shading divided out, the unseen
        side mirrored, painted eyes and mouth (`facerecon.texturing`); for models without ICT's
        material groups, the per-vertex colours rasterised in the model's own UVs. None without UVs."""
        return self._texture(size)[0]

    def texture_uv(self, size: int = 1024) -> np.ndarray | None:
        """(T, 2) the UVs `texture()` is laid out in (use with the model's uv_triangles)."""
        return self._texture(size)[1]

    @_one_shot_render
    def _texture(self, size: int):
        cache = self.__dict__.setdefault("_cache", {})
        if ("texture", size) in cache:
            return cache[("texture", size)]
        m = self.model
        if m.uv is None:
            return None, None
        if "M_Face" in m.triangle_groups:
            from .texturing import face_texture

            scale = self.photo_scale
            albedo = None
            if self.albedo is not None:
                view = self.view
                albedo = np.full((m.num_vertices, 3), 0.6)
                ids = view.parent_vertices.cpu().numpy() if view.parent_vertices is not None else slice(None)
                albedo[ids] = self.albedo
            iris = self.landmarks.points[468:478] * scale if len(self.landmarks.points) >= 478 else None
            tex, uv, _ = face_texture(self.camera_vertices(True), self._visible_triangles(),
                                      self.state.pinhole(scale=scale, dtype=torch.float64), self.photo_float,
                                      self.sh, albedo, m, iris_points=iris, size=size)
            cache[("texture", size)] = (np.clip(tex, 0, 1), uv)
        else:
            cache[("texture", size)] = (self._vertex_colour_texture(size), m.uv.cpu().numpy())
        return cache[("texture", size)]

    @_one_shot_render
    def _vertex_colour_texture(self, size: int) -> np.ndarray:
        """The per-vertex colours rasterised in the model's UVs, islands grown so mip-maps show no seams."""
        from scipy import ndimage

        from .render import render_to_uv

        m = self.model
        attrs = torch.as_tensor(self.vertex_colors()[None], dtype=torch.float32)
        tex, mask = render_to_uv(attrs, m.uv, m.uv_triangles, size, triangles=m.triangles)
        tex, mask = tex[0].numpy(), mask[0].numpy()
        if mask.any():
            _, (ri, ci) = ndimage.distance_transform_edt(~mask, return_indices=True)
            tex = tex[ri, ci]
        return np.clip(tex, 0, 1)

    # ------------------------------------------------------------------ pictures
    @_one_shot_render
    def render(self, opacity: float = 0.65, draw_points: bool = True) -> np.ndarray:
        """(h, w, 3) uint8 at the kept photo's size: the shaded reconstruction blended over the
        photo, with the detected iBUG-68 landmarks (cyan) and the model's (red, smaller)."""
        scale = self.photo_scale
        img = shaded_overlay(self.photo_float, self.vertices(full=True), self._visible_triangles(),
                             self.state.pinhole(scale=scale), opacity)
        if draw_points:
            from .landmarks import MEDIAPIPE_TO_IBUG68

            detected = self.landmarks.to_ibug68().points
            model = self.projected_landmarks()[MEDIAPIPE_TO_IBUG68]
            img = draw_dots(img, detected * scale, (0, 220, 255))
            img = draw_dots(img, model * scale, (255, 40, 40), radius_scale=0.6)
        return img

    @_one_shot_render
    def render_textured(self) -> np.ndarray:
        """(h, w, 3) float at the kept photo's size: the reconstruction with its albedo under its SH
        light (the default light in fast mode), over the photo — what an identity network compares."""
        v = torch.as_tensor(self.vertices(full=True)[None], dtype=torch.float32)
        tris = torch.as_tensor(self._visible_triangles())
        colors = torch.as_tensor(self.vertex_colors()[None], dtype=torch.float32)
        sh = (SHLight.ambient_directional(1).coefficients if self.sh is None
              else torch.as_tensor(self.sh[None], dtype=torch.float32))
        with torch.no_grad():
            out = render_mesh(v, tris, self.state.pinhole(scale=self.photo_scale), colors=colors, sh=sh,
                              background=torch.as_tensor(self.photo_float[None]), antialias=True)
        return out.image[0].clamp(0, 1).numpy()

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict:
        """Everything params.json holds (JSON-ready)."""
        st = self.state
        p = st.params
        yaw, pitch, roll = self.pose_deg
        h, w = st.camera.image_size
        model = self.model
        return {
            "facerecon_version": __version__,
            "model": {"name": model.name, "version": model.version, "fitted_view": self.view.num_vertices},
            "mode": self.mode,
            "units": "mm; model space +y up, +z toward the camera; camera looks down -z (docs/conventions.md)",
            "source": self.source,
            "face_index": self.face_index,
            "faces_detected": self.faces_detected,
            "identity": [round(float(x), 6) for x in p.identity[0]],
            "expression": {name: round(float(x), 6) for name, x in zip(model.expression_names, p.expression[0])},
            "arkit_blendshapes": ({k: round(float(v), 6) for k, v in
                                   arkit_weights(list(model.expression_names), p.expression[0]).items()}
                                  if uses_ict_names(list(model.expression_names)) else None),
            "pose": {"rotation_axis_angle": [float(x) for x in p.rotation[0]],
                     "yaw_deg": round(yaw, 3), "pitch_deg": round(pitch, 3), "roll_deg": round(roll, 3),
                     "translation_mm": [float(x) for x in p.translation[0]]},
            "camera": {"model": st.camera.kind, "focal_px": float(st.camera.focal[0]),
                       "principal_px": [float(x) for x in st.camera.principal[0]],
                       "image_size": [int(h), int(w)], "fov_x_deg": round(st.camera.fov_x_deg(), 3),
                       "focal_source": self.focal_source},
            "sh_light": None if self.sh is None else np.round(self.sh, 6).tolist(),
            "landmarks": {"detector_box": [float(x) for x in self.landmarks.box],
                          "found_by": self.landmarks.found_by,
                          "detector_score": float(self.landmarks.score),
                          "rms_reprojection_px": round(self.landmark_error_px(), 4)},
            "losses": self.losses,
            "timings_s": {k: round(float(v), 5) for k, v in self.timings.items()},
            "identity_similarity": self.identity_similarity,
            "quality": self.quality.to_dict(),
        }

    def check_finite(self) -> None:
        """Raise `FitError` if any output would carry NaN or inf (checked before anything is written)."""
        if not self.state.is_finite() or not np.isfinite(self.vertices()).all():
            raise FitError("the reconstruction has NaN or inf values; nothing was written")

    def save(self, folder: str | Path, mesh: Mesh | None = None) -> dict[str, Path]:
        """Write mesh.obj (+ mesh.mtl, albedo.png), mesh.ply, mesh.glb, params.json, overlay.png and
        landmarks.json into `folder`; returns the paths by name. `mesh`: what the mesh files hold
        (default `self.mesh`; `detail_outputs.save_with_extras` passes it with a normal map or scaled)."""
        from .io.images import save_image

        self.check_finite()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        mesh = self.mesh if mesh is None else mesh
        paths = {fmt: mesh.export(folder / f"mesh.{fmt}") for fmt in supported_formats()}
        if (folder / "mesh.mtl").is_file():
            paths["mtl"] = folder / "mesh.mtl"
        if mesh.texture is not None:
            paths["albedo"] = folder / mesh.texture_file
        paths["overlay"] = folder / "overlay.png"
        save_image(paths["overlay"], self.render())
        fitted = self.fitted_landmarks68()
        r3 = lambda a: np.round(a, 3).tolist()  # noqa: E731
        lm = {"detected": self.landmarks.to_dict(), "ibug68": self.landmarks.to_ibug68().to_dict(),
              "model_projected": r3(self.projected_landmarks()),
              "used": (self.landmark_weights > 0).tolist(),
              "fitted_ibug68": {
                  "convention": "AFLW2000-3D: the fitted model's 68-point embedding; the jaw line lies on the 3D "
                                "surface, also where it is hidden",
                  "points_2d_px": r3(fitted["2d"]), "points_3d_camera_mm": r3(fitted["3d_camera"]),
                  "points_3d_model_mm": r3(fitted["3d_model"])},
              "fitted_ibug68_contour": {
                  "convention": "300W: as fitted_ibug68 but the jaw (points 0-16) on the visible outline of the face",
                  "points_2d_px": r3(fitted["contour_2d"])}}
        paths["landmarks"] = folder / "landmarks.json"
        paths["landmarks"].write_text(json.dumps(lm))
        paths["params"] = folder / "params.json"
        paths["params"].write_text(json.dumps(self.to_dict(), indent=1))
        return paths


_MORPH_TARGETS: "weakref.WeakKeyDictionary[MorphableModel, dict[str, np.ndarray]]" = weakref.WeakKeyDictionary()


def _morph_targets(model: MorphableModel) -> dict[str, np.ndarray]:
    """name -> (V, 3) float64 mm offsets the meshes carry as morph targets: ARKit's 52 names (plus
    ICT's split halves) for ICT-named models, the model's own names otherwise; built once per model."""
    if model not in _MORPH_TARGETS:
        names = list(model.expression_names)
        basis = model.expression_basis.detach().cpu().double().numpy()
        if uses_ict_names(names):
            main, main_offsets, extra, extra_offsets = arkit_targets(names, basis)
            _MORPH_TARGETS[model] = dict(zip(main + extra, np.concatenate([main_offsets, extra_offsets])))
        else:
            _MORPH_TARGETS[model] = dict(zip(names, basis))
    return _MORPH_TARGETS[model]


def photo_copy(image: np.ndarray, max_side: int = PHOTO_MAX_SIDE) -> np.ndarray:
    """(h, w, 3) uint8 copy of a float photo (H, W, 3) in [0, 1], shrunk to at most `max_side` px."""
    h, w = image.shape[:2]
    if max(h, w) > max_side:
        from skimage.transform import resize

        s = max_side / max(h, w)
        image = resize(image, (max(1, round(h * s)), max(1, round(w * s))), anti_aliasing=True)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
