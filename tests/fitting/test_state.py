import pickle

import numpy as np
import pytest
import torch

from facerecon.errors import UsageError
from facerecon.fitting.state import Appearance, Camera, FaceParams, FaceState


def _one(seed, size=(480, 640)):
    rng = np.random.default_rng(seed)
    return FaceState.single(rng.normal(size=10), rng.random(5), rng.normal(size=3) * 0.2,
                            np.array([0.0, 0.0, -600.0]) + rng.normal(size=3), 900.0 + seed, [320.0, 240.0], size,
                            sh=rng.normal(size=(9, 3)), albedo=rng.random((7, 3)))


def test_single_image_state_has_a_batch_of_one():
    s = _one(0)
    assert s.num_images == 1 and not s.shares_identity
    assert s.params.identity.shape == (1, 10) and s.camera.focal.shape == (1,) and s.appearance.sh.shape == (1, 9, 3)
    assert s.params.pose_deg().shape == (1, 3)


def test_several_photos_of_one_person_share_identity_and_albedo():
    states = [_one(k) for k in range(3)]
    person = FaceState.stack(states, share_identity=True)
    assert person.num_images == 3 and person.shares_identity
    assert person.params.identity.shape == (1, 10) and person.appearance.albedo.shape == (1, 7, 3)
    assert person.params.expression.shape == (3, 5) and person.camera.focal.shape == (3,)
    assert person.appearance.sh.shape == (3, 9, 3)
    second = person.image(1)
    np.testing.assert_array_equal(second.params.identity, states[0].params.identity)  # the shared one
    np.testing.assert_array_equal(second.params.expression, states[1].params.expression)
    assert second.camera.focal[0] == 901.0
    independent = FaceState.stack(states, share_identity=False)
    assert independent.params.identity.shape == (3, 10) and not independent.shares_identity


def test_state_converts_between_numpy_and_torch_and_pickles_small():
    s = FaceState.stack([_one(0), _one(1)])
    t = s.to_torch(torch.float64)
    assert isinstance(t.params.rotation, torch.Tensor) and t.params.rotation.dtype == torch.float64
    back = t.to_numpy()
    np.testing.assert_allclose(back.params.rotation, s.params.rotation)
    assert len(pickle.dumps(s)) < 10_000


def test_project_matches_the_render_camera():
    s = _one(3)
    pts = np.array([[0.0, 0.0, 0.0], [30.0, -20.0, 10.0]])
    cam = s.pinhole(dtype=torch.float64)
    expected = cam.project(torch.as_tensor(pts[None]))[0].numpy()
    np.testing.assert_allclose(s.project(pts), expected, atol=1e-9)


def test_replace_and_bad_shapes():
    s = _one(0)
    r = s.replace(focal=np.array([500.0]), sh=None)
    assert r.camera.focal[0] == 500.0 and r.appearance.sh is None and s.camera.focal[0] == 900.0
    with pytest.raises(UsageError, match="no field"):
        s.replace(colour=1)
    with pytest.raises(UsageError, match="rows"):
        FaceState(FaceParams(np.zeros((1, 3)), np.zeros((2, 4)), np.zeros((2, 3)), np.zeros((1, 3))),
                  Camera(np.ones(2), np.zeros((2, 2)), (10, 10)), Appearance())
    with pytest.raises(UsageError, match="image size"):
        FaceState.stack([_one(0), _one(1, size=(100, 100))])
    with pytest.raises(UsageError, match="camera kind"):
        Camera(np.ones(1), np.zeros((1, 2)), (10, 10), kind="fisheye")
    assert not s.replace(translation=np.array([[np.nan, 0, 0]])).is_finite()
