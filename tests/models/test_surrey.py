"""Surrey/eos loader: files from the test writer (checked byte for byte against eos's own
`save_model`) and a golden file written by eos itself."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from facerecon.errors import ModelError, UsageError
from facerecon.models.surrey import load_blendshapes, load_surrey

from .format_writers import EosPca, icosphere, write_eos_blendshapes, write_eos_model

VERTS, FACES = icosphere(2, radius=90.0)  # mm
V = len(VERTS)

# Written by eos-py 1.5.0 (pip install eos-py) with eos.morphablemodel.save_model: a one-triangle
# model, format version 4, one identity mode (eigenvalue 4) along (0, 0, 0.6, 0, 0, 0.8, 0, 0, 0),
# a "smile" blendshape, landmark {"eye": 2}, three texture coordinates, no colour model.
EOS_GOLDEN = bytes.fromhex(
    "040000000900000001000000000000000000000000002041000020420000000000002041000000000000204200002041"
    "090000000100000000000000000000009a99193f0000000000000000cdcc4c3f00000000000000000000000001000000"
    "010000000000804001000000000000000000000001000000020000000000000001000000000000000000000000000000"
    "010000000000000000000000000100000001000000000000000500000000000000736d696c6509000000010000000000"
    "000000000000000000000000803f00000040000000000000000000000000000000000001000000000000000300000000"
    "00000065796502000000030000000000000000000000000000000000000000000000000000000000f03f000000000000"
    "00000000000000000000000000000000d03f0000000000000000"
)


def _pca(rng, k: int, mean: np.ndarray, scale: float) -> EosPca:
    q, _ = np.linalg.qr(rng.normal(size=(3 * V, k)))
    return EosPca(mean.reshape(-1), q, (scale * np.linspace(1.0, 0.2, k)) ** 2, FACES)


@pytest.fixture(scope="module")
def parts():
    rng = np.random.default_rng(0)
    return {
        "shape": _pca(rng, 4, VERTS, 6.0),
        "colour": _pca(rng, 2, np.full((V, 3), 0.5), 0.05),
        "expression": _pca(rng, 3, rng.normal(scale=0.3, size=(V, 3)), 3.0),
        "blendshapes": [(name, rng.normal(size=3 * V)) for name in ("anger", "disgust", "fear")],
        "uv": rng.uniform(0, 1, (V, 2)),
    }


def _unit(k: int, n: int) -> torch.Tensor:
    e = torch.zeros(1, n)
    e[0, k] = 1.0
    return e


def test_eos_golden_file(tmp_path):
    path = tmp_path / "golden.bin"
    path.write_bytes(EOS_GOLDEN)
    model = load_surrey(path)
    np.testing.assert_allclose(model.mean.numpy(), [[0, 0, 10], [40, 0, 10], [0, 40, 10]])
    np.testing.assert_allclose(model.identity_basis[0].numpy(), [[0, 0, 1.2], [0, 0, 1.6], [0, 0, 0]], rtol=1e-6)
    assert model.identity_std.tolist() == [2.0]
    assert (model.expression_kind, model.expression_names) == ("blendshape", ("smile",))
    np.testing.assert_allclose(model.expression_basis[0].numpy(), [[0, 0, 0], [1, 2, 0], [0, 0, 0]])
    np.testing.assert_allclose(model.uv.numpy(), [[0, 1], [1, 1], [0, 0.75]])  # v flipped to bottom-left
    assert model.triangles.tolist() == [[0, 1, 2]] and model.albedo_mean is None
    write_eos_model(tmp_path / "mine.bin", EosPca(np.array([0, 0, 10, 40, 0, 10, 0, 40, 10.0]),
                                                  np.array([[0, 0, 0.6, 0, 0, 0.8, 0, 0, 0]]).T, np.array([4.0]),
                                                  np.array([[0, 1, 2]])),
                    expression=[("smile", np.array([0, 0, 0, 1, 2, 0, 0, 0, 0.0]))], landmarks={"eye": 2},
                    texcoords=np.array([[0, 0], [1, 0], [0, 0.25]]))
    assert (tmp_path / "mine.bin").read_bytes() == EOS_GOLDEN


@pytest.mark.parametrize("version", [1, 2, 3, 4])
@pytest.mark.parametrize("layout", ["current", "two_bases"])
def test_round_trip_every_version_and_pca_layout(tmp_path, parts, version, layout):
    path = tmp_path / "sfm_shape_162.bin"
    shape, colour = parts["shape"], parts["colour"]
    write_eos_model(path, shape, colour, texcoords=parts["uv"], version=version, pca_layout=layout)
    model = load_surrey(path)
    assert (model.name, model.source) == ("surrey", str(path))
    assert model.version == f"sfm_shape_162 (eos model format v{version})"
    assert (model.num_vertices, model.num_identity, model.num_expression, model.num_albedo) == (V, 4, 0, 2)
    np.testing.assert_allclose(model.mean.numpy(), VERTS, atol=1e-4)
    np.testing.assert_allclose(model.identity_std.numpy(), np.sqrt(shape.eigenvalues), rtol=1e-6)
    for k in range(4):
        expected = shape.mean + np.sqrt(shape.eigenvalues[k]) * shape.basis[:, k]
        np.testing.assert_allclose(model.vertices(identity=_unit(k, 4))[0].numpy(), expected.reshape(-1, 3), atol=1e-4)
    expected = colour.mean + np.sqrt(colour.eigenvalues[1]) * colour.basis[:, 1]
    np.testing.assert_allclose(model.albedo(_unit(1, 2))[0].numpy(), expected.reshape(-1, 3), atol=1e-6)
    np.testing.assert_allclose(model.uv.numpy(), np.column_stack([parts["uv"][:, 0], 1 - parts["uv"][:, 1]]),
                               atol=1e-6)
    assert torch.equal(model.uv_triangles, model.triangles) and torch.equal(model.triangles, torch.from_numpy(FACES))
    assert torch.equal(model.face_mask, torch.ones(V))


def test_pca_expression_model_mean_joins_the_neutral(tmp_path, parts):
    path = tmp_path / "model.bin"
    expression = parts["expression"]
    write_eos_model(path, parts["shape"], expression=expression, version=2)
    model = load_surrey(path)
    assert model.expression_kind == "pca" and model.num_expression == 3
    neutral = parts["shape"].mean + expression.mean
    np.testing.assert_allclose(model.mean.numpy(), neutral.reshape(-1, 3), atol=1e-4)
    expected = neutral + np.sqrt(expression.eigenvalues[2]) * expression.basis[:, 2]
    np.testing.assert_allclose(model.vertices(expression=_unit(2, 3))[0].numpy(), expected.reshape(-1, 3), atol=1e-4)


def test_blendshapes_file_beside_the_shape_model(tmp_path, parts):
    model_path = tmp_path / "sfm_shape_162.bin"
    write_eos_model(model_path, parts["shape"], version=1)
    write_eos_blendshapes(tmp_path / "expression_blendshapes_162.bin", parts["blendshapes"])
    explicit = load_surrey(model_path, blendshapes_path=tmp_path / "expression_blendshapes_162.bin")
    found = load_surrey(model_path)
    for model in (explicit, found):
        assert model.expression_kind == "blendshape"
        assert model.expression_names == ("anger", "disgust", "fear")
        weights = torch.tensor([[0.0, 0.5, 0.0]])
        expected = VERTS + 0.5 * parts["blendshapes"][1][1].reshape(-1, 3)
        np.testing.assert_allclose(model.vertices(expression=weights)[0].numpy(), expected, atol=1e-4)
    assert [n for n, _ in load_blendshapes(tmp_path / "expression_blendshapes_162.bin")][0] == "anger"


def test_blendshapes_for_a_model_with_expressions_is_a_usage_error(tmp_path, parts):
    write_eos_model(tmp_path / "m.bin", parts["shape"], expression=parts["blendshapes"], version=3)
    write_eos_blendshapes(tmp_path / "b.bin", parts["blendshapes"])
    with pytest.raises(UsageError):
        load_surrey(tmp_path / "m.bin", blendshapes_path=tmp_path / "b.bin")


def test_texture_triangles_and_68_landmark_definitions(tmp_path, parts):
    uv = np.random.default_rng(1).uniform(0, 1, (V + 5, 2))
    tti = (FACES + 5) % (V + 5)
    landmarks = {str(i): 2 * i for i in range(1, 69)}
    write_eos_model(tmp_path / "m.bin", parts["shape"], landmarks=landmarks, texcoords=uv, texture_triangles=tti)
    model = load_surrey(tmp_path / "m.bin")
    assert model.uv.shape == (V + 5, 2) and torch.equal(model.uv_triangles, torch.from_numpy(tti))
    points = model.landmark_points(model.vertices())[0]
    torch.testing.assert_close(points, model.mean[2 * torch.arange(1, 69)])


def _corrupt(tmp_path, parts, case):
    target = tmp_path / "bad.bin"
    if case == "missing":
        return tmp_path / "absent.bin"
    write_eos_model(target, parts["shape"], parts["colour"], expression=parts["blendshapes"],
                    texcoords=parts["uv"])
    data = target.read_bytes()
    if case.startswith("truncated"):
        target.write_bytes(data[: int(len(data) * float(case.split("_")[1]))])
    elif case == "trailing":
        target.write_bytes(data + b"\x00" * 7)
    elif case == "version0":
        target.write_bytes(b"\x00\x00\x00\x00" + data[4:])
    elif case == "version9":
        target.write_bytes(b"\x09\x00\x00\x00" + data[4:])
    elif case == "garbage":
        target.write_bytes(b"\x04\x00\x00\x00" + b"\xff" * 200)
    elif case == "empty":
        target.write_bytes(b"")
    elif case == "bad_triangles":
        write_eos_model(target, EosPca(parts["shape"].mean, parts["shape"].basis, parts["shape"].eigenvalues,
                                       FACES + V))
    elif case == "blendshape_size":
        write_eos_model(target, parts["shape"], expression=[("short", np.zeros(9))])
    return target


@pytest.mark.parametrize("case", ["missing", "truncated_0.01", "truncated_0.5", "truncated_0.999", "trailing",
                                  "version0", "version9", "garbage", "empty", "bad_triangles", "blendshape_size"])
def test_bad_files_raise_model_error(tmp_path, parts, case):
    target = _corrupt(tmp_path, parts, case)
    with pytest.raises(ModelError, match=str(target)):
        load_surrey(target)


def test_truncated_blendshapes_raise_model_error(tmp_path, parts):
    path = tmp_path / "b.bin"
    write_eos_blendshapes(path, parts["blendshapes"])
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ModelError, match="b.bin"):
        load_blendshapes(path)
