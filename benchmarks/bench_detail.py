"""Fine detail, metric scale and uncertainty on synthetic faces with known truth (issue 20).

Detail: random ICT faces (identity, pose, SH light, per-vertex albedo) with a planted displacement
(wrinkle lines, some mirrored, on dense 1-2 mm wide bumps; peak 0.2-1 mm) rendered by
`render_normal_mapped` at 4x the fit's UV size (the renderer's SH shading with the planted
surface's normals per pixel), plus sensor noise and 8-bit quantisation; one face per set carries no
detail. The detail fit gets its coarse shape three ways: "oracle" (the truth's shape, light and
albedo), "fitted" (the fast landmark fit on the true MediaPipe points + 1 px noise; light +-10 %
per coefficient; albedo x a smooth +-8 % field) and "full" (the pipeline's full mode from the same
points: its own albedo and light). Scored per texel over the texels the fit used (the planted
surface's normals against the coarse normals, the detail fit's, and the planted map on the coarse
shape: what the coarse shape leaves) and per pixel where both surfaces show face skin away from the
feature edges (the coarse, the detailed, and the coarse against the true coarse surface: the error
no detail map removes); the map's RMS on the face without detail.

Metric scale: (1) simulated: faces of true size s (log-normal with the shape prior's std) and iris
11.7 +- 0.5 mm as a projected circle in MediaPipe's layout with 0.7 px noise; (2) detected:
`evaluation.synthetic` renders through MediaPipe and the fast fit, with the painted iris size
known, or an iris size from the population (`run_metric_detected`). Relative error of the scale
and how often the truth lies within 2 sigma.

Uncertainty: the fast fit on ground-truth MediaPipe points (+ 1 px noise) of random faces; how often
each face-region vertex's true position lies within 2 sigma along its normal (model space: the
fit's pose is marginalised in the posterior), with the fit's assumed landmark noise and with the
noise scale measured from the fit's residuals.

Several photos of one person (`--only multi`): a shared planted static map plus a different
expression fold per photo (`make_person`); the static map of `fitting.person_detail` from 1, 2, 3
photos against the planted one, and each photo's normal error against the coarse fit's.

    PYTHONPATH=src FACERECON_MODEL_DIR=/work/shared/models python benchmarks/bench_detail.py --faces 10
    PYTHONPATH=src FACERECON_MODEL_DIR=/work/shared/models python benchmarks/bench_detail.py --only multi --people 4
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from facerecon.fitting.detail import DetailConfig, fit_detail, uv_maps
from facerecon.fitting.state import FaceState
from facerecon.landmarks import load_correspondence
from facerecon.models import load_model
from facerecon.fitting.detail import feature_mask
from facerecon.render import render_mesh
from facerecon.render.normal_map import bump_normals, render_normal_mapped

HIDDEN = ("M_EyeOcclusion", "M_LacrimalFluid", "M_EyeBlend")


def visible_triangle_ids(model) -> np.ndarray:
    keep = np.ones(int(model.triangles.shape[0]), dtype=bool)
    for g in HIDDEN:
        if g in model.triangle_groups:
            keep[model.triangle_groups[g].cpu().numpy()] = False
    return np.nonzero(keep)[0]


def visible_triangles(model) -> np.ndarray:
    return model.triangles.cpu().numpy()[visible_triangle_ids(model)]


def random_sh(rng) -> np.ndarray:
    from facerecon.render import SHLight

    d = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.2, 0.8), 1.0])
    sh = SHLight.ambient_directional(ambient=rng.uniform(0.35, 0.55), intensity=rng.uniform(0.5, 0.8),
                                     direction=tuple(d), dtype=torch.float64).coefficients[0].numpy()
    return sh


def planted_displacement(positions: np.ndarray, region: np.ndarray, texel_mm: float, rng, amplitude: float):
    """(S, S) D on the texels of `region`: wrinkle lines and bumps defined in 3D, peak `amplitude` mm."""
    from scipy.ndimage import distance_transform_edt

    pts = positions[region]
    d = np.zeros(len(pts))
    centre = pts.mean(0)
    for _ in range(rng.integers(6, 12)):  # wrinkles: grooves 0.8-1.6 mm wide, 10-30 mm long
        c = pts[rng.integers(len(pts))]
        t = rng.normal(size=3)
        t[2] = 0.0
        t /= np.linalg.norm(t)
        length, sigma = rng.uniform(10, 30), rng.uniform(0.8, 1.6)
        for mirror in (False, True) if rng.random() < 0.5 else (False,):
            cc, tt = c.copy(), t.copy()
            if mirror:
                cc[0], tt[0] = 2 * centre[0] - cc[0], -tt[0]
            rel = pts - cc
            along = np.clip(rel @ tt, -length / 2, length / 2)
            dist = np.linalg.norm(rel - along[:, None] * tt, axis=1)
            d -= np.exp(-0.5 * (dist / sigma) ** 2)
    # pore-to-bump scale relief everywhere: white noise low-passed to 1-2 mm in the UV grid
    from scipy.ndimage import gaussian_filter

    sigma_px = rng.uniform(1.0, 2.0) / texel_mm
    bumps = gaussian_filter(rng.normal(size=region.shape), sigma_px) * sigma_px * 2.0
    d += bumps[region]
    d *= amplitude / max(np.abs(d).max(), 1e-9)
    out = np.zeros(region.shape)
    out[region] = d
    ramp = np.clip(distance_transform_edt(region) * texel_mm / 5.0, 0, 1)
    return out * ramp * ramp * (3 - 2 * ramp)


def make_face(model, rng, size: int, amplitude: float, image_size: int = 512):
    """A face with planted detail: (image, truth dict)."""
    alpha = rng.normal(0, 1, model.num_identity)
    expr = np.zeros(model.num_expression)
    with torch.no_grad():
        verts = model.vertices(torch.as_tensor(alpha[None], dtype=model.dtype))[0].double().numpy()
    yaw, pitch = rng.uniform(-30, 30), rng.uniform(-12, 12)
    from facerecon.render import euler_deg_to_matrix, matrix_to_axis_angle

    rot = matrix_to_axis_angle(euler_deg_to_matrix(torch.tensor([[yaw, pitch, 0.0]], dtype=torch.float64)))[0].numpy()
    focal = image_size * rng.uniform(1.0, 1.8)
    depth = focal * 180.0 / (0.55 * image_size)  # the face ~55 % of the image
    state = FaceState.single(alpha, expr, rot, np.array([0.0, 10.0, -depth]), focal,
                             np.array([image_size / 2] * 2), (image_size, image_size), sh=random_sh(rng))
    albedo = np.clip(np.array([0.72, 0.52, 0.42]) * rng.uniform(0.7, 1.1)
                     + 0.03 * rng.normal(size=(model.num_vertices, 3)), 0.05, 1.0)
    hi = 4 * size
    maps = uv_maps(model, verts, hi, "narrow_face")
    region = maps.region[0].numpy()
    d_hi = planted_displacement(maps.positions[0].double().numpy(), region, maps.texel_mm(), rng, amplitude)
    n_hi = bump_normals(maps.positions.double(), maps.normals.double(), torch.as_tensor(d_hi[None]), maps.inside)
    tris = torch.as_tensor(visible_triangles(model))
    with torch.no_grad():
        img = render_normal_mapped(torch.as_tensor(verts[None]), tris, state.pinhole(dtype=torch.float64),
                                   torch.as_tensor(albedo), torch.as_tensor(state.appearance.sh),
                                   model.uv.double(), model.uv_triangles[torch.as_tensor(visible_triangle_ids(model))], n_hi,
                                   maps.inside)[0].numpy()
    img = np.round(np.clip(img + rng.normal(0, 0.005, img.shape), 0, 1) * 255) / 255
    # the truth at the fit's size: the texel mean of the planted normals and displacement
    n_s = torch.nn.functional.normalize(n_hi[0].reshape(size, 4, size, 4, 3).mean((1, 3)), dim=-1).numpy()
    d_s = d_hi.reshape(size, 4, size, 4).mean((1, 3))
    return img.astype(np.float32), dict(alpha=alpha, verts=verts, state=state, albedo=albedo, normals=n_s,
                                        displacement=d_s, normal_map=n_hi, map_mask=maps.inside)


def planted_fold(positions: np.ndarray, region: np.ndarray, centre_mm: np.ndarray, direction: np.ndarray,
                 length_mm: float, width_mm: float, depth_mm: float) -> np.ndarray:
    """(S, S) an expression fold on the texels of `region`: a groove `depth_mm` deep (Gaussian
    profile of std `width_mm`) along the model-space segment of `length_mm` through `centre_mm`
    (3,) in `direction` (3,), its ends rounded."""
    t = direction / np.linalg.norm(direction)
    rel = positions - centre_mm
    along = np.clip(rel @ t, -length_mm / 2, length_mm / 2)
    dist = np.linalg.norm(rel - along[..., None] * t, axis=-1)
    return np.where(region, -depth_mm * np.exp(-0.5 * (dist / width_mm) ** 2), 0.0)


def make_person(model, rng, size: int, amplitude: float, n_photos: int = 3, image_size: int = 512,
                fold_mm: float = 0.6, fold_width_mm: float = 2.5):
    """One synthetic person seen in `n_photos` photos: a planted static displacement (as `make_face`)
    shared by all, plus in photo k a different expression fold (`planted_fold`: `fold_mm` deep, 1.2
    mm wide, 20 mm long, at least 8 mm from the feature edges and off the midline, where the photo
    sees the skin nearly face on), each photo with its own pose (yaw spread over -25..25 deg), light and a small random
    expression. Returns (images, truths, static (S, S) at the fit's size); each truth holds the
    photo's coarse shape/state/albedo, `dynamic` (S, S) its planted fold and `displacement` the
    photo's full planted map."""
    from facerecon.render import euler_deg_to_matrix, matrix_to_axis_angle

    alpha = rng.normal(0, 1, model.num_identity)
    albedo = np.clip(np.array([0.72, 0.52, 0.42]) * rng.uniform(0.7, 1.1)
                     + 0.03 * rng.normal(size=(model.num_vertices, 3)), 0.05, 1.0)
    hi = 4 * size
    with torch.no_grad():
        neutral = model.vertices(torch.as_tensor(alpha[None], dtype=model.dtype))[0].double().numpy()
    nmaps = uv_maps(model, neutral, hi, "narrow_face")
    region = nmaps.region[0].numpy()
    pos = nmaps.positions[0].double().numpy()
    static_hi = planted_displacement(pos, region, nmaps.texel_mm(), rng, amplitude)
    # fold centres: skin of the region (on the neutral face) 8 mm from the feature edges and the region's
    # edge, off the midline
    from scipy.ndimage import distance_transform_edt

    with torch.no_grad():
        fp = model.landmark_points(torch.as_tensor(neutral[None], dtype=model.dtype),
                                   load_correspondence(model))[0].double().numpy()
    skin = region & ~feature_mask(pos, fp)
    inner = distance_transform_edt(skin) * nmaps.texel_mm() > 8.0
    mid = pos[region][:, 0].mean()
    candidates = inner & (np.abs(pos[..., 0] - mid) > 15.0)
    yaws = np.linspace(-25, 25, n_photos) if n_photos > 1 else np.zeros(1)
    images, truths = [], []
    for k in range(n_photos):
        expr = np.zeros(model.num_expression)
        picks = rng.choice(model.num_expression, 3, replace=False)
        expr[picks] = rng.uniform(0.0, 0.35, 3)
        with torch.no_grad():
            verts = model.vertices(torch.as_tensor(alpha[None], dtype=model.dtype),
                                   torch.as_tensor(expr[None], dtype=model.dtype))[0].double().numpy()
        yaw, pitch = yaws[k] + rng.uniform(-4, 4), rng.uniform(-10, 10)
        rot = matrix_to_axis_angle(euler_deg_to_matrix(torch.tensor([[yaw, pitch, 0.0]],
                                                                    dtype=torch.float64)))[0].numpy()
        focal = image_size * rng.uniform(1.0, 1.8)
        depth = focal * 180.0 / (0.55 * image_size)
        state = FaceState.single(alpha, expr, rot, np.array([0.0, 10.0, -depth]), focal,
                                 np.array([image_size / 2] * 2), (image_size, image_size), sh=random_sh(rng))
        maps = uv_maps(model, verts, hi, "narrow_face")
        # the fold is placed where this photo sees the skin nearly face on
        facing = (maps.normals[0].double().numpy() @ state.params.rotation_matrix(0).T)[..., 2]
        side = pos[candidates & (facing > 0.9)]
        angle = rng.uniform(0, np.pi)
        bump_hi = planted_fold(pos, region, side[rng.integers(len(side))], np.array([np.cos(angle), np.sin(angle), 0.0]),
                               20.0, fold_width_mm, fold_mm)
        d_hi = static_hi + bump_hi
        n_hi = bump_normals(maps.positions.double(), maps.normals.double(), torch.as_tensor(d_hi[None]), maps.inside)
        tris = torch.as_tensor(visible_triangles(model))
        with torch.no_grad():
            img = render_normal_mapped(torch.as_tensor(verts[None]), tris, state.pinhole(dtype=torch.float64),
                                       torch.as_tensor(albedo), torch.as_tensor(state.appearance.sh), model.uv.double(),
                                       model.uv_triangles[torch.as_tensor(visible_triangle_ids(model))], n_hi,
                                       maps.inside)[0].numpy()
        img = np.round(np.clip(img + rng.normal(0, 0.005, img.shape), 0, 1) * 255) / 255
        n_s = torch.nn.functional.normalize(n_hi[0].reshape(size, 4, size, 4, 3).mean((1, 3)), dim=-1).numpy()
        images.append(img.astype(np.float32))
        truths.append(dict(verts=verts, state=state, albedo=albedo, normals=n_s,
                           displacement=d_hi.reshape(size, 4, size, 4).mean((1, 3)),
                           dynamic=bump_hi.reshape(size, 4, size, 4).mean((1, 3)), normal_map=n_hi,
                           map_mask=maps.inside))
    return images, truths, static_hi.reshape(size, 4, size, 4).mean((1, 3))


def normal_image(model, verts, state, normal_map, map_mask, weight):
    """(H, W, 3) camera-space unit normals per pixel of the normal-mapped mesh and (H, W) per-vertex
    `weight` interpolated (an SH light that picks the x, y, z basis functions makes the image the normal)."""
    from facerecon.render.shading import SH_CONSTANTS as c

    ids = torch.as_tensor(visible_triangle_ids(model))
    pick = torch.zeros(1, 9, 3, dtype=torch.float64)
    pick[0, 1, 0], pick[0, 2, 1], pick[0, 3, 2] = 1 / c[1], 1 / c[2], 1 / c[3]
    ambient = torch.zeros(1, 9, 3, dtype=torch.float64)
    ambient[0, 0] = 1 / c[0]
    cam = state.pinhole(dtype=torch.float64)
    args = (torch.as_tensor(verts[None]), model.triangles[ids], cam)
    with torch.no_grad():
        n = render_normal_mapped(*args, torch.ones(len(verts), 3, dtype=torch.float64), pick, model.uv.double(),
                                 model.uv_triangles[ids], normal_map, map_mask)[0].numpy()
        w = render_mesh(*args, colors=torch.as_tensor(np.repeat(weight[:, None], 3, 1)), sh=ambient,
                        antialias=False).image[0, ..., 0].numpy()
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    return n / np.maximum(norm, 1e-12), w


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip((a * b).sum(-1), -1, 1)))


