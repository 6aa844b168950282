"""Finding, fetching and loading models by name or path.

Search order for a model NAME: an explicit path (`--model PATH`), `$FACERECON_MODEL_DIR`, the
user cache (`$XDG_CACHE_HOME/facerecon` or `~/.cache/facerecon`), then -- only where the caller
allows it and the model's licence permits it -- a download into the cache. Only ICT-FaceKit
(MIT) is downloadable; FLAME and BFM need registration with their owners, and the error says so.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..errors import ModelError
from .morphable import MorphableModel

ICT_COMMIT = "da5f95a607f5e6b37755b38d3385d7f2853732e5"
ICT_BASE_URL = f"https://raw.githubusercontent.com/ICT-VGL/ICT-FaceKit/{ICT_COMMIT}/FaceXModel"
# SHA-256 of the published files we could verify byte for byte; the other OBJ files at the same
# pinned commit are checked structurally (vertex count, topology) when converted.
ICT_SHA256 = {
    "ICTFaceModelMaterial.mtl": "9c2c6daf384a2d1f5536d330339a897a312f57d89587b9be31bec7fe7b37c297",
    "generic_neutral_mesh.obj": "eedbc2576d8e5ea57f55255b8f98263213a1efb5431d8bfceed1d7aef10271f9",
    "identity000.obj": "918160cf82d541336b4c367cf93199c9827832bde02511b8fbdf9019d6f1a773",
    "jawOpen.obj": "8d84355e10f48b05550980cee385bcd426f4797090da76a20de0535bb2f99f4a",
    "vertex_indices.json": "4f9b35306299980dd46bee4a6b79bb95dfae1953693b74b35a64f7febfd081a5",
}


@dataclass(frozen=True)
class ModelEntry:
    """A known model: where it lives under a model directory and how a user obtains it."""

    name: str
    folder: str
    files: tuple[str, ...]  # candidates, first found wins (a folder name means an OBJ folder)
    description: str
    obtain: str


KNOWN_MODELS: dict[str, ModelEntry] = {
    "ict": ModelEntry(
        "ict", "ict-facekit-light", ("ict_facekit_light.npz", "FaceXModel", "raw"),
        "ICT-FaceKit Light: full head, 100 identity modes, 53 ARKit blendshapes (MIT)",
        "run `facerecon models fetch ict` (downloads ICT-FaceKit at a pinned commit from GitHub and "
        "converts it), or put ict_facekit_light.npz in MODEL_DIR/ict-facekit-light/"),
    "flame": ModelEntry(
        "flame", "flame", ("flame2023.pkl", "flame2020.pkl", "generic_model.pkl"),
        "FLAME 2020/2023 (articulated jaw, neck, eyes)",
        "register at https://flame.is.tue.mpg.de, download FLAME 2020 or 2023, and put generic_model.pkl "
        "(or flame2023.pkl) in MODEL_DIR/flame/ (optionally DECA's landmark_embedding.npy beside it)"),
    "bfm2009": ModelEntry(
        "bfm2009", "bfm", ("01_MorphableModel.mat",),
        "Basel Face Model 2009",
        "register at https://faces.dmi.unibas.ch/bfm/ and put 01_MorphableModel.mat in MODEL_DIR/bfm/"),
    "bfm2017": ModelEntry(
        "bfm2017", "bfm", ("model2017-1_face12_nomouth.h5", "model2017-1_bfm_nomouth.h5"),
        "Basel Face Model 2017",
        "register at https://faces.dmi.unibas.ch/bfm/bfm2017.html and put the .h5 file in MODEL_DIR/bfm/"),
    "bfm2019": ModelEntry(
        "bfm2019", "bfm", ("model2019_face12.h5", "model2019_fullHead.h5", "model2019_bfm.h5"),
        "Basel Face Model 2019",
        "register at https://faces.dmi.unibas.ch/bfm/bfm2019.html and put the .h5 file in MODEL_DIR/bfm/"),
    "surrey": ModelEntry(
        "surrey", "surrey", ("sfm_shape_3448.bin",),
        "Surrey Face Model, shape only, 3448 vertices (eos)",
        "download share/sfm_shape_3448.bin (and expression_blendshapes_3448.bin) from the eos GitHub "
        "repository (patrikhuber/eos) into MODEL_DIR/surrey/"),
}


def cache_dir() -> Path:
    """The user cache for converted and downloaded models: `$FACERECON_CACHE_DIR`, else
    `$XDG_CACHE_HOME/facerecon`, else `~/.cache/facerecon`."""
    if os.environ.get("FACERECON_CACHE_DIR"):
        return Path(os.environ["FACERECON_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "facerecon"


def model_dirs() -> list[Path]:
    """Directories searched for models, in order: `$FACERECON_MODEL_DIR` (os.pathsep-separated), the cache."""
    dirs = [Path(p) for p in os.environ.get("FACERECON_MODEL_DIR", "").split(os.pathsep) if p]
    return dirs + [cache_dir()]


def find_model(name: str) -> Path | None:
    """The first file or folder that holds model `name`, or None."""
    entry = _entry(name)
    for root in model_dirs():
        for candidate in entry.files:
            p = root / entry.folder / candidate
            if p.is_file() or (p.is_dir() and (p / "generic_neutral_mesh.obj").is_file()):
                return p
    return None


def list_models() -> list[tuple[ModelEntry, Path | None]]:
    """Every known model with the path it was found at (None when absent)."""
    return [(entry, find_model(name)) for name, entry in KNOWN_MODELS.items()]


def load_model(name_or_path: str | Path = "ict", device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32, download: bool = False) -> MorphableModel:
    """Load a model by known name ("ict", "flame", "bfm2009", "bfm2017", "bfm2019", "surrey") or by path.

    Raises:
        ModelError: the model cannot be found (the message says what to download and where to put
            it), or its file is corrupt, truncated, of an unknown format or inconsistent.
    """
    text = str(name_or_path)
    if text in KNOWN_MODELS:
        path = find_model(text)
        if path is None:
            if download and text == "ict":
                path = fetch_model("ict")
            else:
                where = ", ".join(str(d / KNOWN_MODELS[text].folder) for d in model_dirs())
                raise ModelError(f"model {text!r} not found (looked in: {where}). To get it: "
                                 f"{KNOWN_MODELS[text].obtain}. MODEL_DIR is $FACERECON_MODEL_DIR or {cache_dir()}.")
    else:
        path = Path(text)
        if not path.exists():
            raise ModelError(f"{path}: no such model file or folder, and not a known model name "
                             f"({', '.join(KNOWN_MODELS)})")
    return load_model_file(path).to(device=device, dtype=dtype)


def load_model_file(path: str | Path) -> MorphableModel:
    """Load a model file or folder, choosing the loader from its name and content."""
    path = Path(path)
    return _loader_for(path)(path)


def fetch_model(name: str, base_url: str = ICT_BASE_URL, dest: Path | None = None,
                progress: Callable[[str], None] | None = None) -> Path:
    """Download and convert a downloadable model into the cache (or `dest`); returns the npz path.

    Only ICT-FaceKit can be fetched; others raise `ModelError` saying how to obtain them.
    `base_url` exists so the download path can be tested against a local `file://` folder.
    """
    from .ict import INDEX_JSON, NEUTRAL_OBJ, NPZ_NAME, load_ict_folder, save_ict_npz

    entry = _entry(name)
    if name != "ict":
        raise ModelError(f"model {name!r} cannot be downloaded automatically: {entry.obtain}")
    target = (dest or cache_dir()) / entry.folder / NPZ_NAME
    with tempfile.TemporaryDirectory(prefix="facerecon-fetch-") as tmp:
        folder = Path(tmp)
        _download(f"{base_url}/{INDEX_JSON}", folder / INDEX_JSON, progress)
        import json

        expressions = json.loads((folder / INDEX_JSON).read_text())["expressions"]
        names = [NEUTRAL_OBJ, "ICTFaceModelMaterial.mtl"] + [f"identity{i:03d}.obj" for i in range(100)]
        names += [f"{e}.obj" for e in expressions]
        for fname in names:
            _download(f"{base_url}/{fname}", folder / fname, progress)
        model = load_ict_folder(folder, require_complete=True)
        save_ict_npz(model, target)
    return target


def _download(url: str, path: Path, progress: Callable[[str], None] | None) -> None:
    if progress:
        progress(path.name)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(path, "wb") as out:
            shutil.copyfileobj(resp, out)
    except (urllib.error.URLError, OSError) as exc:
        raise ModelError(
            f"could not download {url} ({exc}). Offline? Download the ICT-FaceKit repository at commit "
            f"{ICT_COMMIT} (folder FaceXModel/) by hand and run `facerecon models fetch ict --from "
            f"PATH/FaceXModel`, or copy ict_facekit_light.npz into {cache_dir() / 'ict-facekit-light'}") from None
    expected = ICT_SHA256.get(path.name)
    if expected is not None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected:
            raise ModelError(f"{url}: SHA-256 {digest} does not match the pinned {expected}; refusing to use it")


def _entry(name: str) -> ModelEntry:
    try:
        return KNOWN_MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(KNOWN_MODELS)}") from None


def _loader_for(path: Path) -> Callable[[Path], MorphableModel]:
    if path.is_dir():
        from .ict import load_ict_folder

        return load_ict_folder
    suffix = path.suffix.lower()
    if suffix == ".npz":
        from .ict import load_ict_npz

        return load_ict_npz
    if suffix == ".pkl":
        from .flame import load_flame

        return load_flame
    if suffix == ".mat":
        from .bfm import load_bfm2009

        return load_bfm2009
    if suffix in (".h5", ".hdf5"):
        from .bfm import load_bfm_h5

        return load_bfm_h5
    if suffix == ".bin":
        from .surrey import load_surrey

        return load_surrey
    raise ModelError(f"{path}: unknown model format {suffix!r} (expected .npz, .pkl, .mat, .h5, .bin or an "
                     "ICT-FaceKit folder)")
