"""FLAME loader: the 2020/2023 model pickles and their landmark embeddings.

FLAME (Li, Bolkart, Black, Li, Romero; SIGGRAPH Asia 2017) is distributed by the Max Planck
Institute for Intelligent Systems at https://flame.is.tue.mpg.de after registration, under a
non-commercial licence; the files cannot be shipped with facerecon. The model file is
`generic_model.pkl` (FLAME 2020) or `flame2023.pkl` (FLAME 2023).

Layout of the model pickle (as read by FLAME_PyTorch, smplx and DECA):
    v_template   (V, 3) rest template in **metres** (V = 5023).
    f            (F, 3) triangles, 0-based, counter-clockwise seen from outside.
    shapedirs    (V, 3, 400): the first 300 components are identity, the last 100 expression.
                 Both are already scaled so that their coefficients are ~N(0, 1).
    posedirs     (V, 3, 36) pose-corrective offsets driven by the flattened (R_j - I) of the four
                 non-root joints (9 values per joint, joint-major, row-major matrices).
    J_regressor  (5, V) scipy sparse matrix: rest joints as weighted sums of shaped vertices.
    weights      (V, 5) skinning weights.
    kintree_table (2, 5): row 0 the parent of each joint (the root's is 2**32 - 1).
Joints: global (root), neck, jaw, eye_left, eye_right (smplx's order: leye before reye).

Old pickles were written by Python 2 with chumpy (an autodiff library that does not install on
current Python) arrays inside. We read them without chumpy: a restricted unpickler maps every
`chumpy.*` class to a stand-in and keeps the array it stored (its `x` state entry), maps scipy
sparse matrices to stand-ins rebuilt from their index arrays, and refuses any other global that
a model file never needs (pickles can run arbitrary code).

Landmark embeddings (barycentric points on `f`), from either companion file:
    DECA's `landmark_embedding.npy`: a pickled dict with `full_lmk_faces_idx` /
        `full_lmk_bary_coords` (the 68 iBUG points, used here) and `static_lmk_*` (51 points,
        iBUG 17..67) and `dynamic_lmk_*` (jaw contour per head yaw, stored as torch tensors; ignored).
    FLAME's `flame_static_embedding.pkl`: `lmk_face_idx` / `lmk_b_coords`, the 51 static points.
`landmarks68` needs all 68 points, so with a 51-point file it stays None (with a warning); use
DECA's file for a 68-point embedding. FLAME's `FLAME_masks.pkl` (vertex index lists per region)
can be given as `masks` to fill `regions`; its "face" region then becomes the `face_mask`.
"""
from __future__ import annotations

import pickle
import re
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import torch

from ..errors import ModelError
from .lbs import Skeleton
from .morphable import LandmarkEmbedding, MorphableModel

M_TO_MM = 1000.0
NUM_SHAPE = 300  # FLAME's shapedirs: 300 identity components, then the expression components
JOINT_NAMES = ("global", "neck", "jaw", "eye_left", "eye_right")
EMBEDDING_NAME = "landmark_embedding.npy"  # DECA's file name, looked for beside the model
MASKS_NAME = "FLAME_masks.pkl"
_REQUIRED = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")


