"""Synthetic faces with exact ground truth: render the model itself, then score reconstructions of it.

Each face is a random identity (all modes, N(0, 1)) with a sparse random expression, posed in front
of a pinhole camera whose focal length is random (a reconstruction is not told it), lit by random
spherical-harmonics light (an ambient term plus one distant light from the front hemisphere,
sometimes from the side only), with a per-vertex albedo that has the structure detectors look for:
a skin tone with low-frequency variation and freckle-scale noise, darker brows, redder lips, hair,
white sclera, dark irises and lashes, teeth. The background is a cluttered random image; Gaussian
sensor noise and 8-bit quantisation finish it (so the PNG holds exactly the image).

`off_model=True` (issue #11) makes faces the model cannot represent exactly: the surface is moved
along its normals by a smooth random field (a sum of Gaussian bumps 15-40 mm wide) whose RMS over the
face is drawn from 1-2 mm, and poses stay within what a single photo constrains (yaw +-60, pitch +-20).

Everything is drawn from `numpy.random.SeedSequence([seed, index, off_model])`: face i is the same
whatever n is, and the same seed gives identical images.

    faces = generate_synthetic_set(model, n=10, seed=0, out_dir="synthetic/")
    faces = load_synthetic_set("synthetic/")           # the same faces, from the files
    faces = load_or_generate_synthetic_set(model, n=10, seed=0, out_dir="synthetic/")

Units and frames: docs/conventions.md (mm, model space +y up, camera looking down -z, pixel centres
at +0.5, SH (9, 3) in camera space).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ImageError, UsageError
from ..landmarks import load_correspondence
from ..fitting.state import FaceState
from ..models import LandmarkEmbedding, MorphableModel
from ..render import PinholeCamera, SHLight, euler_deg_to_matrix, matrix_to_axis_angle, render_mesh, vertex_normals
from .now import NOW_LANDMARKS_68
from .regions import _inside_polygon

MANIFEST = "manifest.json"
GENERATOR_VERSION = 1  # bump when the same seed would draw different faces: stored sets are then remade
# ICT materials that are see-through shells (tear film, eye shadowing): never rendered opaque
HIDDEN_GROUPS = ("M_EyeOcclusion", "M_LacrimalFluid", "M_EyeBlend")

# Drawing ranges of the two sets: (on-model, off-model).
YAW_RANGE = {False: (-90.0, 90.0), True: (-60.0, 60.0)}
PITCH_RANGE = {False: (-30.0, 30.0), True: (-20.0, 20.0)}
ROLL_RANGE = (-10.0, 10.0)
FOCAL_RANGE = (0.8, 2.0)  # multiples of the image size
FILL_RANGE = (0.4, 0.6)  # the face's bounding box side over the image side
DISPLACEMENT_RMS_RANGE = (1.0, 2.0)  # mm, over the face region (off-model set)
BUMP_SIGMA_RANGE = (15.0, 40.0)  # mm
BUMP_COUNT_RANGE = (4, 9)
ONE_SIDED_LIGHT_PROBABILITY = 0.3
CORNEA_RADIUS_MM = 5.8  # ICT's cornea (part of the sclera mesh) and iris, around the eye's axis
PUPIL_RADIUS_MM = 2.0
NOISE_SIGMA_RANGE = (0.004, 0.02)  # sensor noise std, image in [0, 1]

_SKIN_LIGHT = np.array([0.80, 0.60, 0.50])
_SKIN_DARK = np.array([0.30, 0.18, 0.12])
_HAIR_COLOURS = np.array([[0.05, 0.04, 0.035], [0.16, 0.10, 0.06], [0.32, 0.21, 0.12], [0.55, 0.42, 0.25],
                          [0.35, 0.14, 0.06], [0.45, 0.44, 0.42]])
_IRIS_COLOURS = np.array([[0.22, 0.13, 0.07], [0.12, 0.07, 0.04], [0.20, 0.28, 0.38], [0.22, 0.28, 0.18],
                          [0.30, 0.22, 0.12]])


@dataclass
class SyntheticFace:
    """One rendered face and its ground truth.

    Attributes:
        name: "face_0000", ...
        image: (H, W, 3) float32 RGB in [0, 1] (multiples of 1/255: the PNG holds it exactly).
        gt_vertices: (V, 3) float32 vertices of the FULL model in model space, mm (displaced when
            off-model): the ground-truth scan.
        truth: the `FaceState` the face was made from (B = 1): identity and expression coefficients,
            rotation, translation, camera (focal, principal, image size) and SH light.
        landmarks2d: (68, 2) iBUG-68 landmarks of the model's embedding projected into the image, px
            (self-occluded ones included).
        landmarks7: (7, 3) the NoW landmarks (68-indices 36, 39, 42, 45, 33, 48, 54) on gt_vertices.
        off_model: whether the surface was displaced off the model.
        displacement_rms_mm: RMS of the normal displacement over the face region (0 on-model).
        displacement: (V,) float32 offset along the vertex normals in mm, or None on-model (0 on the
            eyes, teeth and lashes, which move rigidly with their nearest skin vertex).
    """

    name: str
    image: np.ndarray
    gt_vertices: np.ndarray
    truth: FaceState
    landmarks2d: np.ndarray
    landmarks7: np.ndarray
    off_model: bool = False
    displacement_rms_mm: float = 0.0
    displacement: np.ndarray | None = None

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])

    @property
    def focal(self) -> float:
        """The true focal length, px."""
        return float(self.truth.camera.focal[0])

    @property
    def yaw_deg(self) -> float:
        return float(self.truth.params.pose_deg()[0, 0])

    @property
    def pitch_deg(self) -> float:
        return float(self.truth.params.pose_deg()[0, 1])

    @property
    def roll_deg(self) -> float:
        return float(self.truth.params.pose_deg()[0, 2])

    def camera(self) -> PinholeCamera:
        """The pinhole camera the face was rendered with (batch 1, float32)."""
        return self.truth.pinhole()

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) model-space points -> (N, 2) pixels through the face's camera."""
        with torch.no_grad():
            uv = self.camera().project(torch.as_tensor(np.asarray(points, dtype=np.float32)[None]))
        return uv[0].double().numpy()


