"""io.animation: the animated GLB (mesh + morph targets + weights/rotation/translation channels)
passes the Khronos validator (tests/io/conftest.py runs it on every GLB written here) and reads back."""
from __future__ import annotations

import numpy as np
import pytest

from facerecon.errors import UsageError
from facerecon.io import Mesh, read_glb, validate_glb
from facerecon.io.animation import HeadAnimation, quaternions_wxyz, read_animation, write_animated_glb

from .meshes import ict_export_mesh


def _small_mesh() -> Mesh:
    vertices = np.array([[0.0, 0, 0], [10, 0, 0], [0, 10, 0], [10, 10, 0]])
    triangles = np.array([[0, 1, 2], [1, 3, 2]])
    up = np.zeros((4, 3))
    up[3, 2] = 5.0
    side = np.zeros((4, 3))
    side[0, 0] = -3.0
    return Mesh(vertices, triangles, morph_targets={"up": up, "side": side}, morph_weights=[0.0, 0.0])


def _animation(n: int = 5, k: int = 2) -> HeadAnimation:
    t = np.linspace(0, 1, n)
    rot = np.stack([0.3 * np.sin(3 * t), 0.2 * t, np.zeros(n)], 1)
    trans = np.stack([10 * t, np.zeros(n), -500 + 20 * t], 1)
    return HeadAnimation(t + 2.0, np.clip(np.outer(t, np.ones(k)), 0, 1), rot, trans)


def test_channels_and_keys_round_trip(tmp_path):
    anim = _animation()
    path = write_animated_glb(tmp_path / "anim.glb", _small_mesh(), anim, yfov_rad=0.8, aspect_ratio=4 / 3)
    assert validate_glb(path) == []
    got = read_animation(path)
    assert sorted(got["channels"]) == [(0, "rotation"), (0, "translation"), (0, "weights")]
    np.testing.assert_allclose(got["times_s"], anim.times_s - 2.0, atol=1e-6)
    np.testing.assert_allclose(got["weights"], anim.weights, atol=1e-6)
    np.testing.assert_allclose(got["translation_m"], anim.translation / 1000, atol=1e-6)
    np.testing.assert_allclose(got["rotation_xyzw"], quaternions_wxyz(anim.rotation)[:, [1, 2, 3, 0]], atol=1e-6)
    doc = read_glb(path)["gltf"]
    assert doc["nodes"][0]["name"] == "head" and doc["nodes"][1]["camera"] == 0
    assert doc["meshes"][0]["weights"] == pytest.approx(list(anim.weights[0]))


def test_ict_head_with_arkit_targets(tmp_path, ict_model):
    mesh = ict_export_mesh(ict_model, texture_size=32)
    k = len(mesh.morph_targets)
    anim = _animation(4, k)
    path = write_animated_glb(tmp_path / "head.glb", mesh, anim)
    glb = read_glb(path)
    assert glb["target_names"][:52][0] == "eyeBlinkLeft" and len(glb["target_names"]) == k
    assert read_animation(path)["weights"].shape == (4, k)


def test_quaternions_are_continuous_and_unit():
    rot = np.array([[0, 0, 3.1], [0, 0, -3.1], [0, 0, 3.0], [0.0, 0, 0]])
    q = quaternions_wxyz(rot)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0)
    assert (np.sum(q[1:] * q[:-1], axis=1) > 0).all()
    np.testing.assert_allclose(quaternions_wxyz(np.zeros((1, 3))), [[1, 0, 0, 0]])


@pytest.mark.parametrize("change, match", [
    (dict(weights=np.zeros((5, 3))), "3 weights per key"),
    (dict(times_s=np.array([0, 1, 1, 2, 3.0])), "strictly increasing"),
    (dict(rotation=np.full((5, 3), np.nan)), "NaN"),
])
def test_bad_animations(tmp_path, change, match):
    base = _animation()
    fields = dict(times_s=base.times_s, weights=base.weights, rotation=base.rotation, translation=base.translation)
    with pytest.raises(UsageError, match=match):
        write_animated_glb(tmp_path / "broken.glb", _small_mesh(), HeadAnimation(**{**fields, **change}))
