"""A held-out synthetic set that does not share the fit's assumptions (issue #15, step 1).

`synthetic.py` renders the model the way the full fit models a photo (per-vertex albedo, SH light,
the project's shader), so the photometric term is graded on what it was tuned on. These faces
differ from that in every part a photo has, while keeping the ICT topology so that every scorer
(`calibration`, `synthetic_eval`) works unchanged on the `SyntheticFace` objects returned:

- shape: an ICT face drawn from the model (identity N(0, 1), sparse expression), deformed by
  anatomically placed, smooth Gaussian RBF fields anchored at the mean face's landmarks (nose length,
  bridge height and width, chin depth and length, jaw width, cheek fullness, forehead slope, brow
  ridge, lip protrusion), left/right pairs with a little asymmetry plus one free asymmetric bump,
  scaled to an RMS of 2-4 mm over the face (`narrow_face`). What the model can absorb of it, the
  floor baseline (model fitted to the truth) measures.
- albedo: painted into a 1024^2-per-tile UV texture (face and back of the head) with sharp
  features: brows with hair streaks, lash line and eyeliner, lips with a crisp vermilion border,
  stubble, freckles and moles, pores, hair on the scalp, a collar on the neck; eyes (sclera, iris
  with a limbal ring, pupil), teeth and lashes per vertex as in the mesh. Not the ICT albedo model.
- image formation (`image_formation.render_photo`): a key light (point or disc, several samples),
  optional fill and rim lights, ambient brighter from above, cast shadows from shadow maps,
  Blinn-Phong specular, a filmic tone curve and sRGB, lens blur, sensor noise, often JPEG.
- background: a defocused room (wall gradient, panels, shelves, a window, bokeh) with texture.
- camera: horizontal FOV 15-70 deg, |yaw| balanced over the bins 0-15, 15-30, 30-45, 45-60 (face i
  is in bin i mod 4), pitch +-20, roll +-6; the head, neck and ears are rendered (the outline
  against the background is the mesh's own).

`SyntheticFace.sh` is all zeros (there is no SH light), `off_model` is True, `displacement_rms_mm`
is the RMS of the 3D deformation over the face region and `displacement` is None (the deformation
is a 3D field, not an offset along the normals).

Face i depends only on (seed, i): `numpy.random.SeedSequence([seed, i, 15])`. `fov_deg` renders the
same faces (shape, pose, light, albedo, placement in the image) at another field of view.

    faces = generate_heldout_set(model, n=60, seed=0)                 # 512 x 512
    sweep = generate_heldout_set(model, n=8, seed=0, fov_deg=30.0)    # the same 8 faces at 30 deg
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UsageError
from ..models import MorphableModel
from ..render import PinholeCamera, euler_deg_to_matrix, matrix_to_axis_angle, render_to_uv
from .image_formation import Lighting, Materials, PointLight, Sensor, render_photo, srgb_decode
from .now import NOW_LANDMARKS_68
from .regions import _inside_polygon
from ..fitting.state import FaceState
from .synthetic import HIDDEN_GROUPS, SyntheticFace, eye_parts

HELDOUT_YAW_BINS: tuple[tuple[float, float], ...] = ((0.0, 15.0), (15.0, 30.0), (30.0, 45.0), (45.0, 60.0))
FOV_RANGE_DEG = (15.0, 70.0)  # horizontal
PITCH_RANGE_DEG = (-20.0, 20.0)
ROLL_RANGE_DEG = (-6.0, 6.0)
FILL_RANGE = (0.32, 0.5)  # the face region's projected box side over the image side
DEFORMATION_RMS_RANGE_MM = (2.0, 4.0)
TEXTURE_SIZE = 1024  # texels per UV tile side
SEED_TAG = 15  # the issue number, so that these seeds never collide with synthetic.py's

_SKIN_LIGHT = np.array([0.90, 0.74, 0.64])  # display (sRGB) values
_SKIN_DARK = np.array([0.36, 0.23, 0.16])
_HAIR = np.array([[0.06, 0.05, 0.045], [0.20, 0.13, 0.08], [0.38, 0.26, 0.15], [0.66, 0.54, 0.36],
                  [0.45, 0.20, 0.09], [0.62, 0.61, 0.58]])
_IRIS = np.array([[0.30, 0.18, 0.09], [0.16, 0.10, 0.06], [0.30, 0.42, 0.55], [0.34, 0.42, 0.28],
                  [0.42, 0.32, 0.18]])
_CLOTHES = np.array([[0.1, 0.1, 0.12], [0.8, 0.8, 0.78], [0.2, 0.3, 0.5], [0.5, 0.15, 0.15], [0.3, 0.4, 0.3]])


@dataclass
class _Bump:
    """One named deformation: Gaussian weights (V,) on the mean face times unit directions (V, 3)."""

    name: str
    field: np.ndarray  # (V, 3) displacement at amplitude 1 mm peak
    sd_mm: float


class HeldoutScene:
    """What every held-out face shares, derived once from the model's mean face: the rendered
    triangles, the deformation fields, the UV atlas with each texel's position on the mean face,
    and the part labels the painting uses.

    Args:
        model: the FULL ICT-like model (eyes, teeth, lashes; UV tiles 0 = face, 1 = back of head).
        texture_size: texels per UV tile side.
    """

    def __init__(self, model: MorphableModel, texture_size: int = TEXTURE_SIZE) -> None:
        if model.parent_vertices is not None:
            raise UsageError("the held-out set needs the full model, not a view: pass load_model('ict')")
        if model.landmarks68 is None or model.uv is None:
            raise UsageError(f"model {model.name!r} needs 68-point landmarks and UVs for the held-out set")
        for group in ("M_Face", "M_BackHead"):
            if group not in model.triangle_groups:
                raise UsageError(f"model {model.name!r} has no {group} material: the held-out set paints ICT's UV tiles")
        self.model = model
        self.texture_size = int(texture_size)
        tris = model.triangles.cpu().numpy()
        v = model.num_vertices
        mean = model.mean.detach().cpu().double().numpy()
        self.mean = mean
        lm = model.landmark_points(model.mean[None].float())[0].double().numpy()
        self.lm = lm

        def group(*names: str) -> np.ndarray:
            ids = [model.triangle_groups[g].cpu().numpy() for g in names if g in model.triangle_groups]
            return np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)

        def group_vertices(*names: str) -> np.ndarray:
            return np.unique(tris[group(*names)].ravel())

        eyes = [eye_parts(mean, group_vertices(f"M_Sclera{s}"), group_vertices(f"M_Iris{s}")) for s in ("Left", "Right")]
        keep = np.ones(len(tris), dtype=bool)
        # the lashes are alpha-textured cards in ICT: drawn opaque they are black bands on the lids,
        # so they are left out and the lash line is painted instead
        keep[group(*HIDDEN_GROUPS, "M_EyeLashes")] = False
        cornea = np.zeros(v, dtype=bool)
        for eye in eyes:
            cornea[eye["cornea"]] = True
        keep &= ~cornea[tris].all(1)
        self.triangles = tris[keep]
        textured = np.zeros(len(tris), dtype=bool)
        textured[group("M_Face", "M_BackHead")] = True
        self.textured = textured[keep]

        region = lambda name: model.regions[name].cpu().numpy() if name in model.regions else np.zeros(0, np.int64)  # noqa: E731
        self.face_region = region("narrow_face")
        skin = np.zeros(v, dtype=bool)
        skin[group_vertices("M_Face", "M_BackHead")] = True
        for name in ("mouth_socket", "eye_socket_left", "eye_socket_right"):
            skin[region(name)] = False
        self.skin = np.flatnonzero(skin)
        self.parts = {
            "sclera": group_vertices("M_ScleraLeft", "M_ScleraRight"),
            "eye_inside": group_vertices("M_IrisLeft", "M_IrisRight"),
            "iris": np.concatenate([e["iris"] for e in eyes]), "pupil": np.concatenate([e["pupil"] for e in eyes]),
            "teeth": group_vertices("M_Teeth"), "gums": group_vertices("M_GumsTongue"),
            "mouth": region("mouth_socket"),
            "eye_socket": np.concatenate([region("eye_socket_left"), region("eye_socket_right")]),
        }
        self._iris_radius = _iris_radius(mean, eyes, self.parts["iris"])
        self._follow = _followers(mean, self.skin, [region("eyeball_left"), region("eyeball_right"),
                                                    np.concatenate([region("teeth"), region("gums_and_tongue")])])
        self.outward = _outward(mean, lm)
        self.bumps = _deformation_bumps(mean, lm, self.skin, self.outward)
        self._uv_atlas(model, tris, keep)

    # ------------------------------------------------------------------ the UV atlas
    def _uv_atlas(self, model: MorphableModel, tris: np.ndarray, keep: np.ndarray) -> None:
        """Tile 0 (face) and tile 1 (back of head) side by side: a (T, 2T) atlas, with every texel's
        position on the mean face and the feature fields the painting thresholds."""
        size = self.texture_size
        uv = model.uv.cpu().numpy().astype(np.float64)
        uv_tris = model.uv_triangles.cpu().numpy()
        mean_t = torch.as_tensor(self.mean[None], dtype=torch.float32)
        positions, masks = [], []
        for tile, name in ((0, "M_Face"), (1, "M_BackHead")):
            ids = model.triangle_groups[name].cpu().numpy()
            local = uv.copy()
            local[:, 0] -= tile
            out, mask = render_to_uv(mean_t, torch.as_tensor(local, dtype=torch.float32),
                                     torch.as_tensor(uv_tris[ids]), size, torch.as_tensor(tris[ids]))
            positions.append(out[0].numpy())
            masks.append(mask[0].numpy())
        self.texel_mask = np.concatenate(masks, 1)  # (T, 2T)
        self.texel_tile = np.concatenate([np.zeros((size, size), bool), np.ones((size, size), bool)], 1)
        self.texel_pos = np.concatenate(positions, 1).astype(np.float64)[self.texel_mask]  # (n, 3)
        atlas_uv = uv.copy()
        atlas_uv[:, 0] = np.clip(uv[:, 0], 0.0, 2.0) / 2.0
        self.atlas_uv = atlas_uv.astype(np.float32)
        self.atlas_uv_triangles = uv_tris[keep]
        self.features = {k: v.astype(np.float32) for k, v in
                         _texel_features(self.texel_pos, self.lm, self.texel_tile[self.texel_mask]).items()}
        from scipy.spatial import cKDTree

        self.texel_tree = cKDTree(self.texel_pos)

    # ------------------------------------------------------------------ one face
    def deform(self, vertices: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        """The anatomical deformation of one face: (V, 3) deformed vertices and the RMS (mm) of the
        3D offset over the face region, drawn from DEFORMATION_RMS_RANGE_MM."""
        offset = np.zeros_like(vertices)
        for bump in self.bumps:
            amp = np.clip(rng.normal(0.0, 1.0), -2.0, 2.0) * bump.sd_mm
            offset += amp * bump.field * (1.0 + rng.normal(0.0, 0.12))  # a little asymmetry: see below
        # left/right asymmetry: scale the left half and the right half differently, smoothly
        tilt = rng.normal(0.0, 0.12)
        offset *= 1.0 + tilt * np.tanh(self.mean[:, 0:1] / 30.0)
        # one free asymmetric bump along the normals
        centre = self.mean[rng.choice(self.face_region)]
        sigma = rng.uniform(18.0, 30.0)
        w = np.exp(-((self.mean - centre) ** 2).sum(1) / (2 * sigma**2))
        offset += rng.normal(0.0, 0.6) * w[:, None] * self.outward
        offset[~np.isin(np.arange(len(offset)), self.skin)] = 0.0
        rms = float(rng.uniform(*DEFORMATION_RMS_RANGE_MM))
        current = float(np.sqrt(np.mean(np.sum(offset[self.face_region] ** 2, 1))))
        offset *= rms / max(current, 1e-9)
        for rest, anchor, rigid in self._follow:
            moved = offset[anchor]
            offset[rest] = moved.mean(0) if rigid else moved
        return vertices + offset, rms

    def paint(self, rng: np.random.Generator) -> Materials:
        """The painted materials of one face (texture atlas and per-vertex parts)."""
        texture, tone, hair = _paint_texture(self, rng)
        vertex = np.zeros((len(self.mean), 5))
        vertex[:, :3] = srgb_decode(tone * 0.8)
        vertex[:, 3:] = (0.04, 20.0)
        p = self.parts

        def put(ids, srgb, ks, shininess):
            vertex[ids, :3] = srgb_decode(np.clip(srgb, 0.0, 1.0))
            vertex[ids, 3:] = (ks, shininess)

        put(p["mouth"], tone * np.array([0.42, 0.18, 0.18]), 0.05, 10)
        put(p["eye_socket"], tone * 0.25, 0.0, 10)
        put(p["gums"], np.array([0.62, 0.30, 0.30]) * rng.uniform(0.7, 1.0), 0.3, 60)
        put(p["teeth"], np.array([0.90, 0.87, 0.78]) * rng.uniform(0.8, 1.0), 0.3, 80)
        # the cornea is not rendered: the sclera's sphere carries the eye's highlight, the flat iris little
        put(p["sclera"], np.array([0.90, 0.86, 0.82]) * rng.uniform(0.85, 1.0), 0.3, 250)
        put(p["eye_inside"], np.full(3, 0.03), 0.05, 30)
        iris = _IRIS[rng.integers(len(_IRIS))] * rng.uniform(0.7, 1.15)
        r = self._iris_radius
        ring = np.clip((r - 4.6) / 0.9, 0.0, 1.0)[:, None]  # dark limbal ring at the iris's edge
        streaks = 1.0 + 0.25 * np.sin(r * 9.0 + rng.uniform(0, 6.3))[:, None]
        put(p["iris"], iris * streaks * (1.0 - 0.6 * ring), 0.05, 30)
        put(p["pupil"], np.full(3, 0.02), 0.05, 30)
        return Materials(vertex=vertex, texture=texture, uv=self.atlas_uv, uv_triangles=self.atlas_uv_triangles,
                         textured=self.textured)


def generate_heldout_set(model: MorphableModel, n: int, seed: int = 0, image_size: int = 512,
                         fov_deg: float | None = None, scene: HeldoutScene | None = None) -> list[SyntheticFace]:
    """Render `n` held-out faces with their ground truth (see the module docstring).

    Args:
        model: the FULL ICT model (not a view).
        n: number of faces; face i has |yaw| in HELDOUT_YAW_BINS[i % 4].
        seed: the set's seed; face i depends only on (seed, i).
        image_size: side of the square images (px).
        fov_deg: render every face at this horizontal field of view instead of its own draw.
        scene: a `HeldoutScene(model)` to reuse across calls (it takes a second or two to build).
    """
    if int(n) != n or n < 0 or int(image_size) != image_size or image_size < 64:
        raise UsageError(f"need n >= 0 and image_size >= 64, got n={n}, image_size={image_size}")
    if fov_deg is not None and not FOV_RANGE_DEG[0] <= fov_deg <= FOV_RANGE_DEG[1]:
        raise UsageError(f"fov_deg must be within {FOV_RANGE_DEG}, got {fov_deg}")
    scene = scene if scene is not None else HeldoutScene(model)
    if scene.model is not model:
        raise UsageError("the scene was built for another model")
    return [heldout_face(scene, i, seed, int(image_size), fov_deg) for i in range(int(n))]


def heldout_face(scene: HeldoutScene, index: int, seed: int, image_size: int = 512,
                 fov_deg: float | None = None) -> SyntheticFace:
    """Face `index` of the held-out set `seed` (see `generate_heldout_set`)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), SEED_TAG]))
    model = scene.model
    coeffs = model.sample(1, seed=int(rng.integers(2**31)), expression_sparsity=0.08, expression_scale=0.6)
    with torch.no_grad():
        verts = model.vertices(coeffs.identity, coeffs.expression)[0].double().numpy()
    verts, rms = scene.deform(verts, rng)

    lo, hi = HELDOUT_YAW_BINS[index % len(HELDOUT_YAW_BINS)]
    yaw = float(rng.uniform(lo, hi) * rng.choice([-1.0, 1.0]))
    pitch = float(rng.uniform(*PITCH_RANGE_DEG))
    roll = float(rng.uniform(*ROLL_RANGE_DEG))
    drawn_fov = float(rng.uniform(*FOV_RANGE_DEG))
    fov = drawn_fov if fov_deg is None else float(fov_deg)
    size = image_size
    focal = (size / 2.0) / math.tan(math.radians(fov) / 2.0)
    rot_m = euler_deg_to_matrix(torch.tensor([yaw, pitch, roll], dtype=torch.float64)).numpy()
    rotation = matrix_to_axis_angle(torch.as_tensor(rot_m)).numpy()
    principal = np.array([size / 2.0, size / 2.0])
    fill = rng.uniform(*FILL_RANGE)
    offset = rng.uniform(-1.0, 1.0, 2) * (1.0 - fill) / 2 * size * 0.6
    translation = _place(verts[scene.face_region], rot_m, focal, principal, fill * size, principal + offset)

    to32 = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
    camera = PinholeCamera(to32(rotation)[None], to32(translation)[None], to32([focal]), to32(principal)[None],
                           (size, size))
    cam_face = verts[scene.face_region] @ rot_m.T + translation
    lighting = _random_lighting(cam_face.mean(0), rng)
    materials = scene.paint(rng)
    background = _random_background(rng, size)
    sensor = Sensor(exposure=None, exposure_bias_ev=float(rng.normal(0.0, 0.3)),
                    noise_read=float(rng.uniform(0.002, 0.012)), noise_shot=float(rng.uniform(0.0, 0.002)),
                    blur_px=float(rng.uniform(0.0, 0.8)) * size / 512,
                    jpeg_quality=int(rng.integers(60, 96)) if rng.random() < 0.7 else None)
    photo = render_photo(verts, scene.triangles, camera, materials, lighting, background, sensor, rng)
    with torch.no_grad():
        lm68 = model.landmark_points(to32(verts)[None])[0]
        landmarks2d = camera.project(lm68[None])[0].double().numpy()
    # no SH light: these faces are lit by point and area lights (image_formation), not the fit's model
    truth = FaceState.single(coeffs.identity[0].double().numpy(), coeffs.expression[0].double().numpy(), rotation,
                             translation, float(focal), principal, photo.image.shape[:2])
    return SyntheticFace(
        name=f"heldout_{index:04d}", image=photo.image, gt_vertices=verts.astype(np.float32), truth=truth,
        landmarks2d=landmarks2d, landmarks7=lm68.double().numpy()[list(NOW_LANDMARKS_68)], off_model=True,
        displacement_rms_mm=rms, displacement=None,
    )


