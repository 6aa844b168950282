"""Several photos of one synthetic person with a planted static detail map and a different planted
expression fold per photo (benchmarks/bench_detail.py's `make_person`, the "oracle" coarse fit)."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from facerecon.errors import FitError, UsageError
from facerecon.fitting.detail import DetailConfig, fit_detail
from facerecon.fitting.person_detail import DetailPhoto, PersonDetailConfig, fit_person_detail
from facerecon.landmarks import load_correspondence

REPO = Path(__file__).resolve().parents[2]
SIZE = 128


def _bench():
    spec = importlib.util.spec_from_file_location("bench_detail", REPO / "benchmarks" / "bench_detail.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _corr(a, b, mask):
    return float(np.corrcoef(a[mask], b[mask])[0, 1])


@pytest.fixture(scope="module")
def scene(ict_model):
    bench = _bench()
    model = ict_model
    images, truths, static = bench.make_person(model, np.random.default_rng([5, 0]), SIZE, 0.6, 3, image_size=384,
                                               fold_mm=0.8, fold_width_mm=3.0)
    corr = load_correspondence(model)
    photos = []
    for img, t in zip(images, truths):
        with torch.no_grad():
            fp = model.landmark_points(torch.as_tensor(t["verts"][None], dtype=model.dtype), corr)[0].double().numpy()
        photos.append(DetailPhoto(t["verts"], t["state"], img, t["albedo"], t["state"].appearance.sh[0], fp))
    tris = bench.visible_triangles(model)
    config = PersonDetailConfig(DetailConfig(size=SIZE))
    joint = fit_person_detail(model, photos, config, triangles=tris)
    return dict(photos=photos, truths=truths, static=static, tris=tris, config=config, joint=joint)


def test_static_map_from_three_photos_beats_every_single_photo_fit(ict_model, scene):
    static, joint = scene["static"], scene["joint"]
    assert joint.static.displacement.shape == (SIZE, SIZE) and len(joint.dynamic) == 3 and not joint.skipped
    singles = [fit_detail(ict_model, p.vertices, p.state, p.photo, p.albedo, sh=p.sh, config=scene["config"].detail,
                          triangles=scene["tris"], feature_points=p.feature_points) for p in scene["photos"]]
    single_corr = [_corr(static, s.displacement, s.seen) for s in singles]
    joint_corr = _corr(static, joint.static.displacement, joint.static.seen)
    assert joint_corr > max(single_corr), (joint_corr, single_corr)
    assert np.abs(joint.static.displacement).max() <= 1.0


def test_each_dynamic_map_holds_its_own_photos_fold(scene):
    joint, truths = scene["joint"], scene["truths"]
    own, other = [], []
    for k, t in enumerate(truths):
        seen = joint.seen[k]
        own.append(_corr(joint.dynamic[k], t["dynamic"], seen))
        other += [_corr(joint.dynamic[k], truths[j]["dynamic"], seen) for j in range(3) if j != k]
        assert np.all(joint.dynamic[k][~seen] == 0)
    assert np.mean(own) > 0.05 and np.mean(own) > np.max(other) + 0.05, (own, other)
    # the folds are small and sparse: the dynamic maps are much smaller than the static one
    assert all(joint.dynamic_rms_mm(k) < 0.6 * joint.static.rms_mm() for k in range(3))


def test_texels_seen_once_keep_no_more_relief_than_that_photo_shows(scene):
    joint = scene["joint"]
    once = joint.views == 1
    assert once.sum() > 100
    for k in range(3):
        mine = once & joint.seen[k]
        combined = joint.combined(k).displacement
        assert np.sqrt(np.mean(joint.static.displacement[mine] ** 2)) <= 1.05 * np.sqrt(np.mean(combined[mine] ** 2))


def test_photo_order_does_not_change_the_static_map(ict_model, scene):
    order = [2, 0, 1]
    again = fit_person_detail(ict_model, [scene["photos"][k] for k in order], scene["config"], triangles=scene["tris"])
    # the same up to the conjugate-gradient solve's rounding (the blocks are summed in another order): 0.1 um
    np.testing.assert_allclose(again.static.displacement, scene["joint"].static.displacement, atol=1e-4)
    for i, k in enumerate(order):
        np.testing.assert_allclose(again.dynamic[i], scene["joint"].dynamic[k], atol=1e-4)


def test_a_photo_that_shows_no_face_is_skipped_and_none_is_an_error(ict_model, scene):
    from facerecon.render import euler_deg_to_matrix, matrix_to_axis_angle

    p = scene["photos"][0]
    back = matrix_to_axis_angle(euler_deg_to_matrix(torch.tensor([[180.0, 0.0, 0.0]], dtype=torch.float64)))[0]
    behind = DetailPhoto(p.vertices, p.state.replace(rotation=back.numpy()[None]), p.photo, p.albedo, p.sh,
                         p.feature_points)
    out = fit_person_detail(ict_model, [behind, scene["photos"][1]], scene["config"], triangles=scene["tris"])
    assert list(out.skipped) == [0] and "none of the face region" in out.skipped[0]
    assert out.dynamic[0] is None and out.seen[0] is None and out.dynamic[1] is not None
    with pytest.raises(UsageError, match="skipped"):
        out.combined(0)
    with pytest.raises(FitError, match="none of the 1 photos"):
        fit_person_detail(ict_model, [behind], scene["config"], triangles=scene["tris"])
    with pytest.raises(UsageError):
        fit_person_detail(ict_model, [], scene["config"])