class GivenPoints:
    """A landmark 'detector' that returns the points it was last given (`use(points)`)."""

    scheme = "mediapipe478"

    def __init__(self) -> None:
        self.face = None

    def use(self, points: np.ndarray) -> None:
        from facerecon.landmarks import FaceLandmarks

        self.face = FaceLandmarks(np.r_[points.min(0), points.max(0)], 1.0, points, None, self.scheme)

    def detect(self, image):
        return [self.face]

    def detect_largest(self, image):
        return self.face

    def close(self) -> None:
        pass


class CoarseFitter:
    """The fast (landmark) fit of a synthetic face from its true MediaPipe points + 1 px noise, and
    the pipeline's full mode (fast fit, photometric fit with its own albedo and light) from them."""

    def __init__(self, model) -> None:
        from facerecon.fitting import LandmarkFitter, correspondence_on

        self.model, self.head = model, model.view("head")
        emb = load_correspondence(self.head)
        self.corr = correspondence_on(self.head, emb.as_embedding(), sliding=emb.sliding.cpu().numpy())
        self.weights = np.where(emb.iris.cpu().numpy() | ~emb.valid.cpu().numpy(), 0.0, 1.0)
        self.fitter = LandmarkFitter(self.head, self.corr)
        self.full_corr = load_correspondence(model)
        self.given, self.reconstructor = GivenPoints(), None

    def full(self, image: np.ndarray, truth, rng):
        """(vertices, state, light, albedo) of `Reconstructor.reconstruct(mode="full")`, as --detail uses them."""
        from facerecon.pipeline import Reconstructor

        if self.reconstructor is None:
            self.reconstructor = Reconstructor(self.model, detector=self.given)
        self.given.use(self.true_points(truth) + rng.normal(0, 1.0, (478, 2)))
        rec = self.reconstructor.reconstruct(image, mode="full")[0]
        return rec.vertices(), rec.state, rec.sh, rec.vertex_colors()

    def true_points(self, truth) -> np.ndarray:
        with torch.no_grad():
            p = self.model.landmark_points(torch.as_tensor(truth["verts"][None], dtype=self.model.dtype),
                                           self.full_corr)[0].double().numpy()
        return truth["state"].project(p)

    def fit(self, truth, rng):
        """(full-model vertices, fitted state, light, albedo) with a fit's errors: the shape, pose and
        camera of the fast fit; the light +-10 % per coefficient; the albedo x a smooth +-8 % field."""
        pts = self.true_points(truth) + rng.normal(0, 1.0, (478, 2))
        res = self.fitter.fit(pts, truth["state"].camera.image_size, self.weights)
        st = res.state.to_numpy()
        with torch.no_grad():
            verts = self.model.vertices(torch.as_tensor(st.params.identity, dtype=self.model.dtype),
                                        torch.as_tensor(st.params.expression, dtype=self.model.dtype))[0]
        sh = truth["state"].appearance.sh[0] * (1 + 0.1 * rng.normal(size=(9, 1)))
        v = truth["verts"]
        field = np.zeros(len(v))
        for _ in range(5):
            c = v[rng.integers(len(v))]
            field += rng.normal() * np.exp(-0.5 * (np.linalg.norm(v - c, axis=1) / 30.0) ** 2)
        albedo = truth["albedo"] * (1 + 0.08 * np.clip(field, -1.5, 1.5))[:, None]
        return verts.double().numpy(), st, sh, albedo


