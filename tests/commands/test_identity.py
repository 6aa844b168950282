"""The optional identity-similarity post-step."""
import numpy as np
import pytest
from skimage import data


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut().astype(np.float32) / 255.0


def test_identity_metric_with_an_embedder_and_without_dlib(ict_dir, astronaut):
    from facerecon.commands.identity import IdentityScorer
    from facerecon.evaluation.identity import cosine_similarity
    from facerecon.pipeline import Reconstructor

    class MeanColour:
        """A stand-in embedder: the mean colour inside the box (dlib is an optional extra)."""

        def embed(self, image, box):
            x0, y0, x1, y1 = (int(v) for v in box)
            return np.asarray(image, dtype=np.float64)[y0:y1, x0:x1].reshape(-1, 3).mean(0)

    with Reconstructor() as rec:
        r = rec.reconstruct(astronaut, mode="fast")[0]
    IdentityScorer(MeanColour())(r)
    assert r.identity_similarity["backend"] == "MeanColour"
    assert 0.9 < r.identity_similarity["cosine"] <= 1.0
    assert cosine_similarity(np.array([1.0, 0]), np.array([0.0, 2])) == pytest.approx(0.0)
    try:
        import dlib  # noqa: F401
    except ImportError:
        IdentityScorer()(r)
        assert r.identity_similarity["cosine"] is None
        assert "facerecon[dlib]" in r.identity_similarity["unavailable"]
