"""ARKit names: the 52 names, the ICT mapping (sides checked on the model's geometry), the combined
halves, the weights, and a GLB written with ARKit targets."""
from __future__ import annotations

import numpy as np
import pytest

from facerecon.errors import UsageError
from facerecon.io import read_glb, validate_glb, write_glb
from facerecon.models.arkit import ABSENT, ARKIT_NAMES, ICT_EXTRAS, ICT_TO_ARKIT, arkit_targets, arkit_weights, gltf_weights

from ..browser.ecosystem import assert_khronos_valid

# Apple's ARFaceAnchor.BlendShapeLocation names, typed independently of the module's table.
APPLE_52 = set("""
browDownLeft browDownRight browInnerUp browOuterUpLeft browOuterUpRight cheekPuff cheekSquintLeft
cheekSquintRight eyeBlinkLeft eyeBlinkRight eyeLookDownLeft eyeLookDownRight eyeLookInLeft eyeLookInRight
eyeLookOutLeft eyeLookOutRight eyeLookUpLeft eyeLookUpRight eyeSquintLeft eyeSquintRight eyeWideLeft
eyeWideRight jawForward jawLeft jawOpen jawRight mouthClose mouthDimpleLeft mouthDimpleRight mouthFrownLeft
mouthFrownRight mouthFunnel mouthLeft mouthLowerDownLeft mouthLowerDownRight mouthPressLeft mouthPressRight
mouthPucker mouthRight mouthRollLower mouthRollUpper mouthShrugLower mouthShrugUpper mouthSmileLeft
mouthSmileRight mouthStretchLeft mouthStretchRight mouthUpperUpLeft mouthUpperUpRight noseSneerLeft
noseSneerRight tongueOut
""".split())


def test_the_52_names():
    assert len(APPLE_52) == 52 and len(ARKIT_NAMES) == 52 and set(ARKIT_NAMES) == APPLE_52
    assert list(ICT_TO_ARKIT) == list(ARKIT_NAMES)


def test_mapping_covers_every_ict_expression_once(ict_model):
    ict = list(ict_model.expression_names)
    sources = [s for v in ICT_TO_ARKIT.values() for s in v]
    assert sorted(sources) == sorted(ict) and len(ict) == 53
    assert ICT_TO_ARKIT["eyeBlinkLeft"] == ("eyeBlink_L",) and ICT_TO_ARKIT["cheekPuff"] == ("cheekPuff_L", "cheekPuff_R")
    assert ICT_TO_ARKIT["tongueOut"] == () and ABSENT == ("tongueOut",)


@pytest.mark.parametrize("name", ["eyeBlinkLeft", "mouthSmileLeft", "browOuterUpLeft", "cheekSquintLeft",
                                  "noseSneerLeft", "mouthDimpleLeft"])
def test_left_is_the_subjects_left(ict_model, name):
    """ARKit Left = the subject's left = +x (docs/conventions.md): the ICT source of each ...Left
    target moves the +x side of the mean face most, its ...Right mirror the -x side."""
    v = ict_model.mean.numpy()
    names = list(ict_model.expression_names)
    basis = ict_model.expression_basis.numpy()
    for arkit, sign in ((name, 1), (name[:-4] + "Right", -1)):
        moved = np.linalg.norm(basis[names.index(ICT_TO_ARKIT[arkit][0])], axis=1)
        assert sign * (v[:, 0] * moved).sum() / moved.sum() > 10  # mm off the mid-plane


def test_sideways_jaw_and_mouth_move_toward_their_side(ict_model):
    names, basis = list(ict_model.expression_names), ict_model.expression_basis.numpy()
    for name, sign in (("jawLeft", 1), ("jawRight", -1), ("mouthLeft", 1), ("mouthRight", -1)):
        offsets = basis[names.index(name)]
        moved = np.linalg.norm(offsets, axis=1)
        assert sign * (offsets[:, 0] * moved).sum() / moved.sum() > 1


def test_targets_combine_halves_and_keep_them_as_extras(ict_model):
    names, basis = list(ict_model.expression_names), ict_model.expression_basis.numpy()
    ark_names, ark, extra_names, extra = arkit_targets(names, ict_model.expression_basis)
    assert ark_names == list(ARKIT_NAMES) and extra_names == list(ICT_EXTRAS)
    assert ark.shape == (52, ict_model.num_vertices, 3) and extra.shape == (4, ict_model.num_vertices, 3)
    np.testing.assert_allclose(ark[ark_names.index("browInnerUp")],
                               basis[names.index("browInnerUp_L")] + basis[names.index("browInnerUp_R")], rtol=1e-6)
    np.testing.assert_allclose(ark[ark_names.index("eyeBlinkRight")], basis[names.index("eyeBlink_R")], rtol=1e-6)
    assert not ark[ark_names.index("tongueOut")].any()
    np.testing.assert_allclose(extra[extra_names.index("cheekPuff_R")], basis[names.index("cheekPuff_R")], rtol=1e-6)


def test_weights(ict_model):
    names = list(ict_model.expression_names)
    w = np.zeros(53)
    w[names.index("browInnerUp_L")], w[names.index("browInnerUp_R")] = 0.8, 0.4
    w[names.index("eyeBlink_L")] = 0.3
    by_name = arkit_weights(names, w)
    assert list(by_name) == list(ARKIT_NAMES)
    assert by_name["browInnerUp"] == pytest.approx(0.6) and by_name["eyeBlinkLeft"] == 0.3
    assert by_name["tongueOut"] == 0.0 and by_name["eyeBlinkRight"] == 0.0
    # gltf_weights reproduce the ICT blend exactly
    basis = ict_model.expression_basis.numpy().astype(np.float64)
    _, ark, _, extra = arkit_targets(names, basis)
    wa, we = gltf_weights(names, w)
    np.testing.assert_allclose(np.tensordot(wa, ark, 1) + np.tensordot(we, extra, 1), np.tensordot(w, basis, 1),
                               atol=1e-9)


def test_bad_input():
    with pytest.raises(UsageError, match="not ICT-FaceKit expression names"):
        arkit_targets(["a", "b"], np.zeros((2, 4, 3)))
    names = [s for v in ICT_TO_ARKIT.values() for s in v]
    with pytest.raises(UsageError, match="basis must have shape"):
        arkit_targets(names, np.zeros((3, 4, 3)))
    with pytest.raises(UsageError, match="weights must have shape"):
        arkit_weights(names, np.zeros(5))
    with pytest.raises(UsageError, match="NaN"):
        arkit_weights(names, np.full(len(names), np.nan))


def test_glb_with_arkit_targets_names_them_as_given(tmp_path, ict_head):
    names = list(ict_head.expression_names)
    ark_names, ark, extra_names, extra = arkit_targets(names, ict_head.expression_basis)
    targets = dict(zip(ark_names + extra_names, np.concatenate([ark, extra])))
    path = write_glb(tmp_path / "arkit.glb", ict_head.mean.numpy(), ict_head.triangles.numpy(), morph_targets=targets,
                     sparse_targets=True)
    assert validate_glb(path) == []
    assert_khronos_valid(path)
    gltf = read_glb(path)["gltf"]
    assert gltf["meshes"][0]["extras"]["targetNames"][:52] == list(ARKIT_NAMES)
    assert gltf["meshes"][0]["extras"]["targetNames"][52:] == list(ICT_EXTRAS)


def test_uses_ict_names_tells_ict_from_other_models(ict_model):
    from facerecon.models.arkit import uses_ict_names

    assert uses_ict_names(list(ict_model.expression_names))
    assert not uses_ict_names([f"pca{k}" for k in range(50)])