def run_detail(model, n_faces: int, size: int, seed: int, settings=("oracle", "fitted", "full")) -> None:
    corr = load_correspondence(model)
    cfg = DetailConfig(size=size)
    coarse = CoarseFitter(model)
    vis_tris = visible_triangles(model)
    rows = []
    for i in range(n_faces + 1):
        rng = np.random.default_rng([seed, i])
        amp = 0.0 if i == n_faces else rng.uniform(0.2, 1.0)
        img, truth = make_face(model, rng, size, amp)
        for setting in settings:
            if setting == "oracle":
                verts, state, sh, albedo = truth["verts"], truth["state"], truth["state"].appearance.sh[0], truth["albedo"]
            elif setting == "fitted":
                verts, state, sh, albedo = coarse.fit(truth, rng)
            else:
                verts, state, sh, albedo = coarse.full(img, truth, rng)
            with torch.no_grad():
                fp = model.landmark_points(torch.as_tensor(verts[None], dtype=model.dtype), corr)[0].double().numpy()
            t0 = time.perf_counter()
            det = fit_detail(model, verts, state, img, albedo, sh=sh, config=cfg, triangles=vis_tris,
                             feature_points=fp)
            sec = time.perf_counter() - t0
            maps = uv_maps(model, verts, size)
            p, n = maps.positions.double(), maps.normals.double()
            fitted = bump_normals(p, n, torch.as_tensor(det.displacement[None]).double(), maps.inside)[0].numpy()
            floor = bump_normals(p, n, torch.as_tensor(truth["displacement"][None]), maps.inside)[0].numpy()
            m = det.seen
            e_coarse = angle_deg(n[0].numpy()[m], truth["normals"][m]).mean()
            e_fit = angle_deg(fitted[m], truth["normals"][m]).mean()
            e_floor = angle_deg(floor[m], truth["normals"][m]).mean()
            # per pixel: the true surface's normals against the reconstruction's where both are face skin
            # away from the feature edges (registration errors of the coarse fit do not count twice)
            keep = np.zeros(model.num_vertices)
            keep[model.regions["narrow_face"].cpu().numpy()] = 1.0
            keep[feature_mask(verts, fp)] = 0.0
            n_true, w_true = normal_image(model, truth["verts"], truth["state"], truth["normal_map"],
                                          truth["map_mask"], keep)
            n_c, w_c = normal_image(model, verts, state, n, maps.inside, keep)
            n_f, _ = normal_image(model, verts, state, torch.as_tensor(fitted[None]), maps.inside, keep)
            px = (w_true > 0.999) & (w_c > 0.999)
            p_coarse = angle_deg(n_c[px], n_true[px]).mean()
            p_fit = angle_deg(n_f[px], n_true[px]).mean()
            # what no detail map can remove: the coarse fit's own error against the true coarse surface
            tmaps = uv_maps(model, truth["verts"], size)
            n_tc, _ = normal_image(model, truth["verts"], truth["state"], tmaps.normals.double(), tmaps.inside, keep)
            p_shape = angle_deg(n_c[px], n_tc[px]).mean()
            dt, df = truth["displacement"][m], det.displacement[m]
            corr_d = float(np.corrcoef(dt, df)[0, 1]) if amp > 0 else float("nan")
            rows.append((i, setting, amp, e_coarse, e_fit, e_floor, corr_d, det.rms_mm(), sec, p_coarse, p_fit, p_shape))
            print(f"face {i} {setting:6s} amp {amp:.2f} mm | per texel: coarse {e_coarse:.2f} fit {e_fit:.2f} "
                  f"planted {e_floor:.2f} deg ({e_fit / e_coarse:.3f}) | per pixel: coarse {p_coarse:.2f} "
                  f"fit {p_fit:.2f} deg ({p_fit / p_coarse:.3f}), coarse shape alone {p_shape:.2f} | corr(D) {corr_d:.3f} rms {det.rms_mm():.3f} mm "
                  f"| {sec:.2f} s, {det.losses['final']['texels_fitted']} texels", flush=True)
    for setting in settings:
        r = [x for x in rows if x[1] == setting and x[2] > 0]
        z = [x for x in rows if x[1] == setting and x[2] == 0]
        ratio = np.array([x[4] / x[3] for x in r])
        pratio = np.array([x[10] / x[9] for x in r])
        shape_ratio = np.array([x[11] / x[9] for x in r])
        texel_floor = np.array([x[5] / x[3] for x in r])
        print(f"[{setting}] detail faces {len(r)}: fit/coarse normal error per texel {ratio.mean():.3f} "
              f"(drop {100 * (1 - ratio.mean()):.1f} %), per pixel {pratio.mean():.3f} "
              f"(drop {100 * (1 - pratio.mean()):.1f} %); what the coarse shape's own error leaves: per texel "
              f"{texel_floor.mean():.3f} (planted map on the coarse shape), per pixel {shape_ratio.mean():.3f}; "
              f"median corr(D) {np.median([x[6] for x in r]):.3f}; "
              f"no-detail map rms {max(x[7] for x in z):.3f} mm; fit time median {np.median([x[8] for x in r + z]):.2f} s")


