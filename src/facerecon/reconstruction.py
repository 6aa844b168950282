"""What a reconstruction is: parameters as a dataclass, plus convenient meshes, renders and files.

Internals are plain arrays (numpy, mm, model space); the user-facing objects are convenient
(`rec.mesh.export("face.glb")`, `rec.save("out/")`), in the manner of trimesh.
"""
from __future__ import annotations

import io as _io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .errors import FitError, UsageError
from .fitting.correspondence import VertexCorrespondence
from .geometry.rotation import axis_angle_to_matrix_np, matrix_to_euler_deg_np
from .landmarks import FaceLandmarks
from .models import MorphableModel
from .render import PinholeCamera, render_mesh
from .render.shading import SHLight

# ICT materials that are see-through shells (tear film, eye shadowing): never rendered opaque
_HIDDEN_GROUPS = ("M_EyeOcclusion", "M_LacrimalFluid", "M_EyeBlend")
# albedo of the parts a photo cannot show (linear RGB)
_GROUP_ALBEDO = {
    "M_Teeth": (0.85, 0.82, 0.75), "M_ScleraLeft": (0.85, 0.83, 0.80), "M_ScleraRight": (0.85, 0.83, 0.80),
    "M_IrisLeft": (0.25, 0.17, 0.10), "M_IrisRight": (0.25, 0.17, 0.10), "M_EyeLashes": (0.08, 0.06, 0.05),
    "M_GumsTongue": (0.55, 0.25, 0.25),
}


