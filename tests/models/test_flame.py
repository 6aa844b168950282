"""FLAME loader: tiny FLAME-format pickles written here, checked against a reference LBS in numpy."""
from __future__ import annotations

import pickle
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse
import torch
from scipy.spatial.transform import Rotation

from facerecon.errors import ModelError
from facerecon.models.flame import load_flame
from .format_writers import (icosphere, write_deca_landmark_embedding, write_flame_pickle,
                            write_flame_static_embedding)

NUM_JOINTS = 5
JAW = 2


def _flame_dict(seed: int = 0) -> dict:
    """A FLAME-layout model on a 10 cm icosphere (metres, like the real file)."""
    rng = np.random.default_rng(seed)
    verts, faces = icosphere(2, radius=0.1)
    v = len(verts)
    x, y, z = verts.T
    owner = np.zeros(v, dtype=np.int64)  # global
    owner[y < 0.0] = 1  # neck
    owner[(y < -0.03) & (z > 0)] = JAW
    owner[np.argsort(np.linalg.norm(verts - [0.03, 0.03, 0.09], axis=1))[:4]] = 3
    owner[np.argsort(np.linalg.norm(verts - [-0.03, 0.03, 0.09], axis=1))[:4]] = 4
    weights = np.zeros((v, NUM_JOINTS))
    weights[np.arange(v), owner] = 1.0
    jaw = owner == JAW
    weights[jaw, JAW], weights[jaw, 1] = 0.7, 0.3  # blended skinning on the jaw
    rows, cols = [], []
    for j in range(NUM_JOINTS):
        members = np.nonzero(owner == j)[0][:6]
        rows += [j] * len(members)
        cols += members.tolist()
    counts = np.bincount(rows, minlength=NUM_JOINTS)
    regressor = scipy.sparse.csc_matrix((1.0 / counts[rows], (rows, cols)), shape=(NUM_JOINTS, v))
    posedirs = rng.normal(scale=1e-3, size=(v, 3, 9 * (NUM_JOINTS - 1)))
    jaw_features = slice(9 * (JAW - 1), 9 * JAW)
    posedirs[~jaw, :, jaw_features] = 0.0  # the jaw's correctives act on jaw vertices only
    return {
        "v_template": verts, "f": faces.astype(np.uint32),
        "shapedirs": rng.normal(scale=2e-3, size=(v, 3, 400)), "posedirs": posedirs,
        "J_regressor": regressor, "weights": weights,
        "kintree_table": np.array([[2 ** 32 - 1, 0, 1, 1, 1], np.arange(NUM_JOINTS)], dtype=np.int64),
        "J": regressor @ verts, "bs_style": "lbs", "bs_type": "lrotmin",
    }


@pytest.fixture(scope="module")
def flame_file(tmp_path_factory):
    data = _flame_dict()
    path = tmp_path_factory.mktemp("FLAME2020_") / "generic_model.pkl"
    write_flame_pickle(path, data)
    return path, data