def run_multi(model, n_people: int, size: int, seed: int) -> None:
    """The several-photo detail fit (`fitting.person_detail`) against one-photo fits, "oracle" coarse
    shapes: people of `make_person` (3 photos, yaw about -25 / 0 / +25, own light and expression,
    a per-photo fold). Scored: corr(static map, planted static) over the texels some photo shows,
    and per photo the per-texel normal error of its map (one photo: `fit_detail`'s; several: the
    combined static + dynamic) over the coarse normal error. 1 photo: each photo alone (mean); 2:
    the two side views; 3: all."""
    from facerecon.fitting.person_detail import DetailPhoto, PersonDetailConfig, fit_person_detail

    corr = load_correspondence(model)
    cfg = DetailConfig(size=size)
    vis_tris = visible_triangles(model)
    rows = {1: [], 2: [], 3: []}
    for i in range(n_people):
        rng = np.random.default_rng([seed, 4000 + i])
        images, truths, static = make_person(model, rng, size, rng.uniform(0.3, 1.0), 3, fold_mm=0.6,
                                             fold_width_mm=2.0)
        photos = []
        for img, t in zip(images, truths):
            with torch.no_grad():
                fp = model.landmark_points(torch.as_tensor(t["verts"][None], dtype=model.dtype), corr)[0].double().numpy()
            photos.append(DetailPhoto(t["verts"], t["state"], img, t["albedo"], t["state"].appearance.sh[0], fp))

        def normal_ratio(k, d, seen):
            maps = uv_maps(model, truths[k]["verts"], size)
            n = maps.normals.double()
            fitted = bump_normals(maps.positions.double(), n, torch.as_tensor(d[None]).double(), maps.inside)[0].numpy()
            return angle_deg(fitted[seen], truths[k]["normals"][seen]).mean() / \
                angle_deg(n[0].numpy()[seen], truths[k]["normals"][seen]).mean()

        line = []
        for n_photos, subset in ((1, None), (2, (0, 2)), (3, (0, 1, 2))):
            t0 = time.perf_counter()
            if subset is None:
                c, r = [], []
                for k, p in enumerate(photos):
                    det = fit_detail(model, p.vertices, p.state, p.photo, p.albedo, sh=p.sh, config=cfg,
                                     triangles=vis_tris, feature_points=p.feature_points)
                    c.append(float(np.corrcoef(static[det.seen], det.displacement[det.seen])[0, 1]))
                    r.append(normal_ratio(k, det.displacement, det.seen))
                sec = (time.perf_counter() - t0) / len(photos)
            else:
                fit = fit_person_detail(model, [photos[k] for k in subset], PersonDetailConfig(cfg), triangles=vis_tris)
                m = fit.static.seen
                c = [float(np.corrcoef(static[m], fit.static.displacement[m])[0, 1])]
                r = [normal_ratio(k, fit.combined(j).displacement, fit.seen[j]) for j, k in enumerate(subset)]
                sec = time.perf_counter() - t0
            rows[n_photos].append((np.mean(c), np.mean(r), sec))
            line.append(f"{n_photos} photo(s): corr(static) {np.mean(c):.3f}, normal error fit/coarse {np.mean(r):.3f} "
                        f"({sec:.1f} s)")
        print(f"person {i} | " + " | ".join(line), flush=True)
    for n_photos, r in rows.items():
        c = np.array([x[0] for x in r])
        ratio = np.array([x[1] for x in r])
        print(f"[multi, {n_photos} photo(s)] {len(r)} people: static corr with the planted map mean {c.mean():.3f} "
              f"(min {c.min():.3f}); per-texel normal error vs the coarse fit {ratio.mean():.3f} (drop "
              f"{100 * (1 - ratio.mean()):.1f} %); fit time median {np.median([x[2] for x in r]):.1f} s", flush=True)