@dataclass
class FaceParams:
    """Fitted parameters of one face.

    Attributes:
        identity: (K,) in standard deviations. expression: (E,) weights (ICT: [0, 1]).
        rotation: (3,) axis-angle, model -> camera. translation: (3,) mm.
        focal: px. principal: (2,) px. image_size: (H, W).
        sh: (9, 3) SH light in camera space, or None (fast mode).
    """

    identity: np.ndarray
    expression: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    focal: float
    principal: np.ndarray
    image_size: tuple[int, int]
    sh: np.ndarray | None = None

    @property
    def pose_deg(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees (R = Ry(yaw) Rx(pitch) Rz(roll))."""
        return matrix_to_euler_deg_np(axis_angle_to_matrix_np(self.rotation))

    def camera(self, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
               scale: float = 1.0) -> PinholeCamera:
        """The fitted pinhole camera; `scale` resizes the image (e.g. 0.5 for a half-size render)."""
        h, w = self.image_size
        size = (max(1, int(round(h * scale))), max(1, int(round(w * scale))))
        t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64)[None], dtype=dtype, device=device)  # noqa: E731
        return PinholeCamera(t(self.rotation), t(self.translation), t(self.focal * scale).reshape(1),
                             t(self.principal * scale), size)


@dataclass
class Mesh:
    """A textured triangle mesh in mm, with optional named morph targets (offsets)."""

    vertices: np.ndarray
    triangles: np.ndarray
    uv: np.ndarray | None = None
    uv_triangles: np.ndarray | None = None
    texture: np.ndarray | None = None  # (S, S, 3) float [0, 1]
    colors: np.ndarray | None = None  # (V, 3) float [0, 1]
    morph_targets: dict[str, np.ndarray] | None = None
    morph_weights: list[float] | None = None
    base_vertices: np.ndarray | None = None  # the shape morph targets are added to

    def export(self, path: str | Path) -> Path:
        """Write .obj (+ .mtl and a PNG texture beside it), .ply or .glb, chosen by the extension."""
        from .io import write_glb, write_obj, write_ply
        from .io.images import save_image

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        ext = path.suffix.lower()
        if ext == ".obj":
            tex_name = None
            if self.texture is not None:
                tex_name = path.with_name(path.stem + "_albedo.png") if path.stem != "mesh" else path.with_name("albedo.png")
                save_image(tex_name, self.texture)
            write_obj(path, self.vertices, self.triangles, self.uv, self.uv_triangles,
                      texture_png=None if tex_name is None else str(tex_name))
        elif ext == ".ply":
            write_ply(path, self.vertices, self.triangles, self.colors)
        elif ext in (".glb", ".gltf"):
            png = None
            if self.texture is not None:
                from PIL import Image

                buf = _io.BytesIO()
                Image.fromarray((np.clip(self.texture, 0, 1) * 255 + 0.5).astype(np.uint8)).save(buf, format="PNG")
                png = buf.getvalue()
            base = self.vertices if self.base_vertices is None else self.base_vertices
            write_glb(path.with_suffix(".glb"), base, self.triangles, self.uv, self.uv_triangles,
                      texture_png_bytes=png, morph_targets=self.morph_targets, morph_weights=self.morph_weights,
                      sparse_targets=True, sparse_threshold_mm=0.01)
        else:
            raise UsageError(f"unknown mesh format {ext!r}; use .obj, .ply or .glb")
        return path


@dataclass
class Reconstruction:
    """One reconstructed face. Geometry is in model space (mm, neutral head pose); `params` hold the
    pose and camera that place it in the photo."""

    model: MorphableModel
    view: MorphableModel
    params: FaceParams
    mode: str
    landmarks: FaceLandmarks
    image: np.ndarray
    correspondence: VertexCorrespondence
    landmark_weights: np.ndarray
    albedo: np.ndarray | None = None  # (V_view, 3), full mode
    corrective: np.ndarray | None = None  # (V_view,) mm along the view's mean normals (full mode option)
    quality: dict = field(default_factory=dict)
    losses: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    face_index: int = 0
    faces_detected: int = 1
    source: str | None = None
    identity_similarity: dict = field(default_factory=dict)  # {"cosine": float} or {"unavailable": why}

    # ------------------------------------------------------------------ geometry
    def _coeffs(self, model: MorphableModel):
        to = dict(dtype=model.dtype, device=model.device)
        a = torch.as_tensor(self.params.identity[None], **to)
        e = torch.as_tensor(self.params.expression[None], **to)
        return a, e

    def vertices(self, full: bool = True, expression: bool = True) -> np.ndarray:
        """(V, 3) vertices in model space (mm); the full model (eyes, teeth) or the fitted view."""
        model = self.model if full else self.view
        a, e = self._coeffs(model)
        with torch.no_grad():
            v = model.vertices(a, e if expression else None)[0].cpu().double().numpy()
        if self.corrective is not None:
            from .render.shading import vertex_normals

            n = vertex_normals(self.view.mean[None].detach().cpu().float(), self.view.triangles.cpu())[0].numpy()
            offset = self.corrective[:, None] * n
            if full and self.view.parent_vertices is not None:
                v[self.view.parent_vertices.cpu().numpy()] += offset
            else:
                v += offset
        return v

    def camera_vertices(self, full: bool = True) -> np.ndarray:
        """(V, 3) vertices in camera space (mm)."""
        return self.vertices(full) @ axis_angle_to_matrix_np(self.params.rotation).T + self.params.translation

    def projected_landmarks(self) -> np.ndarray:
        """(L, 2) the model's landmark points projected into the photo (px)."""
        y = self.correspondence.points(self.vertices(full=False)) @ axis_angle_to_matrix_np(self.params.rotation).T
        y = y + self.params.translation
        f, c = self.params.focal, self.params.principal
        return np.stack([c[0] + f * y[:, 0] / -y[:, 2], c[1] - f * y[:, 1] / -y[:, 2]], 1)

    def landmark_error_px(self) -> float:
        """RMS reprojection error over the landmarks used in the fit (px)."""
        d = np.linalg.norm(self.projected_landmarks() - self.landmarks.points, axis=1)
        keep = self.landmark_weights > 0
        return float(np.sqrt(np.mean(d[keep] ** 2)))

    @property
    def mesh(self) -> Mesh:
        """The full head with UVs, the UV albedo texture and the expressions as morph targets."""
        m = self.model
        verts = self.vertices(full=True)
        neutral = self.vertices(full=True, expression=False)
        targets = {name: m.expression_basis[k].detach().cpu().double().numpy()
                   for k, name in enumerate(m.expression_names)}
        tex = self.texture()
        return Mesh(
            vertices=verts, triangles=self._visible_triangles(),
            uv=None if m.uv is None else m.uv.cpu().numpy(),
            uv_triangles=None if m.uv_triangles is None else m.uv_triangles.cpu().numpy()[self._visible_triangle_ids()],
            texture=tex, colors=self.vertex_colors(), morph_targets=targets,
            morph_weights=[float(x) for x in self.params.expression], base_vertices=neutral,
        )

    def _visible_triangle_ids(self) -> np.ndarray:
        hidden = [self.model.triangle_groups[g].cpu().numpy() for g in _HIDDEN_GROUPS if g in self.model.triangle_groups]
        keep = np.ones(int(self.model.triangles.shape[0]), dtype=bool)
        for h in hidden:
            keep[h] = False
        return np.nonzero(keep)[0]

    def _visible_triangles(self) -> np.ndarray:
        return self.model.triangles.cpu().numpy()[self._visible_triangle_ids()]

    # ------------------------------------------------------------------ colour
    def vertex_colors(self) -> np.ndarray:
        """(V_full, 3) albedo per vertex of the full model: the fitted albedo (full mode) or the
        photo's colour (fast mode) on visible skin, mirrored across the face where occluded, and
        material defaults for what a photo cannot show (teeth, eyes)."""
        if getattr(self, "_colors", None) is not None:
            return self._colors
        m = self.model
        n = m.num_vertices
        colors = np.zeros((n, 3))
        known = np.zeros(n, dtype=bool)
        view_ids = self.view.parent_vertices.cpu().numpy() if self.view.parent_vertices is not None else np.arange(n)
        if self.albedo is not None:
            colors[view_ids] = self.albedo
            seen = self._visible_view_vertices()
            known[view_ids[seen]] = True
        else:
            observed, seen = self._observed_view_colors()
            colors[view_ids[seen]] = observed[seen]
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
        self._colors = np.clip(colors, 0, 1)
        return self._colors

    def _render_view(self, scale: float):
        cam = self.params.camera(scale=scale)
        with torch.no_grad():
            v = torch.as_tensor(self.vertices(full=False)[None], dtype=torch.float32)
            out = render_mesh(v, self.view.triangles, cam, antialias=False)
            screen = cam.to_screen(v)[0].numpy()
        return out, screen

    def _visible_view_vertices(self, scale: float | None = None) -> np.ndarray:
        h, w = self.params.image_size
        scale = scale or min(1.0, 512.0 / max(h, w))
        out, screen = self._render_view(scale)
        depth = out.depth[0].numpy()
        hh, ww = depth.shape
        ij = np.floor(screen[:, :2]).astype(int)
        inside = (ij[:, 0] >= 0) & (ij[:, 0] < ww) & (ij[:, 1] >= 0) & (ij[:, 1] < hh)
        ijc = np.clip(ij, 0, [ww - 1, hh - 1])
        z = depth[ijc[:, 1], ijc[:, 0]]
        return inside & (z > 0) & (screen[:, 2] <= z + 2.0)

    def _observed_view_colors(self) -> tuple[np.ndarray, np.ndarray]:
        from scipy.ndimage import map_coordinates

        h, w = self.params.image_size
        seen = self._visible_view_vertices()
        y = self.vertices(full=False) @ axis_angle_to_matrix_np(self.params.rotation).T + self.params.translation
        f, c = self.params.focal, self.params.principal
        u = c[0] + f * y[:, 0] / -y[:, 2] - 0.5
        v = c[1] - f * y[:, 1] / -y[:, 2] - 0.5
        cols = np.stack([map_coordinates(self.image[..., k], [v, u], order=1, mode="nearest") for k in range(3)], 1)
        return cols.astype(np.float64), seen

    def texture(self, size: int = 1024) -> np.ndarray | None:
        """(size, size, 3) UV albedo map of the full model, islands grown by a few texels so that
        mip-mapping shows no seams; None when the model has no UVs."""
        m = self.model
        if m.uv is None:
            return None
        from scipy import ndimage

        from .render import render_to_uv

        attrs = torch.as_tensor(self.vertex_colors()[None], dtype=torch.float32)
        tex, mask = render_to_uv(attrs, m.uv, m.uv_triangles, size, triangles=m.triangles)
        tex, mask = tex[0].numpy(), mask[0].numpy()
        if mask.any():
            _, (ri, ci) = ndimage.distance_transform_edt(~mask, return_indices=True)
            tex = tex[ri, ci]
        return np.clip(tex, 0, 1)

    # ------------------------------------------------------------------ pictures
    def render(self, opacity: float = 0.65, draw_points: bool = True) -> np.ndarray:
        """(H, W, 3) uint8: the shaded reconstruction blended over the photo, with the detected
        iBUG-68 landmarks (cyan) and the model's (red, smaller)."""
        h, w = self.params.image_size
        scale = min(1.0, 1600.0 / max(h, w))
        cam = self.params.camera(scale=scale)
        v = torch.as_tensor(self.vertices(full=True)[None], dtype=torch.float32)
        tris = torch.as_tensor(self._visible_triangles())
        sh = SHLight.ambient_directional(1).coefficients
        with torch.no_grad():
            out = render_mesh(v, tris, cam, colors=torch.full_like(v, 0.75), sh=sh, antialias=True)
        shaded = out.image[0].clamp(0, 1).numpy()
        alpha = out.alpha[0].numpy()[..., None] * opacity
        photo = self.image
        if scale != 1.0:
            from skimage.transform import resize

            photo = resize(photo, shaded.shape[:2], anti_aliasing=True)
        blended = photo * (1 - alpha) + shaded * alpha
        img = (np.clip(blended, 0, 1) * 255 + 0.5).astype(np.uint8)
        if draw_points:
            from .landmarks import MEDIAPIPE_TO_IBUG68

            detected = self.landmarks.to_ibug68().points
            model = self.projected_landmarks()[MEDIAPIPE_TO_IBUG68]
            img = _draw_dots(img, detected * scale, (0, 220, 255))
            img = _draw_dots(img, model * scale, (255, 40, 40), radius_scale=0.6)
        return img

    def render_textured(self) -> np.ndarray:
        """(H, W, 3) float: the reconstruction with its albedo under its SH light (the default light in
        fast mode), over the photo — what an identity network compares with the photo."""
        v = torch.as_tensor(self.vertices(full=True)[None], dtype=torch.float32)
        tris = torch.as_tensor(self._visible_triangles())
        colors = torch.as_tensor(self.vertex_colors()[None], dtype=torch.float32)
        sh = (SHLight.ambient_directional(1).coefficients if self.params.sh is None
              else torch.as_tensor(self.params.sh[None], dtype=torch.float32))
        with torch.no_grad():
            out = render_mesh(v, tris, self.params.camera(), colors=colors, sh=sh,
                              background=torch.as_tensor(self.image[None]), antialias=True)
        return out.image[0].clamp(0, 1).numpy()

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict:
        """Everything params.json holds (JSON-ready)."""
        p = self.params
        yaw, pitch, roll = p.pose_deg
        h, w = p.image_size
        out = {
            "facerecon_version": __version__,
            "model": {"name": self.model.name, "version": self.model.version, "fitted_view": self.view.num_vertices},
            "mode": self.mode,
            "units": "mm; model space +y up, +z toward the camera; camera looks down -z (docs/conventions.md)",
            "source": self.source,
            "face_index": self.face_index,
            "faces_detected": self.faces_detected,
            "identity": [round(float(x), 6) for x in p.identity],
            "expression": {name: round(float(x), 6) for name, x in zip(self.model.expression_names, p.expression)},
            "pose": {"rotation_axis_angle": [float(x) for x in p.rotation],
                     "yaw_deg": round(yaw, 3), "pitch_deg": round(pitch, 3), "roll_deg": round(roll, 3),
                     "translation_mm": [float(x) for x in p.translation]},
            "camera": {"model": "pinhole", "focal_px": float(p.focal), "principal_px": [float(x) for x in p.principal],
                       "image_size": [int(h), int(w)],
                       "fov_x_deg": round(math.degrees(2 * math.atan(w / (2 * p.focal))), 3)},
            "sh_light": None if p.sh is None else np.round(p.sh, 6).tolist(),
            "landmarks": {"detector_box": [float(x) for x in self.landmarks.box], "detector_score": float(self.landmarks.score),
                          "rms_reprojection_px": round(self.landmark_error_px(), 4)},
            "losses": self.losses,
            "timings_s": {k: round(float(v), 5) for k, v in self.timings.items()},
            "identity_similarity": self.identity_similarity,
            "quality": self.quality,
        }
        return out

    def check_finite(self) -> None:
        """Raise `FitError` if any output would carry NaN or inf (checked before anything is written)."""
        arrays = [self.params.identity, self.params.expression, self.params.rotation, self.params.translation,
                  np.array([self.params.focal])]
        if self.params.sh is not None:
            arrays.append(self.params.sh)
        if self.albedo is not None:
            arrays.append(self.albedo)
        if not all(np.isfinite(a).all() for a in arrays) or not np.isfinite(self.vertices()).all():
            raise FitError("the reconstruction has NaN or inf values; nothing was written")

    def save(self, folder: str | Path) -> dict[str, Path]:
        """Write mesh.obj (+ mesh.mtl, albedo.png), mesh.ply, mesh.glb, params.json, overlay.png and
        landmarks.json into `folder`; returns the paths by name."""
        from .io.images import save_image

        self.check_finite()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        mesh = self.mesh
        paths = {"obj": mesh.export(folder / "mesh.obj"), "ply": mesh.export(folder / "mesh.ply"),
                 "glb": mesh.export(folder / "mesh.glb")}
        paths["albedo"] = folder / "albedo.png"
        paths["overlay"] = folder / "overlay.png"
        save_image(paths["overlay"], self.render())
        lm = {"detected": self.landmarks.to_dict(), "ibug68": self.landmarks.to_ibug68().to_dict(),
              "model_projected": np.round(self.projected_landmarks(), 3).tolist(),
              "used": (self.landmark_weights > 0).tolist()}
        paths["landmarks"] = folder / "landmarks.json"
        paths["landmarks"].write_text(json.dumps(lm))
        paths["params"] = folder / "params.json"
        paths["params"].write_text(json.dumps(self.to_dict(), indent=1))
        return paths


def _draw_dots(img: np.ndarray, points: np.ndarray, rgb: tuple[int, int, int], radius_scale: float = 1.0) -> np.ndarray:
    from skimage.draw import disk

    out = img.copy()
    r = max(1.0, 0.004 * max(img.shape[:2]) * radius_scale)
    for u, v in points:
        if np.isfinite(u) and np.isfinite(v):
            rr, cc = disk((v - 0.5, u - 0.5), r, shape=img.shape[:2])
            out[rr, cc] = rgb
    return out
