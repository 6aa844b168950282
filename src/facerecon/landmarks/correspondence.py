"""Where each MediaPipe landmark lies on a morphable model's surface.

MediaPipe's 478 points are tied to a model by a barycentric point on one of its triangles
(`LandmarkCorrespondence`, a `LandmarkEmbedding` with per-point flags), so a fitting loss can
compare `model.landmark_points(vertices, correspondence)` with detected points.

How the correspondence is computed (`compute_correspondence`), for any model with a 68-point
landmark embedding:
1. A canonical MediaPipe face (`load_canonical_face`): MediaPipe's own 3D output on frontal photos,
   averaged and made symmetric by `scripts/make_landmark_correspondence.py` (the wheel does not ship
   MediaPipe's `canonical_face_model.obj`).
2. A similarity transform (Umeyama) takes it onto the model's neutral shape using the 51 inner
   iBUG points (brows, nose, eyes, mouth; the jaw is a contour, not fixed surface points).
3. Non-rigid closest-point registration: a few rounds of moving every point toward its closest
   point on the model's face triangles, and the 51 inner iBUG points toward the model's own 68
   landmarks, with the displacements smoothed over MediaPipe's mesh (a Laplacian-regularised least
   squares), stiff first and softer later.
4. Each point is projected to its closest point on the face triangles; the iris points (468-477)
   go to the closest point on the model's eyeball of the same side when it has one.

Other models are registered on the fly this way (about a second). For ICT-FaceKit the packaged
`facerecon/data/mediapipe_to_ict.npz` is learned from data instead, starting from this registration
(`scripts/make_landmark_correspondence.py`, about a minute, reproducible): the registration of one
photo's MediaPipe face is biased by 2-6 px (about 3 mm) against where MediaPipe puts its points on
renders of the model, which goes straight into the fitted shape. So, as Wood et al. 2022 learn
where dense landmarks sit on their model:
5. MediaPipe runs on 400 seeded synthetic renders of the model with known geometry
   (`facerecon.evaluation.synthetic`, on-model, |yaw| <= 35 degrees, seeds 1000 and 1001, apart from
   the benchmarks' seed 0).
6. Each detected point is cast back along its camera ray onto that face's ground-truth mesh (the
   first visible surface, from a supersampled z-buffer, with exact barycentrics from the ray-triangle
   intersection; points on an eyeball, in the mouth or on the background snap to the nearest
   visible skin): a (triangle, barycentric) of the model's topology.
7. Per point, the hits are placed on the mean shape; their geometric median starts a robust
   (Huber) Gauss-Newton fit of the one mean-shape surface point whose projections on all the faces'
   meshes best match the detections (a face only moves it along the directions its camera sees).
   The result is made left-right symmetric and put on the closest point of the face triangles.
   Outline (sliding) points use only near-frontal faces (|yaw|, |pitch| < 10 degrees) and stay
   sliding; the irises keep the registration's eyeball points.
On held-out renders this lowers MediaPipe's RMS distance to the correspondence projected on the
true mesh from 4.1 to 3.6 px over the inner points (from 3.3 to 2.6 px on near-frontal faces), and
from 5.1 to 3.2 px over the outline of near-frontal faces (the script prints the table per group).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
from scipy import sparse
from scipy.sparse.linalg import spsolve
from torch import Tensor

from ..errors import ModelError, UsageError
from ..geometry.mesh import graph_laplacian, subgraph_edges
from ..geometry.similarity import umeyama
from ..models import LandmarkEmbedding, MorphableModel
from .schemes import (
    MEDIAPIPE478,
    MEDIAPIPE_IRIS,
    MEDIAPIPE_IRIS_LEFT,
    MEDIAPIPE_IRIS_RIGHT,
    MEDIAPIPE_SILHOUETTE,
    MEDIAPIPE_TO_IBUG68,
)

CANONICAL_FILE = "mediapipe_canonical.npz"
# outer eye corner to outer eye corner of the canonical face (a typical adult value, in mm)
CANONICAL_EYE_WIDTH_MM = 90.0
NUM_MEDIAPIPE = 478
# iBUG 17..67: brows, nose, eyes, mouth (the jaw 0..16 is a contour)
_INNER_IBUG = np.arange(17, 68)
_STIFFNESS = (20.0, 10.0, 5.0, 2.0, 1.0, 0.5)
_ANCHOR_WEIGHT = 2.0


def correspondence_file(model_name: str) -> str:
    """Name of the packaged correspondence file of a model ("mediapipe_to_ict.npz")."""
    return f"mediapipe_to_{model_name}.npz"


@dataclass(frozen=True, eq=False)
class LandmarkCorrespondence(LandmarkEmbedding):
    """MediaPipe's 478 points on a model's triangles, with what fitting needs to know about them.

    Attributes (L = 478):
        triangle_ids: (L,) long, barycentric: (L, 3) float (see `LandmarkEmbedding`).
        sliding: (L,) bool, the face silhouette ring (`MEDIAPIPE_SILHOUETTE`): occluding-contour
            points whose model point must slide along the silhouette during fitting.
        iris: (L,) bool, points 468-477, which lie on the eyeball.
        valid: (L,) bool, False where the model has no surface for the point (irises of a model
            without eyeballs): exclude those from losses.
    """

    scheme: str = MEDIAPIPE478
    sliding: Tensor | None = None
    iris: Tensor | None = None
    valid: Tensor | None = None

    def __post_init__(self) -> None:
        n = len(self)
        defaults = {"sliding": np.isin(np.arange(n), MEDIAPIPE_SILHOUETTE),
                    "iris": np.isin(np.arange(n), MEDIAPIPE_IRIS), "valid": np.ones(n, dtype=bool)}
        for name, default in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, torch.from_numpy(default).to(self.triangle_ids.device))

    def to(self, device=None, dtype=None) -> "LandmarkCorrespondence":
        return LandmarkCorrespondence(self.triangle_ids.to(device), self.barycentric.to(device=device, dtype=dtype),
                                      self.scheme, self.sliding.to(device), self.iris.to(device),
                                      self.valid.to(device))

    def as_embedding(self) -> LandmarkEmbedding:
        """The plain `LandmarkEmbedding` (no flags)."""
        return LandmarkEmbedding(self.triangle_ids, self.barycentric, self.scheme)


@dataclass(frozen=True, eq=False)
class CanonicalFace:
    """MediaPipe's 478 points on an average frontal face, in mm.

    Frame: x from the subject's right eye to the left eye, y up (from the chin toward the
    forehead), z = x cross y toward the camera; origin at the centroid of the non-iris points.

    Attributes:
        points: (478, 3) float64.
        mirror: (478,) int64, the index of each point's mirror image (itself on the midline).
        edges: (E, 2) int64, MediaPipe's mesh edges (FACEMESH_TESSELATION, undirected).
    """

    points: np.ndarray
    mirror: np.ndarray
    edges: np.ndarray


def load_canonical_face() -> CanonicalFace:
    """The canonical MediaPipe face packaged in `facerecon/data/mediapipe_canonical.npz`."""
    with _data_file(CANONICAL_FILE) as data:
        return CanonicalFace(data["points"].astype(np.float64), data["mirror"].astype(np.int64),
                             data["edges"].astype(np.int64))


def build_canonical_face(samples: list[np.ndarray], flipped: list[bool], edges: np.ndarray) -> CanonicalFace:
    """Average MediaPipe 3D outputs into a symmetric frontal canonical face.

    Args:
        samples: (478, 3) arrays, one per detection, in image-aligned axes: x = u, y = -v,
            z = -w (pixels; `FaceLandmarks.points3d` with v and w negated).
        flipped: per sample, whether it came from a horizontally flipped photo (then x must
            already be un-flipped: x = width - u). Its labels are mirrored: point i of a flipped
            photo is the mirror image of point i of the original, which this function undoes.
        edges: (E, 2) MediaPipe mesh edges.

    Returns:
        The canonical face, scaled to an outer-eye-corner distance of `CANONICAL_EYE_WIDTH_MM`.
    """
    if not samples or len(samples) != len(flipped):
        raise UsageError("build_canonical_face needs one `flipped` flag per sample, and samples")
    plain = [np.asarray(s, dtype=np.float64) for s, f in zip(samples, flipped) if not f]
    if not plain:
        raise UsageError("build_canonical_face needs at least one sample from an unflipped photo")
    mirror = _mirror_permutation(_frontalise(_procrustes_mean(plain)))
    fixed = [np.asarray(s, dtype=np.float64)[mirror] if f else np.asarray(s, dtype=np.float64)
             for s, f in zip(samples, flipped)]
    mean = _frontalise(_procrustes_mean(fixed), mirror)
    sym = 0.5 * (mean + mean[mirror] * np.array([-1.0, 1.0, 1.0]))
    skin = np.setdiff1d(np.arange(NUM_MEDIAPIPE), MEDIAPIPE_IRIS)
    sym -= sym[skin].mean(axis=0)
    sym[mirror == np.arange(NUM_MEDIAPIPE), 0] = 0.0
    sym *= CANONICAL_EYE_WIDTH_MM / np.linalg.norm(sym[263] - sym[33])
    return CanonicalFace(sym, mirror, np.asarray(edges, dtype=np.int64))


def load_correspondence(model: MorphableModel) -> LandmarkCorrespondence:
    """MediaPipe 478 -> `model` surface correspondence.

    The packaged file (learned, see the module docstring) is used for ICT-FaceKit and for views of
    it (`model.view("head")`, whose irises, with no eyeball in the view, are re-projected onto the
    view and marked invalid); any other model is registered on the fly with
    `compute_correspondence`. The tensors are on the CPU: `.to(model.device)` for a model elsewhere.
    """
    try:
        with _data_file(correspondence_file(model.name)) as data:
            stored = {k: data[k] for k in data.files}
    except FileNotFoundError:
        return compute_correspondence(model)
    corr = _stored_on_model(stored, model)
    return corr if corr is not None else compute_correspondence(model)


def compute_correspondence(model: MorphableModel, canonical: CanonicalFace | None = None) -> LandmarkCorrespondence:
    """Register the canonical MediaPipe face to `model`'s neutral shape (see the module docstring).

    Raises:
        UsageError: the model has no 68-point landmark embedding to start the registration from.
    """
    if model.landmarks68 is None:
        raise UsageError(f"model {model.name!r} has no 68-point landmarks: cannot place MediaPipe's points on it")
    canon = canonical if canonical is not None else load_canonical_face()
    verts = model.mean.detach().cpu().double().numpy()
    tris = model.triangles.detach().cpu().numpy().astype(np.int64)
    lm68 = _embedded_points(verts, tris, model.landmarks68)
    face_tris = _region_triangles(model, ("face",), tris)
    if face_tris is None:
        face_tris = np.arange(len(tris))
    surface = _TriangleSurface(verts, tris, face_tris)

    src = canon.points[MEDIAPIPE_TO_IBUG68[_INNER_IBUG]]
    x = umeyama(src, lm68[_INNER_IBUG]).apply(canon.points)

    skin = np.setdiff1d(np.arange(NUM_MEDIAPIPE), MEDIAPIPE_IRIS)
    lap = graph_laplacian(subgraph_edges(canon.edges, skin, NUM_MEDIAPIPE), len(skin))
    anchors = np.searchsorted(skin, MEDIAPIPE_TO_IBUG68[_INNER_IBUG])
    anchor_targets = lm68[_INNER_IBUG]
    start = x.copy()
    for stiffness in _STIFFNESS:
        xs = x[skin]
        _, _, closest = surface.closest(xs)
        weight = np.ones(len(skin))
        target = closest.copy()
        # the anchors pull toward the model's own landmarks as well as toward the surface
        target[anchors] = (closest[anchors] + _ANCHOR_WEIGHT * anchor_targets) / (1.0 + _ANCHOR_WEIGHT)
        weight[anchors] = 1.0 + _ANCHOR_WEIGHT
        system = (sparse.diags(weight) + stiffness * lap).tocsc()
        step = spsolve(system, weight[:, None] * (target - xs))
        x[skin] = xs + step

    tri_ids = np.zeros(NUM_MEDIAPIPE, dtype=np.int64)
    bary = np.zeros((NUM_MEDIAPIPE, 3))
    tri_ids[skin], bary[skin], _ = surface.closest(x[skin])
    valid = np.ones(NUM_MEDIAPIPE, dtype=bool)
    for iris, eye_contour, region in ((MEDIAPIPE_IRIS_RIGHT, (33, 133, 159, 145), "eyeball_right"),
                                      (MEDIAPIPE_IRIS_LEFT, (263, 362, 386, 374), "eyeball_left")):
        # move the iris with its eye, then onto that eyeball
        shift = (x[list(eye_contour)] - start[list(eye_contour)]).mean(axis=0)
        pts = x[iris] + shift
        eye_tris = _region_triangles(model, (region,), tris)
        if eye_tris is None:
            tri_ids[iris], bary[iris], _ = surface.closest(pts)
            valid[iris] = False
        else:
            tri_ids[iris], bary[iris], _ = _TriangleSurface(verts, tris, eye_tris).closest(pts)
    return LandmarkCorrespondence(torch.from_numpy(tri_ids), torch.from_numpy(bary.astype(np.float32)),
                                  MEDIAPIPE478, valid=torch.from_numpy(valid))


def correspondence_arrays(model: MorphableModel, corr: LandmarkCorrespondence) -> dict[str, np.ndarray]:
    """The arrays stored in `mediapipe_to_<model>.npz` for `corr` on `model`."""
    tris = model.triangles.detach().cpu().numpy()
    ids = corr.triangle_ids.cpu().numpy().astype(np.int64)
    return {
        "triangle": ids,
        "barycentric": corr.barycentric.cpu().numpy().astype(np.float32),
        "sliding": corr.sliding.cpu().numpy(),
        "iris": corr.iris.cpu().numpy(),
        "valid": corr.valid.cpu().numpy(),
        # the triangles' vertices, so views of the model (other triangle numbering) can use the file
        "triangle_vertices": tris[ids].astype(np.int64),
        # the points on the neutral shape (mm), for views that dropped a point's triangle
        "points": _embedded_points(model.mean.detach().cpu().double().numpy(), tris, corr).astype(np.float32),
        "num_vertices": np.int64(model.num_vertices),
        "triangles_crc32": np.int64(_triangles_crc(tris)),
    }


# ---------------------------------------------------------------------------- helpers
def _embedded_points(verts: np.ndarray, tris: np.ndarray, embedding: LandmarkEmbedding) -> np.ndarray:
    """(L, 3) positions of an embedding's points on vertices (V, 3), in numpy on the CPU."""
    corners = verts[tris[embedding.triangle_ids.cpu().numpy()]]
    return (corners * embedding.barycentric.cpu().double().numpy()[:, :, None]).sum(axis=1)


