import numpy as np
import pytest

from facerecon.errors import UsageError
from facerecon.evaluation.arrays import as_mesh, as_points


def test_as_points_converts_and_checks():
    p = as_points("points", [[1, 2, 3]])
    assert p.dtype == np.float64 and p.shape == (1, 3) and p.flags.c_contiguous
    with pytest.raises(UsageError, match="points must have shape"):
        as_points("points", np.zeros((3,)))
    with pytest.raises(UsageError, match="N >= 3"):
        as_points("points", np.zeros((2, 3)), min_points=3)
    with pytest.raises(UsageError, match="NaN"):
        as_points("points", [[0.0, np.nan, 0.0]])


def test_as_mesh_checks_indices():
    v = np.zeros((3, 3))
    assert as_mesh(v, np.array([[0, 1, 2]], np.int32))[1].dtype == np.int64
    for bad in (np.array([[0, 1, 3]]), np.array([[0, 1, -1]]), np.array([[0.0, 1.0, 2.0]]), np.zeros((0, 3), int)):
        with pytest.raises(UsageError):
            as_mesh(v, bad)