def generate_synthetic_set(model: MorphableModel, n: int, seed: int, out_dir: str | os.PathLike | None = None,
                           off_model: bool = False, image_size: int = 256,
                           yaw_range: tuple[float, float] | None = None) -> list[SyntheticFace]:
    """Render `n` random faces of `model` with their ground truth (see the module docstring).

    Args:
        model: the FULL model (not a view): its eyes, teeth and hair are rendered.
        n: number of faces.
        seed: the set's seed; face i depends only on (seed, i, off_model).
        out_dir: if given, write face_XXXX.png, face_XXXX_gt.npz and manifest.json there.
        off_model: displace the surface off the model (issue #11) and draw milder poses.
        image_size: side of the square images in pixels.
        yaw_range: (min, max) yaw in degrees; default (-90, 90), or (-60, 60) off-model.

    Returns:
        The faces, in order.
    """
    if model.parent_vertices is not None:
        raise UsageError("generate_synthetic_set needs the full model, not a view: pass load_model('ict')")
    if model.landmarks68 is None:
        raise UsageError(f"model {model.name!r} has no 68-point landmarks to place the ground truth with")
    if int(n) != n or n < 0 or int(image_size) != image_size or image_size < 32:
        raise UsageError(f"need n >= 0 and image_size >= 32, got n={n}, image_size={image_size}")
    yaw_range = tuple(yaw_range) if yaw_range is not None else YAW_RANGE[bool(off_model)]
    if len(yaw_range) != 2 or not -180.0 <= yaw_range[0] <= yaw_range[1] <= 180.0:
        raise UsageError(f"yaw_range must be (min, max) degrees within [-180, 180], got {yaw_range}")
    scene = _Scene(model)
    faces = [_make_face(scene, f"face_{i:04d}", _face_rng(seed, i, off_model), off_model, image_size, yaw_range)
             for i in range(n)]
    if out_dir is not None:
        write_synthetic_set(faces, out_dir, _manifest(model, n, seed, off_model, image_size, yaw_range))
    return faces


