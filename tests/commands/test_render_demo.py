import numpy as np
import pytest
from PIL import Image

from facerecon.commands import render_demo as demo


def test_demo_falls_back_to_a_sphere(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FACERECON_MODEL_DIR", raising=False)
    out = tmp_path / "sphere.png"
    assert demo.main([str(out), "--size", "64"]) == 0
    image = np.asarray(Image.open(out))
    assert image.shape == (64, 64, 3)
    assert image[32, 32].mean() > image[0, 0].mean() + 50  # a lit object on the dark background
    assert "sphere" in capsys.readouterr().err


@pytest.mark.skipif(demo.find_model() is None, reason="no ICT-FaceKit model under $FACERECON_MODEL_DIR")
def test_demo_renders_an_upright_head():
    image, what = demo.render_demo(size=96, yaw_deg=0.0)
    assert "ICT" in what
    covered = image.mean(-1) > 60
    rows = np.nonzero(covered.any(1))[0]
    # the head (narrow) is above the shoulders (wide): upright, not upside down
    top, bottom = covered[rows[0]:rows[0] + 10].sum(), covered[rows[-1] - 10:rows[-1]].sum()
    assert top < bottom
    # frontal and lit from the viewer's right: roughly symmetric coverage, right half brighter
    assert abs(int(covered[:, :48].sum()) - int(covered[:, 48:].sum())) < 0.1 * covered.sum()
    assert image[:, 48:][covered[:, 48:]].mean() > image[:, :48][covered[:, :48]].mean()
