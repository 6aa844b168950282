import numpy as np
import pytest
from skimage import data

from facerecon.errors import UsageError
from facerecon.landmarks.segmentation import PersonSegmenter


@pytest.fixture(scope="module")
def segmenter():
    s = PersonSegmenter()
    yield s
    s.close()


def test_the_astronaut_is_person_and_the_wall_behind_her_is_not(segmenter):
    img = data.astronaut()
    person = segmenter.segment(img)
    assert person.shape == img.shape[:2] and person.dtype == np.float32
    assert 0.0 <= person.min() and person.max() <= 1.0
    assert person[100:150, 190:250].mean() > 0.9  # her face
    assert person[20:80, 330:370].mean() < 0.1  # the wall between her head and the shuttle
    same = segmenter.segment(img.astype(np.float32) / 255.0)  # float input gives the same answer
    assert np.abs(same - person).mean() < 0.02


def test_bad_input_and_a_closed_segmenter_raise_usage_errors():
    s = PersonSegmenter()
    with pytest.raises(UsageError):
        s.segment(np.zeros((10, 10)))
    with pytest.raises(UsageError):
        s.segment(np.full((10, 10, 3), np.nan, np.float32))
    s.close()
    with pytest.raises(UsageError):
        s.segment(np.zeros((10, 10, 3), np.uint8))