def load_or_generate_synthetic_set(model: MorphableModel, n: int, seed: int, out_dir: str | os.PathLike | None = None,
                                   off_model: bool = False, image_size: int = 256,
                                   yaw_range: tuple[float, float] | None = None) -> list[SyntheticFace]:
    """`generate_synthetic_set`, but loaded from `out_dir` when it already holds that very set (same
    model, n, seed and drawing parameters)."""
    if out_dir is not None and (Path(out_dir) / MANIFEST).is_file():
        yaw_range = tuple(yaw_range) if yaw_range is not None else YAW_RANGE[bool(off_model)]
        stored = {k: v for k, v in read_manifest(out_dir).items() if k != "faces"}
        wanted = {k: v for k, v in _manifest(model, n, seed, off_model, image_size, yaw_range).items() if k != "faces"}
        if json.loads(json.dumps(wanted)) == stored:
            return load_synthetic_set(out_dir)
    return generate_synthetic_set(model, n, seed, out_dir, off_model, image_size, yaw_range)


def _face_rng(seed: int, index: int, off_model: bool) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), int(bool(off_model))]))


def _manifest(model: MorphableModel, n: int, seed: int, off_model: bool, image_size: int,
              yaw_range: tuple[float, float]) -> dict:
    return {
        "generator": "facerecon.evaluation.synthetic",
        "generator_version": GENERATOR_VERSION,
        "model": {"name": model.name, "version": model.version},
        "seed": int(seed), "n": int(n), "off_model": bool(off_model), "image_size": int(image_size),
        "parameters": {
            "yaw_range_deg": list(yaw_range), "pitch_range_deg": list(PITCH_RANGE[bool(off_model)]),
            "roll_range_deg": list(ROLL_RANGE), "focal_range_x_image_size": list(FOCAL_RANGE),
            "face_fill_range": list(FILL_RANGE), "identity": "N(0, 1), all modes",
            "expression": "model.sample (sparse blendshapes)",
            "one_sided_light_probability": ONE_SIDED_LIGHT_PROBABILITY,
            "sensor_noise_sigma_range": list(NOISE_SIGMA_RANGE),
            "displacement_rms_range_mm": list(DISPLACEMENT_RMS_RANGE) if off_model else None,
            "displacement_bump_sigma_range_mm": list(BUMP_SIGMA_RANGE) if off_model else None,
        },
        "units": "mm; model space +y up, +z toward the camera; camera looks down -z (docs/conventions.md)",
        "faces": [],
    }


# ----------------------------------------------------------------------------------- files


_ARRAYS = ("gt_vertices", "landmarks2d", "landmarks7")
_SCALARS = ("displacement_rms_mm",)
_TRUTH = ("identity", "expression", "rotation", "translation", "focal", "principal", "sh")


def write_synthetic_set(faces: list[SyntheticFace], out_dir: str | os.PathLike, manifest: dict) -> Path:
    """Write the faces (PNG + `_gt.npz` each) and `manifest` (with the file names added) to out_dir."""
    from PIL import Image

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for face in faces:
        png, gt = f"{face.name}.png", f"{face.name}_gt.npz"
        Image.fromarray(_to_uint8(face.image)).save(folder / png)
        arrays = {k: getattr(face, k) for k in _ARRAYS}
        arrays.update({k: np.float64(getattr(face, k)) for k in _SCALARS})
        t = face.truth.to_numpy()
        arrays.update(identity=t.params.identity[0], expression=t.params.expression[0], rotation=t.params.rotation[0],
                      translation=t.params.translation[0], focal=t.camera.focal[0], principal=t.camera.principal[0],
                      sh=np.zeros((9, 3)) if t.appearance.sh is None else t.appearance.sh[0])
        arrays["off_model"] = np.bool_(face.off_model)
        if face.displacement is not None:
            arrays["displacement"] = face.displacement
        np.savez_compressed(folder / gt, **arrays)
        entries.append({"name": face.name, "image": png, "gt": gt, "yaw_deg": round(face.yaw_deg, 3),
                        "pitch_deg": round(face.pitch_deg, 3), "roll_deg": round(face.roll_deg, 3),
                        "focal_px": round(face.focal, 3), "displacement_rms_mm": round(face.displacement_rms_mm, 4)})
    manifest = {**manifest, "faces": entries}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return folder / MANIFEST


