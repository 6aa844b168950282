"""Surrey Face Model loader: eos's cereal binary model files and expression blendshapes.

The public, shape-only Surrey Face Model at 3448 vertices ships in the eos repository
(https://github.com/patrikhuber/eos, `share/sfm_shape_3448.bin` and
`share/expression_blendshapes_3448.bin`, Apache-2.0). Higher resolutions and the colour model
need the licence from cvssp.org/facemodel. The SFM is in **millimetres** (eos's
`share/sfm_reference.obj` spans about 140 x 190 mm), +y up, the nose towards +z, triangles
counter-clockwise seen from outside (eos treats the BFM's clockwise list as "the wrong way round").

Format: a cereal `BinaryOutputArchive` (raw little-endian values, no header) of
`eos::morphablemodel::MorphableModel`, as written by eos's `save_model` (layout read from eos's
`include/eos/morphablemodel/{MorphableModel,PcaModel,Blendshape,ExpressionModel}.hpp`,
`io/eigen_cerealisation.hpp` and cereal's `types/{vector,string,array,optional,variant}.hpp`):

    uint32 class version V, written once before the first MorphableModel (cereal's versioning)
    PcaModel shape, PcaModel colour (empty in the shape-only SFM)
    V >= 2: optional<variant<PcaModel, Blendshapes>> expression model
    V >= 3: optional<unordered_map<string, int>> landmark definitions (name -> vertex index)
    vector<array<double, 2>> texture coordinates (one per vertex, top-left origin)
    V >= 4: vector<array<int, 3>> texture triangles (empty: the UVs share the mesh triangles)

    PcaModel (unversioned): Eigen VectorXf mean (3V, 1, interleaved xyz), the basis matrix
        (3V, K), Eigen VectorXf eigenvalues (K, 1, variances), vector<array<int, 3>> triangles.
        Current eos stores only the orthonormal basis; files from eos <= 0.x stored the rescaled
        basis (orthonormal * sqrt(eigenvalue)) and then the orthonormal one. We tell them apart by
        the shape of the matrix after the first basis: (3V, K) again means the two-basis layout.
    Eigen matrix: int32 rows, int32 cols, rows * cols float32 in column-major order.
    vector / string / map: uint64 element count, then the elements (arithmetic vectors and
        std::array as raw bytes, strings as UTF-8 bytes). bool: 1 byte.
    optional: bool "nullopt" (1 = empty), then the value. variant: int32 index, then the value
        (0 = PcaModel, 1 = Blendshapes).
    Blendshape (unversioned): string name, VectorXf deformation (3V, 1).
    `expression_blendshapes_3448.bin` is a bare vector<Blendshape>.

Implemented: model versions 1-4 in both PcaModel layouts (version 0, the cv::Mat format of early
eos, is refused, as eos itself does); any reading error or leftover byte is a `ModelError`, never a
silent misread. Checked against eos itself: files written by eos-py 1.5.0's `save_model` (format
version 4, one-basis layout, with PCA or blendshape expressions, colour model, landmark map, UVs
and texture triangles) load with the right values, and the test writer reproduces them byte for
byte (tests/models/test_surrey.py keeps one as a golden file); `save_blendshapes` likewise.
Implemented from eos's headers only, not checked against files: versions 1-3 and the two-basis
PcaModel layout. Uncertain: which version the published `sfm_shape_3448.bin` is (any of 1-4 is
read); files from eos built without C++17 (mpark::variant, whose cereal serialiser we could not
see) are assumed to use cereal's std::variant layout; the archive is assumed little-endian
(cereal's BinaryArchive does not record endianness).

Mapping: the PCA identity basis becomes offsets of one standard deviation (sqrt of the
eigenvalue), a PCA expression model likewise (its mean is added to the neutral shape, as eos's
`get_mean` does), blendshapes become `expression_kind="blendshape"` offsets per unit weight; the
colour model (if any, in [0, 1]) becomes the albedo; UVs are flipped to a bottom-left origin
(v' = 1 - v) as eos's OBJ writer does, matching OBJ-loaded models. A landmark definition map with
all iBUG ids "1".."68" gives `landmarks68`; eos's `ibug_to_sfm.txt` maps only part of the 68, so
the SFM itself has none.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelError, UsageError
from .morphable import LandmarkEmbedding, MorphableModel

_VERSIONS = (1, 2, 3, 4)


@dataclass
class _Pca:
    mean: np.ndarray  # (3V,)
    basis: np.ndarray  # (3V, K) orthonormal
    eigenvalues: np.ndarray  # (K,) variances
    triangles: np.ndarray  # (F, 3)


def load_surrey(path: str | Path, blendshapes_path: str | Path | None = None) -> MorphableModel:
    """Load an eos/Surrey Face Model `.bin` file (e.g. `sfm_shape_3448.bin`).

    Args:
        path: the model file.
        blendshapes_path: an eos blendshapes file (`expression_blendshapes_3448.bin`) for a model
            without its own expression model. None: the matching `expression_blendshapes_<N>.bin`
            beside a `sfm_shape_<N>.bin`, if there is one.

    Returns:
        A `MorphableModel` in mm.

    Raises:
        ModelError: missing, truncated or corrupt files, unknown versions, inconsistent sizes.
        UsageError: `blendshapes_path` given for a model that has its own expression model.
    """
    path = Path(path)
    reader = _Reader(_read_bytes(path, "Surrey/eos model"), path)
    version = reader.u32("class version")
    if version == 0:
        raise ModelError(f"{path}: an eos model file of format version 0 (the old cv::Mat format), which eos no "
                         "longer reads either; download the current file from the eos repository")
    if version not in _VERSIONS:
        raise ModelError(f"{path}: not an eos MorphableModel file (class version {version}, known 1-4)")
    shape = reader.pca("shape model")
    colour = reader.pca("colour model")
    expression: _Pca | list[tuple[str, np.ndarray]] | None = None
    if version >= 2 and reader.present("expression model"):
        kind = reader.i32("expression model variant index")
        if kind == 0:
            expression = reader.pca("expression model")
        elif kind == 1:
            expression = reader.blendshapes("expression blendshapes")
        else:
            raise ModelError(f"{path}: expression model variant index {kind} (expected 0 = PCA or 1 = blendshapes)")
    landmarks: dict[str, int] = {}
    if version >= 3 and reader.present("landmark definitions"):
        for _ in range(reader.count("landmark definitions", 12)):
            name = reader.string("landmark name")
            landmarks[name] = reader.i32("landmark vertex")
    texcoords = reader.array("texture coordinates", "<f8", 2)
    texture_triangles = reader.array("texture triangles", "<i4", 3) if version >= 4 else np.zeros((0, 3), np.int32)
    reader.expect_end(f"MorphableModel v{version}")

    if expression is None:
        blendshapes_path = blendshapes_path if blendshapes_path is not None else _companion_blendshapes(path)
        if blendshapes_path is not None:
            expression = load_blendshapes(blendshapes_path)
    elif blendshapes_path is not None:
        raise UsageError(f"{path} has its own expression model; pass blendshapes_path only for shape-only models")
    return _build(path, version, shape, colour, expression, landmarks, texcoords, texture_triangles)


def load_blendshapes(path: str | Path) -> list[tuple[str, np.ndarray]]:
    """Read an eos blendshapes file: (name, (3V,) float32 deformation) pairs, in the file's units (mm)."""
    path = Path(path)
    reader = _Reader(_read_bytes(path, "eos blendshapes"), path)
    shapes = reader.blendshapes("blendshapes")
    reader.expect_end("vector<Blendshape>")
    return shapes