def _reference_lbs(data: dict, beta: np.ndarray, psi: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """FLAME/SMPL skinning written out per vertex, in metres; returns mm."""
    shapedirs = data["shapedirs"]
    shaped = data["v_template"] + shapedirs[:, :, :300] @ np.pad(beta, (0, 300 - len(beta))) \
        + shapedirs[:, :, 300:] @ np.pad(psi, (0, 100 - len(psi)))
    joints = data["J_regressor"].toarray() @ shaped
    rot = Rotation.from_rotvec(pose).as_matrix()
    feature = np.concatenate([(rot[j] - np.eye(3)).ravel() for j in range(1, NUM_JOINTS)])
    posed = shaped + data["posedirs"] @ feature
    parents = [-1, 0, 1, 1, 1]
    world = []
    for j in range(NUM_JOINTS):
        local = np.eye(4)
        local[:3, :3] = rot[j]
        local[:3, 3] = joints[j] - (joints[parents[j]] if j else 0.0)
        world.append(local if j == 0 else world[parents[j]] @ local)
    out = np.empty_like(posed)
    for i in range(len(posed)):
        blended = np.zeros((4, 4))
        for j in range(NUM_JOINTS):
            g = world[j].copy()
            g[:3, 3] -= g[:3, :3] @ joints[j]
            blended += data["weights"][i, j] * g
        out[i] = blended[:3, :3] @ posed[i] + blended[:3, 3]
    return out * 1000.0


def test_loads_in_mm_with_pca_expressions_and_skeleton(flame_file):
    path, data = flame_file
    model = load_flame(path)
    v = len(data["v_template"])
    assert (model.name, model.version, model.source) == ("flame", "2020", str(path))
    assert (model.num_vertices, model.num_identity, model.num_expression) == (v, 300, 100)
    assert model.expression_kind == "pca" and model.expression_names[0] == "exp000"
    np.testing.assert_allclose(model.mean.numpy(), data["v_template"] * 1000, rtol=1e-6)
    np.testing.assert_allclose(model.identity_basis[7].numpy(), data["shapedirs"][:, :, 7] * 1000, rtol=1e-5)
    np.testing.assert_allclose(model.expression_basis[3].numpy(), data["shapedirs"][:, :, 303] * 1000, rtol=1e-5)
    assert torch.equal(model.identity_std, torch.ones(300))
    assert torch.equal(model.triangles, torch.from_numpy(data["f"].astype(np.int64)))
    sk = model.skeleton
    assert sk.joint_names == ("global", "neck", "jaw", "eye_left", "eye_right")
    assert sk.parents.tolist() == [-1, 0, 1, 1, 1]
    assert tuple(sk.pose_basis.shape) == (36, v * 3)
    np.testing.assert_allclose(sk.joint_regressor.numpy(), data["J_regressor"].toarray(), rtol=1e-6)


def test_zero_pose_is_the_shaped_rest_mesh(flame_file):
    model = load_flame(flame_file[0])
    coeffs = model.sample(2, seed=1)
    rest = model.vertices(coeffs.identity, coeffs.expression)
    posed = model.vertices(coeffs.identity, coeffs.expression, pose=torch.zeros(2, NUM_JOINTS, 3))
    torch.testing.assert_close(posed, rest, atol=1e-4, rtol=0)


def test_jaw_rotation_moves_only_jaw_weighted_vertices(flame_file):
    path, data = flame_file
    model = load_flame(path)
    pose = torch.zeros(1, NUM_JOINTS, 3)
    pose[0, JAW, 0] = 0.4
    moved = (model.vertices(pose=pose) - model.vertices()).norm(dim=-1)[0].numpy()
    jaw_weighted = data["weights"][:, JAW] > 0
    assert moved[jaw_weighted].min() > 0.05  # mm
    assert moved[~jaw_weighted].max() < 1e-4


def test_posed_vertices_match_reference_lbs(flame_file):
    path, data = flame_file
    model = load_flame(path)
    rng = np.random.default_rng(3)
    beta, psi = rng.normal(size=20), rng.normal(size=10)
    pose = rng.normal(scale=0.3, size=(NUM_JOINTS, 3))
    got = model.vertices(torch.tensor(beta[None], dtype=torch.float32), torch.tensor(psi[None], dtype=torch.float32),
                         pose=torch.tensor(pose[None], dtype=torch.float32))[0].numpy()
    np.testing.assert_allclose(got, _reference_lbs(data, beta, psi, pose), atol=2e-3)


def test_chumpy_pickle_loads_without_chumpy(tmp_path, flame_file):
    data = flame_file[1]
    path = tmp_path / "flame2023.pkl"
    write_flame_pickle(path, data, chumpy_keys=("shapedirs", "v_template", "posedirs", "weights"))
    assert "chumpy" not in sys.modules
    model = load_flame(path)
    assert model.version == "2023" and "chumpy" not in sys.modules
    reference = load_flame(flame_file[0])
    torch.testing.assert_close(model.mean, reference.mean)
    torch.testing.assert_close(model.expression_basis, reference.expression_basis)
    torch.testing.assert_close(model.skeleton.pose_basis, reference.skeleton.pose_basis)


def test_deca_embedding_gives_68_landmarks(tmp_path, flame_file):
    path, data = flame_file
    rng = np.random.default_rng(5)
    num_faces = len(data["f"])
    full_faces = rng.integers(0, num_faces, 68)
    full_bary = rng.dirichlet(np.ones(3), 68)
    emb = tmp_path / "landmark_embedding.npy"
    write_deca_landmark_embedding(emb, full_faces, full_bary, full_faces[17:], full_bary[17:])
    model = load_flame(path, landmark_embedding=emb)
    assert len(model.landmarks68) == 68 and model.landmarks68.scheme == "ibug68"
    assert model.landmarks68.triangle_ids.tolist() == full_faces.tolist()
    beside = tmp_path / "generic_model.pkl"  # DECA's file name beside the model is picked up
    beside.write_bytes(path.read_bytes())
    assert load_flame(beside).landmarks68.triangle_ids.tolist() == full_faces.tolist()
    points = model.landmark_points(model.vertices())[0].numpy()
    corners = data["v_template"][data["f"][full_faces].astype(np.int64)] * 1000
    np.testing.assert_allclose(points, np.einsum("lk,lkc->lc", full_bary, corners), rtol=1e-5, atol=1e-4)


def test_static_51_point_embedding_leaves_landmarks68_empty(tmp_path, flame_file):
    emb = tmp_path / "flame_static_embedding.pkl"
    write_flame_static_embedding(emb, np.arange(51), np.full((51, 3), 1.0 / 3.0))
    with pytest.warns(UserWarning, match="68"):
        model = load_flame(flame_file[0], landmark_embedding=emb)
    assert model.landmarks68 is None


def test_masks_give_regions_and_face_mask(tmp_path, flame_file):
    masks = tmp_path / "FLAME_masks.pkl"
    face = np.arange(10, 60)
    with open(masks, "wb") as fh:
        pickle.dump({"face": face, "nose": np.arange(20, 25)}, fh, protocol=2)
    model = load_flame(flame_file[0], masks=masks)
    assert sorted(model.regions) == ["face", "nose"]
    assert model.face_mask.sum().item() == len(face) and model.face_mask[face].min().item() == 1.0
    assert model.view("face").num_vertices == len(face)


class _Evil:
    def __reduce__(self):
        import os

        return (os.getcwd, ())


@pytest.mark.parametrize("case", ["missing", "truncated", "garbage", "not_dict", "missing_key", "bad_posedirs",
                                  "code", "bad_embedding"])
def test_bad_files_raise_model_error(tmp_path, flame_file, case):
    path, data = flame_file
    target, embedding = tmp_path / "generic_model.pkl", None
    if case == "missing":
        target = tmp_path / "absent.pkl"
    elif case == "truncated":
        raw = path.read_bytes()
        target.write_bytes(raw[: len(raw) // 2])
    elif case == "garbage":
        target.write_bytes(b"\x00\x01not a pickle at all" * 10)
    elif case == "not_dict":
        target.write_bytes(pickle.dumps([1, 2, 3]))
    elif case == "missing_key":
        write_flame_pickle(target, {k: v for k, v in data.items() if k != "posedirs"})
    elif case == "bad_posedirs":
        write_flame_pickle(target, {**data, "posedirs": data["posedirs"][:, :, :30]})
    elif case == "code":
        target.write_bytes(pickle.dumps({"v_template": _Evil()}))
    else:
        target = path
        embedding = tmp_path / "landmark_embedding.npy"
        embedding.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ModelError) as info:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            load_flame(target, landmark_embedding=embedding)
    assert str(embedding if embedding else target) in str(info.value)
    if case == "code":
        assert "refusing" in str(info.value)