def read_manifest(folder: str | os.PathLike) -> dict:
    """The manifest.json of a synthetic set folder (ImageError if missing or unreadable)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ImageError(f"{path}: not found; write a set with generate_synthetic_set(..., out_dir=...)")
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise ImageError(f"{path}: not a readable manifest ({exc})") from None


def load_synthetic_set(folder: str | os.PathLike) -> list[SyntheticFace]:
    """The faces written by `generate_synthetic_set(..., out_dir=folder)`, identical to those it returned."""
    from PIL import Image

    folder = Path(folder)
    faces = []
    for entry in read_manifest(folder)["faces"]:
        png, gt = folder / entry["image"], folder / entry["gt"]
        for p in (png, gt):
            if not p.is_file():
                raise ImageError(f"{p}: listed in {folder / MANIFEST} but missing")
        with Image.open(png) as im:
            image = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        with np.load(gt) as data:
            fields = {k: data[k] for k in _ARRAYS}
            fields.update({k: float(data[k]) for k in _SCALARS})
            t = {k: data[k] for k in _TRUTH}
            fields["truth"] = FaceState.single(t["identity"], t["expression"], t["rotation"], t["translation"],
                                               float(t["focal"]), t["principal"], image.shape[:2], sh=t["sh"])
            fields["off_model"] = bool(data["off_model"])
            fields["displacement"] = data["displacement"] if "displacement" in data.files else None
        faces.append(SyntheticFace(name=entry["name"], image=image, **fields))
    return faces


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


# ----------------------------------------------------------------------------------- one face


class _Scene:
    """What every face of a set shares: the mesh, the hidden triangles and the albedo layout, all
    derived from the model's mean face."""

    def __init__(self, model: MorphableModel) -> None:
        self.model = model
        tris = model.triangles.cpu().numpy()
        v = model.num_vertices

        def group_vertices(*names: str) -> np.ndarray:
            ids = [tris[model.triangle_groups[g].cpu().numpy()].ravel() for g in names if g in model.triangle_groups]
            return np.unique(np.concatenate(ids)) if ids else np.zeros(0, dtype=np.int64)

        mean = model.mean.detach().cpu().double().numpy()
        eyes = [eye_parts(mean, group_vertices(f"M_Sclera{side}"), group_vertices(f"M_Iris{side}"))
                for side in ("Left", "Right")]
        keep = np.ones(len(tris), dtype=bool)
        for g in HIDDEN_GROUPS:
            if g in model.triangle_groups:
                keep[model.triangle_groups[g].cpu().numpy()] = False
        # the cornea is part of the sclera mesh: see through it to the iris
        cornea = np.zeros(v, dtype=bool)
        for eye in eyes:
            cornea[eye["cornea"]] = True
        keep &= ~cornea[tris].all(1)
        self.triangles = torch.as_tensor(tris[keep])
        self.all_triangles = model.triangles
        lm = model.landmark_points(model.mean[None].float())[0].double().numpy()

        def region(name: str) -> np.ndarray:
            return model.regions[name].cpu().numpy() if name in model.regions else np.zeros(0, dtype=np.int64)

        self.face_region = region("narrow_face") if "narrow_face" in model.regions else np.arange(v)
        # skin: what the displacement moves along its normals (the rest follows its nearest skin vertex)
        skin = np.zeros(v, dtype=bool)
        skin[region("face")] = True
        skin[region("head_and_neck")] = True
        if not skin.any():
            skin[:] = True
        self.skin = np.flatnonzero(skin)
        rest = np.flatnonzero(~skin)
        if rest.size:
            from scipy.spatial import cKDTree

            _, nearest = cKDTree(mean[self.skin]).query(mean[rest])
            self.follow = (rest, self.skin[nearest])
        else:
            self.follow = (rest, rest)
        self.layout = _albedo_layout(mean, lm, skin, {
            "mouth": region("mouth_socket"), "eye_socket": np.concatenate([region("eye_socket_left"),
                                                                            region("eye_socket_right")]),
            "gums": group_vertices("M_GumsTongue"), "teeth": group_vertices("M_Teeth"),
            "sclera": group_vertices("M_ScleraLeft", "M_ScleraRight"),
            "eye_inside": group_vertices("M_IrisLeft", "M_IrisRight"),
            "iris": np.concatenate([e["iris"] for e in eyes]), "pupil": np.concatenate([e["pupil"] for e in eyes]),
            "lashes": group_vertices("M_EyeLashes"),
        })