def load_flame(path: str | Path, landmark_embedding: str | Path | None = None,
               masks: str | Path | None = None) -> MorphableModel:
    """Load a FLAME model pickle.

    Args:
        path: `generic_model.pkl` (FLAME 2020) or `flame2023.pkl`.
        landmark_embedding: DECA's `landmark_embedding.npy` (68 points, gives `landmarks68`) or
            FLAME's `flame_static_embedding.pkl` (51 points, not enough for `landmarks68`: a warning
            says so). None: `landmark_embedding.npy` beside the model file if there is one.
        masks: `FLAME_masks.pkl`, whose regions become `regions`. None: `FLAME_masks.pkl` beside
            the model file if there is one.

    Returns:
        A `MorphableModel` in mm with a 5-joint `Skeleton`, 300 identity and 100 PCA expression
        modes (coefficients ~N(0, 1), so `identity_std` is 1).
    """
    path = Path(path)
    data = _load_pickle(path, "FLAME model")
    if not isinstance(data, dict):
        raise ModelError(f"{path}: not a FLAME model pickle (holds a {type(data).__name__}, expected a dict)")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ModelError(f"{path}: not a FLAME model pickle, missing {missing}")
    arr = {k: _to_numpy(data[k], k, path) for k in _REQUIRED}

    template = arr["v_template"].astype(np.float64)
    if template.ndim != 2 or template.shape[1] != 3 or len(template) == 0:
        raise ModelError(f"{path}: v_template must be (V, 3), got {template.shape}")
    v = len(template)
    shapedirs = arr["shapedirs"]
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (v, 3):
        raise ModelError(f"{path}: shapedirs must be ({v}, 3, K), got {shapedirs.shape}")
    weights = arr["weights"]
    if weights.ndim != 2 or weights.shape[0] != v:
        raise ModelError(f"{path}: weights must be ({v}, J), got {weights.shape}")
    num_joints = weights.shape[1]
    kintree = arr["kintree_table"]
    if kintree.ndim != 2 or kintree.shape != (2, num_joints):
        raise ModelError(f"{path}: kintree_table must be (2, {num_joints}), got {kintree.shape}")
    parents = kintree[0].astype(np.int64)
    parents[0] = -1
    if any(not 0 <= p < j for j, p in enumerate(parents[1:], start=1)):
        raise ModelError(f"{path}: kintree_table parents {parents.tolist()} are not a tree ordered root first")
    regressor = arr["J_regressor"]
    if regressor.shape != (num_joints, v):
        raise ModelError(f"{path}: J_regressor must be ({num_joints}, {v}), got {regressor.shape}")
    posedirs = arr["posedirs"]
    num_pose = 9 * (num_joints - 1)
    if posedirs.shape != (v, 3, num_pose):
        raise ModelError(f"{path}: posedirs must be ({v}, 3, {num_pose}), got {posedirs.shape}")

    # (V, 3, K) -> (K, V, 3): one offset field per component.
    shape_basis = np.moveaxis(shapedirs, 2, 0)
    num_identity = min(NUM_SHAPE, shape_basis.shape[0])
    # (V, 3, P) -> (P, V * 3), the layout smplx builds and `lbs.skin` multiplies the pose feature with.
    pose_basis = posedirs.reshape(v * 3, num_pose).T

    f32 = lambda a, s=1.0: torch.from_numpy(np.ascontiguousarray(np.asarray(a, dtype=np.float32) * s))  # noqa: E731
    faces = arr["f"]
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0 or faces.min() < 0 or faces.max() >= v:
        raise ModelError(f"{path}: f must be (F, 3) indices into {v} vertices, got {faces.shape}")
    triangles = torch.from_numpy(np.ascontiguousarray(faces, dtype=np.int64))
    skeleton = Skeleton(
        joint_regressor=f32(regressor), parents=torch.from_numpy(parents), weights=f32(weights),
        pose_basis=f32(pose_basis, M_TO_MM),
        joint_names=JOINT_NAMES if num_joints == len(JOINT_NAMES) else tuple(f"joint{j}" for j in range(num_joints)),
    )
    if masks is None and (path.parent / MASKS_NAME).is_file():
        masks = path.parent / MASKS_NAME
    if landmark_embedding is None and (path.parent / EMBEDDING_NAME).is_file():
        landmark_embedding = path.parent / EMBEDDING_NAME
    regions = {} if masks is None else _read_masks(Path(masks), v)
    face_mask = None
    if "face" in regions:
        face_mask = torch.zeros(v)
        face_mask[regions["face"]] = 1.0
    landmarks = None
    if landmark_embedding is not None:
        landmarks = _landmarks68(Path(landmark_embedding), int(triangles.shape[0]))
    num_expression = shape_basis.shape[0] - num_identity
    return MorphableModel(
        name="flame", version=_version(path), mean=f32(template, M_TO_MM),
        identity_basis=f32(shape_basis[:num_identity], M_TO_MM), identity_std=torch.ones(num_identity),
        expression_basis=f32(shape_basis[num_identity:], M_TO_MM),
        expression_names=tuple(f"exp{i:03d}" for i in range(num_expression)), expression_kind="pca",
        triangles=triangles, regions=regions, landmarks68=landmarks, face_mask=face_mask,
        skeleton=skeleton, source=str(path),
    )


def _version(path: Path) -> str:
    # The pickles carry no version field; the release year is in the file or folder name.
    years = re.findall(r"20[12]\d", f"{path.parent.name}/{path.name}")
    return years[-1] if years else path.name


