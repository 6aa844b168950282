"""Fine detail beyond the linear model: a UV displacement map fitted by shape from shading (after DECA).

The detailed surface is M' = M + D N: a displacement map D (S x S texels of the model's UV layout,
mm along the coarse normals, clipped to `DetailConfig.max_mm`) over one face region.
D is fitted to the photo under the fitted SH light and albedo, in UV space, by one Gauss-Newton
step from D = 0 (the shading is linearised in D; a sparse conjugate-gradient solve): the photo is sampled at
each texel's projection (a mask keeps the texels the photo shows: inside the image, in front in the
z-buffer, facing the camera), and the texel's colour albedo x SH(n'(D)) is compared with it, where
n'(D) are the bump-mapped normals (`render.normal_map`). Regularisers (`detail_losses`): DECA's soft
symmetry ||V_uv (D - flip(D))||_1 (the ICT UV layout mirrors the face about u = 0.5), smoothness,
L1, and a low-pass penalty that keeps D from soaking up the coarse fit's low-frequency errors.

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
from ..render.normal_map import bump_normals
from ..render.texture import sample_texture
from .detail_losses import smoothness_penalty, symmetry_loss
from .state import FaceState


@dataclass
class DetailConfig:
    """Size, bound and weights of the detail fit.

    Attributes:
        size: texels per side of the displacement map (the [0, 1] UV tile).
        max_mm: bound of |D|; DECA's detail is about this size.
        region: model region whose skin carries detail (a vertex region name).
        noise: colour noise the data term is divided by (image in [0, 1]).
        symmetry, smoothness, l1: regulariser weights per texel (L1 terms by reweighting).
        highpass_mm: width of the box whose local mean is removed from D at the end, so D carries
            fine detail only, not the coarse fit's low-frequency errors (0: keep it).
        outlier: seen texels whose coarse colour error exceeds this many `noise` are left out.
        outlier_margin: texels within this many of an outlier are left out too.
        reweightings: iteratively reweighted least-squares rounds for the L1 terms.
        cg_iterations: conjugate-gradient iterations per round.
        min_facing: a texel is seen when its normal's cosine with the view ray exceeds this.
        depth_tolerance_mm: a texel is seen when within this depth of the z-buffer.
    """

    size: int = 256
    max_mm: float = 1.0
    region: str = "narrow_face"
    noise: float = 0.02
    symmetry: float = 0.5
    smoothness: float = 100.0
    l1: float = 0.1
    highpass_mm: float = 12.0
    outlier: float = 3.0
    outlier_margin: int = 4
    reweightings: int = 3
    cg_iterations: int = 150
    min_facing: float = 0.3
    depth_tolerance_mm: float = 1.5


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


def fit_detail(model: MorphableModel, vertices: np.ndarray, state: FaceState, photo: np.ndarray,
               albedo: np.ndarray, sh: np.ndarray | None = None, config: DetailConfig | None = None,
               triangles: np.ndarray | None = None) -> DetailMap:
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

    Raises:
        UsageError: no light, bad shapes, or no UV layout. FitError: the photo shows no texel of the region.
    """
    cfg = config or DetailConfig()
    t0 = time.perf_counter()
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
    if not bool(seen.any()):
        raise FitError("the photo shows none of the face region: no detail to fit")
    step = (pixels[:, :, 1:] - pixels[:, :, :-1]).norm(dim=-1)
    px_per_texel = float(step[maps.region[:, :, 1:] & maps.region[:, :, :-1]].median())
    # texels wider than a pixel see the photo low-passed to their own size
    target = _sample_photo(photo, pixels, 0.5 / px_per_texel if px_per_texel < 1 else 0.0)
    d, losses = _solve_displacement(maps, seen[0].numpy(), target[0].double().numpy(), sh,
                                    state.params.rotation_matrix(0), cfg)
    if not np.isfinite(d).all():
        raise FitError("the detail fit diverged (non-finite displacement)")
    return DetailMap(d.astype(np.float32), maps.region[0].numpy(), seen[0].numpy(), cfg.max_mm, maps.texel_mm(),
                     losses, time.perf_counter() - t0)


