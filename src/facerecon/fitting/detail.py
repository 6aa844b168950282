"""Fine detail beyond the linear model: a UV displacement map fitted by shape from shading (after DECA).

The detailed surface is M' = M + D N: a displacement map D (S x S texels of the model's UV layout,
mm along the coarse normals, clipped to `DetailConfig.max_mm`) over one face region.
D is fitted to the photo in UV space with the renderer's own shading model: each texel's colour is
albedo x `render.shading` SH(R n'(D)), where n'(D) is the coarse interpolated vertex normal (what the
renderer shades with) bump-mapped by D's surface gradient (`render.normal_map`), and R the camera
rotation. The photo is sampled at each texel's projection (a mask keeps the texels the photo shows:
inside the image, in front in the z-buffer, facing the camera), less the feature edges a smooth
model cannot follow (eyelids, brows, nostrils, lips: texels near the fitted landmarks' contours),
and the colour residual is high-passed (its local mean over `highpass_mm` removed) so that albedo
and light errors at the coarse scale do not turn into relief. The fit is Gauss-Newton: the
shading is relinearised about the current D `iterations` times, each step a sparse conjugate-gradient
solve with DECA's soft symmetry ||V_uv (D - flip(D))||_1 (the ICT UV layout mirrors the face about
u = 0.5) and L1 terms by reweighting, and a Laplacian smoothness term (`detail_losses`). After the
first step the data term's noise is re-estimated from what is left unexplained
(`DetailConfig.adaptive_noise`), so a photo whose albedo texture or shape the coarse fit misses gets
more regularisation, a clean one less. The final map is high-passed too, so D carries fine detail only.

Units: mm, model space (docs/conventions.md).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import FitError, UsageError
from ..models import MorphableModel
from ..render import render_mesh, render_to_uv
from ..render.normal_map import bump_normals, tangent_space_encode
from ..render.shading import SH_CONSTANTS
from ..render.texture import sample_texture
from .detail_losses import smoothness_penalty, symmetry_loss
from .state import FaceState

# MediaPipe contours whose texels a smooth surface plus albedo cannot explain (occlusion edges,
# hair, lashes), and the margin (mm) masked around each: name -> (point ids, closed loop, margin)
FEATURE_CONTOURS = {
    "eye_right": ((33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246), True, 5.0),
    "eye_left": ((263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466), True, 5.0),
    "brow_right": ((70, 63, 105, 66, 107, 55, 65, 52, 53, 46), True, 4.0),
    "brow_left": ((300, 293, 334, 296, 336, 285, 295, 282, 283, 276), True, 4.0),
    "lips_outer": ((61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185),
                   True, 3.0),
    "lips_inner": ((78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191),
                   True, 4.0),
    "nostrils": ((64, 98, 97, 2, 326, 327, 294, 278, 279, 49, 48, 219, 439, 240, 460, 75, 305, 129, 358, 102, 331),
                 False, 4.0),
}


@dataclass
class DetailConfig:
    """Size, bound and weights of the detail fit.

    Attributes:
        size: texels per side of the displacement map (the [0, 1] UV tile).
        max_mm: bound of |D|; DECA's detail is about this size.
        region: model region whose skin carries detail (a vertex region name).
        noise: colour noise the data term is divided by (image in [0, 1]) in the first step.
        adaptive_noise: from the second step on, the noise is this many times the RMS of the kept
            texels' high-passed residual after the first step (what D and the given albedo and light
            leave unexplained: albedo texture the coarse fit lacks, its shape errors, sensor noise),
            at least `noise_floor`; 0 keeps `noise` throughout. A photo the coarse fit explains
            less well is fitted with more regularisation, so its unexplained texture does not turn into relief.
        photo_blur: the photo is blurred by this many pixels per texel before it is sampled, when
            a texel spans more than a pixel.
        symmetry, smoothness, l1: regulariser weights per texel (L1 terms by reweighting).
        highpass_mm: width of the box whose local mean is removed from the colour residual and from
            the final D (0: keep both as they are).
        outlier: seen texels whose high-passed colour residual exceeds this many robust stds are left out.
        outlier_margin: texels within this many of an outlier are left out too.
        iterations: Gauss-Newton relinearisations (each also reweights the L1 terms).
        cg_iterations: conjugate-gradient iterations per step.
        min_facing: a texel is seen when its normal's cosine with the view ray exceeds this.
        depth_tolerance_mm: a texel is seen when within this depth of the z-buffer.
        features: the `FEATURE_CONTOURS` masked when feature points are given.
    """

    size: int = 256
    max_mm: float = 1.0
    region: str = "narrow_face"
    noise: float = 0.02
    symmetry: float = 0.05
    smoothness: float = 20.0
    l1: float = 0.1
    highpass_mm: float = 10.0
    outlier: float = 4.0
    outlier_margin: int = 2
    iterations: int = 3
    cg_iterations: int = 60
    min_facing: float = 0.3
    depth_tolerance_mm: float = 1.5
    features: tuple[str, ...] = tuple(FEATURE_CONTOURS)
    photo_blur: float = 0.25
    adaptive_noise: float = 2.5
    noise_floor: float = 0.008


@dataclass
class UVMaps:
    """A mesh rasterised into its UV layout (float32 torch, batch 1).

    Attributes:
        positions: (1, S, S, 3) model-space points (mm). normals: (1, S, S, 3) unit normals.
        inside: (1, S, S) bool, texels inside the UV islands. region: (1, S, S) bool, texels of the
            detail region. albedo: (1, S, S, 3) or None.
    """

    positions: torch.Tensor
    normals: torch.Tensor
    inside: torch.Tensor
    region: torch.Tensor
    albedo: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.positions.shape[1])

    def texel_mm(self) -> float:
        """Median edge length of a texel on the surface, mm."""
        du = (self.positions[:, :, 1:] - self.positions[:, :, :-1]).norm(dim=-1)
        ok = self.region[:, :, 1:] & self.region[:, :, :-1]
        return float(du[ok].median()) if bool(ok.any()) else 1.0


def vertex_uv(model: MorphableModel) -> np.ndarray:
    """(V, 2) one UV coordinate per vertex (the first corner that names it); `UsageError` without UVs."""
    if model.uv is None:
        raise UsageError(f"model {model.name!r} has no UV layout: fine detail needs one")
    out = np.zeros((model.num_vertices, 2))
    tris = model.triangles.cpu().numpy().ravel()
    out[tris[::-1]] = model.uv.cpu().numpy()[model.uv_triangles.cpu().numpy().ravel()[::-1]]
    return out


def region_vertices(model: MorphableModel, region: str) -> np.ndarray:
    """Vertex indices of `region`; `UsageError` naming the regions when it is absent."""
    if region not in model.regions:
        raise UsageError(f"model {model.name!r} has no region {region!r}; regions: {', '.join(sorted(model.regions))}")
    return model.regions[region].cpu().numpy()


def uv_maps(model: MorphableModel, vertices: np.ndarray, size: int, region: str | None = None,
            albedo: np.ndarray | None = None) -> UVMaps:
    """Rasterise `vertices` (V, 3) (the model's topology, mm) and optional albedo (V, 3) into UV maps;
    without `region` every texel inside the islands counts as the region."""
    from ..geometry.mesh import vertex_normals

    if model.uv is None:
        raise UsageError(f"model {model.name!r} has no UV layout: fine detail needs one")
    v = np.asarray(vertices, dtype=np.float64)
    if v.shape != (model.num_vertices, 3):
        raise UsageError(f"vertices must have shape ({model.num_vertices}, 3), got {v.shape}")
    n = vertex_normals(v, model.triangles.cpu().numpy())
    flag = np.ones((len(v), 1))
    if region is not None:
        flag[:] = 0.0
        flag[region_vertices(model, region)] = 1.0
    attrs = [v, n, flag] + ([] if albedo is None else [np.asarray(albedo, dtype=np.float64)])
    a = torch.as_tensor(np.concatenate(attrs, 1)[None], dtype=torch.float32)
    maps, inside = render_to_uv(a, model.uv.float(), model.uv_triangles, size, triangles=model.triangles)
    normals = F.normalize(maps[..., 3:6], dim=-1, eps=1e-12)
    region_mask = inside & (maps[..., 6] > 0.999)
    return UVMaps(maps[..., :3], normals, inside, region_mask, None if albedo is None else maps[..., 7:10])


@dataclass
class DetailMap:
    """A fitted displacement map.

    Attributes:
        displacement: (S, S) float32 mm along the coarse normals (0 off `mask`), row 0 at v = 1.
        mask: (S, S) bool, the texels of the detail region. seen: (S, S) bool, those the photo showed.
        max_mm: the bound. texel_mm: median texel size on the surface.
        losses: {"initial": {...}, "final": {...}} term values. seconds: wall time.
    """

    displacement: np.ndarray
    mask: np.ndarray
    seen: np.ndarray
    max_mm: float
    texel_mm: float
    losses: dict = field(default_factory=dict)
    seconds: float = 0.0

    def rms_mm(self) -> float:
        """RMS of the displacement over the region's texels, mm."""
        d = self.displacement[self.mask]
        return float(np.sqrt(np.mean(d * d))) if d.size else 0.0

    def at_vertices(self, model: MorphableModel) -> np.ndarray:
        """(V,) the displacement sampled at each vertex's UV (bilinear), mm."""
        uv = torch.as_tensor(vertex_uv(model)[None], dtype=torch.float32)
        tex = torch.as_tensor(self.displacement[None, :, :, None], dtype=torch.float32)
        return sample_texture(tex, uv)[0, :, 0].double().numpy()


def displace_vertices(vertices: np.ndarray, normals: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """M' = M + D N: (V, 3) vertices moved by (V,) displacements along their (V, 3) unit normals."""
    v, n, d = (np.asarray(x, dtype=np.float64) for x in (vertices, normals, displacement))
    if v.shape != n.shape or d.shape != v.shape[:1]:
        raise UsageError(f"vertices {v.shape}, normals {n.shape} and displacement {d.shape} do not match")
    return v + d[:, None] * n


def _seen_texels(maps: UVMaps, vertices: np.ndarray, triangles: torch.Tensor, state: FaceState, scale: float,
                 cfg: DetailConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Texels the photo shows (1, S, S) bool, and their pixel coordinates (1, S, S, 2) in the photo copy."""
    cam = state.pinhole(scale=scale)
    with torch.no_grad():
        out = render_mesh(torch.as_tensor(vertices[None], dtype=torch.float32), triangles, cam, antialias=False)
        pts = maps.positions.reshape(1, -1, 3)
        cam_pts = cam.transform(pts)
        screen = cam.camera_to_screen(cam_pts)[0]
        r = cam.rotation_matrix[0]
    h, w = out.depth.shape[1:]
    uvp = screen[:, :2]
    ij = uvp.floor().long()
    inside = (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
    ijc = torch.stack([ij[:, 0].clamp(0, w - 1), ij[:, 1].clamp(0, h - 1)], 1)
    zbuf = out.depth[0][ijc[:, 1], ijc[:, 0]]
    depth = -cam_pts[0, :, 2]
    n_cam = maps.normals.reshape(-1, 3) @ r.T
    facing = (n_cam * F.normalize(-cam_pts[0], dim=-1)).sum(-1)
    seen = inside & (zbuf > 0) & (depth <= zbuf + cfg.depth_tolerance_mm) & (facing > cfg.min_facing)
    s = maps.size
    return seen.reshape(1, s, s) & maps.region, uvp.reshape(1, s, s, 2)


def _sample_photo(photo: np.ndarray, pixels: torch.Tensor, blur_px: float) -> torch.Tensor:
    """(1, S, S, 3) the photo (H, W, 3) at pixel coordinates (1, S, S, 2), blurred by `blur_px` first."""
    img = np.asarray(photo, dtype=np.float32)
    if blur_px > 0.3:
        from scipy.ndimage import gaussian_filter

        img = gaussian_filter(img, (blur_px, blur_px, 0))
    h, w = img.shape[:2]
    t = torch.as_tensor(img).permute(2, 0, 1)[None]
    grid = torch.stack([pixels[..., 0] / w * 2 - 1, pixels[..., 1] / h * 2 - 1], -1)
    return F.grid_sample(t, grid, mode="bilinear", padding_mode="border", align_corners=False).permute(0, 2, 3, 1)


def feature_mask(positions: np.ndarray, feature_points: np.ndarray, names: tuple[str, ...] = tuple(FEATURE_CONTOURS),
                 step_mm: float = 1.0) -> np.ndarray:
    """(...,) bool: the points `positions` (..., 3) within each contour's margin of MediaPipe's
    (478, 3) `feature_points` contours (`FEATURE_CONTOURS`, densified every `step_mm`), mm."""
    from scipy.spatial import cKDTree

    pts = np.asarray(feature_points, dtype=np.float64)
    if pts.shape != (478, 3):
        raise UsageError(f"feature_points must be MediaPipe's (478, 3) points, got {pts.shape}")
    pos = np.asarray(positions, dtype=np.float64)
    out = np.zeros(pos.shape[:-1], dtype=bool)
    flat = pos.reshape(-1, 3)
    tree = cKDTree(flat)
    for name in names:
        if name not in FEATURE_CONTOURS:
            raise UsageError(f"unknown feature {name!r}; features: {', '.join(FEATURE_CONTOURS)}")
        ids, closed, margin = FEATURE_CONTOURS[name]
        p = pts[list(ids) + ([ids[0]] if closed else [])]
        samples = [p[:1]]
        for a, b in zip(p[:-1], p[1:]):
            k = max(1, int(np.ceil(np.linalg.norm(b - a) / step_mm)))
            samples.append(a + (b - a) * (np.arange(1, k + 1) / k)[:, None])
        for hit in tree.query_ball_point(np.concatenate(samples), margin):
            out.reshape(-1)[hit] = True
    return out


@dataclass
class PhotoTexels:
    """What the detail fit takes from one photo, in the model's UV layout.

    Attributes:
        maps: the coarse shape's `UVMaps` (with albedo). seen: (S, S) bool texels the photo shows
            (feature edges left out). target: (S, S, 3) the photo at each texel's projection.
        sh: (9, 3) camera-space SH light. rotation: (3, 3) the camera rotation.
    """

    maps: UVMaps
    seen: np.ndarray
    target: np.ndarray
    sh: np.ndarray
    rotation: np.ndarray


def photo_texels(model: MorphableModel, vertices: np.ndarray, state: FaceState, photo: np.ndarray,
                 albedo: np.ndarray, sh: np.ndarray | None = None, config: DetailConfig | None = None,
                 triangles: np.ndarray | None = None, feature_points: np.ndarray | None = None) -> PhotoTexels:
    """Check `fit_detail`'s inputs (same arguments) and sample the photo at the region's texels.

    Raises:
        UsageError: no light, bad shapes, or no UV layout. FitError: the photo shows no texel of the region.
    """
    cfg = config or DetailConfig()
    if sh is None:
        if state.appearance.sh is None:
            raise UsageError("fine detail needs a fitted SH light (reconstruct with mode 'full')")
        sh = np.asarray(state.appearance.sh)[0]
    sh = np.asarray(sh, dtype=np.float64)
    photo = np.asarray(photo)
    if photo.ndim != 3 or photo.shape[2] != 3:
        raise UsageError(f"photo must have shape (h, w, 3), got {photo.shape}")
    if sh.shape != (9, 3) or not np.isfinite(sh).all():
        raise UsageError(f"sh must be a finite (9, 3) array, got shape {sh.shape}")
    albedo = np.asarray(albedo, dtype=np.float64)
    if albedo.shape != (model.num_vertices, 3):
        raise UsageError(f"albedo must have shape ({model.num_vertices}, 3), got {albedo.shape}")
    maps = uv_maps(model, vertices, cfg.size, cfg.region, albedo)
    scale = photo.shape[1] / state.camera.image_size[1]
    tris = model.triangles if triangles is None else torch.as_tensor(np.asarray(triangles, dtype=np.int64))
    seen, pixels = _seen_texels(maps, np.asarray(vertices, dtype=np.float64), tris, state, scale, cfg)
    if feature_points is not None and cfg.features:
        masked = feature_mask(maps.positions[0].double().numpy(), feature_points, cfg.features)
        seen = seen & ~torch.as_tensor(masked)[None]
    if not bool(seen.any()):
        raise FitError("the photo shows none of the face region: no detail to fit")
    step = (pixels[:, :, 1:] - pixels[:, :, :-1]).norm(dim=-1)
    px_per_texel = float(step[maps.region[:, :, 1:] & maps.region[:, :, :-1]].median())
    # a texel wider than a pixel sees the photo averaged over its footprint (and its noise averaged down)
    target = _sample_photo(photo, pixels, cfg.photo_blur * px_per_texel if px_per_texel > 1 else 0.0)
    return PhotoTexels(maps, seen[0].numpy(), target[0].double().numpy(), sh, state.params.rotation_matrix(0))


def fit_detail(model: MorphableModel, vertices: np.ndarray, state: FaceState, photo: np.ndarray,
               albedo: np.ndarray, sh: np.ndarray | None = None, config: DetailConfig | None = None,
               triangles: np.ndarray | None = None, feature_points: np.ndarray | None = None) -> DetailMap:
    """Fit a displacement map to one photo by shape from shading (see the module docstring).

    Args:
        model: the model whose topology and UV layout `vertices` have (the full ICT head).
        vertices: (V, 3) the coarse fitted shape, model space, mm.
        state: the one-image fitted state (its camera is in the original photo's pixels).
        photo: (h, w, 3) float RGB in [0, 1], the photo or a uniformly resized copy of it.
        albedo: (V, 3) linear RGB per vertex (the full fit's, or the truth's in a test).
        sh: (9, 3) camera-space SH light; default the state's.
        config: `DetailConfig`.
        triangles: (F, 3) the triangles that occlude (default all; pass the visible ones to leave
            out see-through shells).
        feature_points: (478, 3) MediaPipe's points on the fitted shape, model space: the feature
            edges around them are left out (default: none are).

    Raises:
        UsageError: no light, bad shapes, or no UV layout. FitError: the photo shows no texel of the region.
    """
    cfg = config or DetailConfig()
    t0 = time.perf_counter()
    tex = photo_texels(model, vertices, state, photo, albedo, sh, cfg, triangles, feature_points)
    d, losses = _solve_displacement(tex.maps, tex.seen, tex.target, tex.sh, tex.rotation, cfg)
    if not np.isfinite(d).all():
        raise FitError("the detail fit diverged (non-finite displacement)")
    return DetailMap(d.astype(np.float32), tex.maps.region[0].numpy(), tex.seen, cfg.max_mm, tex.maps.texel_mm(),
                     losses, time.perf_counter() - t0)


def _difference_operators(region: np.ndarray):
    """Sparse (n, n) d/du and d/dv (+v up) over the n region texels: central, one-sided at the edges
    (the differences `render.normal_map` takes)."""
    from scipy import sparse

    s = region.shape[0]
    index = np.full(region.shape, -1)
    rows, cols = np.nonzero(region)
    index[rows, cols] = np.arange(len(rows))

    def along(dr: int, dc: int):
        def at(k: int):
            r, c = rows + k * dr, cols + k * dc
            ok = (r >= 0) & (r < s) & (c >= 0) & (c < s)
            out = np.full(len(rows), -1)
            out[ok] = index[r[ok], c[ok]]
            return out
        nxt, prv = at(1), at(-1)
        both, only_n, only_p = (nxt >= 0) & (prv >= 0), (nxt >= 0) & (prv < 0), (nxt < 0) & (prv >= 0)
        me = np.arange(len(rows))
        i = np.concatenate([me[both], me[both], me[only_n], me[only_n], me[only_p], me[only_p]])
        j = np.concatenate([nxt[both], prv[both], nxt[only_n], me[only_n], me[only_p], prv[only_p]])
        v = np.concatenate([np.full(both.sum(), 0.5), np.full(both.sum(), -0.5), np.ones(only_n.sum()),
                            -np.ones(only_n.sum()), np.ones(only_p.sum()), -np.ones(only_p.sum())])
        return sparse.csr_matrix((v, (i, j)), shape=(len(rows), len(rows)))

    return along(0, 1), -along(1, 0), index, rows, cols


def sh_gradient(n: np.ndarray, sh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shading (m, 3) and its gradient w.r.t. the normal (m, 3 channels, 3) for camera-space normals
    (m, 3): `render.shading.sh_shading`'s basis and constants."""
    c = SH_CONSTANTS
    x, y, z = n[:, 0], n[:, 1], n[:, 2]
    zero, one = np.zeros_like(x), np.ones_like(x)
    basis = np.stack([c[0] * one, c[1] * x, c[2] * y, c[3] * z, c[4] * x * y, c[5] * x * z, c[6] * y * z,
                      c[7] * (x * x - y * y), c[8] * (3 * z * z - 1)], 1)
    dx = np.stack([zero, c[1] * one, zero, zero, c[4] * y, c[5] * z, zero, 2 * c[7] * x, zero], 1)
    dy = np.stack([zero, zero, c[2] * one, zero, c[4] * x, zero, c[6] * z, -2 * c[7] * y, zero], 1)
    dz = np.stack([zero, zero, zero, c[3] * one, zero, c[5] * x, c[6] * y, zero, 6 * c[8] * z], 1)
    mul = lambda b: np.einsum('mk,kc->mc', b, sh)  # noqa: E731  (no BLAS: see _pcg)
    grad = np.stack([mul(dx), mul(dy), mul(dz)], 2)  # (m, channel, xyz)
    return mul(basis), grad


def _box_mean(values: np.ndarray, mask: np.ndarray, box: int) -> np.ndarray:
    """(S, S, ...) the mean of `values` over the `box` x `box` texels of (S, S) `mask` around each texel."""
    from scipy.ndimage import uniform_filter

    m = mask.astype(np.float64)
    extra = values.ndim - 2
    size = (box, box) + (1,) * extra
    mm = m.reshape(m.shape + (1,) * extra)
    return uniform_filter(values * mm, size, mode="constant") / np.maximum(uniform_filter(mm, size, mode="constant"),
                                                                           1e-6)


def _pcg(a_mat, b: np.ndarray, x: np.ndarray, iterations: int) -> np.ndarray:
    """Jacobi-preconditioned conjugate gradients on the SPD sparse `a_mat`, from `x`. Vector products
    are elementwise sums, not BLAS calls (a threaded BLAS on a busy machine makes each one slow)."""
    inv_diag = 1.0 / np.maximum(a_mat.diagonal(), 1e-9)
    r = b - a_mat @ x
    z = r * inv_diag
    p = z.copy()
    rz = float((r * z).sum())
    stop = 1e-10 * float((b * b).sum())
    for _ in range(iterations):
        if rz <= stop:
            break
        ap = a_mat @ p
        alpha = rz / max(float((p * ap).sum()), 1e-300)
        x = x + alpha * p
        r = r - alpha * ap
        z = r * inv_diag
        rz_new = float((r * z).sum())
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x


@dataclass
class RegionGrid:
    """The n texels of a (S, S) region and the sparse (n, n) operators over them: d/du, d/dv (+v up),
    the 4-neighbour Laplacian, and D - mirror(D) (zero rows where the mirror texel is outside)."""

    region: np.ndarray
    du: object
    dv: object
    index: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    laplacian: object
    symmetry: object

    @property
    def n(self) -> int:
        return len(self.rows)

    def to_map(self, d: np.ndarray) -> np.ndarray:
        """(S, S) the map of per-texel values (n,), 0 off the region."""
        out = np.zeros(self.region.shape)
        out[self.rows, self.cols] = d
        return out


def region_grid(region: np.ndarray) -> RegionGrid:
    """`RegionGrid` of a (S, S) bool region."""
    from scipy import sparse

    s = region.shape[0]
    du_op, dv_op, index, rows, cols = _difference_operators(region)
    n_tex = len(rows)
    lap = (du_op @ du_op + dv_op @ dv_op).tocsr()
    mirror = index[rows, s - 1 - cols]
    has = np.flatnonzero(mirror >= 0)
    sym = sparse.csr_matrix((np.r_[np.ones(len(has)), -np.ones(len(has))], (np.r_[has, has], np.r_[has, mirror[has]])),
                            shape=(n_tex, n_tex))
    return RegionGrid(region, du_op, dv_op, index, rows, cols, lap, sym)


class ShadingTerm:
    """The shape-from-shading data term of one photo over a `RegionGrid`: the colour residual of the
    texels the photo shows (high-passed, outliers left out) and its Jacobian w.r.t. D, linearised
    about a current D.

    Args:
        grid: the region's `RegionGrid`. maps: the photo's coarse `UVMaps` (with albedo).
        seen: (S, S) bool texels the photo shows. target: (S, S, 3) the photo at each texel.
        sh: (9, 3) camera-space SH light. rotation: (3, 3) the camera rotation. cfg: `DetailConfig`.
    """

    def __init__(self, grid: RegionGrid, maps: UVMaps, seen: np.ndarray, target: np.ndarray, sh: np.ndarray,
                 rotation: np.ndarray, cfg: DetailConfig) -> None:
        rows, cols = grid.rows, grid.cols
        p = maps.positions[0].double().numpy()[rows, cols]
        nrm = maps.normals[0].double().numpy()[rows, cols]
        self.alb = maps.albedo[0].double().numpy()[rows, cols]
        tu, tv = grid.du @ p, grid.dv @ p
        guu, guv, gvv = (tu * tu).sum(1), (tu * tv).sum(1), (tv * tv).sum(1)
        det = guu * gvv - guv * guv
        inv = np.where(det > 1e-12, 1.0 / np.where(det > 1e-12, det, 1.0), 0.0)
        # the surface gradient of D is eu dD/du + ev dD/dv, made tangent to the coarse normal
        eu = inv[:, None] * (gvv[:, None] * tu - guv[:, None] * tv)
        ev = inv[:, None] * (guu[:, None] * tv - guv[:, None] * tu)
        eu -= (eu * nrm).sum(1, keepdims=True) * nrm
        ev -= (ev * nrm).sum(1, keepdims=True) * nrm
        self.grid, self.cfg, self.sh, self.rotation = grid, cfg, sh, rotation
        self.vis = vis = np.flatnonzero(seen[rows, cols])
        self.nrm, self.eu, self.ev = nrm[vis], eu[vis], ev[vis]
        self.alb_vis = self.alb[vis]
        self.tgt = target[rows[vis], cols[vis]]
        self.box = max(3, int(round(cfg.highpass_mm / maps.texel_mm())) | 1) if cfg.highpass_mm > 0 else 0
        self.seen_grid = np.zeros(grid.region.shape, dtype=bool)
        self.seen_grid[rows[vis], cols[vis]] = True
        self.sel_u, self.sel_v = grid.du[vis], grid.dv[vis]
        self.keep = np.ones(len(vis), dtype=bool)
        self._outliers_set = False
        self.noise = cfg.noise  # re-estimated at the second linearisation (`DetailConfig.adaptive_noise`)
        self._calls = 0

    def linearise(self, d: np.ndarray):
        """(jac (3m, n) sparse, r (3m,)): the residual (prediction - photo) / noise of the m seen
        texels, channel-major, and its Jacobian at D = `d` (n,). The first call also sets the
        outlier texels (`keep`) from the residual at `d`; the second re-estimates `noise` from the
        kept residual (`DetailConfig.adaptive_noise`)."""
        from scipy import sparse
        from scipy.ndimage import binary_dilation

        grid, cfg, vis = self.grid, self.cfg, self.vis
        rows, cols = grid.rows, grid.cols
        gu, gv = grid.du @ d, grid.dv @ d
        u = self.nrm - gu[vis, None] * self.eu - gv[vis, None] * self.ev
        length = np.linalg.norm(u, axis=1)
        n1 = u / length[:, None]
        rotation = self.rotation
        shading, grad = sh_gradient(np.einsum('mj,ij->mi', n1, rotation), self.sh)
        resid = self.alb_vis * shading - self.tgt  # (m, 3) prediction - photo
        if self.box:
            g = np.zeros(grid.region.shape + (3,))
            g[rows[vis], cols[vis]] = resid
            resid = resid - _box_mean(g, self.seen_grid, self.box)[rows[vis], cols[vis]]
        if not self._outliers_set:
            # texels no smooth relief explains (specularities, hair, occlusion edges missed by the
            # feature mask) and a margin around them are left out
            e = np.linalg.norm(resid, axis=1)
            sigma = 1.4826 * np.median(e) + 1e-6
            bad = np.zeros(grid.region.shape, dtype=bool)
            bad[rows[vis[e > cfg.outlier * sigma]], cols[vis[e > cfg.outlier * sigma]]] = True
            if cfg.outlier_margin > 0:
                bad = binary_dilation(bad, iterations=cfg.outlier_margin)
            self.keep = ~bad[rows[vis], cols[vis]]
            self._outliers_set = True
        keep = self.keep
        q = np.einsum('mcj,jk->mck', grad, rotation)  # d shading / d model-space normal, (m, 3, 3)
        # d n1 / d u = (I - n1 n1^T) / |u|, d u / d(dD/du) = -eu
        pu = (self.eu - (self.eu * n1).sum(1, keepdims=True) * n1) / length[:, None]
        pv = (self.ev - (self.ev * n1).sum(1, keepdims=True) * n1) / length[:, None]
        if self._calls == 1 and cfg.adaptive_noise > 0 and keep.any():
            kept = resid[keep]
            self.noise = max(cfg.noise_floor, cfg.adaptive_noise * float(np.sqrt(np.mean(kept * kept))))
        self._calls += 1
        w = keep[:, None] * self.alb_vis / self.noise
        coef_u = -w * (q * pu[:, None]).sum(-1)
        coef_v = -w * (q * pv[:, None]).sum(-1)
        jac = sparse.vstack([sparse.diags(coef_u[:, k]) @ self.sel_u + sparse.diags(coef_v[:, k]) @ self.sel_v
                             for k in range(3)]).tocsr()
        r = (keep[:, None] * resid / self.noise).T.ravel()
        return jac, r


def highpass_map(out: np.ndarray, region: np.ndarray, box: int, max_mm: float) -> np.ndarray:
    """(S, S) `out` less its local mean over `box` texels of the region (when `box`), clipped to +-`max_mm`."""
    if box:
        out = np.where(region, out - _box_mean(out, region, box), 0.0)
    return np.clip(out, -max_mm, max_mm)


def map_losses(out: np.ndarray, grid: RegionGrid) -> dict:
    """The regularisers' values of a final (S, S) map."""
    t = torch.as_tensor(out[None])
    reg = torch.as_tensor(grid.region[None])
    dd = out[grid.rows, grid.cols]
    return {"symmetry": float(symmetry_loss(t, reg)), "smoothness": float(smoothness_penalty(t, reg)),
            "l1": float(np.abs(dd).mean()) if grid.n else 0.0}


L1_EPS = 0.02  # mm: the IRLS floor of |D| in the L1 terms' weights


def _solve_displacement(maps: UVMaps, seen: np.ndarray, target: np.ndarray, sh: np.ndarray, rotation: np.ndarray,
                        cfg: DetailConfig) -> tuple[np.ndarray, dict]:
    """Gauss-Newton on the shape-from-shading objective from D = 0, L1 terms by reweighting."""
    from scipy import sparse

    grid = region_grid(maps.region[0].numpy())
    term = ShadingTerm(grid, maps, seen, target, sh, rotation, cfg)
    sym = grid.symmetry
    smooth = cfg.smoothness * (grid.laplacian.T @ grid.laplacian)
    d = np.zeros(grid.n)
    history = []
    eps = L1_EPS
    for _ in range(max(1, cfg.iterations)):
        jac, r = term.linearise(d)
        # in units of the configured noise, whatever the step's own (comparable across steps)
        history.append(float((r * r).sum()) / max(len(r), 1) * (term.noise / cfg.noise) ** 2)
        w_sym = 1.0 / np.maximum(np.abs(sym @ d), eps)
        w_l1 = 1.0 / np.maximum(np.abs(d), eps)
        jtj = (jac.T @ jac).tocsr()
        a_mat = jtj + smooth + cfg.symmetry * (sym.T @ sparse.diags(w_sym) @ sym) + cfg.l1 * sparse.diags(w_l1)
        rhs = jtj @ d - jac.T @ r
        d = np.clip(_pcg(a_mat.tocsr(), rhs, d, cfg.cg_iterations), -cfg.max_mm, cfg.max_mm)
    out = highpass_map(grid.to_map(d), grid.region, term.box, cfg.max_mm)
    losses = {"initial": {"photometric": history[0]},
              "final": {"photometric": history[-1], "steps": history, **map_losses(out, grid),
                        "texels_fitted": int(term.keep.sum()), "texels_region": int(grid.n), "noise": term.noise}}
    return out, losses


def detailed_normals(model: MorphableModel, vertices: np.ndarray, detail: DetailMap) -> np.ndarray:
    """(V, 3) unit normals of the detailed surface at each vertex (the bump normals sampled at its UV)."""
    maps = uv_maps(model, vertices, detail.displacement.shape[0])
    d = torch.as_tensor(detail.displacement[None])
    n = bump_normals(maps.positions, maps.normals, d, maps.inside)
    uv = torch.as_tensor(vertex_uv(model)[None], dtype=torch.float32)
    return F.normalize(sample_texture(n, uv), dim=-1)[0].double().numpy()


def atlas_normal_map(model: MorphableModel, vertices: np.ndarray, detail: DetailMap, atlas_uv: np.ndarray,
                     size: int = 512, region: str = DetailConfig.region) -> np.ndarray:
    """(size, size, 3) tangent-space normal map of the detailed surface in another UV layout of the
    model's triangles, flat (0.5, 0.5, 1) where there is no detail.

    The bump normals are taken in the model's own layout, where D lives, sampled at each atlas
    texel's point of that layout, and encoded in the atlas texel's own tangent frame
    (`render.normal_map.tangent_space_encode`), so islands the atlas moves, scales or mirrors keep
    the right relief. Only the triangles of the detail `region` look the map up: other materials'
    own UV tiles overlap the face's in the model's layout.

    Args:
        model: the model `vertices` (V, 3) (mm) and `detail` belong to.
        atlas_uv: (T, 2) OBJ-convention UVs used with the model's uv_triangles (e.g.
            `Reconstruction.texture_uv()`, the layout the mesh files carry).
    """
    from ..geometry.mesh import vertex_normals

    atlas = np.asarray(atlas_uv, dtype=np.float64)
    if model.uv is None or atlas.shape != tuple(model.uv.shape):
        raise UsageError(f"atlas_uv must have the model's UV shape {None if model.uv is None else tuple(model.uv.shape)},"
                         f" got {atlas.shape}")
    maps = uv_maps(model, vertices, detail.displacement.shape[0])
    # float32 throughout: an 8-bit normal map needs no more
    bumped = bump_normals(maps.positions, maps.normals, torch.as_tensor(detail.displacement[None]), maps.inside)
    tex = torch.cat([bumped, torch.as_tensor(detail.mask[None, :, :, None]).float()], -1)
    v = np.asarray(vertices, dtype=np.float64)
    n = vertex_normals(v, model.triangles.cpu().numpy())
    flag = np.zeros((len(v), 1))
    flag[region_vertices(model, region)] = 1.0
    uv_t = torch.as_tensor(atlas, dtype=torch.float32)
    with torch.no_grad():
        surface, inside = render_to_uv(torch.as_tensor(np.concatenate([v, n, flag], 1)[None], dtype=torch.float32),
                                       uv_t, model.uv_triangles, size, triangles=model.triangles)
        own_uv, _ = render_to_uv(model.uv.float()[None], uv_t, model.uv_triangles, size)
        looked = sample_texture(tex, own_uv.reshape(1, -1, 2)).reshape(1, size, size, 4)
    normals = F.normalize(surface[..., 3:6], dim=-1, eps=1e-12)
    use = inside & (looked[..., 3] > 0.999) & (surface[..., 6] > 0.999)
    detailed = torch.where(use[..., None], F.normalize(looked[..., :3], dim=-1, eps=1e-12), normals)
    return tangent_space_encode(surface[..., :3], normals, detailed, inside)[0].numpy()
