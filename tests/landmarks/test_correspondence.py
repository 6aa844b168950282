"""MediaPipe 478 -> morphable model surface: the packaged ICT file, views, other models, and the script."""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from facerecon.errors import UsageError
from facerecon.landmarks import (
    MEDIAPIPE_IRIS,
    MEDIAPIPE_SILHOUETTE,
    MEDIAPIPE_TO_IBUG68,
    LandmarkCorrespondence,
    compute_correspondence,
    load_canonical_face,
    load_correspondence,
)
from facerecon.landmarks.correspondence import umeyama

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "src" / "facerecon" / "data"


@pytest.fixture(scope="module")
def ict_corr(ict_model):
    return load_correspondence(ict_model)


def _points(model, corr):
    return model.landmark_points(model.mean[None], corr.as_embedding())[0].double().numpy()


def test_ict_correspondence_arrays(ict_model, ict_corr):
    c = ict_corr
    assert isinstance(c, LandmarkCorrespondence) and c.scheme == "mediapipe478" and len(c) == 478
    assert c.triangle_ids.dtype == torch.long and c.barycentric.shape == (478, 3)
    assert (c.barycentric >= -1e-6).all() and torch.allclose(c.barycentric.sum(1), torch.ones(478), atol=1e-5)
    assert int(c.triangle_ids.max()) < ict_model.triangles.shape[0]
    assert set(np.nonzero(c.sliding.numpy())[0]) == set(MEDIAPIPE_SILHOUETTE.tolist())
    assert set(np.nonzero(c.iris.numpy())[0]) == set(MEDIAPIPE_IRIS.tolist())
    assert c.valid.all()
    tris = ict_model.triangles[c.triangle_ids]
    # skin points on the face skin, irises on the eyeball of their own side
    assert (tris[~c.iris] < 9409).all()
    right, left = ict_model.regions["eyeball_right"], ict_model.regions["eyeball_left"]
    assert torch.isin(tris[468:473], right).all() and torch.isin(tris[473:478], left).all()


def test_mapped_points_match_the_canonical_layout(ict_model, ict_corr):
    pts = _points(ict_model, ict_corr)
    canon = load_canonical_face().points
    skin = ~ict_corr.iris.numpy()
    s, rot, t = umeyama(canon[skin], pts[skin])
    aligned = canon @ rot.T * s + t
    # projected frontally (x, y) in mm
    err = np.linalg.norm((aligned - pts)[skin, :2], axis=1)
    assert err.mean() < 4.0 and np.percentile(err, 95) < 8.0 and err.max() < 15.0


def test_ibug_subset_lands_on_the_models_68_landmarks(ict_model, ict_corr):
    pts = _points(ict_model, ict_corr)
    lm68 = ict_model.landmark_points(ict_model.mean[None])[0].double().numpy()
    d = np.linalg.norm(pts[MEDIAPIPE_TO_IBUG68] - lm68, axis=1)
    assert d[17:].mean() < 2.0 and d[17:].max() < 6.0
    # the jaw is a contour: MediaPipe's jaw points land on the model's frontal silhouette (its
    # surface faces sideways there), as wide as the model's own jaw points
    sides = np.r_[0:5, 12:17]
    tri = ict_model.triangles[ict_corr.triangle_ids[MEDIAPIPE_TO_IBUG68[sides]]]
    v = ict_model.mean[tri].double()
    normal = torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    assert (normal[:, 2].abs() / normal.norm(dim=1)).max() < 0.4
    assert np.abs(np.abs(pts[MEDIAPIPE_TO_IBUG68[sides], 0]) - np.abs(lm68[sides, 0])).max() < 5.0


def test_head_view_uses_the_packaged_file(ict_model, ict_head, ict_corr):
    c = load_correspondence(ict_head)
    full, view = _points(ict_model, ict_corr), _points(ict_head, c)
    skin = ~ict_corr.iris.numpy()
    assert np.abs(full[skin] - view[skin]).max() < 1e-4
    # the head view has no eyeballs: the irises land on the eyelids and are marked invalid
    assert not c.valid[468:].any() and c.valid[:468].all()
    assert np.linalg.norm(full[~skin] - view[~skin], axis=1).max() < 10.0


def test_other_models_are_registered_on_the_fly(ict_model, ict_corr):
    other = dataclasses.replace(ict_model, name="not-ict")
    c = load_correspondence(other)
    assert torch.equal(c.triangle_ids, ict_corr.triangle_ids)
    # without a 68-point embedding there is nothing to start from
    with pytest.raises(UsageError, match="68-point"):
        compute_correspondence(dataclasses.replace(ict_model, name="bare", landmarks68=None))


def test_models_without_eyeballs_flag_the_irises(ict_head):
    c = compute_correspondence(ict_head)
    assert not c.valid[468:].any() and c.valid[:468].all()


def test_script_reproduces_the_packaged_files(tmp_path):
    spec = importlib.util.spec_from_file_location("make_corr", REPO / "scripts" / "make_landmark_correspondence.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--out-dir", str(tmp_path)]) == 0
    with np.load(DATA / "mediapipe_canonical.npz") as a, np.load(tmp_path / "mediapipe_canonical.npz") as b:
        assert np.array_equal(a["mirror"], b["mirror"]) and np.array_equal(a["edges"], b["edges"])
        # MediaPipe's float maths may differ in the last bits on another CPU
        assert np.abs(a["points"] - b["points"]).max() < 0.05
    with np.load(DATA / "mediapipe_to_ict.npz") as a, np.load(tmp_path / "mediapipe_to_ict.npz") as b:
        assert set(a.files) == set(b.files)
        assert (a["triangle"] == b["triangle"]).mean() > 0.98
        assert np.abs(a["points"] - b["points"]).max() < 0.5
        for key in ("sliding", "iris", "valid", "num_vertices", "triangles_crc32"):
            assert np.array_equal(a[key], b[key])
