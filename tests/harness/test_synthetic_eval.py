import json

import numpy as np
import pytest

from facerecon.harness.synthetic_eval import (YAW_BINS, evaluate_synthetic, format_synthetic_report, json_ready,
                                                 yaw_bin)


def _finite(x):
    return x is not None and np.isfinite(x)


def test_yaw_bins():
    assert [yaw_bin(y) for y in (0, -14.9, 15, 44, -59.9, 60, 90, -90, 91)] == [0, 0, 1, 2, 3, 4, 4, 4, -1]
    assert YAW_BINS[0][0] == 0 and YAW_BINS[-1][1] == 90


def test_fast_run_with_ground_truth_landmarks(ict_model, tmp_path):
    from facerecon.pipeline import Reconstructor

    with Reconstructor(ict_model) as rec:
        report = evaluate_synthetic(n=2, seed=0, mode="fast", landmarks="gt", reconstructor=rec,
                                    out=tmp_path, image_size=128)
        again = evaluate_synthetic(n=2, seed=0, mode="fast", landmarks="gt", reconstructor=rec,
                                   out=tmp_path, image_size=128)  # loads the set written above
    result = report["results"]["fast"]
    assert result["faces"] == result["scored"] == 2 and result["detection_failures"] == 0
    for key in ("median", "mean", "std"):
        assert _finite(result["error_mm"][key]) and result["error_mm"][key] > 0
        assert _finite(report["calibration"]["nothing"][key])
    assert report["calibration"]["floor"]["mean"] < 0.1  # on-model
    assert _finite(result["gap_fraction"]["mean"]) and _finite(result["gap_fraction"]["median"])
    assert _finite(result["landmark_error_px"]) and _finite(result["seconds_per_image"])
    assert sum(b["faces"] for b in result["per_yaw_bin"]) == 2
    assert again["results"]["fast"]["error_mm"] == pytest.approx(result["error_mm"])
    table = format_synthetic_report(report)
    assert "nothing" in table and "floor" in table and "fast" in table and "[60,90]" in table
    json.loads(json.dumps(json_ready(report), allow_nan=False))
