import numpy as np
import pytest

from facerecon.errors import UsageError
from facerecon.evaluation.landmark_error import (
    box_diagonal,
    inter_ocular_distance,
    mean_pixel_error,
    nme_box_diagonal,
    nme_inter_ocular,
)


def _annotation():
    gt = np.random.default_rng(0).uniform(100, 300, size=(68, 2))
    gt[36], gt[45] = [120.0, 150.0], [240.0, 150.0]  # inter-ocular distance 120
    gt[0], gt[8] = [90.0, 80.0], [330.0, 400.0]  # bounding box 100..330 x 80..400 (at least)
    return gt


def test_shifted_annotation_matches_hand_computation():
    gt = _annotation()
    pred = gt + [3.0, 4.0]  # every point 5 px off
    lo, hi = gt.min(0), gt.max(0)
    assert mean_pixel_error(pred, gt) == pytest.approx(5.0)
    assert inter_ocular_distance(gt) == pytest.approx(120.0)
    assert nme_inter_ocular(pred, gt) == pytest.approx(5.0 / 120.0)
    assert box_diagonal(gt) == pytest.approx(np.hypot(*(hi - lo)))
    assert nme_box_diagonal(pred, gt) == pytest.approx(5.0 / np.hypot(*(hi - lo)))


def test_single_point_error_and_batches():
    gt = _annotation()
    pred = gt.copy()
    pred[10] += [0.0, 68.0]  # one point 68 px off: mean 1 px
    batch_pred, batch_gt = np.stack([pred, gt]), np.stack([gt, gt])
    np.testing.assert_allclose(mean_pixel_error(batch_pred, batch_gt), [1.0, 0.0])
    np.testing.assert_allclose(nme_inter_ocular(batch_pred, batch_gt), [1.0 / 120.0, 0.0])


def test_bad_shapes_are_usage_errors():
    gt = _annotation()
    with pytest.raises(UsageError):
        mean_pixel_error(gt[:67], gt)
    with pytest.raises(UsageError):
        nme_inter_ocular(gt[:5], gt[:5])
    with pytest.raises(UsageError):
        nme_inter_ocular(gt, np.zeros((68, 2)))