def horizontal_fov_deg(face: SyntheticFace) -> float:
    """The horizontal field of view a face was rendered with, degrees."""
    return math.degrees(2.0 * math.atan(face.image_size[1] / 2.0 / face.focal))


def heldout_yaw_bin(yaw_deg: float) -> int:
    """Index into HELDOUT_YAW_BINS of |yaw| ([lo, hi), the last bin closed), -1 beyond it."""
    a = abs(yaw_deg)
    for k, (lo, hi) in enumerate(HELDOUT_YAW_BINS):
        if lo <= a < hi or (k == len(HELDOUT_YAW_BINS) - 1 and a == hi):
            return k
    return -1


# ----------------------------------------------------------------------------------- geometry


def _outward(mean: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """(V, 3) a smooth outward direction field: away from an axis through the middle of the head.
    Unlike the mesh normals it does not flip across the folds of the lids and lips, so offsets
    along it stay smooth."""
    centre = np.array([0.0, lm[30, 1], 0.0])
    d = (mean - centre) * np.array([1.0, 0.3, 1.0])
    return d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)


def _deformation_bumps(mean: np.ndarray, lm: np.ndarray, skin: np.ndarray, outward: np.ndarray) -> list[_Bump]:
    """The named anatomical deformations, each (V, 3) at 1 mm peak, zero off the skin."""
    on_skin = np.zeros(len(mean), dtype=bool)
    on_skin[skin] = True

    def gauss(centre, sigma):
        return np.exp(-((mean - centre) ** 2).sum(1) / (2 * sigma**2)) * on_skin

    def unit(*d):
        d = np.asarray(d, dtype=np.float64)
        return d / np.linalg.norm(d)

    def pair(name, left, right, sigma, direction, sd, mirror_x=True):
        # landmark 36 is on -x: "left"/"right" are the image's; mirrored directions keep symmetry
        d_right = np.asarray(direction, dtype=np.float64)
        d_left = d_right * np.array([-1.0, 1.0, 1.0]) if mirror_x else d_right
        f = gauss(left, sigma)[:, None] * d_left + gauss(right, sigma)[:, None] * d_right
        return _Bump(name, f, sd)

    def along_outward(name, centres, sigma, sd):
        w = sum(gauss(c, sigma) for c in centres)
        return _Bump(name, w[:, None] * outward, sd)

    brow_y = lm[17:27, 1].max()
    forehead_ramp = np.clip((mean[:, 1] - brow_y) / 45.0, 0.0, 1.2) * gauss(lm[27] + [0.0, 45.0, -10.0], 45.0)
    cheek_l = (lm[1] + lm[31] + lm[41]) / 3 + [0.0, 0.0, 8.0]
    cheek_r = (lm[15] + lm[35] + lm[46]) / 3 + [0.0, 0.0, 8.0]
    return [
        _Bump("nose_length", gauss(lm[30], 12.0)[:, None] * unit(0.0, -0.45, 1.0), 3.5),
        _Bump("nose_bridge", gauss((lm[27] + 2 * lm[28]) / 3, 11.0)[:, None] * unit(0.0, 0.0, 1.0), 2.5),
        pair("nose_width", lm[31], lm[35], 9.0, unit(1.0, 0.0, 0.2), 2.0),
        _Bump("chin_depth", gauss((2 * lm[8] + lm[57]) / 3 + [0.0, 0.0, -4.0], 18.0)[:, None] * unit(0.0, -0.2, 1.0), 4.0),
        _Bump("chin_length", gauss(lm[8], 20.0)[:, None] * unit(0.0, -1.0, 0.0), 2.5),
        pair("jaw_width", lm[4] + [0.0, 0.0, -15.0], lm[12] + [0.0, 0.0, -15.0], 28.0, unit(1.0, 0.0, 0.0), 4.5),
        along_outward("cheek_fullness", [cheek_l, cheek_r], 24.0, 3.5),
        _Bump("forehead_slope", forehead_ramp[:, None] * unit(0.0, 0.0, 1.0), 4.0),
        pair("brow_ridge", lm[19] + [0.0, 4.0, 0.0], lm[24] + [0.0, 4.0, 0.0], 14.0, unit(0.0, 0.0, 1.0), 2.5,
             mirror_x=False),
        _Bump("lip_protrusion", gauss((lm[51] + lm[57]) / 2, 13.0)[:, None] * unit(0.0, 0.0, 1.0), 2.0),
    ]


