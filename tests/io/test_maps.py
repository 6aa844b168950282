import numpy as np
import pytest

from facerecon.errors import UsageError
from facerecon.geometry.meshfiles import read_ply
from facerecon.io.maps import heat_colors, load_png16, save_ply_scalar, save_png16


def test_png16_round_trips_within_one_step(tmp_path):
    d = np.linspace(-1, 1, 64 * 64).reshape(64, 64)
    scale = save_png16(tmp_path / "d.png", d, -1.0, 1.0)
    back = load_png16(tmp_path / "d.png", scale)
    assert np.abs(back - d).max() <= scale.scale / 2 + 1e-12
    assert scale.to_dict() == {"offset": -1.0, "scale": 2.0 / 65535}


def test_png16_rejects_bad_input(tmp_path):
    with pytest.raises(UsageError):
        save_png16(tmp_path / "d.png", np.full((4, 4), np.nan), -1, 1)
    with pytest.raises(UsageError):
        save_png16(tmp_path / "d.png", np.zeros((4, 4)), 1, 1)


def test_ply_carries_the_scalar(tmp_path):
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=float)
    path = save_ply_scalar(tmp_path / "u.ply", v, np.array([[0, 1, 2]]), np.array([0.1, 0.2, 0.3]),
                           colors=heat_colors(np.array([0.1, 0.2, 0.3])))
    text = path.read_bytes()
    assert b"property float std" in text and b"property uchar red" in text
    verts, tris, _ = read_ply(path)
    np.testing.assert_allclose(verts, v)
    np.testing.assert_array_equal(tris, [[0, 1, 2]])
    with pytest.raises(UsageError):
        save_ply_scalar(tmp_path / "u.ply", v, np.array([[0, 1, 5]]), np.zeros(3))