def _make_face(scene: _Scene, name: str, rng: np.random.Generator, off_model: bool, size: int,
               yaw_range: tuple[float, float]) -> SyntheticFace:
    model = scene.model
    coeffs = model.sample(1, seed=int(rng.integers(2**31)))
    identity, expression = coeffs.identity, coeffs.expression
    with torch.no_grad():
        verts = model.vertices(identity, expression)[0].double().numpy()
    displacement, rms = None, 0.0
    if off_model:
        displacement, verts, rms = _displace(scene, verts, rng)

    yaw = rng.uniform(*yaw_range)
    pitch = rng.uniform(*PITCH_RANGE[bool(off_model)])
    roll = rng.uniform(*ROLL_RANGE)
    rot_m = euler_deg_to_matrix(torch.tensor([yaw, pitch, roll], dtype=torch.float64))
    rotation = matrix_to_axis_angle(rot_m).numpy()
    focal = rng.uniform(*FOCAL_RANGE) * size
    principal = np.array([size / 2.0, size / 2.0])
    translation = _place_face(verts[scene.face_region], rot_m.numpy(), focal, principal, size,
                              rng.uniform(*FILL_RANGE), rng)
    sh = _random_light(rng)
    albedo = _random_albedo(scene.layout, rng)
    albedo *= 1.0 + rng.normal(0.0, 0.01, albedo.shape)  # per-vertex colour noise
    background = _random_background(rng, size)

    to32 = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
    vt = to32(verts)[None]
    camera = PinholeCamera(to32(rotation)[None], to32(translation)[None], to32([focal]), to32(principal)[None],
                           (size, size))
    with torch.no_grad():
        out = render_mesh(vt, scene.triangles, camera, colors=to32(np.clip(albedo, 0, 1)), sh=to32(sh)[None],
                          background=to32(background)[None], antialias=True)
        lm68 = model.landmark_points(vt)[0]
        landmarks2d = camera.project(lm68[None])[0].double().numpy()
    image = out.image[0].double().numpy() + rng.normal(0.0, rng.uniform(*NOISE_SIGMA_RANGE), (size, size, 3))
    image = _to_uint8(image).astype(np.float32) / 255.0
    truth = FaceState.single(identity[0].double().numpy(), expression[0].double().numpy(), rotation, translation,
                             float(focal), principal, (size, size), sh=sh)
    return SyntheticFace(
        name=name, image=image, gt_vertices=verts.astype(np.float32), truth=truth, landmarks2d=landmarks2d,
        landmarks7=lm68.double().numpy()[list(NOW_LANDMARKS_68)], off_model=bool(off_model),
        displacement_rms_mm=float(rms), displacement=displacement,
    )


def ground_truth_mediapipe_points(model: MorphableModel, face: SyntheticFace,
                                  embedding: LandmarkEmbedding | None = None) -> np.ndarray:
    """(478, 2) the MediaPipe points of `model`'s correspondence on the gt mesh, projected, px: what a
    perfect detector would return (self-occluded points included).

    Args:
        embedding: `load_correspondence(model).as_embedding()`, to reuse across faces.
    """
    emb = embedding if embedding is not None else load_correspondence(model).as_embedding()
    with torch.no_grad():
        points = model.landmark_points(torch.as_tensor(face.gt_vertices)[None], emb)
    return face.project(points[0].double().numpy())


