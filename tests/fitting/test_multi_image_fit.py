import numpy as np
import pytest
import torch

from facerecon.errors import UsageError
from facerecon.fitting.correspondence import VertexCorrespondence
from facerecon.fitting.landmark_fit import LandmarkFitter
from facerecon.fitting.multi_image_fit import MultiImageFitResult, fit_multi_image, normalised_scales
from facerecon.geometry.rotation import axis_angle_to_matrix_np


def sparse_fitter(model):
    """A fitter on 300 random face vertices (no sliding points) and those vertex ids."""
    rng = np.random.default_rng(0)
    face = model.regions["narrow_face"].numpy()
    ids = rng.choice(face, 300, replace=False)
    corr = VertexCorrespondence(np.stack([ids] * 3, 1), np.tile([1.0, 0, 0], (300, 1)), np.zeros(300, bool))
    return LandmarkFitter(model, corr), ids


@pytest.fixture(scope="module")
def setup(ict_head):
    return sparse_fitter(ict_head)


def _views(model, ids, seed, yaws=(0.0, 0.6, -0.6), sizes=((480, 640),) * 3, noise=1.0):
    """One identity seen at several yaws (rad), each with its own sparse expression and camera."""
    rng = np.random.default_rng(seed)
    alpha = rng.normal(size=100)
    points = []
    for yaw, size in zip(yaws, sizes):
        psi = np.clip(rng.random(53) * (rng.random(53) < 0.15), 0, 1)
        with torch.no_grad():
            v = model.vertices(torch.tensor(alpha[None], dtype=torch.float32),
                               torch.tensor(psi[None], dtype=torch.float32))[0].double().numpy()[ids]
        rot = np.array([rng.normal(0, 0.05), yaw, rng.normal(0, 0.05)])
        focal = 1.2 * max(size)
        y = v @ axis_angle_to_matrix_np(rot).T + np.array([0.0, 0.0, -600.0])
        uv = np.stack([size[1] / 2 + focal * y[:, 0] / -y[:, 2], size[0] / 2 - focal * y[:, 1] / -y[:, 2]], 1)
        points.append(uv + rng.normal(scale=noise, size=uv.shape))
    return alpha, points, [tuple(s) for s in sizes]


def _neutral_error(model, a, b):
    face = model.regions["narrow_face"].numpy()
    with torch.no_grad():
        va, vb = (model.vertices(torch.tensor(x[None], dtype=torch.float32), None)[0].double().numpy()[face]
                  for x in (a, b))
    return float(np.sqrt(((va - vb) ** 2).sum(1).mean()))


def test_shared_identity_beats_the_single_view_fits(ict_head, setup):
    fitter, ids = setup
    alpha, points, sizes = _views(ict_head, ids, seed=1, noise=2.0)
    singles = [fitter.fit(p, s) for p, s in zip(points, sizes)]
    joint = fit_multi_image(fitter, points, sizes, init=singles)
    assert isinstance(joint, MultiImageFitResult)
    st = joint.state
    assert st.params.identity.shape == (1, 100) and st.num_images == 3 and st.shares_identity
    assert st.params.expression.shape == (3, 53) and st.camera.focal.shape == (3,)
    single_err = np.mean([_neutral_error(ict_head, s.state.params.identity[0], alpha) for s in singles])
    joint_err = _neutral_error(ict_head, st.params.identity[0], alpha)
    assert joint_err < single_err
    assert (joint.image_rms_px < 3.0).all()
    # each photo's own state, in its own pixels, reprojects onto its landmarks
    for i in range(3):
        one = joint.image_state(i)
        assert one.camera.image_size == sizes[i] and one.params.identity.shape == (1, 100)


def test_order_does_not_matter(ict_head, setup):
    fitter, ids = setup
    _, points, sizes = _views(ict_head, ids, seed=2)
    a = fit_multi_image(fitter, points, sizes)
    order = [2, 0, 1]
    b = fit_multi_image(fitter, [points[i] for i in order], [sizes[i] for i in order])
    np.testing.assert_allclose(a.state.params.identity, b.state.params.identity, atol=1e-6)
    np.testing.assert_allclose(a.state.params.rotation[order], b.state.params.rotation, atol=1e-6)
    np.testing.assert_allclose(a.image_rms_px[order], b.image_rms_px, atol=1e-6)


def test_photos_of_different_sizes_share_one_normalised_frame(ict_head, setup):
    fitter, ids = setup
    _, points, sizes = _views(ict_head, ids, seed=3, sizes=((480, 640), (960, 1280), (300, 200)), noise=0.5)
    joint = fit_multi_image(fitter, points, sizes)
    scales, side = normalised_scales(sizes)
    assert joint.state.camera.image_size == (side, side) == (1280, 1280)
    np.testing.assert_allclose(joint.image_scales, scales)
    for i, size in enumerate(sizes):
        one = joint.image_state(i)
        assert one.camera.image_size == size
        np.testing.assert_allclose(one.camera.principal[0], [size[1] / 2, size[0] / 2])
        proj = one.project(fitter.correspondence.points(_view_vertices(ict_head, one)))
        assert np.sqrt(np.mean(np.sum((proj - points[i]) ** 2, 1))) == pytest.approx(joint.image_rms_px[i], rel=1e-3)