def run_metric(model, n_faces: int, seed: int) -> None:
    """Scale error and 2-sigma coverage of `estimate_metric_scale` on simulated iris points."""
    from facerecon.fitting.gaze import eyes
    from facerecon.fitting.metric_scale import IRIS_POINTS, estimate_metric_scale, iris_diameters_px, model_size_std

    head = model.view("head")
    prior = model_size_std(head)
    rows = []
    for i in range(n_faces):
        rng = np.random.default_rng([seed, 1000 + i])
        alpha = rng.normal(0, 1, model.num_identity)
        with torch.no_grad():
            v = model.vertices(torch.as_tensor(alpha[None], dtype=model.dtype))[0].double().numpy()
        s_true = float(np.exp(rng.normal(0, prior)))  # the face's true size over the fit's
        iris_mm = rng.normal(11.7, 0.5)
        yaw, pitch = np.radians(rng.uniform(-30, 30)), np.radians(rng.uniform(-15, 15))
        ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
        rot = ry @ rx
        size = 1024
        focal = size * rng.uniform(0.8, 2.0)
        z = focal * 180 * s_true / (0.5 * size)
        t = np.array([0.0, 0.0, -z])
        points = np.zeros((478, 2))
        depths = []
        for side, ids in IRIS_POINTS.items():
            eye = eyes(model, v)[side]
            c = (eye.centre + eye.radius * eye.axis) * s_true  # the true (scaled) head
            a = rot @ eye.axis
            e1 = np.cross(a, [0, 1, 0])
            e1 /= np.linalg.norm(e1)
            e2 = np.cross(a, e1)
            ring = [rot @ c + t] + [rot @ c + t + iris_mm / 2 * (np.cos(k) * e1 + np.sin(k) * e2)
                                            for k in np.arange(4) * np.pi / 2]
            for idx, p in zip(ids, ring):
                points[idx] = focal * np.array([p[0], -p[1]]) / -p[2] + size / 2 + rng.normal(0, 0.7, 2)
            depths.append(-(rot @ c + t)[2] / s_true)  # the fit sees the face at the prior's size
        for known in (True, False):
            focal_fit = focal if known else focal * float(np.exp(rng.normal(0, 0.15)))
            dz = np.array(depths) * focal_fit / focal
            # the simulated detector: 0.7 px per contour point, i.e. this relative error on the mean diameter
            noise = float(np.sqrt(np.mean((0.7 / iris_diameters_px(points)) ** 2) / 2))
            m = estimate_metric_scale(points, dz, focal_fit, prior, focal_known=known,
                                      face_depth_mm=float(np.mean(dz)) + 15.0, detector_log_std=noise)
            rows.append((known, m.scale / s_true - 1, abs(np.log(m.scale / s_true)) <= 2 * m.std / m.scale))
    for known in (True, False):
        r = [x for x in rows if x[0] == known]
        err = np.abs([x[1] for x in r])
        print(f"[metric, focal {'known' if known else 'estimated (15 % log error)'}] {len(r)} faces: |scale error| "
              f"median {100 * np.median(err):.2f} %, p90 {100 * np.percentile(err, 90):.2f} %, max "
              f"{100 * err.max():.2f} %; truth within 2 sigma {100 * np.mean([x[2] for x in r]):.0f} %", flush=True)