def _displace(scene: _Scene, verts: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """A smooth random offset along the normals: a few Gaussian bumps 15-40 mm wide centred on face
    vertices, scaled to an RMS over the face region drawn from DISPLACEMENT_RMS_RANGE."""
    count = int(rng.integers(BUMP_COUNT_RANGE[0], BUMP_COUNT_RANGE[1] + 1))
    centres = verts[rng.choice(scene.face_region, count, replace=False)]
    sigmas = rng.uniform(*BUMP_SIGMA_RANGE, count)
    heights = rng.normal(0.0, 1.0, count)
    skin = verts[scene.skin]
    d2 = ((skin[:, None, :] - centres[None]) ** 2).sum(-1)
    field = (heights * np.exp(-d2 / (2 * sigmas**2))).sum(1)
    offset = np.zeros(len(verts))
    offset[scene.skin] = field
    rms = float(rng.uniform(*DISPLACEMENT_RMS_RANGE))
    offset *= rms / max(float(np.sqrt(np.mean(offset[scene.face_region] ** 2))), 1e-9)
    with torch.no_grad():
        normals = vertex_normals(torch.as_tensor(verts)[None], scene.all_triangles)[0].numpy()
    moved = offset[:, None] * normals
    rest, nearest = scene.follow
    moved[rest] = moved[nearest]  # eyes, teeth, lashes move rigidly with the skin around them
    offset[rest] = 0.0
    return offset.astype(np.float32), verts + moved, rms


def _place_face(face_points: np.ndarray, rot: np.ndarray, focal: float, principal: np.ndarray, size: int,
                fill: float, rng: np.random.Generator) -> np.ndarray:
    """Translation that makes the face region's projected box `fill` x size wide (its longer side),
    centred at a random point that keeps it inside the image."""
    rotated = face_points @ rot.T
    centre3 = rotated.mean(0)
    target = principal + rng.uniform(-1.0, 1.0, 2) * (1.0 - fill) / 2 * size * 0.8
    depth = focal * max(np.ptp(rotated[:, 0]), np.ptp(rotated[:, 1])) / (fill * size)
    shift = np.zeros(2)  # pixel offset of the 3D centre from `target` that centres the box there

    def translation() -> np.ndarray:
        centre = (target + shift - principal) * depth / focal
        return np.array([centre[0], -centre[1], -depth]) - centre3

    for _ in range(4):
        cam = rotated + translation()
        uv = principal + focal * cam[:, :2] / -cam[:, 2:] * np.array([1.0, -1.0])
        lo, hi = uv.min(0), uv.max(0)
        depth *= max(hi - lo) / (fill * size)
        shift += target - (lo + hi) / 2
    return translation()


def _random_light(rng: np.random.Generator) -> np.ndarray:
    """(9, 3) SH: ambient + one distant light from the front hemisphere (camera space); with
    probability ONE_SIDED_LIGHT_PROBABILITY the light comes from the side and the ambient is dim."""
    one_sided = rng.random() < ONE_SIDED_LIGHT_PROBABILITY
    if one_sided:
        polar = math.radians(rng.uniform(55, 85))
        azimuth = rng.choice([0.0, math.pi]) + math.radians(rng.uniform(-30, 30))
        ambient, intensity = rng.uniform(0.15, 0.35), rng.uniform(0.7, 1.0)
    else:
        polar = math.acos(rng.uniform(math.cos(math.radians(60)), 1.0))
        azimuth = rng.uniform(0, 2 * math.pi)
        ambient, intensity = rng.uniform(0.35, 0.7), rng.uniform(0.2, 0.6)
    direction = (math.sin(polar) * math.cos(azimuth), math.sin(polar) * math.sin(azimuth), math.cos(polar))
    colour = tuple(np.clip(1.0 + rng.normal(0.0, 0.06, 3), 0.8, 1.2))
    scale = rng.uniform(0.85, 1.25)
    light = SHLight.ambient_directional(1, ambient * scale, intensity * scale, direction, colour,
                                        dtype=torch.float64)
    return light.coefficients[0].numpy()


# ----------------------------------------------------------------------------------- albedo


@dataclass
class _AlbedoLayout:
    """Where the parts of the face are on the mean shape, as per-vertex weights and index sets."""

    positions: np.ndarray  # (V, 3) mean shape
    skin: np.ndarray  # (V,) bool
    face_vertices: np.ndarray  # skin vertices of the front of the face, where colour blobs are centred
    brows: np.ndarray  # (V,) in [0, 1]
    lips: np.ndarray  # (V,) in [0, 1]
    hair_height: np.ndarray  # (V,) height above the hairline reference (mm), -inf off the scalp
    cheeks: np.ndarray  # (2, 3) cheek centres
    parts: dict  # name -> vertex indices


def _albedo_layout(mean: np.ndarray, lm: np.ndarray, skin: np.ndarray, parts: dict) -> _AlbedoLayout:
    v = len(mean)
    skin = skin.copy()
    for name in ("mouth", "eye_socket"):
        skin[parts[name]] = False
    brows = np.zeros(v)
    down = np.array([0.0, -2.5, 0.0])  # iBUG brow points follow the brow's upper edge
    d = np.minimum(_polyline_distance(mean, lm[17:22] + down), _polyline_distance(mean, lm[22:27] + down))
    brows[skin] = np.clip((5.0 - d[skin]) / 2.5, 0.0, 1.0)
    # lips: inside the outer lip outline seen from the front, on the front of the face
    lips = np.zeros(v)
    outline = lm[48:60, :2]
    front = skin & (mean[:, 2] > lm[48:60, 2].min() - 12.0)
    inside = _inside_polygon(mean[:, :2], outline)
    edge = _polyline_distance(mean[:, :2], np.vstack([outline, outline[:1]]))
    signed = np.where(inside, -edge, edge)
    lips[front] = np.clip((1.0 - signed[front]) / 2.0, 0.0, 1.0)
    # scalp: above a hairline that runs over the forehead and down behind the ears
    brow_top = lm[17:27, 1].max()
    forehead_z = lm[27, 2]
    hair_height = np.full(v, -np.inf)
    scalp = skin & (mean[:, 1] > lm[36, 1] - 25.0)
    # the hairline drops toward the back of the head: ears stay bare, the back is covered
    back = np.clip(forehead_z - 60.0 - mean[:, 2], 0.0, None)
    hair_height[scalp] = (mean[scalp, 1] - brow_top) + 1.2 * back[scalp]
    cheeks = np.stack([(lm[41] + lm[48] + lm[2]) / 3, (lm[46] + lm[54] + lm[14]) / 3])
    face_vertices = np.flatnonzero(skin & front)
    return _AlbedoLayout(mean, skin, face_vertices, brows, lips, hair_height, cheeks, parts)


def _random_albedo(layout: _AlbedoLayout, rng: np.random.Generator) -> np.ndarray:
    """(V, 3) linear RGB albedo of one face."""
    pos = layout.positions
    v = len(pos)
    tone = _SKIN_LIGHT + rng.uniform(0, 1) ** 1.3 * (_SKIN_DARK - _SKIN_LIGHT)
    tone = tone * (1.0 + rng.normal(0.0, 0.04, 3))
    colours = np.tile(tone, (v, 1))
    # low-frequency variation: a few broad blobs of lighter/darker, warmer/cooler skin
    centres = pos[rng.choice(layout.face_vertices, 6)]
    sigmas = rng.uniform(20.0, 50.0, 6)
    blobs = np.exp(-((pos[:, None] - centres[None]) ** 2).sum(-1) / (2 * sigmas**2))  # (V, 6)
    gain = rng.normal(0.0, 0.06, (6, 1)) + rng.normal(0.0, 0.02, (6, 3))
    colours *= 1.0 + blobs @ gain
    # rosy cheeks
    red = rng.uniform(0.0, 0.12)
    cheek = np.exp(-((pos[:, None] - layout.cheeks[None]) ** 2).sum(-1).min(1) / (2 * 18.0**2))
    colours *= 1.0 + red * cheek[:, None] * np.array([0.6, -0.5, -0.4])
    # freckle-scale noise: per-vertex mottling and a sprinkle of darker spots
    colours *= 1.0 + rng.normal(0.0, rng.uniform(0.015, 0.04), (v, 1))
    spots = rng.random(v) < rng.uniform(0.0, 0.02)
    colours[spots] *= np.array([0.92, 0.86, 0.82])
    # hair, brows, lips
    hair = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] * rng.uniform(0.8, 1.2)
    if rng.random() < 0.85:
        hairline = rng.uniform(30.0, 55.0)
        w = np.clip((layout.hair_height - hairline) / 6.0, 0.0, 1.0)
        colours += w[:, None] * (hair - colours)
    brow_colour = np.minimum(hair, tone * 0.45) if rng.random() < 0.7 else tone * rng.uniform(0.3, 0.5)
    w = layout.brows * rng.uniform(0.6, 0.95)
    colours += w[:, None] * (brow_colour - colours)
    lip_colour = tone * np.array([0.85, 0.55, 0.58]) * rng.uniform(0.75, 1.0)
    w = layout.lips * rng.uniform(0.6, 1.0)
    colours += w[:, None] * (lip_colour - colours)
    colours[~layout.skin] = tone * 0.5
    # inside the head: mouth, teeth, eyes
    p = layout.parts
    colours[p["mouth"]] = tone * np.array([0.45, 0.2, 0.2])
    colours[p["eye_socket"]] = tone * 0.3
    colours[p["gums"]] = np.array([0.55, 0.25, 0.25]) * rng.uniform(0.7, 1.0)
    colours[p["teeth"]] = np.array([0.85, 0.82, 0.75]) * rng.uniform(0.8, 1.0)
    colours[p["sclera"]] = np.array([0.85, 0.82, 0.78]) * rng.uniform(0.8, 1.0)
    iris = _IRIS_COLOURS[rng.integers(len(_IRIS_COLOURS))] * rng.uniform(0.6, 1.1)
    colours[p["eye_inside"]] = 0.03
    colours[p["iris"]] = iris
    colours[p["pupil"]] = 0.02
    colours[p["lashes"]] = np.minimum(hair, 0.08) * 0.6
    return np.clip(colours, 0.0, 1.0)


