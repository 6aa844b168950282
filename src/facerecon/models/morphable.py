"""The one morphable-model type: data plus the shape maths, whatever file it came from.

S = mean + identity_basis . alpha + expression_basis . psi   (then skinning, for articulated models)
A = albedo_mean + albedo_basis . beta                          (when the model has albedo)

Units are millimetres (see docs/conventions.md). Identity and albedo coefficients are in standard
deviations (prior N(0, 1)): the stored bases are offsets of one standard deviation. Expression
coefficients are blendshape weights in [0, 1] (`expression_kind == "blendshape"`, ICT-FaceKit) or PCA
coefficients in standard deviations (`"pca"`, FLAME and BFM 2017).
"""
from __future__ import annotations

import weakref

from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import ModelError, UsageError
from .blendshapes import add_linear, barycentric_points, blend_linear
from .lbs import Skeleton, skin


@dataclass(frozen=True, eq=False)
class LandmarkEmbedding:
    """Landmarks as barycentric points on the model's triangles.

    Attributes:
        triangle_ids: (L,) long, index into the model's `triangles`.
        barycentric: (L, 3) float, rows sum to 1.
        scheme: name of the landmark scheme (e.g. "ibug68", "mediapipe478").
    """

    triangle_ids: Tensor
    barycentric: Tensor
    scheme: str = "ibug68"

    def __len__(self) -> int:
        return int(self.triangle_ids.shape[0])

    @classmethod
    def from_vertices(cls, vertex_ids: Sequence[int] | np.ndarray, triangles: Tensor,
                      scheme: str = "ibug68") -> "LandmarkEmbedding":
        """Embed landmarks given as vertex indices: one triangle touching each vertex, one-hot weights."""
        tris = triangles.cpu().numpy()
        ids = np.asarray(vertex_ids, dtype=np.int64)
        tri_ids = np.zeros(len(ids), dtype=np.int64)
        bary = np.zeros((len(ids), 3), dtype=np.float32)
        for i, v in enumerate(ids):
            rows, cols = np.nonzero(tris == v)
            if len(rows) == 0:
                raise ModelError(f"landmark vertex {int(v)} belongs to no triangle")
            tri_ids[i] = rows[0]
            bary[i, cols[0]] = 1.0
        return cls(torch.from_numpy(tri_ids), torch.from_numpy(bary), scheme)

    def to(self, device=None, dtype=None) -> "LandmarkEmbedding":
        return LandmarkEmbedding(self.triangle_ids.to(device), self.barycentric.to(device=device, dtype=dtype),
                                 self.scheme)


@dataclass
class ShapeCoefficients:
    """A batch of model coefficients.

    Attributes:
        identity: (B, K_id) in standard deviations.
        expression: (B, K_exp) blendshape weights or PCA coefficients.
        pose: (B, J, 3) axis-angle per joint for articulated models, else None.
        albedo: (B, K_alb) in standard deviations, or None.
    """

    identity: Tensor
    expression: Tensor
    pose: Tensor | None = None
    albedo: Tensor | None = None


