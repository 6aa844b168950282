import numpy as np
import pytest
import torch

from facerecon.errors import UsageError
from facerecon.fitting import FaceState, LandmarkFitter, correspondence_on
from facerecon.fitting.uncertainty import shape_posterior, vertex_uncertainty
from facerecon.landmarks import load_correspondence


@pytest.fixture(scope="module")
def setup(ict_head):
    emb = load_correspondence(ict_head)
    corr = correspondence_on(ict_head, emb.as_embedding(), sliding=emb.sliding.cpu().numpy())
    w = np.where(emb.iris.cpu().numpy() | ~emb.valid.cpu().numpy(), 0.0, 1.0)
    return ict_head, corr, w


def _views(model, corr, yaws):
    rng = np.random.default_rng(0)
    alpha = rng.normal(0, 1, model.num_identity)
    with torch.no_grad():
        v = model.vertices(torch.as_tensor(alpha[None]).float())[0].double().numpy()
    states, points = [], []
    for yaw in yaws:
        rot = np.array([0.0, np.radians(yaw), 0.0])
        s = FaceState.single(alpha, np.zeros(model.num_expression), rot, np.array([0.0, 0.0, -600.0]), 800.0,
                             np.array([256.0, 256.0]), (512, 512))
        states.append(s)
        points.append(s.project(corr.points(v)))
    return states, np.stack(points)


def test_std_shrinks_as_views_are_added(setup):
    model, corr, w = setup
    yaws = [0.0, 30.0, -30.0, 15.0]
    means = []
    for b in (1, 2, 4):
        states, points = _views(model, corr, yaws[:b])
        state = FaceState.stack(states)
        post = shape_posterior(model, [corr] * b, points, w, state)
        unc = vertex_uncertainty(post, model, include_expression=False)
        assert np.isfinite(unc.std).all() and (unc.std >= 0).all()
        means.append(unc.mean())
    assert means[0] > means[1] > means[2]


def test_the_fitted_single_image_std_is_small_where_landmarks_are(setup):
    model, corr, w = setup
    states, points = _views(model, corr, [0.0])
    fit = LandmarkFitter(model, corr).fit(points[0], (512, 512), w)
    post = shape_posterior(model, [fit.correspondence], points, w, fit.state)
    normals = np.tile([0.0, 0.0, 1.0], (model.num_vertices, 1))
    unc = vertex_uncertainty(post, model, normals=normals)
    lm_std = unc.std[corr.vertex_ids[w > 0, 0]].mean()
    assert lm_std < unc.std.mean() * 1.5 and unc.normal_std.shape == (model.num_vertices,)


def test_mismatched_inputs_raise(setup):
    model, corr, w = setup
    states, points = _views(model, corr, [0.0, 20.0])
    with pytest.raises(UsageError):
        shape_posterior(model, [corr], points, w, FaceState.stack(states))


def test_noise_from_the_residuals_follows_the_landmark_noise(setup):
    model, corr, w = setup
    states, clean = _views(model, corr, [0.0])
    rng = np.random.default_rng(1)
    scales, means = [], []
    for noise_px in (1.0, 4.0):
        points = clean + rng.normal(0, noise_px, clean.shape)
        fit = LandmarkFitter(model, corr).fit(points[0], (512, 512), w)
        post = shape_posterior(model, [fit.correspondence], points, w, fit.state, estimate_noise=True)
        assumed = shape_posterior(model, [fit.correspondence], points, w, fit.state)
        assert assumed.noise_scale == 1.0 and post.dof > 100
        scales.append(post.noise_scale)
        means.append(vertex_uncertainty(post, model, include_expression=False).mean())
    # 4x the noise: about 4x the scale (batch means over a grid: a loose bound), and a larger std
    assert 2.5 < scales[1] / scales[0] < 6.0 and means[1] > means[0]


def test_vertex_std_matches_the_basis_covariance(setup):
    model, corr, w = setup
    states, points = _views(model, corr, [0.0])
    post = shape_posterior(model, [corr], points, w, states[0])
    unc = vertex_uncertainty(post, model, include_expression=False)
    idx, cov = post.block(0, include_expression=False)
    b = model.identity_basis.double().numpy()[:post.num_identity, 100]  # (P, 3) of vertex 100
    expect = np.sqrt(np.trace(b.T @ cov @ b) / 3)
    assert abs(unc.std[100] - expect) < 1e-3 * expect
