"""Writers for small model files in the real published formats, so loader tests need no licensed data.

Each writer follows the format as the public tools that read it do (see the loader modules'
docstrings); none of them imports facerecon, so a loader test checks the loader against an
independent reading of the format.
"""
from __future__ import annotations

import pickle
import struct
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def icosphere(subdivisions: int = 2, radius: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A sphere mesh centred at the origin: (V, 3) float64 vertices, (F, 3) int64 triangles wound
    counter-clockwise seen from outside. 2 subdivisions: 162 vertices, 320 triangles."""
    t = (1.0 + 5 ** 0.5) / 2.0
    verts = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
             (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
             (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11),
             (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    points = [np.asarray(v, dtype=np.float64) / np.linalg.norm(v) for v in verts]
    for _ in range(subdivisions):
        midpoint: dict[tuple[int, int], int] = {}

        def middle(a: int, b: int) -> int:
            key = (min(a, b), max(a, b))
            if key not in midpoint:
                m = points[a] + points[b]
                points.append(m / np.linalg.norm(m))
                midpoint[key] = len(points) - 1
            return midpoint[key]

        new_faces = []
        for a, b, c in faces:
            ab, bc, ca = middle(a, b), middle(b, c), middle(c, a)
            new_faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new_faces
    vertices = np.stack(points) * radius
    tris = np.asarray(faces, dtype=np.int64)
    a, b, c = (vertices[tris[:, i]] for i in range(3))
    inward = np.einsum("fc,fc->f", np.cross(b - a, c - a), a + b + c) < 0
    tris[inward] = tris[inward][:, [0, 2, 1]]
    return vertices, tris


# -------------------------------------------------------------------------------------------- FLAME
def write_flame_pickle(path: Path, model: dict, chumpy_keys: tuple[str, ...] = (), protocol: int = 2) -> None:
    """Pickle a FLAME model dict. Entries named in `chumpy_keys` are wrapped in a stand-in
    `chumpy.ch.Ch` (state: chumpy's `__getstate__` dict, the array under `x`), as in the original
    Python 2 pickles; the fake chumpy module exists only while pickling."""
    modules = {}
    if chumpy_keys:
        modules = {"chumpy": types.ModuleType("chumpy"), "chumpy.ch": types.ModuleType("chumpy.ch")}

        class Ch:  # noqa: D401 - mimics chumpy.ch.Ch's pickled form
            def __init__(self, x: np.ndarray) -> None:
                self.x = x

            def __getstate__(self) -> dict:
                return {"x": self.x, "_dirty_vars": set(), "_itr": None, "_depends_on_deps": {},
                        "_make_dense": False, "_make_sparse": False}

        Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
        modules["chumpy.ch"].Ch = Ch
        modules["chumpy"].ch = modules["chumpy.ch"]
        model = {k: Ch(v) if k in chumpy_keys else v for k, v in model.items()}
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        with open(path, "wb") as fh:
            pickle.dump(model, fh, protocol=protocol)
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def write_deca_landmark_embedding(path: Path, full_faces: np.ndarray, full_bary: np.ndarray,
                                  static_faces: np.ndarray, static_bary: np.ndarray) -> None:
    """DECA's `landmark_embedding.npy`: an object array holding a dict; the dynamic contour
    entries are torch tensors, as in the published file."""
    import torch

    data = {
        "static_lmk_faces_idx": static_faces.astype(np.int64), "static_lmk_bary_coords": static_bary,
        "dynamic_lmk_faces_idx": torch.zeros(79, 17, dtype=torch.long),
        "dynamic_lmk_bary_coords": torch.full((79, 17, 3), 1.0 / 3.0),
        "full_lmk_faces_idx": full_faces.astype(np.int64)[None], "full_lmk_bary_coords": full_bary[None],
    }
    np.save(path, np.array(data, dtype=object), allow_pickle=True)


def write_flame_static_embedding(path: Path, faces: np.ndarray, bary: np.ndarray) -> None:
    """FLAME's `flame_static_embedding.pkl` (51 points)."""
    with open(path, "wb") as fh:
        pickle.dump({"lmk_face_idx": faces.astype(np.uint32), "lmk_b_coords": bary}, fh, protocol=2)


# ---------------------------------------------------------------------------------------------- BFM
def write_bfm2009_mat(path: Path, shape_mu: np.ndarray, shape_pc: np.ndarray, shape_ev: np.ndarray,
                      tex_mu: np.ndarray, tex_pc: np.ndarray, tex_ev: np.ndarray, tl: np.ndarray) -> None:
    """`01_MorphableModel.mat` (MATLAB v5): column vectors (3V, 1), bases (3V, K), EVs (K, 1) as
    standard deviations, `tl` (F, 3) 1-based. Units as published: shape in micrometres, colour 0..255."""
    from scipy.io import savemat

    col = lambda a: np.asarray(a, dtype=np.float32).reshape(-1, 1)  # noqa: E731
    savemat(path, {"shapeMU": col(shape_mu), "shapePC": np.asarray(shape_pc, np.float32), "shapeEV": col(shape_ev),
                   "texMU": col(tex_mu), "texPC": np.asarray(tex_pc, np.float32), "texEV": col(tex_ev),
                   "tl": np.asarray(tl, dtype=np.int32)})


@dataclass
class Pca:
    """A PCA model as the formats store it: mean (3V,), orthonormal basis (3V, K), variances (K,)."""

    mean: np.ndarray
    basis: np.ndarray
    variance: np.ndarray


def write_bfm_h5(path: Path, shape: Pca, cells: np.ndarray, color: Pca | None = None,
                 expression: Pca | None = None) -> None:
    """BFM 2017/2019 statismo-style `.h5`: `<part>/model/{mean,pcaBasis,pcaVariance,noiseVariance}`
    and `<part>/representer/{points (3, V), cells (3, F)}` for part in shape, color, expression."""
    import h5py

    with h5py.File(path, "w") as f:
        for part, pca in (("shape", shape), ("color", color), ("expression", expression)):
            if pca is None:
                continue
            m = f.create_group(f"{part}/model")
            m["mean"] = pca.mean.astype(np.float32)
            m["pcaBasis"] = pca.basis.astype(np.float32)
            m["pcaVariance"] = pca.variance.astype(np.float32)
            m["noiseVariance"] = np.float32(0.0)
            r = f.create_group(f"{part}/representer")
            r["points"] = shape.mean.reshape(-1, 3).T.astype(np.float32)
            r["cells"] = cells.T.astype(np.uint32)


# ------------------------------------------------------------------------------------ eos (Surrey)
@dataclass
class EosPca:
    """eos::morphablemodel::PcaModel: mean (3V,), orthonormal basis (3V, K), eigenvalues (K,) as
    variances, triangle list (F, 3)."""

    mean: np.ndarray
    basis: np.ndarray
    eigenvalues: np.ndarray
    triangles: np.ndarray

    @classmethod
    def empty(cls) -> "EosPca":
        return cls(np.zeros(0), np.zeros((0, 0)), np.zeros(0), np.zeros((0, 3), dtype=np.int32))


class _Cereal:
    """cereal::BinaryOutputArchive on a little-endian machine: raw values, sizes as uint64."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def raw(self, fmt: str, *values) -> None:
        self.parts.append(struct.pack("<" + fmt, *values))

    def size(self, n: int) -> None:
        self.raw("Q", n)

    def string(self, s: str) -> None:
        data = s.encode("utf-8")
        self.size(len(data))
        self.parts.append(data)

    def eigen(self, matrix: np.ndarray, column: bool = False) -> None:
        # Eigen::Matrix<float>: int32 rows, int32 cols, then the data in column-major order.
        m = np.asarray(matrix, dtype=np.float32)
        if column or m.ndim == 1:
            m = m.reshape(-1, 1)
        self.raw("ii", m.shape[0], m.shape[1])
        self.parts.append(np.asfortranarray(m).tobytes(order="F"))

    def int_triples(self, triangles: np.ndarray) -> None:
        # std::vector<std::array<int, 3>>: size, then each array as raw int32s.
        t = np.asarray(triangles, dtype="<i4").reshape(-1, 3)
        self.size(len(t))
        self.parts.append(t.tobytes())

    def pca(self, model: EosPca, layout: str) -> None:
        self.eigen(model.mean, column=True)
        if layout == "two_bases":  # eos 0.x-1.0: rescaled basis, then orthonormal basis
            rescaled = model.basis * np.sqrt(model.eigenvalues)[None, :] if model.basis.size else model.basis
            self.eigen(rescaled)
        self.eigen(model.basis)
        self.eigen(model.eigenvalues, column=True)
        self.int_triples(model.triangles)

    def blendshapes(self, shapes: list[tuple[str, np.ndarray]]) -> None:
        self.size(len(shapes))
        for name, deformation in shapes:
            self.string(name)
            self.eigen(deformation, column=True)

    def bytes(self) -> bytes:
        return b"".join(self.parts)


def write_eos_model(path: Path, shape: EosPca, color: EosPca | None = None,
                    expression: EosPca | list[tuple[str, np.ndarray]] | None = None,
                    landmarks: dict[str, int] | None = None, texcoords: np.ndarray | None = None,
                    texture_triangles: np.ndarray | None = None, version: int = 4,
                    pca_layout: str = "current") -> None:
    """An eos `MorphableModel` cereal binary archive (the format of `sfm_shape_3448.bin`).

    Layout: uint32 class version (written once, before the first MorphableModel), then
    shape PcaModel, colour PcaModel, [v>=2: optional<variant<PcaModel, Blendshapes>> expression],
    [v>=3: optional<unordered_map<string, int>> landmark definitions], texture coordinates
    (vector<array<double, 2>>), [v>=4: texture triangles (vector<array<int, 3>>)]. An optional is a
    bool "nullopt" (true when empty) then the value; a variant is an int32 index then the value.
    """
    ar = _Cereal()
    ar.raw("I", version)
    ar.pca(shape, pca_layout)
    ar.pca(color if color is not None else EosPca.empty(), pca_layout)
    if version >= 2:
        ar.raw("?", expression is None)
        if isinstance(expression, EosPca):
            ar.raw("i", 0)
            ar.pca(expression, pca_layout)
        elif expression is not None:
            ar.raw("i", 1)
            ar.blendshapes(expression)
    if version >= 3:
        ar.raw("?", landmarks is None)
        if landmarks is not None:
            ar.size(len(landmarks))
            for name, vertex in landmarks.items():
                ar.string(name)
                ar.raw("i", vertex)
    uv = np.zeros((0, 2)) if texcoords is None else np.asarray(texcoords, dtype="<f8")
    ar.size(len(uv))
    ar.parts.append(uv.tobytes())
    if version >= 4:
        ar.int_triples(np.zeros((0, 3)) if texture_triangles is None else texture_triangles)
    Path(path).write_bytes(ar.bytes())


def write_eos_blendshapes(path: Path, shapes: list[tuple[str, np.ndarray]]) -> None:
    """`expression_blendshapes_3448.bin`: a cereal std::vector<Blendshape{name, VectorXf deformation}>."""
    ar = _Cereal()
    ar.blendshapes(shapes)
    Path(path).write_bytes(ar.bytes())
