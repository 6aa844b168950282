"""`Mesh`: checks on creation, compaction (remapping every per-vertex array), the texture's PNG."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from facerecon.errors import UsageError
from facerecon.io import Mesh

from .meshes import seamed_quad


def _with_unused():
    v, t, uv, ut = seamed_quad()
    v = np.vstack([v[:2], [[9.0, 9.0, 9.0]], v[2:]])  # vertex 2 unused
    t = np.where(t >= 2, t + 1, t)
    uv = np.vstack([uv, [[0.9, 0.9]]])  # last UV unused
    n = len(v)
    return Mesh(v, t, uv, ut, texture=np.full((4, 4, 3), 0.25), colors=np.arange(n * 3.0).reshape(n, 3) / 20,
                normals=np.tile([0.0, 0.0, 1.0], (n, 1)), morph_targets={"a": np.arange(n * 3.0).reshape(n, 3)},
                morph_weights=[0.5], base_vertices=v - 1)


def test_compact_drops_unused_vertices_and_uvs_and_remaps_everything():
    mesh = _with_unused()
    small = mesh.compact()
    keep = [0, 1, 3, 4]
    np.testing.assert_array_equal(small.vertices, mesh.vertices[keep])
    np.testing.assert_array_equal(small.vertices[small.triangles], mesh.vertices[mesh.triangles])
    np.testing.assert_array_equal(small.uv[small.uv_triangles], mesh.uv[mesh.uv_triangles])
    assert len(small.uv) == 6
    for name in ("colors", "normals", "base_vertices"):
        np.testing.assert_array_equal(getattr(small, name), getattr(mesh, name)[keep])
    np.testing.assert_array_equal(small.morph_targets["a"], mesh.morph_targets["a"][keep])
    assert small.morph_weights == [0.5] and small.compact() is small


def test_texture_png_is_encoded_once():
    mesh = _with_unused()
    png = mesh.texture_png()
    assert mesh.texture_png() is png
    assert np.asarray(Image.open(io.BytesIO(png))).tolist() == [[[64, 64, 64]] * 4] * 4



def test_compact_is_computed_once_and_redone_when_a_field_is_replaced():
    mesh = _with_unused()
    small = mesh.compact()
    assert mesh.compact() is small
    assert small.texture_png() is mesh.texture_png()  # one encoding for the mesh and its compact copy
    mesh.vertices = mesh.vertices + 1.0
    moved = mesh.compact()
    assert moved is not small
    np.testing.assert_array_equal(moved.vertices, small.vertices + 1.0)


def test_with_changes_keeps_the_encoded_texture_only_when_it_is_the_same():
    mesh = _with_unused()
    png = mesh.texture_png()
    assert mesh.with_changes(vertices=mesh.vertices * 2).texture_png() is png
    other = mesh.with_changes(texture=np.full((4, 4, 3), 0.5))
    assert other.texture_png() is not png
    assert np.asarray(Image.open(io.BytesIO(other.texture_png()))).tolist() == [[[128, 128, 128]] * 4] * 4

@pytest.mark.parametrize("kwargs, match", [
    (dict(colors=np.zeros((3, 3))), "colors must be one per vertex"),
    (dict(morph_targets={"a": np.zeros((4, 3))}, morph_weights=[1.0, 2.0]), "2 morph weights for 1"),
    (dict(morph_weights=[1.0]), "without morph_targets"),
    (dict(texture=np.zeros((4, 4))), "texture must be a finite"),
    (dict(texture=np.zeros((4, 4, 3)), uv=None, uv_triangles=None), "needs uv"),
    (dict(triangles=[[0, 1, 7]]), "indices must be in"),
    (dict(vertices=np.full((4, 3), np.nan)), "NaN"),
])
def test_bad_meshes_raise_usage_errors(kwargs, match):
    v, t, uv, ut = seamed_quad()
    args = dict(vertices=v, triangles=t, uv=uv, uv_triangles=ut) | kwargs
    with pytest.raises(UsageError, match=match):
        Mesh(**args)


def test_export_without_path_needs_a_type():
    with pytest.raises(UsageError, match="needs file_type"):
        _with_unused().export()