def eye_parts(mean: np.ndarray, sclera: np.ndarray, iris: np.ndarray) -> dict[str, np.ndarray]:
    """Vertex indices of the cornea (the bulge of the sclera mesh in front of the iris), the iris
    disc and the pupil of one ICT eye, from the eye's axis (eyeball centre -> cornea apex)."""
    empty = np.zeros(0, dtype=np.int64)
    if sclera.size == 0 or iris.size == 0:
        return {"cornea": empty, "iris": empty, "pupil": empty}
    centre = (mean[sclera].min(0) + mean[sclera].max(0)) / 2
    apex = mean[sclera][np.argmax(np.linalg.norm(mean[sclera] - centre, axis=1))]
    axis = (apex - centre) / np.linalg.norm(apex - centre)

    def axial_radial(ids):
        d = mean[ids] - centre
        along = d @ axis
        return along, np.linalg.norm(d - along[:, None] * axis, axis=1)

    along, radial = axial_radial(sclera)
    cornea = sclera[(along > 0) & (radial < CORNEA_RADIUS_MM)]
    along, radial = axial_radial(iris)
    front = along > 0
    return {"cornea": cornea, "iris": iris[front & (radial < CORNEA_RADIUS_MM + 0.5)],
            "pupil": iris[front & (radial < PUPIL_RADIUS_MM)]}


