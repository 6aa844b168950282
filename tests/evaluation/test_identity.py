"""The dlib face embedding behind the identity metric and --same-person's different-people test
(runs with the `dlib` extra, which CI installs)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from facerecon.evaluation.identity import DlibFaceEmbedder, cosine_similarity

HAVE_DLIB = importlib.util.find_spec("dlib") is not None and \
    importlib.util.find_spec("face_recognition_models") is not None


@pytest.mark.skipif(not HAVE_DLIB, reason="needs the dlib extra: pip install 'facerecon[dlib]'")
def test_one_person_s_photos_embed_closer_than_another_face(ict_model):
    from skimage import data

    from facerecon.evaluation.synthetic import generate_synthetic_set
    from facerecon.landmarks import create_detector

    photo = data.astronaut().astype(np.float32) / 255.0
    mirrored = np.ascontiguousarray(photo[:, ::-1])
    other = generate_synthetic_set(ict_model, 1, 3, image_size=320)[0].image
    embedder = DlibFaceEmbedder()
    with create_detector("mediapipe") as det:
        e = [embedder.embed(img, det.detect_largest(img).box) for img in (photo, mirrored, other)]
    assert all(v.shape == (128,) and np.isfinite(v).all() for v in e)
    same, stranger = cosine_similarity(e[0], e[1]), cosine_similarity(e[0], e[2])
    assert same > 0.95 and stranger < same - 0.05
