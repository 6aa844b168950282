import numpy as np
import pytest

from facerecon.errors import UsageError
from facerecon.fitting.gaze import arkit_eye_weights, eyes, fit_gaze, rotate_eyes
from facerecon.fitting.state import FaceState


def _state(model, yaw_deg=10.0):
    rot = np.array([0.0, np.radians(yaw_deg), 0.0])
    return FaceState.single(np.zeros(model.num_identity), np.zeros(model.num_expression), rot,
                            np.array([0.0, -30.0, -450.0]), 900.0, np.array([256.0, 256.0]), (512, 512))


def test_eyes_sit_either_side_and_look_ahead(ict_model):
    found = eyes(ict_model, ict_model.mean.double().numpy())
    assert found["left"].centre[0] > 20 and found["right"].centre[0] < -20
    for eye in found.values():
        assert eye.axis[2] > 0.95 and 5.0 < eye.radius < 16.0


def test_gaze_is_recovered_from_a_rotated_synthetic_eye(ict_model):
    m = ict_model
    truth = {"left": (12.0, -8.0), "right": (9.0, -6.0)}
    rest = m.mean.double().numpy()
    turned = rotate_eyes(m, rest, truth)
    state = _state(m)
    points = np.zeros((478, 2))
    # the detected iris centre: the centre of the turned mesh's iris disc (the front of the iris material)
    for side, idx in (("left", 473), ("right", 468)):
        iris = np.unique(m.triangles.numpy()[m.triangle_groups[f"M_Iris{side.capitalize()}"].numpy()])
        z = rest[iris, 2]
        disc = iris[z >= z.max() - 3.0]
        points[idx] = state.project(turned[disc].mean(0)[None])[0]
    gaze = fit_gaze(m, rest, state, points, prior_deg=1e3)
    for side in truth:
        np.testing.assert_allclose(gaze.angles_deg[side], truth[side], atol=1.0)
        assert gaze.residual_px[side] < 0.5
    assert gaze.arkit["eyeLookOutLeft"] > 0.3 and gaze.arkit["eyeLookInRight"] > 0.2
    assert gaze.arkit["eyeLookDownLeft"] > 0.2 and gaze.arkit["eyeLookUpLeft"] == 0.0
    d = gaze.directions["left"]
    assert abs(np.linalg.norm(d) - 1) < 1e-9


def test_arkit_eye_weights_follow_the_sides():
    w = arkit_eye_weights({"left": (-15.0, 25.0), "right": (-15.0, -60.0)})
    assert w["eyeLookInLeft"] == 0.5 and w["eyeLookOutRight"] == 0.5
    assert w["eyeLookUpLeft"] == 1.0 and w["eyeLookDownRight"] == 1.0 and len(w) == 8


def test_gaze_needs_mediapipe_points(ict_model):
    with pytest.raises(UsageError, match="478"):
        fit_gaze(ict_model, ict_model.mean.double().numpy(), _state(ict_model), np.zeros((68, 2)))