def _companion_blendshapes(path: Path) -> Path | None:
    match = re.fullmatch(r"sfm_shape_(\d+)\.bin", path.name)
    if match is None:
        return None
    candidate = path.parent / f"expression_blendshapes_{match.group(1)}.bin"
    return candidate if candidate.is_file() else None


def _read_bytes(path: Path, what: str) -> bytes:
    if not path.is_file():
        raise ModelError(f"{path}: file not found (the {what} file; the public SFM is share/sfm_shape_3448.bin "
                         "in https://github.com/patrikhuber/eos)")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc})") from None


class _Reader:
    """Sequential reads from a cereal binary archive; any overrun is a `ModelError` naming the field."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def fail(self, msg: str) -> ModelError:
        return ModelError(f"{self.path}: {msg} (at byte {self.pos} of {len(self.data)}): the file is truncated, "
                          "corrupt or not an eos model")

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"{what} needs {n} bytes, {len(self.data) - self.pos} left")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u32(self, what: str) -> int:
        return struct.unpack("<I", self.take(4, what))[0]

    def i32(self, what: str) -> int:
        return struct.unpack("<i", self.take(4, what))[0]

    def count(self, what: str, min_item_bytes: int) -> int:
        n = struct.unpack("<Q", self.take(8, f"{what} count"))[0]
        if n * min_item_bytes > len(self.data) - self.pos:
            raise self.fail(f"{what}: {n} entries cannot fit in the {len(self.data) - self.pos} bytes left")
        return n

    def present(self, what: str) -> bool:
        """An optional's "nullopt" flag: True when a value follows."""
        flag = self.take(1, f"{what} flag")[0]
        if flag > 1:
            raise self.fail(f"{what}: optional flag is {flag}, not a bool")
        return flag == 0

    def string(self, what: str) -> str:
        return self.take(self.count(what, 1), what).decode("utf-8", errors="replace")

    def array(self, what: str, dtype: str, width: int) -> np.ndarray:
        """A vector of std::array<T, width> of arithmetic T, as an (n, width) array."""
        item = np.dtype(dtype).itemsize * width
        n = self.count(what, item)
        return np.frombuffer(self.take(n * item, what), dtype=dtype).reshape(n, width)

    def peek_shape(self) -> tuple[int, int] | None:
        if self.pos + 8 > len(self.data):
            return None
        return struct.unpack_from("<ii", self.data, self.pos)

    def matrix(self, what: str) -> np.ndarray:
        rows, cols = struct.unpack("<ii", self.take(8, f"{what} size"))
        if rows < 0 or cols < 0:
            raise self.fail(f"{what}: negative matrix size {rows} x {cols}")
        data = np.frombuffer(self.take(4 * rows * cols, what), dtype="<f4")
        return data.reshape(cols, rows).T  # Eigen's default storage is column-major

    def vector(self, what: str) -> np.ndarray:
        m = self.matrix(what)
        if m.shape[1] != 1 and m.size:
            raise self.fail(f"{what} is a {m.shape[0]} x {m.shape[1]} matrix, expected a column vector")
        return m.reshape(-1)

    def pca(self, what: str) -> _Pca:
        mean = self.vector(f"{what} mean")
        basis = self.matrix(f"{what} basis")
        if self.peek_shape() == basis.shape:
            basis = self.matrix(f"{what} orthonormal basis")  # the older layout: rescaled basis first
        eigenvalues = self.vector(f"{what} eigenvalues")
        triangles = self.array(f"{what} triangle list", "<i4", 3)
        if basis.size and (basis.shape[0] != mean.size or basis.shape[1] != eigenvalues.size):
            raise self.fail(f"{what}: basis {basis.shape} does not match mean ({mean.size}) and "
                            f"eigenvalues ({eigenvalues.size})")
        if not basis.size:
            basis = np.zeros((mean.size, 0), dtype=np.float32)
        if not (np.isfinite(eigenvalues).all() and (eigenvalues >= 0).all()):
            raise self.fail(f"{what}: eigenvalues (variances) must be finite and >= 0")
        return _Pca(mean, basis, eigenvalues, triangles)

    def blendshapes(self, what: str) -> list[tuple[str, np.ndarray]]:
        shapes = []
        for i in range(self.count(what, 16)):
            name = self.string(f"{what}[{i}] name")
            shapes.append((name, self.vector(f"{what}[{i}] ({name}) deformation")))
        return shapes

    def expect_end(self, what: str) -> None:
        if self.pos != len(self.data):
            raise self.fail(f"{len(self.data) - self.pos} bytes left over after the {what} (a layout this loader "
                            "does not know? see facerecon.models.surrey)")


