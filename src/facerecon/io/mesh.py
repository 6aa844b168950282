"""`Mesh`: the arrays a file format needs (mm, plain numpy), with `export()` through the registry in
`facerecon.io.export`.

Units follow docs/conventions.md: millimetres, +y up, +z toward the camera, counter-clockwise
triangles outward, OBJ-convention UVs (v = 0 at the image bottom). Each format converts at its
boundary: glTF writes metres, OBJ and PLY millimetres.
"""
from __future__ import annotations

import io as _io
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .arrays import mesh_arrays, per_vertex, used_index_map, uv_arrays
from .images import PNG_COMPRESS_LEVEL


@dataclass
class Mesh:
    """A triangle mesh with optional UVs, texture, colours, normals and named morph targets.

    Attributes:
        vertices: (V, 3) positions in mm: the shape OBJ and PLY show (expression applied).
        triangles: (F, 3) int vertex indices, counter-clockwise = outward.
        uv: (T, 2) OBJ-convention texture coordinates, with uv_triangles (F, 3) indices into them
            (a separate UV index keeps seams), or both None.
        texture: (H, W, 3) float RGB in [0, 1] (e.g. the (S, S, 3) albedo), or None.
        texture_file: the texture's file name beside an OBJ (default `<stem>_albedo.png`).
        colors: (V, 3) float RGB in [0, 1] per vertex (PLY), or None.
        normals: (V, 3) normals of `vertices`, or None to compute area-weighted ones.
        morph_targets: name -> (V, 3) offsets in mm from `base_vertices` (glTF morph targets, in
            this order and under these names), or None.
        morph_weights: one weight per morph target (glTF `mesh.weights`), or None for zeros.
        base_vertices: (V, 3) the shape the morph targets are added to (the neutral expression);
            None = `vertices`.
        normal_map: (H, W, 3) tangent-space normal map in [0, 1] in the same UVs (+y up the image),
            or None: GLB `normalTexture`, OBJ's MTL `norm` / `map_Bump` (needs a texture for an MTL).
        normal_map_file: the normal map's file name beside an OBJ (default `<stem>_normals.png`).
    """

    vertices: np.ndarray
    triangles: np.ndarray
    uv: np.ndarray | None = None
    uv_triangles: np.ndarray | None = None
    texture: np.ndarray | None = None
    texture_file: str | None = None
    colors: np.ndarray | None = None
    normals: np.ndarray | None = None
    morph_targets: dict[str, np.ndarray] | None = None
    morph_weights: list[float] | None = None
    base_vertices: np.ndarray | None = None
    normal_map: np.ndarray | None = None
    normal_map_file: str | None = None
    # derived data computed once: "png" (texture, bytes) and "compact" (the fields' values, Mesh);
    # shared with the meshes `compact` and `with_changes` make. The arrays of a Mesh are treated as
    # immutable: an entry is valid while the objects it was made from are the mesh's (compared by
    # identity, and held, so an id is never reused).
    _derived: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.vertices, self.triangles = mesh_arrays(self.vertices, self.triangles)
        self.uv, self.uv_triangles = uv_arrays(self.uv, self.uv_triangles, self.triangles)
        n = len(self.vertices)
        for name in ("colors", "normals", "base_vertices"):
            if getattr(self, name) is not None:
                setattr(self, name, per_vertex(getattr(self, name), n, name))
        if self.morph_targets is not None:
            self.morph_targets = {str(k): per_vertex(v, n, f"morph target {k!r}") for k, v in self.morph_targets.items()}
            if self.morph_weights is not None and len(self.morph_weights) != len(self.morph_targets):
                raise UsageError(f"{len(self.morph_weights)} morph weights for {len(self.morph_targets)} morph targets")
        elif self.morph_weights is not None:
            raise UsageError("morph_weights given without morph_targets")
        for name in ("texture", "normal_map"):
            image = getattr(self, name)
            if image is not None:
                image = np.asarray(image)
                if image.ndim != 3 or image.shape[2] != 3 or not np.isfinite(image).all():
                    raise UsageError(f"{name} must be a finite (H, W, 3) float RGB image, got shape {image.shape}")
                setattr(self, name, image)
        if self.texture is not None and self.uv is None:
            raise UsageError("a texture needs uv and uv_triangles")
        if self.normal_map is not None and self.uv is None:
            raise UsageError("a normal map needs uv and uv_triangles")

    def texture_png(self) -> bytes:
        """The texture as PNG bytes (8-bit, rounded), encoded once per texture array."""
        if self.texture is None:
            raise UsageError("this mesh has no texture")
        cached = self._derived.get("png")
        if cached is None or cached[0] is not self.texture:
            from PIL import Image

            buf = _io.BytesIO()
            rgb = (np.clip(self.texture, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
            Image.fromarray(rgb).save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
            cached = self._derived["png"] = (self.texture, buf.getvalue())
        return cached[1]

    def normal_map_png(self) -> bytes:
        """The normal map as 8-bit PNG bytes."""
        if self.normal_map is None:
            raise UsageError("this mesh has no normal map")
        from PIL import Image

        buf = _io.BytesIO()
        Image.fromarray((np.clip(self.normal_map, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)).save(
            buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        return buf.getvalue()

    def with_changes(self, **changes) -> Mesh:
        """`dataclasses.replace(self, **changes)` that keeps the encoded texture when the texture is
        the same object (e.g. a scaled mesh, or one given a normal map)."""
        out = replace(self, **changes)
        if "png" in self._derived:
            out._derived["png"] = self._derived["png"]
        return out

    def compact(self) -> Mesh:
        """The same mesh without the vertices (and UVs) that no triangle uses; per-vertex arrays and
        morph targets are remapped with them. Returns `self` when nothing is unused. Computed once
        per mesh (every exporter calls it); the copy shares the encoded texture."""
        values = tuple(getattr(self, f.name) for f in fields(self) if f.init)
        cached = self._derived.get("compact")
        if cached is not None and len(cached[0]) == len(values) and all(a is b for a, b in zip(cached[0], values)):
            return cached[1]
        out = self._compacted()
        if out is not self:
            out._derived = self._derived  # the texture is the same object: one PNG for both
        self._derived["compact"] = (values, out)
        return out

    def _compacted(self) -> Mesh:
        kept, triangles = used_index_map(self.triangles, len(self.vertices))
        uv, uv_triangles = self.uv, self.uv_triangles
        if uv is not None:
            uv_kept, uv_triangles = used_index_map(self.uv_triangles, len(uv))
            uv = uv[uv_kept]
        if len(kept) == len(self.vertices) and (uv is None or len(uv) == len(self.uv)):
            return self
        pick = lambda a: None if a is None else a[kept]  # noqa: E731
        targets = None if self.morph_targets is None else {k: v[kept] for k, v in self.morph_targets.items()}
        return replace(self, vertices=self.vertices[kept], triangles=triangles, uv=uv, uv_triangles=uv_triangles,
                       colors=pick(self.colors), normals=pick(self.normals), base_vertices=pick(self.base_vertices),
                       morph_targets=targets)

    def export(self, path: str | Path | None = None, file_type: str | None = None):
        """Write the mesh, or return its bytes.

        Args:
            path: the file to write (its folder is created); the type comes from its extension
                unless `file_type` is given. Companion files (an OBJ's MTL and PNG) go beside it.
            file_type: "obj", "ply" or "glb" (see `facerecon.io.export.supported_formats()`);
                required without a path.

        Returns:
            With a path: the path. Without: the file's bytes for the one-file formats (PLY, GLB),
            and for OBJ a dict {file name: bytes} (mesh.obj, mesh.mtl, the PNG), because an OBJ's
            material and texture are separate files that refer to each other by name.
        """
        from .export import MULTI_FILE, export_mesh, write_mesh

        if path is not None:
            return write_mesh(self, path, file_type)
        if file_type is None:
            raise UsageError("export() without a path needs file_type ('obj', 'ply' or 'glb')")
        files = export_mesh(self, file_type)
        return files if file_type.lower().lstrip(".") in MULTI_FILE else next(iter(files.values()))