class _TriangleSurface:
    """Closest points on a subset of a mesh's triangles."""

    def __init__(self, verts: np.ndarray, tris: np.ndarray, subset: np.ndarray, candidates: int = 32) -> None:
        self.ids = np.asarray(subset, dtype=np.int64)
        corners = verts[tris[self.ids]]
        self.a, self.b, self.c = corners[:, 0], corners[:, 1], corners[:, 2]
        from scipy.spatial import cKDTree  # lazily: scipy.spatial is slow to import

        self.tree = cKDTree(corners.mean(axis=1))
        self.k = min(candidates, len(self.ids))

    def closest(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(triangle ids (n,), barycentric (n, 3), closest points (n, 3)) for points (n, 3)."""
        _, cand = self.tree.query(points, k=self.k)
        cand = cand.reshape(len(points), self.k)
        p = np.repeat(points, self.k, axis=0)
        flat = cand.reshape(-1)
        bary = _closest_barycentric(p, self.a[flat], self.b[flat], self.c[flat])
        q = bary[:, :1] * self.a[flat] + bary[:, 1:2] * self.b[flat] + bary[:, 2:] * self.c[flat]
        d2 = ((q - p) ** 2).sum(axis=1).reshape(len(points), self.k)
        best = d2.argmin(axis=1)
        pick = np.arange(len(points)) * self.k + best
        return self.ids[flat[pick]], bary[pick], q[pick]


def _closest_barycentric(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric weights (n, 3) of the closest point on each triangle (a, b, c) to p (Ericson,
    Real-Time Collision Detection, 5.1.5), vectorised."""
    ab, ac = b - a, c - a
    ap, bp, cp = p - a, p - b, p - c
    d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
    d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
    d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2

    def safe(num, den):
        return num / np.where(np.abs(den) > 1e-300, den, 1.0)

    denom = va + vb + vc
    v, w = safe(vb, denom), safe(vc, denom)
    out = np.stack([1.0 - v - w, v, w], axis=1)
    # the regions of Ericson's test, applied last-to-first so the first matching one wins
    t = np.clip(safe(d4 - d3, (d4 - d3) + (d5 - d6)), 0, 1)
    out = np.where(((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0))[:, None], np.stack([0 * t, 1 - t, t], 1), out)
    t = np.clip(safe(d2, d2 - d6), 0, 1)
    out = np.where(((vb <= 0) & (d2 >= 0) & (d6 <= 0))[:, None], np.stack([1 - t, 0 * t, t], 1), out)
    out = np.where(((d6 >= 0) & (d5 <= d6))[:, None], np.array([0.0, 0.0, 1.0]), out)
    t = np.clip(safe(d1, d1 - d3), 0, 1)
    out = np.where(((vc <= 0) & (d1 >= 0) & (d3 <= 0))[:, None], np.stack([1 - t, t, 0 * t], 1), out)
    out = np.where(((d3 >= 0) & (d4 <= d3))[:, None], np.array([0.0, 1.0, 0.0]), out)
    out = np.where(((d1 <= 0) & (d2 <= 0))[:, None], np.array([1.0, 0.0, 0.0]), out)
    return out


def _region_triangles(model: MorphableModel, names: tuple[str, ...], tris: np.ndarray) -> np.ndarray | None:
    """Indices of the triangles with all corners in the named regions, None if there are none."""
    if not all(n in model.regions for n in names):
        return None
    inside = np.zeros(model.num_vertices, dtype=bool)
    for n in names:
        inside[model.regions[n].cpu().numpy()] = True
    ids = np.nonzero(inside[tris].all(axis=1))[0]
    return ids if len(ids) else None


def _stored_on_model(stored: dict[str, np.ndarray], model: MorphableModel) -> LandmarkCorrespondence | None:
    """The stored correspondence on `model` itself or on a view of it, or None if it does not fit."""
    tris = model.triangles.detach().cpu().numpy().astype(np.int64)
    tri_vertices = stored["triangle_vertices"]
    valid = stored["valid"].astype(bool).copy()
    bary = stored["barycentric"].astype(np.float32).copy()
    if model.parent_vertices is None:
        if int(stored["num_vertices"]) != model.num_vertices or int(stored["triangles_crc32"]) != _triangles_crc(tris):
            return None
        ids = stored["triangle"].astype(np.int64)
    else:
        # a view: find each stored triangle among the view's triangles through the parent indices
        parent = model.parent_vertices.detach().cpu().numpy()
        if parent.max() >= int(stored["num_vertices"]):
            return None
        ids = _find_rows(parent[tris], np.asarray(tri_vertices, dtype=np.int64), int(stored["num_vertices"]))
        lost = ids < 0
        if lost[~stored["iris"].astype(bool)].any():
            return None
        if lost.any():
            # points on parts the view dropped (the eyeballs): put them on the view's closest
            # triangle so every index is usable, and mark them invalid
            surface = _TriangleSurface(model.mean.detach().cpu().double().numpy(), tris, np.arange(len(tris)))
            ids[lost], b, _ = surface.closest(stored["points"][lost].astype(np.float64))
            bary[lost] = b
            valid[lost] = False
    return LandmarkCorrespondence(torch.from_numpy(ids), torch.from_numpy(bary), MEDIAPIPE478,
                                  torch.from_numpy(stored["sliding"].astype(bool)),
                                  torch.from_numpy(stored["iris"].astype(bool)), torch.from_numpy(valid))


def _find_rows(table: np.ndarray, queries: np.ndarray, n: int) -> np.ndarray:
    """For each row of `queries` (Q, 3), the index of the equal row of `table` (T, 3) (the last one
    if several are equal), or -1; entries are integers in [0, n)."""
    def key(rows: np.ndarray) -> np.ndarray:
        rows = rows.astype(np.int64)
        return (rows[:, 0] * n + rows[:, 1]) * n + rows[:, 2]

    keys = key(table)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    q = key(queries)
    at = np.searchsorted(sorted_keys, q, side="right") - 1
    found = (at >= 0) & (sorted_keys[np.clip(at, 0, None)] == q) if len(keys) else np.zeros(len(q), dtype=bool)
    return np.where(found, order[np.clip(at, 0, None)] if len(keys) else -1, -1).astype(np.int64)


def _triangles_crc(tris: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(tris, dtype=np.int64).tobytes())


def _procrustes_mean(samples: list[np.ndarray], rounds: int = 5) -> np.ndarray:
    """Generalised Procrustes mean (rotation, translation, scale removed; unit RMS size)."""
    norm = []
    for s in samples:
        c = s - s.mean(axis=0)
        norm.append(c / np.sqrt((c ** 2).sum(axis=1).mean()))
    mean = norm[0]
    for _ in range(rounds):
        aligned = []
        for c in norm:
            aligned.append(umeyama(c, mean).apply(c))
        mean = np.mean(aligned, axis=0)
        mean -= mean.mean(axis=0)
        mean /= np.sqrt((mean ** 2).sum(axis=1).mean())
    return mean


def _frontalise(points: np.ndarray, mirror: np.ndarray | None = None) -> np.ndarray:
    """Rotate into the canonical frame: x along the eyes (or along all mirror pairs), y from the
    chin (152) to the top of the forehead (10), z toward the camera."""
    if mirror is None:
        x_axis = points[[263, 362]].mean(axis=0) - points[[33, 133]].mean(axis=0)
    else:
        side = np.sign((points - points[mirror]) @ (points[263] - points[33]))
        x_axis = ((points - points[mirror]) * side[:, None]).sum(axis=0)
    x_axis /= np.linalg.norm(x_axis)
    y_axis = points[10] - points[152]
    y_axis -= x_axis * (y_axis @ x_axis)
    y_axis /= np.linalg.norm(y_axis)
    z_axis = np.cross(x_axis, y_axis)
    return (points - points.mean(axis=0)) @ np.stack([x_axis, y_axis, z_axis], axis=1)


def _mirror_permutation(frontal: np.ndarray) -> np.ndarray:
    """Pair every point with its mirror image across x = 0 (an optimal assignment, so it is a
    permutation; it must be its own inverse)."""
    reflected = frontal * np.array([-1.0, 1.0, 1.0])
    cost = ((reflected[:, None, :] - frontal[None, :, :]) ** 2).sum(axis=2)
    from scipy.optimize import linear_sum_assignment  # lazily: scipy.optimize is slow to import

    rows, cols = linear_sum_assignment(cost)
    mirror = cols[np.argsort(rows)].astype(np.int64)
    if not np.array_equal(mirror[mirror], np.arange(len(mirror))):
        raise ModelError("the MediaPipe samples are too asymmetric to pair left and right points")
    return mirror


class _data_file:
    """Open a packaged data file as an npz (context manager); FileNotFoundError if absent."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self):
        ref = resources.files("facerecon") / "data" / self.name
        if not ref.is_file():
            raise FileNotFoundError(self.name)
        self._ctx = resources.as_file(ref)
        path = self._ctx.__enter__()
        self._npz = np.load(path, allow_pickle=False)
        return self._npz

    def __exit__(self, *exc) -> None:
        self._npz.close()
        self._ctx.__exit__(*exc)


__all__ = ["CanonicalFace", "LandmarkCorrespondence", "build_canonical_face", "compute_correspondence",
           "correspondence_arrays", "correspondence_file", "load_canonical_face", "load_correspondence"]