@dataclass(eq=False)
class MorphableModel:
    """A 3D morphable face model. Build one with a loader (`load_model`), not by hand.

    Attributes (V vertices, F triangles, T UV coordinates):
        name, version: what the model is, for provenance in outputs.
        mean: (V, 3) mean/neutral shape in mm.
        identity_basis: (K_id, V, 3) offsets of one standard deviation per identity mode.
        identity_std: (K_id,) the standard deviation each mode was scaled by (informational;
            1 for models whose coefficients are already N(0, 1)).
        expression_basis: (K_exp, V, 3) offsets per unit expression coefficient.
        expression_names: K_exp names (ARKit names for ICT; "exp000".. for PCA models).
        expression_kind: "blendshape" (weights in [0, 1]) or "pca" (N(0, 1) coefficients).
        triangles: (F, 3) long.
        uv: (T, 2) UV coordinates or None; uv_triangles: (F, 3) long or None.
        albedo_mean: (V, 3) linear RGB in [0, 1] or None; albedo_basis: (K_alb, V, 3) or None.
        regions: name -> (n,) long vertex indices.
        landmarks68: iBUG 68-point embedding or None.
        face_mask: (V,) float in [0, 1], the skin that a photometric loss should see.
        symmetry: (V,) long, the mirrored vertex of each vertex (itself on the midline).
        skeleton: `Skeleton` for articulated models (FLAME) or None.
        triangle_groups: name -> (m,) long triangle indices (materials), may be empty.
        parent_vertices: (V,) long indices into the full model when this is a view, else None.
        source: the file or folder it was loaded from.
    """

    name: str
    version: str
    mean: Tensor
    identity_basis: Tensor
    identity_std: Tensor
    expression_basis: Tensor
    expression_names: tuple[str, ...]
    expression_kind: str
    triangles: Tensor
    uv: Tensor | None = None
    uv_triangles: Tensor | None = None
    albedo_mean: Tensor | None = None
    albedo_basis: Tensor | None = None
    regions: dict[str, Tensor] = field(default_factory=dict)
    landmarks68: LandmarkEmbedding | None = None
    face_mask: Tensor | None = None
    symmetry: Tensor | None = None
    skeleton: Skeleton | None = None
    triangle_groups: dict[str, Tensor] = field(default_factory=dict)
    parent_vertices: Tensor | None = None
    source: str = ""

    def __post_init__(self) -> None:
        self._validate()
        if self.face_mask is None:
            self.face_mask = torch.ones(self.num_vertices, dtype=self.mean.dtype, device=self.mean.device)
        if self.symmetry is None:
            from .symmetry import symmetry_map

            self.symmetry = torch.from_numpy(symmetry_map(self.mean.detach().cpu().numpy())).to(self.mean.device)

    # ------------------------------------------------------------------ sizes
    @property
    def num_vertices(self) -> int:
        return int(self.mean.shape[0])

    @property
    def num_identity(self) -> int:
        return int(self.identity_basis.shape[0])

    @property
    def num_expression(self) -> int:
        return int(self.expression_basis.shape[0])

    @property
    def num_albedo(self) -> int:
        return 0 if self.albedo_basis is None else int(self.albedo_basis.shape[0])

    @property
    def expression_bounds(self) -> tuple[float, float] | None:
        """(0, 1) for blendshape models, None (unbounded) for PCA expressions."""
        return (0.0, 1.0) if self.expression_kind == "blendshape" else None

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def dtype(self) -> torch.dtype:
        return self.mean.dtype

    # ------------------------------------------------------------------ maths
    def vertices(self, identity: Tensor | None = None, expression: Tensor | None = None,
                 pose: Tensor | None = None, batch_size: int | None = None) -> Tensor:
        """Vertices for a batch of coefficients.

        Args:
            identity: (B, k) with k <= K_id (the first k modes) or None (mean identity).
            expression: (B, k) with k <= K_exp or None (neutral).
            pose: (B, J, 3) axis-angle per joint (articulated models only) or None (rest pose).
            batch_size: B when every argument is None (default 1).

        Returns:
            (B, V, 3) vertices in mm, on the model's device and dtype.
        """
        batch = _batch_size([identity, expression, pose], batch_size)
        flat = self.num_vertices * 3
        if identity is None or identity.shape[-1] == 0:
            if identity is not None:
                self._check_coeffs(identity, self.num_identity, batch, "identity")
            out = self.mean.expand(batch, -1, -1)
        else:
            k = self._check_coeffs(identity, self.num_identity, batch, "identity")
            out = blend_linear(self.mean, self.identity_basis[:k].reshape(k, flat), identity)
        if expression is not None and expression.shape[-1] > 0:
            k = self._check_coeffs(expression, self.num_expression, batch, "expression")
            out = add_linear(out, self.expression_basis[:k].reshape(k, flat), expression)
        elif expression is not None:
            self._check_coeffs(expression, self.num_expression, batch, "expression")
        if pose is not None:
            if self.skeleton is None:
                raise UsageError(f"model {self.name!r} has no skeleton; pass pose=None and pose the head rigidly")
            if pose.shape != (batch, self.skeleton.num_joints, 3):
                raise UsageError(f"pose must be (B, {self.skeleton.num_joints}, 3), got {tuple(pose.shape)}")
            out = skin(out, pose, self.skeleton)
        return out

    def albedo(self, coefficients: Tensor | None = None, batch_size: int | None = None) -> Tensor:
        """Per-vertex albedo (B, V, 3) from (B, k) coefficients; raises if the model has none."""
        if self.albedo_mean is None:
            raise UsageError(f"model {self.name!r} has no albedo model; estimate albedo from the image instead")
        batch = _batch_size([coefficients], batch_size)
        if coefficients is None or self.albedo_basis is None:
            return self.albedo_mean.expand(batch, -1, -1)
        k = self._check_coeffs(coefficients, self.num_albedo, batch, "albedo")
        if k == 0:
            return self.albedo_mean.expand(batch, -1, -1)
        return blend_linear(self.albedo_mean, self.albedo_basis[:k].reshape(k, self.num_vertices * 3), coefficients)

    def landmark_points(self, vertices: Tensor, embedding: LandmarkEmbedding | None = None) -> Tensor:
        """(B, L, 3) landmark positions on `vertices` (B, V, 3); iBUG-68 unless `embedding` is given."""
        emb = embedding if embedding is not None else self.landmarks68
        if emb is None:
            raise UsageError(f"model {self.name!r} has no 68-point landmark embedding")
        return barycentric_points(vertices, self.triangles, emb.triangle_ids.to(vertices.device),
                                  emb.barycentric.to(vertices.device))

    def sample(self, n: int, seed: int = 0, identity_scale: float = 1.0, expression_scale: float = 1.0,
               expression_sparsity: float = 0.15) -> ShapeCoefficients:
        """Random coefficients for synthetic data, reproducible from `seed`.

        Identity ~ N(0, identity_scale^2). Blendshape expressions are sparse: each is active with
        probability `expression_sparsity` with a weight ~ U(0, expression_scale) clipped to [0, 1];
        PCA expressions ~ N(0, (0.5 expression_scale)^2) on the first 10 modes.
        """
        gen = torch.Generator().manual_seed(int(seed))
        identity = torch.randn(n, self.num_identity, generator=gen) * identity_scale
        if self.expression_kind == "blendshape":
            active = torch.rand(n, self.num_expression, generator=gen) < expression_sparsity
            weight = torch.rand(n, self.num_expression, generator=gen) * expression_scale
            expression = (weight * active).clamp(0.0, 1.0)
        else:
            expression = torch.zeros(n, self.num_expression)
            k = min(10, self.num_expression)
            expression[:, :k] = torch.randn(n, k, generator=gen) * 0.5 * expression_scale
        albedo = torch.randn(n, self.num_albedo, generator=gen) if self.num_albedo else None
        pose = None
        if self.skeleton is not None:
            pose = torch.zeros(n, self.skeleton.num_joints, 3)
        to = dict(device=self.device, dtype=self.dtype)
        return ShapeCoefficients(identity.to(**to), expression.to(**to),
                                 None if pose is None else pose.to(**to),
                                 None if albedo is None else albedo.to(**to))

    # ------------------------------------------------------------------ views
    def region_vertices(self, names: str | Iterable[str]) -> Tensor:
        """Sorted unique vertex indices of one or several named regions."""
        names = [names] if isinstance(names, str) else list(names)
        missing = [n for n in names if n not in self.regions]
        if missing:
            raise UsageError(f"model {self.name!r} has no region {missing}; it has {sorted(self.regions)}")
        return torch.unique(torch.cat([self.regions[n] for n in names]))

    def view(self, selection: str | Sequence[str] | Tensor) -> "MorphableModel":
        """A model restricted to some vertices, so fitting does not pay for geometry it does not see.

        Args:
            selection: a view name from `VIEWS` ("head", "face", ...), region name(s), or a (n,)
                long tensor of vertex indices.

        Returns:
            A `MorphableModel` whose `parent_vertices` maps its vertices back into this model's full
            mesh (use `scatter_to_parent`). Triangles with a corner outside the selection are dropped;
            landmarks whose triangle is dropped make `landmarks68` None.
        """
        if isinstance(selection, Tensor):
            return _submodel(self, torch.unique(selection.to(torch.long).cpu()))
        key = selection if isinstance(selection, str) else tuple(selection)
        views = _VIEWS_OF.setdefault(self, {})  # named views are built once per model (read-only)
        if key not in views:
            names = VIEWS.get(selection, selection) if isinstance(selection, str) else selection
            views[key] = _submodel(self, self.region_vertices(names).cpu())
        return views[key]

    def scatter_to_parent(self, vertices: Tensor, parent: "MorphableModel", fill: Tensor | None = None) -> Tensor:
        """Place view vertices (B, n, 3) into a full-model array (B, V, 3), `fill` (B, V, 3) elsewhere
        (default: the parent's mean)."""
        if self.parent_vertices is None:
            raise UsageError("this model is not a view")
        base = parent.mean.expand(vertices.shape[0], -1, -1) if fill is None else fill
        out = base.clone()
        out[:, self.parent_vertices.to(vertices.device)] = vertices
        return out

    def to(self, device=None, dtype=None) -> "MorphableModel":
        """A copy on another device and/or floating dtype."""
        def conv(t):
            if t is None:
                return None
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return replace(
            self,
            mean=conv(self.mean), identity_basis=conv(self.identity_basis), identity_std=conv(self.identity_std),
            expression_basis=conv(self.expression_basis), triangles=conv(self.triangles), uv=conv(self.uv),
            uv_triangles=conv(self.uv_triangles), albedo_mean=conv(self.albedo_mean),
            albedo_basis=conv(self.albedo_basis), regions={k: conv(v) for k, v in self.regions.items()},
            landmarks68=None if self.landmarks68 is None else self.landmarks68.to(device, dtype),
            face_mask=conv(self.face_mask), symmetry=conv(self.symmetry),
            skeleton=None if self.skeleton is None else self.skeleton.to(device, dtype),
            triangle_groups={k: conv(v) for k, v in self.triangle_groups.items()},
            parent_vertices=conv(self.parent_vertices),
        )

    def __repr__(self) -> str:
        return (f"MorphableModel({self.name!r} {self.version}, {self.num_vertices} vertices, "
                f"{int(self.triangles.shape[0])} triangles, {self.num_identity} identity, "
                f"{self.num_expression} {self.expression_kind} expression, {self.num_albedo} albedo modes"
                f"{', skeleton' if self.skeleton is not None else ''})")

    # ------------------------------------------------------------------ checks
    def _check_coeffs(self, coeffs: Tensor, available: int, batch: int, what: str) -> int:
        if coeffs.ndim != 2 or coeffs.shape[0] != batch:
            raise UsageError(f"{what} coefficients must be (B, k) with B = {batch}, got {tuple(coeffs.shape)}")
        k = int(coeffs.shape[1])
        if k > available:
            raise UsageError(f"{what}: {k} coefficients given, model {self.name!r} has {available} modes")
        return k

    def _validate(self) -> None:
        where = f"model {self.name!r} ({self.source or 'in memory'})"

        def fail(msg: str) -> None:
            raise ModelError(f"{where}: {msg}")

        if self.mean.ndim != 2 or self.mean.shape[1] != 3 or self.mean.shape[0] == 0:
            fail(f"mean shape must be (V, 3), got {tuple(self.mean.shape)}")
        v = self.num_vertices
        for label, basis in (("identity", self.identity_basis), ("expression", self.expression_basis),
                             ("albedo", self.albedo_basis)):
            if basis is None:
                continue
            if basis.ndim != 3 or tuple(basis.shape[1:]) != (v, 3):
                fail(f"{label} basis must be (K, {v}, 3), got {tuple(basis.shape)}")
            if not _all_finite(basis):
                fail(f"{label} basis has NaN or inf values")
        if not _all_finite(self.mean):
            fail("mean shape has NaN or inf values")
        if self.identity_std.shape != (self.num_identity,):
            fail(f"identity_std must be ({self.num_identity},), got {tuple(self.identity_std.shape)}")
        if len(self.expression_names) != self.num_expression:
            fail(f"{len(self.expression_names)} expression names for {self.num_expression} expression modes")
        if self.expression_kind not in ("blendshape", "pca"):
            fail(f"expression_kind must be 'blendshape' or 'pca', got {self.expression_kind!r}")
        tri = self.triangles
        if tri.ndim != 2 or tri.shape[1] != 3 or tri.shape[0] == 0:
            fail(f"triangles must be (F, 3), got {tuple(tri.shape)}")
        if int(tri.min()) < 0 or int(tri.max()) >= v:
            fail(f"triangle indices out of range [0, {v})")
        if (self.uv is None) != (self.uv_triangles is None):
            fail("uv and uv_triangles must be given together")
        if self.uv is not None:
            if self.uv_triangles.shape != tri.shape:
                fail(f"uv_triangles {tuple(self.uv_triangles.shape)} do not match triangles {tuple(tri.shape)}")
            if int(self.uv_triangles.min()) < 0 or int(self.uv_triangles.max()) >= self.uv.shape[0]:
                fail("uv triangle indices out of range")
        if self.albedo_basis is not None and self.albedo_mean is None:
            fail("albedo basis without albedo mean")
        if self.albedo_mean is not None and tuple(self.albedo_mean.shape) != (v, 3):
            fail(f"albedo mean must be ({v}, 3), got {tuple(self.albedo_mean.shape)}")
        for name, idx in self.regions.items():
            if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= v):
                fail(f"region {name!r} has vertex indices out of range")
        if self.landmarks68 is not None:
            lm = self.landmarks68
            if int(lm.triangle_ids.max()) >= tri.shape[0] or int(lm.triangle_ids.min()) < 0:
                fail("landmark triangle indices out of range")
        if self.symmetry is not None and (self.symmetry.shape != (v,) or int(self.symmetry.max()) >= v):
            fail("symmetry map must be (V,) with indices < V")
        if self.face_mask is not None and self.face_mask.shape != (v,):
            fail(f"face_mask must be ({v},)")
        if self.skeleton is not None:
            sk = self.skeleton
            if tuple(sk.joint_regressor.shape) != (sk.num_joints, v) or tuple(sk.weights.shape) != (v, sk.num_joints):
                fail("skeleton joint regressor / weights do not match the vertex count")