def _followers(mean: np.ndarray, skin: np.ndarray, rigid_parts: list[np.ndarray]) -> list[tuple]:
    """How the non-skin vertices move: (vertices, skin anchors, rigid). Eyeballs and the teeth with
    the tongue move rigidly with the mean offset of their nearest skin vertices; the rest (lashes,
    sockets) follows its nearest skin vertex."""
    from scipy.spatial import cKDTree

    tree = cKDTree(mean[skin])
    rest = np.setdiff1d(np.arange(len(mean)), skin)
    out = []
    taken = np.zeros(len(mean), dtype=bool)
    for part in rigid_parts:
        part = np.intersect1d(part, rest)
        if part.size:
            _, near = tree.query(mean[part])
            out.append((part, skin[np.unique(near)], True))
            taken[part] = True
    loose = rest[~taken[rest]]
    if loose.size:
        _, near = tree.query(mean[loose])
        out.append((loose, skin[near], False))
    return out


def _iris_radius(mean: np.ndarray, eyes: list[dict], iris: np.ndarray) -> np.ndarray:
    """(len(iris),) each iris vertex's distance (mm) from its eye's axis, for the limbal ring."""
    out = np.zeros(len(iris))
    offset = 0
    for eye in eyes:
        ids = eye["iris"]
        if ids.size:
            centre = mean[ids].mean(0)
            d = mean[ids] - centre
            _, _, vt = np.linalg.svd(d, full_matrices=False)
            axis = vt[2]
            out[offset:offset + len(ids)] = np.linalg.norm(d - (d @ axis)[:, None] * axis, axis=1)
        offset += len(ids)
    return out


