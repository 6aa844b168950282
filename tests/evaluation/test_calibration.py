import math

import numpy as np
import pytest

from facerecon.evaluation.calibration import (MeshFitter, calibrate, floor_baseline, gap_fraction, nothing_baseline,
                                              scan_points)
from facerecon.evaluation.now import summarize
from facerecon.evaluation.synthetic import generate_synthetic_set


@pytest.fixture(scope="module")
def fitter(ict_head):
    return MeshFitter(ict_head)


def test_floor_recovers_an_on_model_face(ict_model, ict_head, fitter):
    face = generate_synthetic_set(ict_model, 1, seed=11, image_size=64)[0]
    fit = fitter.fit(face.gt_vertices[ict_head.parent_vertices.numpy()[fitter.ids]])
    assert fit.rms < 1e-3
    np.testing.assert_allclose(fit.expression, face.truth.params.expression[0], atol=1e-3)
    floor = floor_baseline(face, ict_head, fitter)
    assert floor.distances.max() < 0.1
    nothing = nothing_baseline(face, ict_head)
    assert summarize(nothing.distances)["mean"] > 0.5
    assert len(floor.distances) > 1000 and len(scan_points(face, ict_head)) == ict_head.regions["narrow_face"].numel()


def test_gap_fraction_of_the_baselines_themselves(ict_model, ict_head):
    faces = generate_synthetic_set(ict_model, 1, seed=3, off_model=True, image_size=64)
    cal = calibrate(faces, ict_head)
    nothing, floor = summarize(list(cal.nothing.values())), summarize(list(cal.floor.values()))
    assert 0 < floor["mean"] < nothing["mean"]  # off-model: the model cannot reach 0
    for key in ("mean", "median"):
        assert gap_fraction(nothing, nothing, floor, key) == pytest.approx(0.0)
        assert gap_fraction(floor, nothing, floor, key) == pytest.approx(1.0)


def test_gap_fraction_of_numbers():
    assert gap_fraction(1.5, 2.0, 1.0) == pytest.approx(0.5)
    assert gap_fraction(2.5, 2.0, 1.0) == pytest.approx(-0.5)
    assert math.isnan(gap_fraction(1.0, 1.0, 1.0))