def iris_diameter_mm(model, vertices: np.ndarray) -> float:
    """The painted iris's diameter on a synthetic face (evaluation.synthetic colours the iris-group
    vertices within CORNEA_RADIUS_MM + 0.5 of the eye's axis at rest): the largest distance between
    two of those vertices (the disc's rim; unchanged when the eye turns), averaged over both eyes,
    in `vertices`' mm."""
    from scipy.spatial.distance import pdist

    from facerecon.evaluation.synthetic import eye_parts

    tris = model.triangles.cpu().numpy()
    mean = model.mean.detach().cpu().double().numpy()
    out = []
    for side in ("Left", "Right"):
        sclera = np.unique(tris[model.triangle_groups[f"M_Sclera{side}"].cpu().numpy()])
        iris = np.unique(tris[model.triangle_groups[f"M_Iris{side}"].cpu().numpy()])
        out.append(float(pdist(vertices[eye_parts(mean, sclera, iris)["iris"]]).max()))
    return float(np.mean(out))


def run_metric_detected(model, n_faces: int, seed: int) -> None:
    """Scale error and 2-sigma coverage with MediaPipe's iris points on rendered synthetic faces.

    The faces of `evaluation.synthetic` (512 px, yaw within +-45 deg, seed + 500) are drawn at the
    model's size. "known iris": the estimator is told each face's painted iris diameter
    (`iris_diameter_mm`, no population spread); the true scale of the fast fit's mesh is the true
    face's size over the fitted one's (RMS radii of the narrow face region). "population": scaling
    a scene about the camera leaves its image unchanged, so each face is given a true iris
    diameter drawn from 11.7 +- 0.5 mm by declaring its world k = iris / (painted iris) times
    larger, and the estimator assumes 11.7 +- 0.5 mm; the true scale is k times the above."""
    from facerecon.detail_outputs import metric_and_gaze
    from facerecon.evaluation.synthetic import generate_synthetic_set
    from facerecon.pipeline import Reconstructor

    faces = generate_synthetic_set(model, n_faces, seed + 500, image_size=512, yaw_range=(-45, 45))
    region = model.regions["narrow_face"].cpu().numpy()

    def size(v):
        c = v[region] - v[region].mean(0)
        return float(np.sqrt((c ** 2).sum(1).mean()))

    rows = {"known iris": [], "population": []}
    missed = 0
    with Reconstructor(model) as rc:
        for i, face in enumerate(faces):
            rng = np.random.default_rng([seed, 3000 + i])
            found = rc.reconstruct(face.image, mode="fast")
            if not found:
                missed += 1
                continue
            rec = found[0]
            gt = face.gt_vertices.astype(np.float64)
            painted = iris_diameter_mm(model, gt)
            ratio = size(gt) / size(rec.vertices())
            k = rng.normal(11.7, 0.5) / painted
            line = []
            for name, iris, spread, s_true in (("known iris", painted, 0.0, ratio),
                                               ("population", 11.7, 0.5, k * ratio)):
                m = metric_and_gaze(rec, iris_mm=iris, iris_std_mm=spread)
                if m["metric_scale"] is None:
                    continue
                scale, std = m["metric_scale"], m["metric_scale_std"]
                rows[name].append((scale / s_true - 1, abs(np.log(scale / s_true)) <= 2 * std / scale, std / scale))
                line.append(f"{name}: true {s_true:.3f}, estimated {scale:.3f} +- {std:.3f} "
                            f"({100 * rows[name][-1][0]:+.1f} %)")
            print(f"face {i} yaw {face.yaw_deg:+.0f} | " + " | ".join(line), flush=True)
    for name, r in rows.items():
        err = np.abs([x[0] for x in r])
        print(f"[metric, MediaPipe iris points on rendered faces, {name}] {len(r)} faces ({missed} not found): "
              f"|scale error| median {100 * np.median(err):.2f} %, p90 {100 * np.percentile(err, 90):.2f} %, max "
              f"{100 * err.max():.2f} %; signed mean {100 * np.mean([x[0] for x in r]):+.2f} %; truth within 2 sigma "
              f"{100 * np.mean([x[1] for x in r]):.0f} %; reported relative std median "
              f"{100 * np.median([x[2] for x in r]):.2f} %", flush=True)