def _place(face_points: np.ndarray, rot: np.ndarray, focal: float, principal: np.ndarray, side_px: float,
           target: np.ndarray) -> np.ndarray:
    """Translation (3,) that makes the face points' projected box `side_px` on its longer side,
    centred at `target` (px)."""
    rotated = face_points @ rot.T
    centre3 = rotated.mean(0)
    depth = focal * max(np.ptp(rotated[:, 0]), np.ptp(rotated[:, 1])) / side_px
    shift = np.zeros(2)

    def translation() -> np.ndarray:
        c = (target + shift - principal) * depth / focal
        return np.array([c[0], -c[1], -depth]) - centre3

    for _ in range(5):
        cam = rotated + translation()
        uv = principal + focal * cam[:, :2] / -cam[:, 2:] * np.array([1.0, -1.0])
        lo, hi = uv.min(0), uv.max(0)
        depth *= max(hi - lo) / side_px
        shift += target - (lo + hi) / 2
    return translation()


# ----------------------------------------------------------------------------------- light


def _random_lighting(face_centre: np.ndarray, rng: np.random.Generator) -> Lighting:
    """A key light (point or disc) from the front half, often a fill on the other side, sometimes a
    rim light from behind, and an ambient term; camera space, aimed at the face."""
    aim = np.asarray(face_centre, dtype=np.float64)

    def from_direction(azimuth_deg, elevation_deg, distance):
        a, e = math.radians(azimuth_deg), math.radians(elevation_deg)
        return aim + distance * np.array([math.sin(a) * math.cos(e), math.sin(e), math.cos(a) * math.cos(e)])

    def colour(kelvin_shift):
        return np.clip(np.array([1.0 + kelvin_shift, 1.0, 1.0 - kelvin_shift]) * (1 + rng.normal(0, 0.03, 3)), 0.6, 1.4)

    side = rng.choice([-1.0, 1.0])
    key_az = side * rng.uniform(5.0, 85.0)
    distance = rng.uniform(700.0, 2500.0)
    key_intensity = math.pi * (distance / 1000.0) ** 2  # irradiance ~pi at the face: exposure is automatic anyway
    radius = rng.uniform(0.0, 0.3) * distance if rng.random() < 0.7 else 0.0
    lights = [PointLight(from_direction(key_az, rng.uniform(-10.0, 55.0), distance),
                         key_intensity * colour(rng.normal(0.0, 0.08)), radius=radius,
                         samples=4 if radius > 0 else 1, aim=aim)]
    if rng.random() < 0.6:
        d = rng.uniform(800.0, 2500.0)
        lights.append(PointLight(from_direction(-side * rng.uniform(20.0, 80.0), rng.uniform(-10.0, 40.0), d),
                                 math.pi * (d / 1000.0) ** 2 * rng.uniform(0.08, 0.4) * colour(rng.normal(0.0, 0.1)),
                                 radius=0.25 * d, samples=2, aim=aim))
    if rng.random() < 0.25:
        d = rng.uniform(800.0, 2000.0)
        lights.append(PointLight(from_direction(side * rng.uniform(110.0, 160.0), rng.uniform(10.0, 50.0), d),
                                 math.pi * (d / 1000.0) ** 2 * rng.uniform(0.3, 1.0) * colour(rng.normal(0.0, 0.1)),
                                 aim=aim))
    ambient = math.pi * rng.uniform(0.05, 0.35) * colour(rng.normal(0.0, 0.08))
    return Lighting(lights, ambient, ambient_from_above=float(rng.uniform(0.0, 0.6)))