def _difference_operators(region: np.ndarray):
    """Sparse (n, n) d/du and d/dv (+v up) over the n region texels: central, one-sided at the edges."""
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


def _sh_gradient(n: np.ndarray, sh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shading (m, 3) and its gradient w.r.t. the normal (m, 3 channels, 3) for camera-space normals (m, 3)."""
    from ..render.shading import SH_CONSTANTS as c

    x, y, z = n[:, 0], n[:, 1], n[:, 2]
    zero, one = np.zeros_like(x), np.ones_like(x)
    basis = np.stack([c[0] * one, c[1] * x, c[2] * y, c[3] * z, c[4] * x * y, c[5] * x * z, c[6] * y * z,
                      c[7] * (x * x - y * y), c[8] * (3 * z * z - 1)], 1)
    dx = np.stack([zero, c[1] * one, zero, zero, c[4] * y, c[5] * z, zero, 2 * c[7] * x, zero], 1)
    dy = np.stack([zero, zero, c[2] * one, zero, c[4] * x, zero, c[6] * z, -2 * c[7] * y, zero], 1)
    dz = np.stack([zero, zero, zero, c[3] * one, zero, c[5] * x, c[6] * y, zero, 6 * c[8] * z], 1)
    grad = np.stack([dx @ sh, dy @ sh, dz @ sh], 2)  # (m, channel, xyz)
    return basis @ sh, grad


def _solve_displacement(maps: UVMaps, seen: np.ndarray, target: np.ndarray, sh: np.ndarray, rotation: np.ndarray,
                        cfg: DetailConfig) -> tuple[np.ndarray, dict]:
    """One Gauss-Newton step of the shape-from-shading objective from D = 0, L1 terms by reweighting."""
    from scipy import sparse
    from scipy.sparse.linalg import cg

    region = maps.region[0].numpy()
    du_op, dv_op, index, rows, cols = _difference_operators(region)
    n_tex = len(rows)
    p = maps.positions[0].double().numpy()[rows, cols]
    nrm = maps.normals[0].double().numpy()[rows, cols]
    alb = maps.albedo[0].double().numpy()[rows, cols]
    tu, tv = du_op @ p, dv_op @ p
    guu, guv, gvv = (tu * tu).sum(1), (tu * tv).sum(1), (tv * tv).sum(1)
    det = guu * gvv - guv * guv
    inv = np.where(det > 1e-12, 1.0 / np.where(det > 1e-12, det, 1.0), 0.0)
    vis = np.flatnonzero(seen[rows, cols])
    shading, grad = _sh_gradient(nrm[vis] @ rotation.T, sh)
    # texels the coarse model explains far worse than any detail could (occlusion edges: lashes,
    # lips, nostrils; specularities), and a margin around them, are left out
    bad = np.zeros(region.shape, dtype=bool)
    far = np.linalg.norm(alb[vis] * shading - target[rows[vis], cols[vis]], axis=1) >= cfg.outlier * cfg.noise
    bad[rows[vis[far]], cols[vis[far]]] = True
    if cfg.outlier_margin > 0:
        from scipy.ndimage import binary_dilation

        bad = binary_dilation(bad, iterations=cfg.outlier_margin)
    inlier = ~bad[rows[vis], cols[vis]]
    vis, shading, grad = vis[inlier], shading[inlier], grad[inlier]
    q = grad @ rotation  # d shading / d model-space normal, (m, 3, 3)
    qu, qv = (q * tu[vis, None]).sum(-1), (q * tv[vis, None]).sum(-1)  # (m, 3)
    scale = -alb[vis] / cfg.noise
    coef_u = scale * inv[vis, None] * (qu * gvv[vis, None] - qv * guv[vis, None])
    coef_v = scale * inv[vis, None] * (qv * guu[vis, None] - qu * guv[vis, None])
    r0 = ((alb[vis] * shading - target[rows[vis], cols[vis]]) / cfg.noise).ravel()
    sel_u, sel_v = du_op[vis], dv_op[vis]
    jac = sparse.vstack([sparse.diags(coef_u[:, k]) @ sel_u + sparse.diags(coef_v[:, k]) @ sel_v for k in range(3)])
    r0 = np.concatenate([r0.reshape(-1, 3)[:, k] for k in range(3)])
    # smoothness: the 4-neighbour Laplacian; symmetry: each texel against its mirror about u = 0.5
    lap = (du_op @ du_op + dv_op @ dv_op).tocsr()
    mirror = index[rows, region.shape[1] - 1 - cols]
    has = np.flatnonzero(mirror >= 0)
    sym = sparse.csr_matrix((np.r_[np.ones(len(has)), -np.ones(len(has))], (np.r_[has, has], np.r_[has, mirror[has]])),
                            shape=(n_tex, n_tex))
    jtj = (jac.T @ jac).tocsr()
    rhs = -(jac.T @ r0)
    base = jtj + cfg.smoothness * (lap.T @ lap)
    d = np.zeros(n_tex)
    eps = 0.02
    for _ in range(max(1, cfg.reweightings)):
        w_sym = 1.0 / np.maximum(np.abs(sym @ d), eps)
        w_l1 = 1.0 / np.maximum(np.abs(d), eps)
        a_mat = base + cfg.symmetry * (sym.T @ sparse.diags(w_sym) @ sym) + cfg.l1 * sparse.diags(w_l1)
        precond = sparse.diags(1.0 / np.maximum(a_mat.diagonal(), 1e-9))
        d, _ = cg(a_mat, rhs, x0=d, M=precond, maxiter=cfg.cg_iterations)
    out = np.zeros(region.shape)
    out[rows, cols] = np.clip(d, -cfg.max_mm, cfg.max_mm)
    if cfg.highpass_mm > 0:
        out = _remove_local_mean(out, region, max(3, int(round(cfg.highpass_mm / maps.texel_mm())) | 1))
    dd = out[rows, cols]
    r1 = r0 + jac @ dd
    t = torch.as_tensor(out[None])
    reg = torch.as_tensor(region[None])
    losses = {"initial": {"photometric": float(r0 @ r0) / max(len(r0), 1)},
              "final": {"photometric": float(r1 @ r1) / max(len(r1), 1),
                        "symmetry": float(symmetry_loss(t, reg)), "smoothness": float(smoothness_penalty(t, reg)),
                        "l1": float(np.abs(dd).mean()) if n_tex else 0.0}}
    return out, losses


def _remove_local_mean(d: np.ndarray, mask: np.ndarray, box: int) -> np.ndarray:
    """D minus its mean over `box` x `box` texels of the mask (0 off the mask)."""
    from scipy.ndimage import uniform_filter

    m = mask.astype(np.float64)
    local = uniform_filter(d * m, box, mode="constant") / np.maximum(uniform_filter(m, box, mode="constant"), 1e-6)
    return np.where(mask, d - local, 0.0)


def detailed_normals(model: MorphableModel, vertices: np.ndarray, detail: DetailMap) -> np.ndarray:
    """(V, 3) unit normals of the detailed surface at each vertex (the bump normals sampled at its UV)."""
    maps = uv_maps(model, vertices, detail.displacement.shape[0])
    d = torch.as_tensor(detail.displacement[None])
    n = bump_normals(maps.positions, maps.normals, d, maps.inside)
    uv = torch.as_tensor(vertex_uv(model)[None], dtype=torch.float32)
    return F.normalize(sample_texture(n, uv), dim=-1)[0].double().numpy()
