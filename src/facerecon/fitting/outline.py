"""The outline term of the fast fit: the Gauss-Newton counterpart of the full fit's silhouette term.

Where a turned face meets the background (forehead, nose, lips and chin of the far side) the
outline is an observation the landmarks give only coarsely: MediaPipe's outline points slide along
it and are biased with pose. The full fit renders a soft silhouette (`fitting.silhouette`); the
landmark fit needs residuals with a Jacobian, so here the same two targets become point residuals
(hard correspondences re-chosen at every evaluation, as in ICP-style edge fitting of morphable
models):

- no face on background: a sample of the face near its occluding contour (the face's projected
  outline is made of them; visible or not, the whole face lies inside the person's silhouette) that
  projects onto background is pulled back by its distance to the nearest person pixel
  (`OutlineTargets.background_distance`);
- the face reaches its outline: at each edge point where the person meets the background next to
  the detected face (the detected points' hull, grown by a margin below the forehead, on person
  pixels within a band of the background), the outermost projected sample of the head near the
  edge's normal line must reach the edge; the residual is how far short it falls along the edge's
  outward normal (one-sided: going beyond is the first residual's business). Where that sample is
  not on the face proper (a temple, the skull: outside the region the identity is judged on) the
  edge is left out rather than let the skull's shape steer the face's.

Both are in units of the landmark noise (`LandmarkNoise.sigma` x the face size), Huber-weighted at
`robust_scale` like the landmarks. The fitter supplies the projected samples and their Jacobian
through `GaussNewtonInputs.surface` (`LandmarkFitter.surface_samples`: the model thinned to one
vertex per `SAMPLE_SPACING_MM` cell, those with |cos(normal, ray)| < `CONTOUR_FACING` at the current
pose; `SurfaceProjection.in_face` marks the face proper). The term (registered as "outline", residual form only) reads its targets from
`extras["outline"]` (an `OutlineTargets`, from `outline_targets`); without them it does not apply.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from .terms import GaussNewtonInputs, Residual, register_term

TERM = "outline"
EXTRA = "outline"
SAMPLE_SPACING_MM = 4.0
CONTOUR_FACING = 0.5  # |cos(normal, ray)| below which a sample may be on the occluding contour


@dataclass(frozen=True)
class OutlineTargets:
    """One photo's outline targets, in its pixels (x right, y down, pixel (r, c) centred at (c + .5, r + .5)),
    over a window around the face.

    Attributes:
        origin: (row, col) of the window's top-left pixel in the photo.
        background_distance: (h, w) float32 px from each background pixel's centre to the nearest
            person pixel's centre (0 on person pixels), over the window.
        nearest_person: (h, w, 2) int32 (row, col) in the window of that nearest person pixel.
        edge_distance: (h, w) float32 px from each pixel's centre to the nearest edge point's pixel.
        edge_points: (M, 2) photo px where the face meets the background (on the person side).
        edge_normals: (M, 2) unit normals there, pointing out of the person.
        reach: px, how far inside an edge the model's outline is still paired with it.
    """

    origin: tuple[int, int]
    background_distance: np.ndarray
    nearest_person: np.ndarray
    edge_distance: np.ndarray
    edge_points: np.ndarray
    edge_normals: np.ndarray
    reach: float


def outline_targets(person: np.ndarray, points: np.ndarray, band_fraction: float = 0.04,
                    edge_spacing_fraction: float = 0.02, reach_fraction: float = 0.06,
                    window_fraction: float = 0.35, margin_fraction: float = 0.0,
                    face_axis: tuple[np.ndarray, np.ndarray] | None = None) -> OutlineTargets:
    """The outline targets of a photo from a person probability and the detected landmarks.

    Args:
        person: (H, W) person probability in [0, 1] (`landmarks.segmentation.PersonSegmenter`).
        points: (L, 2) detected landmarks px; their convex hull is where the face is.
        band_fraction: how close to background (fraction of the points' box diagonal) a hull pixel
            must be to count as the face's visible outline (as `fitting.silhouette.silhouette_targets`).
        edge_spacing_fraction: edge points are thinned to about this spacing (fraction of the diagonal).
        reach_fraction: `OutlineTargets.reach` as a fraction of the diagonal.
        window_fraction: the window is the points' box grown by this fraction of the diagonal on
            each side (a sample beyond it counts as on the nearest border pixel).
        margin_fraction: the hull grown by this fraction of the diagonal (a turned face's nose tip
            and chin stick out of its detected points' hull).
        face_axis: (bottom, top) px, e.g. the chin's and the forehead's points: no edge lies beyond
            the highest point along bottom -> top (where hair, not the face, meets the background).

    Raises:
        UsageError: a person map that is not a finite (H, W) array, or fewer than 3 finite points.
    """
    from scipy import ndimage

    from .silhouette import checked_targets_inputs, hull_mask

    person, pts = checked_targets_inputs(person, points)
    h, w = person.shape
    diagonal = float(np.linalg.norm(np.ptp(pts, axis=0)))
    grow = window_fraction * diagonal
    lo = np.floor(pts.min(0) - grow).astype(int)
    hi = np.ceil(pts.max(0) + grow).astype(int)
    r0, c0 = int(np.clip(lo[1], 0, h - 1)), int(np.clip(lo[0], 0, w - 1))
    r1, c1 = int(np.clip(hi[1], r0 + 1, h)), int(np.clip(hi[0], c0 + 1, w))
    crop = person[r0:r1, c0:c1]
    is_person = crop >= 0.5
    if is_person.any() and not is_person.all():
        dist, idx = ndimage.distance_transform_edt(~is_person, return_indices=True)
        nearest = np.ascontiguousarray(np.stack(idx, axis=-1).astype(np.int32))
        band = max(1.0, band_fraction * diagonal)
        face = hull_mask(pts, crop.shape, (r0, c0))
        if margin_fraction > 0 and face.any():  # (an empty hull stays empty)
            face = ndimage.distance_transform_edt(~face) <= margin_fraction * diagonal
            if face_axis is not None:
                bottom, top = (np.asarray(p, dtype=np.float64) for p in face_axis)
                up = (top - bottom) / max(float(np.linalg.norm(top - bottom)), 1e-9)
                yy, xx = np.mgrid[r0:r1, c0:c1]
                height = (xx + 0.5 - bottom[0]) * up[0] + (yy + 0.5 - bottom[1]) * up[1]
                face &= height <= float(((pts - bottom) @ up).max())
        inside = face & is_person & (ndimage.distance_transform_edt(is_person) <= band)
    else:  # all person or none: no outline in the window, nothing to pull towards
        dist, nearest = np.zeros(crop.shape), np.zeros(crop.shape + (2,), np.int32)
        inside = np.zeros(crop.shape, bool)
    # edge: inside-band pixels with a background 4-neighbour
    background = np.pad(~is_person, 1, mode="edge")
    touches = background[:-2, 1:-1] | background[2:, 1:-1] | background[1:-1, :-2] | background[1:-1, 2:]
    rows, cols = np.nonzero(inside & touches)
    spacing = max(1.0, edge_spacing_fraction * diagonal)
    cell = np.stack([np.floor(rows / spacing), np.floor(cols / spacing)], 1).astype(np.int64)
    _, keep = np.unique(cell, axis=0, return_index=True)
    rows, cols = rows[keep], cols[keep]
    # outward normal: down the smoothed person probability
    smooth = ndimage.gaussian_filter(crop, sigma=max(1.0, 0.5 * spacing))
    gy, gx = np.gradient(smooth)
    normal = -np.stack([gx[rows, cols], gy[rows, cols]], 1).astype(np.float64)
    length = np.linalg.norm(normal, axis=1)
    ok = length > 1e-6
    edge = np.stack([cols + c0 + 0.5, rows + r0 + 0.5], 1).astype(np.float64)[ok]
    not_edge = np.ones(crop.shape, bool)
    not_edge[rows[ok], cols[ok]] = False
    edge_distance = ndimage.distance_transform_edt(not_edge) if not not_edge.all() else np.full(crop.shape, np.inf)
    return OutlineTargets((r0, c0), dist.astype(np.float32), nearest, edge_distance.astype(np.float32), edge,
                          normal[ok] / length[ok, None], float(reach_fraction * diagonal))


def background_residuals(projected: np.ndarray, targets: OutlineTargets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples on background and how far they are from the person.

    Args:
        projected: (N, 2) photo px sample points.

    Returns:
        (rows (K,) into `projected`, distances (K,) px beyond the person's edge, unit directions (K, 2)
        away from the nearest person pixel): d distance / d point = direction.
    """
    dist = targets.background_distance
    h, w = dist.shape
    r0, c0 = targets.origin
    local = projected - np.array([c0, r0], dtype=np.float64)
    c = np.floor(local[:, 0]).astype(np.int64)
    r = np.floor(local[:, 1]).astype(np.int64)
    # beyond the window a sample counts as on the nearest border pixel (person or background), its
    # distance measured from where it is
    cc, rc = np.clip(c, 0, w - 1), np.clip(r, 0, h - 1)
    out = np.nonzero(dist[rc, cc] > 0)[0]
    if len(out) == 0:
        return out, np.zeros(0), np.zeros((0, 2))
    q = targets.nearest_person[rc[out], cc[out]][:, ::-1] + 0.5  # (x, y) centre of the nearest person pixel
    d = local[out] - q
    norm = np.linalg.norm(d, axis=1)
    keep = norm > 0.5
    # the edge lies half a pixel out from the person pixel's centre
    return out[keep], norm[keep] - 0.5, d[keep] / norm[keep, None]


def edge_residuals(projected: np.ndarray, targets: OutlineTargets, window: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each edge point, the outermost sample near its normal line and how far short of it it falls.

    Args:
        projected: (N, 2) photo px sample points (the candidates: those that can be on the outline).
        window: px half-width of the strip along each edge point's normal in which samples are
            paired with it.

    Returns:
        (rows (K,) into `projected`, shortfalls (K,) px > 0, the edges' outward normals (K, 2)):
        d shortfall / d point = -normal.
    """
    b, n = targets.edge_points, targets.edge_normals
    if len(b) == 0 or len(projected) == 0:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 2))
    # only samples within the reach of an edge point are paired (one further out along a normal
    # would mean the face is off by more than the reach, which the background residual pulls in)
    dist = targets.edge_distance
    r0, c0 = targets.origin
    c = np.clip(np.floor(projected[:, 0] - c0).astype(np.int64), 0, dist.shape[1] - 1)
    r = np.clip(np.floor(projected[:, 1] - r0).astype(np.int64), 0, dist.shape[0] - 1)
    box = np.nonzero(dist[r, c] <= targets.reach + window + 1.0)[0]
    if len(box) == 0:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 2))
    projected = projected[box]
    # each sample's offset from each edge point (M, N) along its outward normal n and across it
    # (t = (-n_y, n_x)): (p - b) . n as two products, with no (M, N, 2) array in between
    t = np.stack([-n[:, 1], n[:, 0]], axis=1)
    along = n @ projected.T - (n * b).sum(1)[:, None]
    across = t @ projected.T - (t * b).sum(1)[:, None]
    near = (np.abs(across) <= window) & (along >= -targets.reach)
    score = np.where(near, along, -np.inf)
    best = np.argmax(score, axis=1)
    top = score[np.arange(len(b)), best]
    short = np.isfinite(top) & (top < 0)
    return box[best[short]], -top[short], n[short]


def outline_residual(x: GaussNewtonInputs, with_jacobian: bool) -> Residual | None:
    """The outline term's residuals (see the module docstring); None without targets or samples, or
    when no sample is off the person and every edge is reached."""
    targets = (x.extras or {}).get(EXTRA)
    if targets is None:
        return None
    if not isinstance(targets, OutlineTargets):
        raise UsageError(f"extras[{EXTRA!r}] must be an OutlineTargets, got {type(targets).__name__}")
    if x.surface is None:
        return None
    surface = x.surface()
    f = float(np.exp(x.log_focal))
    depth = max(-float(x.translation[2]), 1e-3)
    window = 0.75 * SAMPLE_SPACING_MM * f / depth
    face = np.ones(len(surface.uv), bool) if surface.in_face is None else surface.in_face
    on_face = np.nonzero(face)[0]
    rows_b, dist_b, dir_b = background_residuals(surface.uv[on_face], targets)
    rows_b = on_face[rows_b]
    # the outline is wherever the head's outermost sample is; it is fitted where that is the face's
    rows_e, short_e, nrm_e = edge_residuals(surface.uv, targets, window)
    keep = face[rows_e]
    rows_e, short_e, nrm_e = rows_e[keep], short_e[keep], nrm_e[keep]
    rows = np.concatenate([rows_b, rows_e])
    if len(rows) == 0:
        return None
    sigma = x.landmark_sigma
    r = np.concatenate([dist_b, short_e]) / sigma
    direction = np.concatenate([dir_b, -nrm_e])  # d r / d point, times sigma
    robust = np.ones_like(r)
    scale = x.config.noise.robust_scale
    if scale is not None:
        robust = np.where(r > scale, scale / np.maximum(r, 1e-12), 1.0)
    if not with_jacobian:
        return Residual(r * np.sqrt(robust))
    jac = surface.jacobian(rows)  # (K, 2, n_par)
    j = np.einsum("kc,kcp->kp", direction, jac) / sigma
    return Residual(r, j, robust)


register_term(TERM, residual=outline_residual)