# ----------------------------------------------------------------------------------- albedo


def _polyline(points: np.ndarray, polyline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) distance of points (N, D) to an open polyline (M, D), and (N,) the arc-length fraction
    in [0, 1] of the closest point."""
    a, b = polyline[:-1], polyline[1:]
    ab = b - a
    lengths = np.linalg.norm(ab, axis=1)
    t = np.clip(np.einsum("nmd,md->nm", points[:, None] - a[None], ab) / np.maximum(lengths**2, 1e-12), 0.0, 1.0)
    d = np.linalg.norm(points[:, None] - (a[None] + t[..., None] * ab[None]), axis=-1)
    k = np.argmin(d, 1)
    rows = np.arange(len(points))
    cum = np.r_[0.0, np.cumsum(lengths)]
    along = (cum[k] + t[rows, k] * lengths[k]) / max(cum[-1], 1e-12)
    return d[rows, k], along


def _texel_features(pos: np.ndarray, lm: np.ndarray, back: np.ndarray) -> dict[str, np.ndarray]:
    """Per-texel fields on the mean face (mm): distances to the brows, lids and lips, weights of
    the beard, cheek, T-zone and scalp areas."""
    front = (~back) & (pos[:, 2] > lm[0, 2] - 10.0)
    f: dict[str, np.ndarray] = {}
    big = np.full(len(pos), 1e3)
    brow, brow_t = big.copy(), np.zeros(len(pos))
    near = front & (np.abs(pos[:, 1] - lm[17:27, 1].mean()) < 20.0)
    for ids in (list(range(17, 22)), list(range(22, 27))):
        d, t = _polyline(pos[near], lm[ids] + [0.0, -2.0, 0.0])
        t = t if ids[0] == 22 else 1.0 - t  # 0 at the inner end, 1 at the tail of both brows
        better = d < brow[near]
        brow[np.flatnonzero(near)[better]] = d[better]
        brow_t[np.flatnonzero(near)[better]] = t[better]
    f["brow"], f["brow_t"], f["brow_dy"] = brow, brow_t, pos[:, 1] - np.interp(pos[:, 0], lm[17:27, 0], lm[17:27, 1])
    lids = {"upper": ([36, 37, 38, 39], [42, 43, 44, 45]), "lower": ([39, 40, 41, 36], [45, 46, 47, 42])}
    eyes_near = front & (np.abs(pos[:, 1] - lm[36:48, 1].mean()) < 15.0)
    for name, chains in lids.items():
        out = big.copy()
        for chain in chains:
            d, _ = _polyline(pos[eyes_near], lm[chain])
            out[eyes_near] = np.minimum(out[eyes_near], d)
        f[name + "_lid"] = out
    # lips: signed distance to the outer lip outline seen from the front (negative inside)
    outline = lm[48:60, :2]
    lip_near = front & (np.abs(pos[:, 1] - lm[48:68, 1].mean()) < 20.0) & (np.abs(pos[:, 0]) < 40.0)
    d, _ = _polyline(pos[lip_near, :2], np.vstack([outline, outline[:1]]))
    inside = _inside_polygon(pos[lip_near, :2], outline)
    lip = big.copy()
    lip[lip_near] = np.where(inside, -d, d)
    f["lip"] = lip

    def gauss(c, s):
        return np.exp(-((pos - c) ** 2).sum(1) / (2 * s**2))

    nose_y = lm[33, 1]
    jaw = np.interp(pos[:, 0], lm[0:17, 0], lm[0:17, 1])  # the jaw line's height at this x
    below_nose = 1.0 / (1.0 + np.exp(-(nose_y - 5.0 - pos[:, 1]) / 2.0))
    beside = np.clip((np.abs(pos[:, 0]) - (abs(lm[0, 0]) - 8.0)) / -8.0, 0.0, 1.0)  # fades toward the ears
    neck = np.clip((pos[:, 1] - (jaw - 25.0)) / 10.0, 0.0, 1.0)
    f["beard"] = below_nose * beside * neck * (~back) * np.clip((lip - 1.5) / 1.5, 0.0, 1.0)
    f["cheeks"] = gauss((lm[1] + lm[31] + lm[41]) / 3, 16.0) + gauss((lm[15] + lm[35] + lm[46]) / 3, 16.0)
    f["tzone"] = gauss(lm[27] + [0.0, 35.0, 0.0], 25.0) + gauss(lm[30], 12.0)
    f["nose"] = gauss(lm[30], 10.0)
    f["under_eye"] = gauss(lm[40] + [0.0, -6.0, 0.0], 8.0) + gauss(lm[47] + [0.0, -6.0, 0.0], 8.0)
    brow_top = lm[17:27, 1].max()
    behind = np.clip(lm[27, 2] - 60.0 - pos[:, 2], 0.0, None)
    ear = (np.abs(pos[:, 0]) > abs(lm[0, 0]) - 6.0) & (pos[:, 1] < brow_top + 10.0) & (pos[:, 1] > lm[4, 1]) & \
        (pos[:, 2] > lm[0, 2] - 35.0)
    f["hair_height"] = np.where(ear, -1e3, (pos[:, 1] - brow_top) + 1.2 * behind)
    f["collar"] = lm[8, 1] - 40.0 - pos[:, 1] + 0.25 * behind  # > 0 on the neck low enough to be clothed
    f["front"] = front.astype(np.float64)
    return f


def _noise(rng: np.random.Generator, shape: tuple[int, int], cells: int, smooth: bool = True) -> np.ndarray:
    """Value noise of unit std on a (H, W) grid, `cells` cells across (bicubic, or bilinear when not
    `smooth`), float32."""
    import torch.nn.functional as F

    coarse = torch.as_tensor(rng.normal(0.0, 1.0, (1, 1, max(cells * shape[0] // shape[1], 2), max(cells, 2))),
                             dtype=torch.float32)
    out = F.interpolate(coarse, size=shape, mode="bicubic" if smooth else "bilinear", align_corners=False)
    return out[0, 0].numpy()


def _filtered(rng: np.random.Generator, shape: tuple[int, int], sigma: tuple[float, float],
              density: float | None = None) -> np.ndarray:
    """Gaussian-filtered white noise (H, W) float32 (uniform, or Bernoulli(density) dots)."""
    from scipy.ndimage import gaussian_filter

    white = rng.random(shape, dtype=np.float32)
    return gaussian_filter(white if density is None else (white < density).astype(np.float32), sigma)


def _paint_texture(scene: HeldoutScene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, 2T, 5) linear material atlas, and the skin tone and hair colour (display RGB)."""
    f = scene.features
    mask = scene.texel_mask
    shape = mask.shape
    t = scene.texture_size
    face_texels = ~scene.texel_tile[mask]
    n = int(mask.sum())

    def field(img):
        return img[mask]

    def face_field(img):  # a (T, T) map of the face tile only, zero on the back of the head
        out = np.zeros(n, dtype=np.float32)
        out[face_texels] = img[mask[:, :t]]
        return out

    tone = _SKIN_LIGHT + rng.uniform(0, 1) ** 1.2 * (_SKIN_DARK - _SKIN_LIGHT)
    tone = np.clip(tone * (1.0 + rng.normal(0.0, 0.04, 3)), 0.0, 1.0)
    col = np.tile(tone.astype(np.float32), (n, 1))
    # broad variation, pores and mottling
    col *= 1.0 + 0.05 * field(_noise(rng, shape, 12))[:, None] + 0.02 * field(_noise(rng, shape, 6))[:, None] * \
        rng.normal(0.0, 1.0, 3)
    col *= 1.0 + 0.035 * field(_noise(rng, shape, 300, smooth=False))[:, None]
    col *= 1.0 + rng.uniform(0.01, 0.03) * rng.standard_normal((n, 1), dtype=np.float32)
    red = rng.uniform(0.03, 0.15)
    col *= 1.0 + red * (f["cheeks"] + 0.7 * f["nose"])[:, None] * np.array([0.5, -0.35, -0.3])
    col *= 1.0 - rng.uniform(0.02, 0.1) * f["under_eye"][:, None] * np.array([0.7, 0.9, 0.8])
    # freckles and moles: sharp-edged dots
    if rng.random() < 0.35:
        k = int(rng.integers(60, 400))
        centres = scene.texel_pos[rng.choice(np.flatnonzero((f["cheeks"] + f["nose"]) > 0.3), k)]
        _dots(col, scene, centres, rng.uniform(0.5, 1.3, k), tone * np.array([0.78, 0.66, 0.58]))
    k = int(rng.integers(0, 4))
    if k:
        centres = scene.texel_pos[rng.choice(np.flatnonzero(f["front"] > 0), k)]
        _dots(col, scene, centres, rng.uniform(0.8, 2.0, k), tone * np.array([0.45, 0.33, 0.28]))
    # stubble: dense dark dots over the beard area
    hair = _HAIR[rng.integers(len(_HAIR))] * rng.uniform(0.8, 1.15)
    if rng.random() < 0.4:
        density = rng.uniform(0.15, 0.5)
        dots = face_field(_filtered(rng, (t, t), (0.6, 0.6), density)) * 2.0
        w = np.clip(f["beard"] * dots * rng.uniform(0.5, 0.9), 0.0, 1.0)
        col += w[:, None] * (np.minimum(hair, tone * 0.5) - col)
    # brows: a band above the iBUG brow points, tapering toward the tail, with hair streaks
    thick = rng.uniform(5.0, 9.0) * (1.1 - 0.6 * f["brow_t"])  # the iBUG brow points follow the upper edge
    half = thick / 2
    streaks = face_field(_filtered(rng, (t, t), (3.0, 0.4)))
    streaks = (streaks - streaks.mean()) / max(streaks.std(), 1e-9)
    w = np.clip((half - np.abs(f["brow_dy"] + half + 1.0)) / 0.5, 0.0, 1.0) * (f["brow"] < 12.0) * \
        np.clip(0.75 + 0.5 * streaks, 0.0, 1.0)
    brow_colour = np.minimum(hair, tone * 0.4) if rng.random() < 0.7 else tone * rng.uniform(0.25, 0.45)
    col += (w * rng.uniform(0.5, 0.9))[:, None] * (brow_colour - col)
    # lash line: a dark line on the upper lid margin, thinner on the lower; sometimes eyeliner
    liner = rng.uniform(0.5, 1.2) if rng.random() < 0.3 else rng.uniform(0.25, 0.5)
    w = np.clip((liner - f["upper_lid"]) / 0.25, 0.0, 1.0) * 0.85 + \
        np.clip((0.2 - f["lower_lid"]) / 0.2, 0.0, 1.0) * 0.3
    col += np.clip(w, 0.0, 1.0)[:, None] * (np.array([0.05, 0.04, 0.04]) - col)
    # lips: crisp vermilion border
    lip_colour = tone * np.array([0.88, 0.55, 0.58]) * rng.uniform(0.7, 1.0)
    if rng.random() < 0.2:
        lip_colour = np.array([0.6, 0.1, 0.15]) * rng.uniform(0.6, 1.0)  # lipstick
    w = np.clip((0.3 - f["lip"]) / 0.6, 0.0, 1.0) * f["front"]
    col += w[:, None] * (lip_colour * (1.0 + 0.05 * rng.normal(0, 1, (n, 1))) - col)
    # scalp hair (short hair or bald) and a collar on the neck
    spec = 0.03 + 0.05 * f["tzone"] + 0.08 * w
    shine = np.full(n, rng.uniform(15.0, 40.0))
    if rng.random() < 0.85:
        hairline = rng.uniform(35.0, 60.0)
        strands = field(_filtered(rng, shape, (2.5, 0.5)))
        strands = 1.0 + 0.25 * (strands - strands.mean()) / max(float(strands.std()), 1e-9)
        w = np.clip((f["hair_height"] - hairline) / 4.0, 0.0, 1.0)
        col += w[:, None] * (hair * strands[:, None] - col)
        spec = spec * (1 - w) + 0.08 * w
        shine = shine * (1 - w) + 8.0 * w
    clothes = _CLOTHES[rng.integers(len(_CLOTHES))] * rng.uniform(0.6, 1.1)
    w = np.clip(f["collar"] / 2.0, 0.0, 1.0)
    col += w[:, None] * (clothes * (1 + 0.08 * field(_noise(rng, shape, 150, smooth=False)))[:, None] - col)
    spec = spec * (1 - w) + 0.02 * w
    spec *= rng.uniform(0.6, 1.6)
    out = np.zeros(shape + (5,), dtype=np.float32)
    out[..., :3] = srgb_decode(tone)
    out[mask, :3] = srgb_decode(np.clip(col, 0.0, 1.0))
    out[mask, 3] = spec
    out[..., 4] = shine.mean()
    out[mask, 4] = shine
    return out, tone, hair


