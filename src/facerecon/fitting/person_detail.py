"""Fine detail from several photos of one person: a shared static displacement map and a per-photo
expression-dependent one (DECA's detail consistency idea, L_dc, as one objective across the photos).

Photo k (its own coarse shape, pose, light and albedo) is explained by D_static + D_k, both (S, S)
maps in the model's UV layout (mm along the coarse normals, as `fitting.detail`). The objective:

    sum_k  E_shading,k(D_static + D_k)                    each photo's data term (`detail.ShadingTerm`)
         + smoothness * ||L (D_static + D_k)||^2           per photo, as the one-photo fit
         + symmetry * ||D_static - mirror(D_static)||_1 + l1 * ||D_static||_1   (as the one-photo fit)
         + dynamic_l1 * ||D_k||_1 over the texels photo k shows

D_k's L1 is the stronger (`PersonDetailConfig.dynamic_l1` > `DetailConfig.l1`), so at a texel the
static map takes the weighted median of what the photos showing it say (each photo with weight
dynamic_l1, zero with weight l1): what most photos agree on goes to D_static, a bump one photo of
three shows stays in that photo's D_k. D_k lives only on the texels its photo shows (0 elsewhere),
so a photo says nothing about the texels it does not see. D_static has no smoothness term of its
own: it follows the photos' (smoothed) maps, and is 0 (or its mirror image, by the symmetry term)
where no photo shows the face.

Texels seen by one photo alone: there the split is not identifiable; D_static takes that photo's
relief as a one-photo fit would (the median of one value), never more: `PersonDetail.views` counts
the photos behind each texel, so a caller can tell one photo's evidence from several.

Solved jointly: Gauss-Newton (the shading relinearised `DetailConfig.iterations` times), the L1
terms by reweighting (`PersonDetailConfig.reweights` times per linearisation), each a single sparse
conjugate-gradient solve over all maps at once. The unknowns of that solve are D_static and
C_k = D_static + D_k (an invertible change of variables, so the same objective): each C_k is pinned
by its photo's data as in a one-photo fit, and the weakly determined split sits in the diagonal L1
ties between C_k and D_static, which keeps the system well conditioned for a Jacobi preconditioner.
The final maps are high-passed as in the one-photo fit.

Photos that show none of the region are skipped (`PersonDetail.skipped` says why); when none shows
any, `FitError`.

Units: mm, model space (docs/conventions.md).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import FitError, UsageError
from ..models import MorphableModel
from .detail import (L1_EPS, DetailConfig, DetailMap, ShadingTerm, _pcg, highpass_map, map_losses, photo_texels,
                     region_grid)
from .state import FaceState


@dataclass
class PersonDetailConfig:
    """Weights of the several-photo detail fit (module docstring).

    Attributes:
        detail: the one-photo fit's `DetailConfig` (size, bound, weights, masks, iterations).
        dynamic_l1: L1 weight of each per-photo map D_k per texel (stronger than `detail.l1`).
        reweights: L1 reweightings per Gauss-Newton linearisation.
        cg_iterations: conjugate-gradient iterations per solve (the joint system is K + 1 maps).
    """

    detail: DetailConfig = field(default_factory=DetailConfig)
    dynamic_l1: float = 1.0
    reweights: int = 3
    cg_iterations: int = 150


@dataclass
class DetailPhoto:
    """One photo's coarse fit, as `fitting.detail.fit_detail` takes it.

    Attributes:
        vertices: (V, 3) the coarse shape of this photo (shared identity, its own expression), mm.
        state: the photo's one-image `FaceState` (camera in the original photo's pixels).
        photo: (h, w, 3) float RGB in [0, 1] (or a uniformly resized copy).
        albedo: (V, 3) linear RGB per vertex. sh: (9, 3) camera-space SH light (default: the state's).
        feature_points: (478, 3) MediaPipe's points on `vertices` (feature edges left out), or None.
    """

    vertices: np.ndarray
    state: FaceState
    photo: np.ndarray
    albedo: np.ndarray
    sh: np.ndarray | None = None
    feature_points: np.ndarray | None = None


@dataclass
class PersonDetail:
    """Static and per-photo displacement maps of one person.

    Attributes:
        static: the shared map D_static (`DetailMap`; its `seen` is the texels some photo shows).
        dynamic: one (S, S) float32 D_k per photo given (mm, 0 off the texels photo k shows), None
            for a skipped photo.
        seen: one (S, S) bool per photo given (the texels it shows), None for a skipped photo.
        views: (S, S) int, how many photos show each texel.
        skipped: index of a photo given -> why it was left out.
        losses: {"initial": {...}, "final": {...}}: the photometric term per photo and the regularisers.
        seconds: wall time.
    """

    static: DetailMap
    dynamic: list[np.ndarray | None]
    seen: list[np.ndarray | None]
    views: np.ndarray
    skipped: dict[int, str] = field(default_factory=dict)
    losses: dict = field(default_factory=dict)
    seconds: float = 0.0

    def combined(self, k: int) -> DetailMap:
        """Photo k's full map D_static + D_k (what explains that photo), as a `DetailMap`."""
        if self.dynamic[k] is None:
            raise UsageError(f"photo {k} was skipped ({self.skipped.get(k, '')}): it has no detail map")
        s = self.static
        d = np.clip(s.displacement + self.dynamic[k], -s.max_mm, s.max_mm).astype(np.float32)
        return DetailMap(d, s.mask, self.seen[k], s.max_mm, s.texel_mm)

    def dynamic_rms_mm(self, k: int) -> float:
        """RMS of D_k over the texels photo k shows, mm (0 for a skipped photo)."""
        if self.dynamic[k] is None or not self.seen[k].any():
            return 0.0
        d = self.dynamic[k][self.seen[k]]
        return float(np.sqrt(np.mean(d * d)))


def fit_person_detail(model: MorphableModel, photos: Sequence[DetailPhoto], config: PersonDetailConfig | None = None,
                      triangles: np.ndarray | None = None) -> PersonDetail:
    """Fit a shared static displacement map and one dynamic map per photo (module docstring).

    Args:
        model: the model all photos' `vertices` have (the full ICT head).
        photos: the photos' coarse fits (`DetailPhoto`), in any order: the maps do not depend on it.
        config: `PersonDetailConfig`.
        triangles: (F, 3) the triangles that occlude (default all).

    Raises:
        UsageError: no photos, or a photo's inputs are malformed (as `fit_detail`).
        FitError: no photo shows any of the face region, or the fit diverged.
    """
    from scipy import sparse

    pcfg = config or PersonDetailConfig()
    cfg = pcfg.detail
    t0 = time.perf_counter()
    photos = list(photos)
    if not photos:
        raise UsageError("the several-photo detail fit needs at least one photo")
    texels, skipped = {}, {}
    for k, p in enumerate(photos):
        try:
            texels[k] = photo_texels(model, p.vertices, p.state, p.photo, p.albedo, p.sh, cfg, triangles,
                                     p.feature_points)
        except FitError as err:
            skipped[k] = str(err)
    if not texels:
        raise FitError(f"none of the {len(photos)} photos shows the face region: no detail to fit")
    used = sorted(texels)
    region = texels[used[0]].maps.region[0].numpy()
    grid = region_grid(region)
    terms = [ShadingTerm(grid, texels[k].maps, texels[k].seen, texels[k].target, texels[k].sh, texels[k].rotation,
                         cfg) for k in used]
    n, b = grid.n, len(used)
    seen = [texels[k].seen[grid.rows, grid.cols] for k in used]  # (n,) bool per photo
    smooth = cfg.smoothness * (grid.laplacian.T @ grid.laplacian)
    sym = grid.symmetry
    ridge = sparse.identity(n) * 1e-9
    x = np.zeros((b + 1) * n)  # [D_static, C_1 .. C_b]
    history: list[list[float]] = []
    for _ in range(max(1, cfg.iterations)):
        lin = [term.linearise(x[(i + 1) * n:(i + 2) * n]) for i, term in enumerate(terms)]
        # in units of the configured noise, as `detail._solve_displacement` records them
        history.append([float((r * r).sum()) / max(len(r), 1) * (t.noise / cfg.noise) ** 2
                        for (_, r), t in zip(lin, terms)])
        jtj = [(jac.T @ jac).tocsr() for jac, _ in lin]
        rhs_data = [jtj[i] @ x[(i + 1) * n:(i + 2) * n] - lin[i][0].T @ lin[i][1] for i in range(b)]
        for _ in range(max(1, pcfg.reweights)):
            d_s = x[:n]
            ties = [pcfg.dynamic_l1 * seen[i] / np.maximum(np.abs(x[(i + 1) * n:(i + 2) * n] - d_s), L1_EPS)
                    for i in range(b)]
            w_sym = 1.0 / np.maximum(np.abs(sym @ d_s), L1_EPS)
            w_l1 = 1.0 / np.maximum(np.abs(d_s), L1_EPS)
            a_s = (cfg.symmetry * (sym.T @ sparse.diags(w_sym) @ sym) + cfg.l1 * sparse.diags(w_l1)
                   + sparse.diags(np.sum(ties, 0)) + ridge)
            blocks = [[None] * (b + 1) for _ in range(b + 1)]
            blocks[0][0] = a_s
            for i in range(b):
                blocks[0][i + 1] = blocks[i + 1][0] = sparse.diags(-ties[i])
                blocks[i + 1][i + 1] = jtj[i] + smooth + sparse.diags(ties[i]) + ridge
            a_mat = sparse.bmat(blocks, format="csr")
            rhs = np.concatenate([np.zeros(n)] + rhs_data)
            x = np.clip(_pcg(a_mat, rhs, x, pcfg.cg_iterations), -cfg.max_mm, cfg.max_mm)
    if not np.isfinite(x).all():
        raise FitError("the several-photo detail fit diverged (non-finite displacement)")
    # one odd high-pass box for the static and every combined map (so no static low frequency
    # leaks into a dynamic part), from the photos' median texel size
    texel_mm = float(np.median([texels[k].maps.texel_mm() for k in used]))
    box = max(3, int(round(cfg.highpass_mm / texel_mm)) | 1) if cfg.highpass_mm > 0 else 0
    static_raw = grid.to_map(x[:n])
    static = highpass_map(static_raw, region, box, cfg.max_mm)
    dynamic: list[np.ndarray | None] = [None] * len(photos)
    seen_maps: list[np.ndarray | None] = [None] * len(photos)
    views = np.zeros(region.shape, dtype=int)
    final: dict = {"photometric": {}, "dynamic_rms_mm": {}, "noise": {}}
    for i, k in enumerate(used):
        s_k = texels[k].seen
        # off the texels photo k shows its combined map has no data: the static map stands there,
        # so the local means near the occlusion edge see no extrapolated values
        c_k = highpass_map(np.where(s_k, grid.to_map(x[(i + 1) * n:(i + 2) * n]), static_raw), region, box,
                           cfg.max_mm)
        dynamic[k] = np.where(s_k, np.clip(c_k - static, -cfg.max_mm, cfg.max_mm), 0.0).astype(np.float32)
        seen_maps[k] = s_k
        views += s_k
    out = PersonDetail(DetailMap(static.astype(np.float32), region, views > 0, cfg.max_mm, texel_mm),
                       dynamic, seen_maps, views, skipped)
    for i, k in enumerate(used):
        final["photometric"][k] = history[-1][i]
        final["noise"][k] = terms[i].noise
        final["dynamic_rms_mm"][k] = out.dynamic_rms_mm(k)
    final.update(map_losses(static, grid))
    final.update({"steps": history, "texels_fitted": {k: int(terms[i].keep.sum()) for i, k in enumerate(used)},
                  "texels_region": int(n), "texels_seen_once": int((views == 1).sum()),
                  "texels_seen_twice_or_more": int((views >= 2).sum())})
    out.losses = {"initial": {"photometric": {k: history[0][i] for i, k in enumerate(used)}}, "final": final}
    out.static.losses = out.losses
    out.seconds = out.static.seconds = time.perf_counter() - t0
    return out