def _build(path: Path, version: int, shape: _Pca, colour: _Pca,
           expression: _Pca | list[tuple[str, np.ndarray]] | None, landmarks: dict[str, int],
           texcoords: np.ndarray, texture_triangles: np.ndarray) -> MorphableModel:
    v3 = shape.mean.size
    if v3 == 0 or v3 % 3:
        raise ModelError(f"{path}: shape mean has {v3} values, expected 3 per vertex")
    v = v3 // 3
    f32 = lambda a: torch.from_numpy(np.array(a, dtype=np.float32))  # noqa: E731 (copies: frombuffer is read-only)

    def offsets(pca: _Pca) -> np.ndarray:
        return (pca.basis * np.sqrt(pca.eigenvalues)[None, :]).T.reshape(-1, v, 3)

    triangles = shape.triangles.astype(np.int64)
    if len(triangles) == 0 or triangles.min() < 0 or triangles.max() >= v:
        raise ModelError(f"{path}: the shape model's triangle list is empty or indexes outside {v} vertices")
    mean = shape.mean.astype(np.float64).reshape(v, 3)
    names: tuple[str, ...] = ()
    kind, expression_basis = "blendshape", np.zeros((0, v, 3))
    if isinstance(expression, _Pca):
        if expression.mean.size != v3:
            raise ModelError(f"{path}: expression model has {expression.mean.size // 3} vertices, the shape {v}")
        mean = mean + expression.mean.reshape(v, 3)
        kind, expression_basis = "pca", offsets(expression)
        names = tuple(f"exp{i:03d}" for i in range(len(expression_basis)))
    elif expression:
        bad = [name for name, d in expression if d.size != v3]
        if bad:
            raise ModelError(f"{path}: blendshapes {bad} do not have {v} vertices")
        expression_basis = np.stack([d.reshape(v, 3) for _, d in expression])
        names = tuple(name for name, _ in expression)
    albedo_mean = albedo = None
    if colour.mean.size:
        if colour.mean.size != v3:
            raise ModelError(f"{path}: colour model has {colour.mean.size // 3} vertices, the shape {v}")
        albedo_mean, albedo = f32(colour.mean.reshape(v, 3)), f32(offsets(colour))
    uv = uv_triangles = None
    if len(texcoords):
        uv = f32(np.column_stack([texcoords[:, 0], 1.0 - texcoords[:, 1]]))
        if len(texture_triangles):
            uv_triangles = torch.from_numpy(texture_triangles.astype(np.int64))
        elif len(texcoords) == v:
            uv_triangles = torch.from_numpy(triangles)
        else:
            raise ModelError(f"{path}: {len(texcoords)} texture coordinates for {v} vertices and no texture triangles")
    tri = torch.from_numpy(triangles)
    landmarks68 = None
    ibug = [str(i) for i in range(1, 69)]
    if all(k in landmarks for k in ibug):
        ids = np.array([landmarks[k] for k in ibug])
        if ids.min() < 0 or ids.max() >= v:
            raise ModelError(f"{path}: landmark definitions index outside {v} vertices")
        landmarks68 = LandmarkEmbedding.from_vertices(ids, tri)
    return MorphableModel(
        name="surrey", version=f"{path.stem} (eos model format v{version})", mean=f32(mean),
        identity_basis=f32(offsets(shape)), identity_std=f32(np.sqrt(shape.eigenvalues)),
        expression_basis=f32(expression_basis), expression_names=names, expression_kind=kind, triangles=tri,
        uv=uv, uv_triangles=uv_triangles, albedo_mean=albedo_mean, albedo_basis=albedo, landmarks68=landmarks68,
        face_mask=torch.ones(v), source=str(path),
    )