def _dots(col: np.ndarray, scene: HeldoutScene, centres: np.ndarray, radii: np.ndarray, colour: np.ndarray) -> None:
    """Paint sharp-edged round dots (mm radii) at 3D centres onto per-texel colours, in place."""
    tree = scene.texel_tree
    pos = scene.texel_pos
    for c, r in zip(centres, radii):
        ids = tree.query_ball_point(c, r + 0.3)
        if ids:
            d = np.linalg.norm(pos[ids] - c, axis=1)
            w = np.clip((r - d) / 0.3, 0.0, 1.0)[:, None] * 0.8
            col[ids] += w * (colour - col[ids])


# ----------------------------------------------------------------------------------- background


def _random_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) display RGB: a room out of focus - a wall gradient, panels and shelves, maybe
    a bright window, textured, with bokeh discs and defocus blur."""
    from scipy.ndimage import gaussian_filter

    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    def colour():
        c = rng.uniform(0.05, 0.9, 3)
        return c + rng.uniform(0.3, 0.8) * (c.mean() - c)  # rooms are mostly muted

    wall = colour() * rng.uniform(0.6, 1.0)
    img = wall * (1.0 + rng.uniform(-0.35, 0.35) * (yy[..., None] - 0.5) + rng.uniform(-0.3, 0.3) * (xx[..., None] - 0.5))
    for _ in range(int(rng.integers(2, 7))):
        x0, y0 = rng.uniform(-0.2, 1.0, 2)
        w, h = rng.uniform(0.05, 0.6), rng.uniform(0.05, 1.0)
        box = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
        img[box] = colour()
    if rng.random() < 0.5:  # shelves: repeated horizontal bars with clutter
        x0 = rng.uniform(-0.1, 0.7)
        for y in np.arange(rng.uniform(0.0, 0.2), 1.0, rng.uniform(0.12, 0.25)):
            bar = (xx > x0) & (xx < x0 + 0.4) & (np.abs(yy - y) < 0.012)
            img[bar] = colour() * 0.6
            for _ in range(int(rng.integers(2, 6))):
                bx = rng.uniform(x0, x0 + 0.4)
                item = (np.abs(xx - bx) < rng.uniform(0.005, 0.03)) & (yy < y) & (yy > y - rng.uniform(0.03, 0.1))
                img[item] = rng.uniform(0.05, 0.95, 3)
    if rng.random() < 0.35:  # a bright window
        x0, y0 = rng.uniform(-0.1, 0.8), rng.uniform(-0.1, 0.5)
        box = (xx >= x0) & (xx < x0 + rng.uniform(0.15, 0.4)) & (yy >= y0) & (yy < y0 + rng.uniform(0.2, 0.5))
        img[box] = np.clip(rng.uniform(0.85, 1.0, 3) + 0.1, 0.0, 1.0)
    img *= 1.0 + 0.06 * _noise(rng, (size, size), 16)[..., None] + 0.05 * _noise(rng, (size, size), size // 3, 1)[..., None]
    img = gaussian_filter(img, sigma=(rng.uniform(0.5, 4.0) * size / 512,) * 2 + (0,))
    for _ in range(int(rng.integers(0, 8))):  # bokeh
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.01, 0.04)
        disc = np.clip((r - np.hypot(xx - cx, yy - cy)) * size / 1.5, 0.0, 1.0)[..., None]
        img = img + disc * rng.uniform(0.2, 0.6) * rng.uniform(0.7, 1.0, 3)
    return np.clip(img, 0.0, 1.0)


__all__ = ["DEFORMATION_RMS_RANGE_MM", "FOV_RANGE_DEG", "HELDOUT_YAW_BINS", "HeldoutScene", "generate_heldout_set",
           "heldout_face", "heldout_yaw_bin", "horizontal_fov_deg"]