def _landmarks68(path: Path, num_triangles: int) -> LandmarkEmbedding | None:
    data = _load_pickle(path, "landmark embedding") if path.suffix != ".npy" else _load_npy_pickle(path)
    if not isinstance(data, dict):
        raise ModelError(f"{path}: not a FLAME landmark embedding (holds a {type(data).__name__}, expected a dict)")
    for face_key, bary_key in (("full_lmk_faces_idx", "full_lmk_bary_coords"), ("lmk_face_idx", "lmk_b_coords"),
                               ("static_lmk_faces_idx", "static_lmk_bary_coords")):
        if face_key in data and bary_key in data:
            break
    else:
        raise ModelError(f"{path}: not a FLAME landmark embedding; expected DECA's full_lmk_faces_idx/"
                         f"full_lmk_bary_coords or FLAME's lmk_face_idx/lmk_b_coords, found {sorted(map(str, data))}")
    faces = _to_numpy(data[face_key], face_key, path).reshape(-1).astype(np.int64)
    bary = _to_numpy(data[bary_key], bary_key, path).astype(np.float64).reshape(-1, 3)
    if len(bary) != len(faces):
        raise ModelError(f"{path}: {len(faces)} landmark triangles but {len(bary)} barycentric rows")
    if len(faces) and (faces.min() < 0 or faces.max() >= num_triangles):
        raise ModelError(f"{path}: landmark triangle indices out of range [0, {num_triangles}); "
                         "is the embedding for another FLAME topology?")
    if not np.isfinite(bary).all() or np.abs(bary.sum(axis=1) - 1.0).max(initial=0.0) > 1e-2:
        raise ModelError(f"{path}: barycentric coordinates must be finite and sum to 1 per landmark")
    if len(faces) != 68:
        warnings.warn(f"{path}: {len(faces)} landmarks; landmarks68 needs the 68 iBUG points "
                      "(DECA's landmark_embedding.npy has them), so the model has no landmarks68", stacklevel=3)
        return None
    return LandmarkEmbedding(torch.from_numpy(faces), torch.from_numpy(bary.astype(np.float32)), "ibug68")


def _read_masks(path: Path, num_vertices: int) -> dict[str, torch.Tensor]:
    data = _load_pickle(path, "FLAME masks")
    if not isinstance(data, dict):
        raise ModelError(f"{path}: not FLAME_masks.pkl (holds a {type(data).__name__}, expected a dict)")
    regions = {}
    for name, value in data.items():
        idx = _to_numpy(value, str(name), path).reshape(-1)
        if idx.dtype.kind not in "iu" or (idx.size and (idx.min() < 0 or idx.max() >= num_vertices)):
            raise ModelError(f"{path}: region {name!r} must hold vertex indices in [0, {num_vertices})")
        regions[str(name)] = torch.from_numpy(idx.astype(np.int64))
    return regions


# ---------------------------------------------------------------------------------------- pickles
class _StandIn:
    """An object rebuilt from a pickle without importing its class: it keeps the pickled state."""

    origin = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _Chumpy(_StandIn):
    pass


class _Sparse(_StandIn):
    pass


_SPARSE_NAMES = {"csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array"}
_NUMPY_NAMES = {"_reconstruct", "scalar", "ndarray", "dtype", "_frombuffer"}
_NUMPY_MODULES = {"numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
                  "numpy._core.numeric"}
_BUILTINS = {"object", "set", "frozenset", "dict", "list", "tuple", "bytearray", "bytes", "complex", "slice"}
_SAFE_GLOBALS = ({(m, n) for m in ("builtins", "__builtin__") for n in _BUILTINS}
                 | {("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"), ("_codecs", "encode"),
                    ("collections", "OrderedDict")})


class _RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a class or function that no model file holds."""


class _ModelUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, plain containers, chumpy and scipy-sparse stand-ins; nothing else."""

    _stand_ins: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str) -> Any:
        root = module.split(".")[0]
        if root == "chumpy":
            return self._stand_in(_Chumpy, module, name)
        if root == "torch":  # tensors in DECA's embedding (dynamic contour): kept opaque, never used
            return self._stand_in(_StandIn, module, name)
        if module.startswith("scipy.sparse") and name in _SPARSE_NAMES:
            return self._stand_in(_Sparse, module, name)
        if (module in _NUMPY_MODULES and name in _NUMPY_NAMES) or module == "numpy.dtypes":
            if module.startswith("numpy.core."):  # numpy >= 2 moved numpy.core to numpy._core
                try:
                    return super().find_class("numpy._core." + module[len("numpy.core."):], name)
                except (ImportError, AttributeError):
                    pass
            return super().find_class(module, name)
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise _RefusedGlobal(f"{module}.{name}")

    @classmethod
    def _stand_in(cls, base: type, module: str, name: str) -> type:
        key = (module, name)
        if key not in cls._stand_ins:
            cls._stand_ins[key] = type(name, (base,), {"origin": f"{module}.{name}"})
        return cls._stand_ins[key]