def _view_vertices(model, state):
    p = state.params
    with torch.no_grad():
        return model.vertices(torch.tensor(p.identity, dtype=torch.float32),
                              torch.tensor(p.expression, dtype=torch.float32))[0].double().numpy()


def test_a_down_weighted_image_moves_the_identity_less(ict_head, setup):
    fitter, ids = setup
    _, points, sizes = _views(ict_head, ids, seed=4)
    _, other, _ = _views(ict_head, ids, seed=5)
    mixed = points[:2] + other[2:]
    equal = fit_multi_image(fitter, mixed, sizes)
    low = fit_multi_image(fitter, mixed, sizes, image_weights=np.array([1.0, 1.0, 0.05]))
    clean = fit_multi_image(fitter, points[:2], sizes[:2])
    d = lambda r: _neutral_error(ict_head, r.state.params.identity[0], clean.state.params.identity[0])  # noqa: E731
    assert d(low) < d(equal)
    np.testing.assert_allclose(low.image_weights, [1.0, 1.0, 0.05])


def test_each_image_has_its_own_landmark_weights(ict_head, setup):
    """B weight arrays: a point with weight 0 in one image does not pull that image's fit, and a
    weight of 0 on one image's every corrupted point gives that image's clean fit."""
    fitter, ids = setup
    _, points, sizes = _views(ict_head, ids, seed=7, noise=0.5)
    bad = [p.copy() for p in points]
    bad[1][:60] += 40.0  # gross errors on 60 points of image 1 only
    w = [np.ones(300), np.r_[np.zeros(60), np.ones(240)], np.ones(300)]
    clean = fit_multi_image(fitter, points, sizes)
    masked = fit_multi_image(fitter, bad, sizes, weights=w)
    raw = fit_multi_image(fitter, bad, sizes)
    d = lambda r: _neutral_error(ict_head, r.state.params.identity[0], clean.state.params.identity[0])  # noqa: E731
    assert d(masked) < 0.5 * d(raw)
    with pytest.raises(UsageError, match="weights"):
        fit_multi_image(fitter, points, sizes, weights=w[:2])


def test_bad_input_is_a_usage_error(ict_head, setup):
    fitter, ids = setup
    _, points, sizes = _views(ict_head, ids, seed=6)
    with pytest.raises(UsageError, match="at least one"):
        fit_multi_image(fitter, [], [])
    with pytest.raises(UsageError, match="image sizes"):
        fit_multi_image(fitter, points, sizes[:2])
    with pytest.raises(UsageError, match="image_weights"):
        fit_multi_image(fitter, points, sizes, image_weights=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(UsageError, match="landmarks"):
        fit_multi_image(fitter, [p[:10] for p in points], sizes, init=[fitter.fit(p, s) for p, s in zip(points, sizes)])


def test_a_turned_photos_outline_targets_pull_its_pose_in_the_joint_fit(ict_head, setup):
    from facerecon.fitting.config import LandmarkFitConfig
    from facerecon.fitting.outline import outline_targets

    from .test_outline import _turned_face

    fitter, ids = setup
    size = 256
    turned, verts, person = _turned_face(ict_head, np.zeros(ict_head.num_identity), size)
    frontal = turned.replace(rotation=np.zeros((1, 3)))
    targets = outline_targets(person, turned.project(verts[ids]))
    # the turned photo's landmarks put its face 8 mm off sideways (down-weighted): only its outline
    # targets can pull that photo's pose back; the frontal photo is exact
    off = turned.replace(translation=turned.params.translation + np.array([[8.0, 0.0, 0.0]]))
    points = [frontal.project(verts[ids]), off.project(verts[ids])]
    weights = [np.ones(len(ids)), np.full(len(ids), 0.01)]
    cfg = LandmarkFitConfig(terms={"landmark": 1.0, "identity_prior": 1.0, "expression_prior": 1.0, "outline": 1.0},
                            num_identity=10, focal_prior_sigma=0.0)
    args = dict(points=points, image_sizes=[(size, size)] * 2, weights=weights, config=cfg, focals=[500.0, 500.0])
    without = fit_multi_image(fitter, **args)
    with_outline = fit_multi_image(fitter, **args, extras=[{}, {"outline": targets}])
    truth_x = turned.params.translation[0, 0]
    assert abs(without.state.params.translation[1, 0] - truth_x) > 6.0
    assert abs(with_outline.state.params.translation[1, 0] - truth_x) < 4.0
    # one dict stands for every photo; a list of the wrong length is refused
    same = fit_multi_image(fitter, **args, extras={})
    np.testing.assert_allclose(same.state.params.translation, without.state.params.translation)
    with pytest.raises(UsageError, match="extras"):
        fit_multi_image(fitter, **args, extras=[{}])