def _polyline_distance(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    """(N,) distance of points (N, D) to the open polyline (M, D)."""
    a, b = polyline[:-1], polyline[1:]
    ab = b - a
    t = np.einsum("nmd,md->nm", points[:, None] - a[None], ab) / np.maximum((ab**2).sum(1), 1e-12)
    closest = a[None] + np.clip(t, 0.0, 1.0)[..., None] * ab[None]
    return np.sqrt(((points[:, None] - closest) ** 2).sum(-1)).min(1)


# ----------------------------------------------------------------------------------- background


def _random_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) clutter: a smooth random colour field, rectangles, soft blobs and fine texture."""
    import torch.nn.functional as F

    cells = int(rng.integers(2, 6))
    coarse = torch.as_tensor(rng.uniform(0.05, 0.95, (1, 3, cells, cells)))
    img = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0].permute(1, 2, 0).numpy()
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    for _ in range(int(rng.integers(4, 12))):
        x0, y0 = rng.uniform(-0.1, 1.0, 2) * size
        w, h = rng.uniform(0.05, 0.5, 2) * size
        mask = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
        alpha = rng.uniform(0.5, 1.0)
        img[mask] = (1 - alpha) * img[mask] + alpha * rng.uniform(0.0, 1.0, 3)
    for _ in range(int(rng.integers(3, 9))):
        cx, cy = rng.uniform(0, 1, 2) * size
        a, b = rng.uniform(0.03, 0.2, 2) * size
        angle = rng.uniform(0, math.pi)
        u = ((xx - cx) * math.cos(angle) + (yy - cy) * math.sin(angle)) / a
        v = (-(xx - cx) * math.sin(angle) + (yy - cy) * math.cos(angle)) / b
        w = np.clip((1.0 - (u * u + v * v)) * 4.0, 0.0, 1.0)[..., None]
        img = (1 - w) * img + w * rng.uniform(0.0, 1.0, 3)
    fine = torch.as_tensor(rng.normal(0.0, 0.04, (1, 3, size // 4, size // 4)))
    img += F.interpolate(fine, size=(size, size), mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
    return np.clip(img, 0.0, 1.0)
