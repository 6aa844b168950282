"""Basel Face Model loaders: BFM 2009 (`01_MorphableModel.mat`) and BFM 2017/2019 (`.h5`).

The University of Basel distributes the models after registration, under a non-commercial
licence: BFM 2009 at https://faces.dmi.unibas.ch/bfm/ (formerly gravis.dmi.unibas.ch), BFM 2017
at https://faces.dmi.unibas.ch/bfm/bfm2017.html and BFM 2019 at .../bfm/bfm2019.html.

BFM 2009, `PublicMM1/01_MorphableModel.mat` (MATLAB v5; a v7.3/HDF5 re-save is read too):
    shapeMU (3V, 1)   mean shape, interleaved x0 y0 z0 x1 ..., in **micrometres** (V = 53490):
                      Deep3DFaceRecon divides by 1e5 "to decimetre", eos's notes give BFM values of
                      ~50000 where its mm model has ~50. We divide by 1000.
    shapePC (3V, 199) principal components with unit-norm, orthogonal columns (eos checked this).
    shapeEV (199, 1)  **standard deviations** of the components, not variances: the BFM Matlab code
                      and Deep3DFaceRecon build shapePC * EV; eos squares them into eigenvalues.
    texMU, texPC, texEV  the same for per-vertex RGB colour, in 0..255 (we divide by 255).
    tl (F, 3)         triangles, 1-based, wound clockwise seen from the front (eos swaps two corners
                      to get OpenGL's counter-clockwise order).
    No expression model; the segment masks and landmark files are separate downloads.

BFM 2017 / 2019, `model2017-1_*.h5`, `model2019_*.h5` (the statismo layout, read by scalismo and
by eos's `convert-bfm2017-to-eos.py`); for part in shape, color, expression:
    <part>/model/mean (3V,), pcaBasis (3V, K) orthonormal columns, pcaVariance (K,) variances,
        noiseVariance (unused); <part>/representer/points (3, V), cells (3, F) 0-based triangles.
    Shape in **mm** (eos converts it to its mm format unscaled), colour in [0, 1] (eos likewise).
    The expression model has its own mean, which belongs to the neutral shape (eos adds it to the
    shape mean); we fold it into `mean`.

Both loaders: identity/albedo bases are stored as offsets of one standard deviation (`identity_std`
holds the stds in mm), the colour model becomes the albedo (the values are scaled to [0, 1] but not
re-linearised: the BFM does not document a colour space), `face_mask` is all ones, and the triangles
are oriented so their normals point out of the face (checked on the mesh, so the 2009 file's
clockwise list is flipped and a counter-clockwise one kept). Neither file has a 68-point landmark
embedding: pass `landmarks68_vertices` (68 vertex indices, iBUG order; eos ships
`ibug_to_bfm*.txt` mappings, 3DDFA and Deep3DFaceRecon index lists) to get `landmarks68`.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import ModelError
from .morphable import LandmarkEmbedding, MorphableModel

UM_TO_MM = 1e-3
COLOUR_2009_SCALE = 1.0 / 255.0
_MAT_KEYS = ("shapeMU", "shapePC", "shapeEV", "texMU", "texPC", "texEV", "tl")
_MAT_ERRORS = (ValueError, TypeError, OSError, EOFError, NotImplementedError, zlib.error, struct.error,
               IndexError, KeyError, MemoryError)


def load_bfm2009(path: str | Path, landmarks68_vertices: Sequence[int] | np.ndarray | None = None) -> MorphableModel:
    """Load the Basel Face Model 2009 from `01_MorphableModel.mat`.

    Args:
        path: the `.mat` file.
        landmarks68_vertices: optional (68,) vertex indices of the iBUG 68 landmarks.

    Returns:
        A `MorphableModel` in mm: 199 identity modes, 199 albedo modes, no expressions.
    """
    path = Path(path)
    mat = _read_mat(path)
    v3 = mat["shapeMU"].size
    if v3 == 0 or v3 % 3:
        raise ModelError(f"{path}: shapeMU has {v3} values, expected 3 per vertex")
    if mat["texMU"].size != v3:
        raise ModelError(f"{path}: texMU has {mat['texMU'].size} values for {v3 // 3} vertices")
    mean = mat["shapeMU"].reshape(-1, 3) * UM_TO_MM
    identity, identity_std = _offsets(path, "shape", mat["shapePC"], mat["shapeEV"], v3, std=True, scale=UM_TO_MM)
    albedo_mean = mat["texMU"].reshape(-1, 3) * COLOUR_2009_SCALE
    albedo, _ = _offsets(path, "tex", mat["texPC"], mat["texEV"], v3, std=True, scale=COLOUR_2009_SCALE)
    triangles = _triangles(path, mat["tl"], v3 // 3, one_based=True)
    return _build("bfm2009", "2009", path, mean, identity, identity_std, None, triangles, albedo_mean, albedo,
                  landmarks68_vertices)


def load_bfm_h5(path: str | Path, landmarks68_vertices: Sequence[int] | np.ndarray | None = None) -> MorphableModel:
    """Load a Basel Face Model 2017 or 2019 `.h5` file.

    Args:
        path: e.g. `model2017-1_bfm_nomouth.h5`, `model2017-1_face12_nomouth.h5`, `model2019_fullHead.h5`.
        landmarks68_vertices: optional (68,) vertex indices of the iBUG 68 landmarks.

    Returns:
        A `MorphableModel` in mm with PCA expressions (coefficients in standard deviations) and
        the colour model as albedo when the file has them.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: file not found (BFM 2017/2019 files come from https://faces.dmi.unibas.ch/bfm/ "
                         "after registration)")
    try:
        with h5py.File(path, "r") as f:
            if "shape/model/mean" not in f:
                raise ModelError(f"{path}: not a Basel Face Model .h5 file (no shape/model/mean; "
                                 f"top-level groups: {sorted(f.keys())})")
            parts = {part: _read_h5_pca(f, part, path) for part in ("shape", "color", "expression")
                     if f"{part}/model" in f}
            if "shape/representer/cells" not in f:
                raise ModelError(f"{path}: no shape/representer/cells (the triangle list)")
            cells = np.asarray(f["shape/representer/cells"][()])
    except ModelError:
        raise
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise ModelError(f"{path}: not a readable HDF5 model (corrupt or truncated? "
                         f"{type(exc).__name__}: {exc})") from None

    mean, basis, variance = parts["shape"]
    v3 = mean.size
    if v3 == 0 or v3 % 3:
        raise ModelError(f"{path}: shape/model/mean has {v3} values, expected 3 per vertex")
    identity, identity_std = _offsets(path, "shape", basis, variance, v3, std=False)
    expression = None
    if "expression" in parts:
        expr_mean, expr_basis, expr_variance = parts["expression"]
        if expr_mean.size != v3:
            raise ModelError(f"{path}: expression/model/mean has {expr_mean.size} values, the shape {v3}")
        mean = mean + expr_mean
        expression, _ = _offsets(path, "expression", expr_basis, expr_variance, v3, std=False)
    albedo_mean = albedo = None
    if "color" in parts:
        colour_mean, colour_basis, colour_variance = parts["color"]
        if colour_mean.size != v3:
            raise ModelError(f"{path}: color/model/mean has {colour_mean.size} values, the shape {v3}")
        albedo_mean = colour_mean.reshape(-1, 3)
        albedo, _ = _offsets(path, "color", colour_basis, colour_variance, v3, std=False)
    if cells.ndim == 2 and cells.shape[0] == 3 and cells.shape[1] != 3:
        cells = cells.T  # statismo stores (3, F)
    triangles = _triangles(path, cells, v3 // 3, one_based=False)
    return _build("bfm2017", path.stem, path, mean.reshape(-1, 3), identity, identity_std, expression,
                  triangles, albedo_mean, albedo, landmarks68_vertices)


# ------------------------------------------------------------------------------------------ reading
def _read_mat(path: Path) -> dict[str, np.ndarray]:
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    if not path.is_file():
        raise ModelError(f"{path}: file not found (the BFM 2009 comes from https://faces.dmi.unibas.ch/bfm/ "
                         "after registration)")
    try:
        data = loadmat(path, variable_names=_MAT_KEYS)
    except NotImplementedError:
        data = _read_mat73(path)  # scipy reads up to v7.2; v7.3 is HDF5
    except (*_MAT_ERRORS, MatReadError) as exc:
        raise ModelError(f"{path}: not a readable MATLAB file (corrupt or truncated? "
                         f"{type(exc).__name__}: {exc})") from None
    missing = [k for k in _MAT_KEYS if k not in data]
    if missing:
        raise ModelError(f"{path}: not a BFM 2009 01_MorphableModel.mat (or truncated): missing {missing}")
    out = {}
    for key in _MAT_KEYS:
        value = np.asarray(data[key])
        if value.dtype.kind not in "fiu":
            raise ModelError(f"{path}: {key} is not numeric ({value.dtype})")
        out[key] = value
    return out


def _read_mat73(path: Path) -> dict[str, np.ndarray]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            # MATLAB writes column-major arrays, so HDF5 sees every array transposed.
            return {k: np.asarray(f[k][()]).T for k in _MAT_KEYS if k in f}
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ModelError(f"{path}: not a readable MATLAB v7.3 file (corrupt or truncated? {exc})") from None


def _read_h5_pca(f, part: str, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    group = f[f"{part}/model"]
    missing = [k for k in ("mean", "pcaBasis", "pcaVariance") if k not in group]
    if missing:
        raise ModelError(f"{path}: {part}/model lacks {missing}")
    return (np.asarray(group["mean"][()], dtype=np.float64).reshape(-1),
            np.asarray(group["pcaBasis"][()], dtype=np.float32),
            np.asarray(group["pcaVariance"][()], dtype=np.float64).reshape(-1))


# --------------------------------------------------------------------------------------- converting
def _offsets(path: Path, what: str, basis: np.ndarray, spread: np.ndarray, v3: int, std: bool,
             scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(K, V, 3) float32 offsets of one standard deviation and the (K,) stds, both times `scale`
    (a unit change), from an orthonormal (3V, K) basis and per-mode standard deviations
    (`std=True`) or variances."""
    spread = np.asarray(spread, dtype=np.float64).reshape(-1)
    if basis.ndim != 2 or basis.shape[0] != v3 or basis.shape[1] != spread.size:
        raise ModelError(f"{path}: {what} basis is {basis.shape} with {spread.size} "
                         f"{'stds' if std else 'variances'}, expected ({v3}, {spread.size}) to match the mean")
    if not np.isfinite(spread).all() or (spread < 0).any():
        raise ModelError(f"{path}: {what} {'standard deviations' if std else 'variances'} must be finite and >= 0")
    norms = np.linalg.norm(basis, axis=0)
    if basis.size and not np.allclose(norms, 1.0, atol=0.05):
        raise ModelError(f"{path}: {what} basis columns have norms {norms.min():.3g}..{norms.max():.3g}; "
                         "the format stores an orthonormal basis (norm 1), so this file is not what it claims")
    sigma = (spread if std else np.sqrt(spread)) * scale
    offsets = (basis.astype(np.float32, copy=False) * sigma.astype(np.float32)[None, :]).T.reshape(-1, v3 // 3, 3)
    return offsets, sigma


def _triangles(path: Path, tris: np.ndarray, num_vertices: int, one_based: bool) -> np.ndarray:
    tris = np.asarray(tris)
    if tris.ndim != 2 or tris.shape[1] != 3 or len(tris) == 0:
        raise ModelError(f"{path}: triangle list must be (F, 3), got {tris.shape}")
    if tris.dtype.kind == "f" and not np.array_equal(tris, np.round(tris)):
        raise ModelError(f"{path}: triangle indices are not integers")
    tris = tris.astype(np.int64) - (1 if one_based else 0)
    if tris.min() < 0 or tris.max() >= num_vertices:
        raise ModelError(f"{path}: triangle indices out of range for {num_vertices} vertices"
                         f"{' (the list is 1-based)' if one_based else ''}")
    return tris


def _outward(vertices: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """The triangles, flipped if most of their area faces the inside of the mesh.

    Sums normal . (triangle centre - mesh centroid), i.e. three times the signed volume of the cone
    from the centroid: positive when the normals point away from it, as for a face or head surface.
    """
    a, b, c = (vertices[tris[:, i]] for i in range(3))
    outward = np.einsum("fc,fc->", np.cross(b - a, c - a), (a + b + c) / 3.0 - vertices.mean(axis=0))
    return tris if outward >= 0 else tris[:, [0, 2, 1]]


def _build(name: str, version: str, path: Path, mean: np.ndarray, identity: np.ndarray, identity_std: np.ndarray,
           expression: np.ndarray | None, triangles: np.ndarray, albedo_mean: np.ndarray | None,
           albedo: np.ndarray | None, landmarks68_vertices) -> MorphableModel:
    f32 = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    v = len(mean)
    tri = torch.from_numpy(np.ascontiguousarray(_outward(mean, triangles)))
    landmarks = None
    if landmarks68_vertices is not None:
        ids = np.asarray(landmarks68_vertices).reshape(-1)
        if ids.shape != (68,) or ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= v:
            raise ModelError(f"{path}: landmarks68_vertices must be 68 vertex indices in [0, {v}), "
                             f"got {ids.size} values of type {ids.dtype}")
        landmarks = LandmarkEmbedding.from_vertices(ids, tri)
    if expression is None:
        expression = np.zeros((0, v, 3))
    return MorphableModel(
        name=name, version=version, mean=f32(mean), identity_basis=f32(identity), identity_std=f32(identity_std),
        expression_basis=f32(expression), expression_names=tuple(f"exp{i:03d}" for i in range(len(expression))),
        expression_kind="pca", triangles=tri,
        albedo_mean=None if albedo_mean is None else f32(albedo_mean),
        albedo_basis=None if albedo is None else f32(albedo),
        landmarks68=landmarks, face_mask=torch.ones(v), source=str(path),
    )