def run_uncertainty(model, n_faces: int, seed: int) -> None:
    """How often a face vertex's true position lies within 2 sigma (along its normal) of the fast fit's."""
    from facerecon.fitting.uncertainty import shape_posterior, vertex_uncertainty
    from facerecon.geometry.mesh import vertex_normals

    coarse = CoarseFitter(model)
    face = model.regions["narrow_face"].cpu().numpy()
    cover, ratio, secs = ({False: [], True: []} for _ in range(3))
    for i in range(n_faces):
        rng = np.random.default_rng([seed, 2000 + i])
        alpha = rng.normal(0, 1, model.num_identity)
        with torch.no_grad():
            verts = model.vertices(torch.as_tensor(alpha[None], dtype=model.dtype))[0].double().numpy()
        yaw = rng.uniform(-40, 40)
        from facerecon.render import euler_deg_to_matrix, matrix_to_axis_angle

        rot = matrix_to_axis_angle(euler_deg_to_matrix(torch.tensor([[yaw, rng.uniform(-10, 10), 0.0]],
                                                                    dtype=torch.float64)))[0].numpy()
        state = FaceState.single(alpha, np.zeros(model.num_expression), rot, np.array([0.0, 0.0, -600.0]), 900.0,
                                 np.array([256.0, 256.0]), (512, 512))
        truth = dict(verts=verts, state=state)
        pts = coarse.true_points(truth) + rng.normal(0, 1.0, (478, 2))
        res = coarse.fitter.fit(pts, (512, 512), coarse.weights)
        st = res.state.to_numpy()
        with torch.no_grad():
            fitted = model.vertices(torch.as_tensor(st.params.identity, dtype=model.dtype),
                                    torch.as_tensor(st.params.expression, dtype=model.dtype))[0].double().numpy()
        n = vertex_normals(fitted, model.triangles.cpu().numpy())
        err = np.abs(((verts - fitted) * n).sum(1))[face]  # model space: the fit's pose is marginalised
        line = []
        for estimate in (False, True):
            t0 = time.perf_counter()
            post = shape_posterior(coarse.head, [res.correspondence], pts[None], coarse.weights, res.state,
                                   estimate_noise=estimate)
            unc = vertex_uncertainty(post, model, normals=n)
            secs[estimate].append(time.perf_counter() - t0)
            std = unc.normal_std[face]
            cover[estimate].append(float(np.mean(err <= 2 * std)))
            ratio[estimate].append(float(np.sqrt(np.mean(err ** 2)) / np.sqrt(np.mean(std ** 2))))
            line.append(f"{'residual' if estimate else 'assumed'} noise (s {post.noise_scale:.2f}): std rms "
                        f"{np.sqrt(np.mean(std ** 2)):.2f} mm, within 2 sigma {100 * cover[estimate][-1]:.0f} %")
        print(f"face {i} yaw {yaw:+.0f}: along-normal error rms {np.sqrt(np.mean(err ** 2)):.2f} mm | "
              + " | ".join(line), flush=True)
    for estimate in (False, True):
        c, r = cover[estimate], ratio[estimate]
        print(f"[uncertainty, {'noise from the residuals' if estimate else 'the assumed noise'}] {n_faces} "
              f"faces: truth within 2 sigma on {100 * np.mean(c):.1f} % of face vertices (faces {100 * min(c):.0f}-"
              f"{100 * max(c):.0f} %), error/std rms ratio median {np.median(r):.2f}; posterior + vertex std median "
              f"{np.median(secs[estimate]):.2f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=int, default=6)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--metric-faces", type=int, default=200)
    ap.add_argument("--detected-faces", type=int, default=20)
    ap.add_argument("--settings", default="oracle,fitted,full",
                    help="coarse shapes for the detail fit: the truth, the fast fit, the pipeline's full mode")
    ap.add_argument("--only", choices=("detail", "multi", "metric", "metric-detected", "uncertainty"), default=None)
    ap.add_argument("--people", type=int, default=4, help="synthetic people of the several-photo detail run")
    args = ap.parse_args()
    model = load_model("ict")
    torch.set_num_threads(2)
    if args.only in (None, "detail"):
        run_detail(model, args.faces, args.size, args.seed, tuple(args.settings.split(",")))
    if args.only in (None, "multi"):
        run_multi(model, args.people, args.size, args.seed)
    if args.only in (None, "metric"):
        run_metric(model, args.metric_faces, args.seed)
    if args.only in (None, "metric-detected"):
        run_metric_detected(model, args.detected_faces, args.seed)
    if args.only in (None, "uncertainty"):
        run_uncertainty(model, args.faces, args.seed)


if __name__ == "__main__":
    main()