# What a corrupt, truncated or foreign pickle raises while being read.
_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
                  ImportError, UnicodeDecodeError, struct.error, OverflowError, MemoryError)


def _load_pickle(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ModelError(f"{path}: file not found (the {what} file; FLAME's files come from "
                         "https://flame.is.tue.mpg.de after registration)")
    try:
        with open(path, "rb") as fh:
            # latin1: pickles written by Python 2 hold numpy buffers as byte strings.
            return _ModelUnpickler(fh, encoding="latin1").load()
    except _RefusedGlobal as exc:
        raise ModelError(f"{path}: refusing to load this pickle: it refers to {exc}, which no {what} file "
                         "holds (pickles can run code; only numpy, scipy-sparse and chumpy data are read)") from None
    except _PICKLE_ERRORS as exc:
        raise ModelError(f"{path}: not a readable {what} pickle (corrupt or truncated? "
                         f"{type(exc).__name__}: {exc})") from None


def _load_npy_pickle(path: Path) -> Any:
    """An `.npy` file holding a pickled object (DECA's embedding), read with the restricted unpickler."""
    if not path.is_file():
        raise ModelError(f"{path}: file not found (the landmark embedding file)")
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                _, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                _, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            if not dtype.hasobject:
                raise ModelError(f"{path}: holds a plain {dtype} array, expected DECA's pickled landmark dict")
            obj = _ModelUnpickler(fh, encoding="latin1").load()
    except ModelError:
        raise
    except _RefusedGlobal as exc:
        raise ModelError(f"{path}: refusing to load this .npy: it refers to {exc}, which no landmark embedding "
                         "holds (pickles can run code)") from None
    except (*_PICKLE_ERRORS, OSError) as exc:
        raise ModelError(f"{path}: not a readable .npy landmark embedding (corrupt or truncated? "
                         f"{type(exc).__name__}: {exc})") from None
    return obj.item() if isinstance(obj, np.ndarray) and obj.dtype == object and obj.size == 1 else obj


def _to_numpy(value: Any, key: str, path: Path) -> np.ndarray:
    """A dense numpy array from an array, a chumpy stand-in or a scipy-sparse stand-in."""
    if isinstance(value, _Chumpy):
        state = getattr(value, "state", None)
        if not isinstance(state, dict) or "x" not in state:
            raise ModelError(f"{path}: {key!r} is a chumpy {value.origin} expression, not a stored array; "
                             "convert the file with chumpy installed (np.asarray on each entry)")
        return _to_numpy(state["x"], key, path)
    if isinstance(value, _Sparse):
        return _sparse_to_dense(value, key, path)
    if isinstance(value, _StandIn):
        raise ModelError(f"{path}: {key!r} is a {value.origin} object, expected an array")
    if scipy.sparse.issparse(value):
        return value.toarray()
    try:
        out = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{path}: {key!r} is not an array ({exc})") from None
    if out.dtype == object:
        raise ModelError(f"{path}: {key!r} is not a numeric array")
    return out


def _sparse_to_dense(value: _Sparse, key: str, path: Path) -> np.ndarray:
    state = getattr(value, "state", None)
    kind = value.origin.rsplit(".", 1)[-1][:3]
    try:
        shape = tuple(int(s) for s in (state.get("_shape") or state.get("shape")))
        data = np.asarray(state["data"])
        if kind == "coo":
            row, col = state["coords"] if "coords" in state else (state["row"], state["col"])
            matrix = scipy.sparse.coo_matrix((data, (np.asarray(row), np.asarray(col))), shape=shape)
        else:
            build = scipy.sparse.csc_matrix if kind == "csc" else scipy.sparse.csr_matrix
            matrix = build((data, np.asarray(state["indices"]), np.asarray(state["indptr"])), shape=shape)
        return matrix.toarray()
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelError(f"{path}: {key!r} is a malformed {value.origin} ({type(exc).__name__}: {exc})") from None
