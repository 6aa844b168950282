"""BFM loaders: small files in the 2009 `.mat` and 2017/2019 `.h5` layouts with a known mean and basis."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from scipy.io import savemat

from facerecon.errors import ModelError
from facerecon.models.bfm import load_bfm2009, load_bfm_h5

from .format_writers import Pca, icosphere, write_bfm2009_mat, write_bfm_h5

VERTS, FACES = icosphere(2, radius=80.0)  # mm, counter-clockwise seen from outside
V = len(VERTS)


def _orthonormal(rng, k: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(3 * V, k)))
    return q


def _unit(k: int, n: int) -> torch.Tensor:
    e = torch.zeros(1, n)
    e[0, k] = 1.0
    return e


def _assert_outward(model) -> None:
    tri = model.triangles.numpy()
    mean = model.mean.numpy()
    a, b, c = (mean[tri[:, i]] for i in range(3))
    assert (np.einsum("fc,fc->f", np.cross(b - a, c - a), a + b + c) > 0).all()


@pytest.fixture(scope="module")
def bfm2009(tmp_path_factory):
    rng = np.random.default_rng(0)
    raw = dict(
        shape_mu=VERTS.reshape(-1) * 1000.0,  # micrometres
        shape_pc=_orthonormal(rng, 6), shape_ev=np.array([9000.0, 6000, 4000, 2500, 1500, 800]),
        tex_mu=np.full(3 * V, 140.0) + rng.uniform(-20, 20, 3 * V),  # 0..255
        tex_pc=_orthonormal(rng, 4), tex_ev=np.array([40.0, 25, 12, 6]),
        tl=FACES[:, [0, 2, 1]] + 1,  # 1-based and clockwise, as published
    )
    path = tmp_path_factory.mktemp("bfm") / "01_MorphableModel.mat"
    write_bfm2009_mat(path, **raw)
    return path, raw


def test_bfm2009_round_trip_in_mm(bfm2009):
    path, raw = bfm2009
    model = load_bfm2009(path)
    assert (model.name, model.version, model.source) == ("bfm2009", "2009", str(path))
    assert (model.num_vertices, model.num_identity, model.num_expression, model.num_albedo) == (V, 6, 0, 4)
    np.testing.assert_allclose(model.mean.numpy(), VERTS, rtol=1e-5)
    np.testing.assert_allclose(model.identity_std.numpy(), raw["shape_ev"] / 1000.0, rtol=1e-6)
    for k in (0, 3, 5):
        expected = (raw["shape_mu"] + raw["shape_ev"][k] * raw["shape_pc"][:, k]).reshape(-1, 3) / 1000.0
        np.testing.assert_allclose(model.vertices(identity=_unit(k, 6))[0].numpy(), expected, atol=1e-4)
    for k in (0, 3):
        expected = (raw["tex_mu"] + raw["tex_ev"][k] * raw["tex_pc"][:, k]).reshape(-1, 3) / 255.0
        np.testing.assert_allclose(model.albedo(_unit(k, 4))[0].numpy(), expected, atol=1e-5)
    assert 0.4 < float(model.albedo_mean.mean()) < 0.7
    assert torch.equal(model.face_mask, torch.ones(V))


def test_bfm2009_clockwise_triangles_are_flipped_outward(bfm2009):
    model = load_bfm2009(bfm2009[0])
    assert torch.equal(model.triangles, torch.from_numpy(FACES))
    _assert_outward(model)


def test_bfm_landmarks_from_vertex_indices(bfm2009):
    ids = np.arange(68) * 2
    model = load_bfm2009(bfm2009[0], landmarks68_vertices=ids)
    assert len(model.landmarks68) == 68
    points = model.landmark_points(model.vertices())[0]
    torch.testing.assert_close(points, model.mean[torch.from_numpy(ids)])


@pytest.fixture(scope="module")
def bfm2017(tmp_path_factory):
    rng = np.random.default_rng(1)
    shape = Pca(VERTS.reshape(-1), _orthonormal(rng, 5), np.array([25.0, 16, 9, 4, 1]))  # mm, variances
    expression = Pca(rng.normal(scale=0.5, size=3 * V), _orthonormal(rng, 3), np.array([9.0, 4, 1]))
    color = Pca(np.full(3 * V, 0.5) + rng.uniform(-0.1, 0.1, 3 * V), _orthonormal(rng, 2), np.array([0.01, 0.004]))
    path = tmp_path_factory.mktemp("bfm") / "model2017-1_bfm_nomouth.h5"
    write_bfm_h5(path, shape, FACES, color=color, expression=expression)
    return path, shape, expression, color


def test_bfm2017_round_trip_with_expression_and_albedo(bfm2017):
    path, shape, expression, color = bfm2017
    model = load_bfm_h5(path)
    assert (model.name, model.version, model.source) == ("bfm2017", "model2017-1_bfm_nomouth", str(path))
    assert (model.num_identity, model.num_expression, model.num_albedo) == (5, 3, 2)
    assert model.expression_kind == "pca" and model.expression_names == ("exp000", "exp001", "exp002")
    neutral = shape.mean + expression.mean  # the expression model's mean belongs to the neutral face
    np.testing.assert_allclose(model.mean.numpy(), neutral.reshape(-1, 3), atol=1e-4)
    np.testing.assert_allclose(model.identity_std.numpy(), np.sqrt(shape.variance), rtol=1e-6)
    for k in range(5):
        expected = neutral + np.sqrt(shape.variance[k]) * shape.basis[:, k]
        np.testing.assert_allclose(model.vertices(identity=_unit(k, 5))[0].numpy(), expected.reshape(-1, 3), atol=1e-4)
    expected = neutral + np.sqrt(expression.variance[1]) * expression.basis[:, 1]
    np.testing.assert_allclose(model.vertices(expression=_unit(1, 3))[0].numpy(), expected.reshape(-1, 3), atol=1e-4)
    expected = color.mean + np.sqrt(color.variance[0]) * color.basis[:, 0]
    np.testing.assert_allclose(model.albedo(_unit(0, 2))[0].numpy(), expected.reshape(-1, 3), atol=1e-6)
    assert torch.equal(model.triangles, torch.from_numpy(FACES))
    _assert_outward(model)


def test_bfm_h5_shape_only(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "model2019_face12.h5"
    write_bfm_h5(path, Pca(VERTS.reshape(-1), _orthonormal(rng, 2), np.array([4.0, 1.0])), FACES[:, [0, 2, 1]])
    model = load_bfm_h5(path)
    assert (model.num_expression, model.albedo_mean, model.version) == (0, None, "model2019_face12")
    _assert_outward(model)


def _mat_case(tmp_path, good, case):
    path, raw = good
    target = tmp_path / "01_MorphableModel.mat"
    if case == "missing":
        return tmp_path / "absent.mat"
    if case == "truncated":
        data = path.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif case == "garbage":
        target.write_bytes(b"not a matlab file" * 20)
    elif case == "missing_key":
        savemat(target, {"shapeMU": raw["shape_mu"].reshape(-1, 1)})
    elif case == "basis_rows":
        write_bfm2009_mat(target, **{**raw, "shape_pc": raw["shape_pc"][:-3]})
    elif case == "basis_scaled":
        write_bfm2009_mat(target, **{**raw, "shape_pc": raw["shape_pc"] * raw["shape_ev"]})
    elif case == "tl_zero_based":
        write_bfm2009_mat(target, **{**raw, "tl": raw["tl"] - 1})
    return target


@pytest.mark.parametrize("case", ["missing", "truncated", "garbage", "missing_key", "basis_rows", "basis_scaled",
                                  "tl_zero_based"])
def test_bad_bfm2009_files_raise_model_error(tmp_path, bfm2009, case):
    target = _mat_case(tmp_path, bfm2009, case)
    with pytest.raises(ModelError, match=str(target)):
        load_bfm2009(target)


def test_bad_landmark_indices_raise_model_error(bfm2009):
    with pytest.raises(ModelError, match="68 vertex indices"):
        load_bfm2009(bfm2009[0], landmarks68_vertices=np.arange(67))


@pytest.mark.parametrize("case", ["missing", "truncated", "garbage", "no_shape", "basis_mismatch",
                                  "negative_variance"])
def test_bad_bfm_h5_files_raise_model_error(tmp_path, bfm2017, case):
    path, shape, _, _ = bfm2017
    target = tmp_path / "model.h5"
    if case == "missing":
        target = tmp_path / "absent.h5"
    elif case == "truncated":
        data = path.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif case == "garbage":
        target.write_bytes(b"\x89HDF junk" * 30)
    elif case == "no_shape":
        with h5py.File(target, "w") as f:
            f["color/model/mean"] = np.zeros(3)
    elif case == "basis_mismatch":
        write_bfm_h5(target, Pca(shape.mean, shape.basis[:, :3], shape.variance), FACES)
    else:
        write_bfm_h5(target, Pca(shape.mean, shape.basis, -shape.variance), FACES)
    with pytest.raises(ModelError, match=str(target)):
        load_bfm_h5(target)
