"""The exporter registry (trimesh's `exchange/export.py` pattern): one module per format fills
`EXPORTERS`, and everything that writes meshes (`Mesh.export`, `Reconstruction.save`, the CLI, an
HTTP server streaming bytes) goes through `export_mesh` / `write_mesh`.

An exporter is `exporter(mesh, stem) -> {file name: bytes}`: the files of one mesh, named from
`stem`, meant to lie in one folder (an OBJ's MTL refers to its texture by bare file name). Meshes
are compacted (unused vertices and UVs dropped) before any exporter sees them.

Units: OBJ and PLY in millimetres, glTF in metres (each module's docstring says more).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import UsageError
from .gltf import export_glb
from .mesh import Mesh
from .obj import export_obj
from .ply import export_ply

Exporter = Callable[[Mesh, str], dict[str, bytes]]

EXPORTERS: dict[str, Exporter] = {"obj": export_obj, "ply": export_ply, "glb": export_glb}
# Formats whose export is several files (returned as a dict by `Mesh.export()` without a path).
MULTI_FILE = frozenset({"obj"})


def supported_formats() -> list[str]:
    """The file types `export_mesh` accepts (extensions without the dot), sorted."""
    return sorted(EXPORTERS)


def _exporter(file_type: str) -> Exporter:
    key = str(file_type).lower().lstrip(".")
    if key not in EXPORTERS:
        raise UsageError(f"unknown mesh format {file_type!r}; supported: {', '.join(supported_formats())}")
    return EXPORTERS[key]


def export_mesh(mesh: Mesh, file_type: str, stem: str = "mesh") -> dict[str, bytes]:
    """The files of `mesh` in `file_type` ("obj", "ply", "glb"; a leading dot and case are ignored),
    as {file name: bytes}, the main file first. `UsageError` for an unknown type."""
    exporter = _exporter(file_type)
    return exporter(mesh.compact(), stem)


def write_mesh(mesh: Mesh, path: str | Path, file_type: str | None = None) -> Path:
    """Write `mesh` to `path` (type from the extension unless `file_type` is given), companion files
    beside it; creates the folder. Returns `path`."""
    path = Path(path)
    if file_type is None and not path.suffix:
        raise UsageError(f"{path}: no extension to choose a format by; supported: {', '.join(supported_formats())}")
    files = export_mesh(mesh, file_type or path.suffix, path.stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    main, *companions = files
    path.write_bytes(files[main])
    for name in companions:
        (path.parent / name).write_bytes(files[name])
    return path