# Named views: which regions each keeps. Models without these regions simply lack the view.
VIEWS: dict[str, tuple[str, ...]] = {
    "head": ("face", "head_and_neck"),
    "face": ("face",),
    "narrow_face": ("narrow_face",),
}


def _all_finite(x: Tensor) -> bool:
    """True when every value of `x` is finite. A finite sum implies it (a NaN or inf in any term makes
    the sum non-finite) and costs one pass without a mask; only a non-finite sum (a bad value, or
    finite values whose sum overflows) is checked value by value."""
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())


def _batch_size(tensors: list[Tensor | None], batch_size: int | None) -> int:
    sizes = {int(t.shape[0]) for t in tensors if t is not None}
    if len(sizes) > 1:
        raise UsageError(f"coefficient batches disagree: {sorted(sizes)}")
    if sizes:
        b = sizes.pop()
        if batch_size is not None and batch_size != b:
            raise UsageError(f"batch_size={batch_size} but coefficients have batch {b}")
        return b
    return 1 if batch_size is None else int(batch_size)


_VIEWS_OF: "weakref.WeakKeyDictionary[MorphableModel, dict]" = weakref.WeakKeyDictionary()


def _submodel(model: MorphableModel, keep: Tensor) -> MorphableModel:
    v = model.num_vertices
    if keep.numel() == 0 or int(keep.min()) < 0 or int(keep.max()) >= v:
        raise UsageError(f"view vertex indices must be in [0, {v})")
    dev = model.device
    old_to_new = torch.full((v,), -1, dtype=torch.long)
    old_to_new[keep] = torch.arange(keep.numel())
    tri = model.triangles.cpu()
    tri_keep = (old_to_new[tri] >= 0).all(dim=1)
    tri_index = torch.nonzero(tri_keep).squeeze(1)
    if tri_index.numel() == 0:
        raise UsageError("the view keeps no complete triangle")
    tri_old_to_new = torch.full((tri.shape[0],), -1, dtype=torch.long)
    tri_old_to_new[tri_index] = torch.arange(tri_index.numel())

    landmarks = None
    if model.landmarks68 is not None:
        new_ids = tri_old_to_new[model.landmarks68.triangle_ids.cpu()]
        if (new_ids >= 0).all():
            landmarks = LandmarkEmbedding(new_ids.to(dev), model.landmarks68.barycentric, model.landmarks68.scheme)
    keep_d = keep.to(dev)
    regions = {}
    for name, idx in model.regions.items():
        mapped = old_to_new[idx.cpu()]
        mapped = mapped[mapped >= 0]
        if mapped.numel():
            regions[name] = mapped.to(dev)
    groups = {}
    for name, idx in model.triangle_groups.items():
        mapped = tri_old_to_new[idx.cpu()]
        mapped = mapped[mapped >= 0]
        if mapped.numel():
            groups[name] = mapped.to(dev)
    sym = old_to_new[model.symmetry.cpu()[keep]]
    sym = torch.where(sym >= 0, sym, torch.arange(keep.numel()))
    parent = keep if model.parent_vertices is None else model.parent_vertices.cpu()[keep]
    return MorphableModel(
        name=model.name, version=model.version, mean=model.mean[keep_d],
        identity_basis=model.identity_basis[:, keep_d], identity_std=model.identity_std,
        expression_basis=model.expression_basis[:, keep_d], expression_names=model.expression_names,
        expression_kind=model.expression_kind, triangles=old_to_new[tri[tri_index]].to(dev),
        uv=model.uv, uv_triangles=None if model.uv_triangles is None else model.uv_triangles[tri_index.to(dev)],
        albedo_mean=None if model.albedo_mean is None else model.albedo_mean[keep_d],
        albedo_basis=None if model.albedo_basis is None else model.albedo_basis[:, keep_d],
        regions=regions, landmarks68=landmarks, face_mask=model.face_mask[keep_d], symmetry=sym.to(dev),
        skeleton=None if model.skeleton is None else _sub_skeleton(model.skeleton, keep_d),
        triangle_groups=groups, parent_vertices=parent.to(dev), source=model.source,
    )


def _sub_skeleton(sk: Skeleton, keep: Tensor) -> Skeleton:
    # Joints stay regressed from the kept vertices only: renormalise so rest joints barely move.
    reg = sk.joint_regressor[:, keep]
    total = reg.sum(dim=1, keepdim=True)
    reg = torch.where(total.abs() > 1e-8, reg / total.clamp_min(1e-8), reg)
    pose_basis = sk.pose_basis.reshape(sk.pose_basis.shape[0], -1, 3)[:, keep].reshape(sk.pose_basis.shape[0], -1)
    return Skeleton(reg, sk.parents, sk.weights[keep], pose_basis, sk.joint_names)
