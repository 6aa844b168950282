import numpy as np
import pytest
import torch

from facerecon.errors import FitError, UsageError
from facerecon.fitting.correspondence import VertexCorrespondence, correspondence_on
from facerecon.fitting.landmark_fit import LandmarkFitter
from facerecon.geometry.rotation import axis_angle_to_matrix_np as rodrigues_np


def _project(vertices, rot, trans, focal, size):
    y = vertices @ rodrigues_np(rot).T + trans
    return np.stack([size[1] / 2 + focal * y[:, 0] / -y[:, 2], size[0] / 2 - focal * y[:, 1] / -y[:, 2]], 1)


@pytest.fixture(scope="module")
def dense_setup(ict_model, ict_head):
    rng = np.random.default_rng(0)
    face = ict_head.regions["narrow_face"].numpy()
    ids = rng.choice(face, 300, replace=False)
    corr = VertexCorrespondence(np.stack([ids] * 3, 1), np.tile([1.0, 0, 0], (300, 1)), np.zeros(300, bool))
    return LandmarkFitter(ict_head, corr), ids


def _shape_error(model, a, b, ids):
    va = model.vertices(torch.tensor(a[0][None], dtype=torch.float32), torch.tensor(a[1][None], dtype=torch.float32))[0].numpy()[ids]
    vb = model.vertices(torch.tensor(b[0][None], dtype=torch.float32), torch.tensor(b[1][None], dtype=torch.float32))[0].numpy()[ids]
    va, vb = va - va.mean(0), vb - vb.mean(0)
    u, s, vt = np.linalg.svd(vb.T @ va)
    r = u @ vt
    scale = s.sum() / (va ** 2).sum()
    return np.linalg.norm(scale * va @ r.T - vb, axis=1).mean()


def test_landmark_fit_round_trip_on_the_model(ict_head, dense_setup):
    fitter, ids = dense_setup
    rng = np.random.default_rng(3)
    alpha = rng.normal(size=100)
    psi = np.clip(rng.random(53) * (rng.random(53) < 0.15), 0, 1)
    verts = ict_head.vertices(torch.tensor(alpha[None], dtype=torch.float32),
                              torch.tensor(psi[None], dtype=torch.float32))[0].double().numpy()
    rot, trans, focal, size = np.array([0.1, 0.5, 0.05]), np.array([5.0, -10, -700]), 900.0, (480, 640)
    pts = _project(verts[ids], rot, trans, focal, size) + rng.normal(scale=0.3, size=(len(ids), 2))
    fit = fitter.fit(pts, size)
    p = fit.state.params
    assert fit.rms_px < 1.0 and fit.state.num_images == 1 and fit.state.camera.image_size == size
    np.testing.assert_allclose(p.rotation[0], rot, atol=0.05)
    assert p.expression.min() >= 0 and p.expression.max() <= 1
    face = ict_head.regions["narrow_face"].numpy()
    err_fit = _shape_error(ict_head, (p.identity[0], p.expression[0]), (alpha, psi), face)
    err_mean = _shape_error(ict_head, (np.zeros(100), np.zeros(53)), (alpha, psi), face)
    assert err_fit < 0.5 * err_mean
    # a known focal length is respected
    fixed = fitter.fit(pts, size, focal=900.0)
    assert fixed.state.camera.focal[0] == pytest.approx(900.0)
    t_fixed, t_free = fixed.state.params.translation[0, 2], p.translation[0, 2]
    assert abs(t_fixed - trans[2]) < abs(t_free - trans[2]) + 1e-6 or fixed.rms_px < 1.0
    # warm start from the result (a tracker's next frame): converges at once to the same fit
    again = fitter.fit(pts, size, init=fit)
    assert again.rms_px <= fit.rms_px + 1e-6


def test_frozen_identity_stays_put(dense_setup, ict_head):
    fitter, ids = dense_setup
    verts = ict_head.mean.double().numpy()
    pts = _project(verts[ids], np.array([0.0, 0.3, 0.0]), np.array([0.0, 0.0, -600.0]), 800.0, (400, 400))
    first = fitter.fit(pts, (400, 400))
    start = first.state.replace(identity=first.state.params.identity + 0.5)
    held = fitter.fit(pts, (400, 400), init=start, freeze_identity=True)
    np.testing.assert_array_equal(held.state.params.identity, start.params.identity)


def test_landmark_fit_bad_input(dense_setup):
    fitter, ids = dense_setup
    with pytest.raises(UsageError, match="expected"):
        fitter.fit(np.zeros((3, 2)), (100, 100))
    pts = np.full((len(ids), 2), np.nan)
    with pytest.raises(FitError, match="NaN"):
        fitter.fit(pts, (100, 100))
    with pytest.raises(FitError, match="less than 4 pixels"):
        fitter.fit(np.ones((len(ids), 2)), (100, 100))


def test_correspondence_on_a_view_matches_the_full_model(ict_model, ict_head):
    corr = correspondence_on(ict_head, ict_model.landmarks68, parent=ict_model)
    full = ict_model.landmark_points(ict_model.vertices())[0].numpy()
    np.testing.assert_allclose(corr.points(ict_head.mean.numpy().astype(np.float64)), full, atol=1e-4)
    eyeball = ict_model.view("eyeball_left")
    with pytest.raises(UsageError, match="outside the view"):
        correspondence_on(eyeball, ict_model.landmarks68, parent=ict_model)


def test_landmark_facing_is_negative_on_the_far_side_of_a_turned_face(ict_head):
    from facerecon.fitting.state import FaceState
    from facerecon.fitting.result import FitDiagnostics, FitResult

    rng = np.random.default_rng(1)
    ids = rng.choice(ict_head.regions["face"].numpy(), 400, replace=False)
    corr = VertexCorrespondence(np.stack([ids] * 3, 1), np.tile([1.0, 0, 0], (400, 1)), np.zeros(400, bool))
    fitter = LandmarkFitter(ict_head, corr)
    mean = ict_head.mean.double().numpy()
    for yaw, far in ((1.2, 1.0), (-1.2, -1.0)):  # about +-70 degrees: the cheek turned away faces away
        state = FaceState.single(np.zeros(100), np.zeros(53), [0.0, yaw, 0.0], [0.0, 0.0, -600.0], 800.0,
                                 [200.0, 200.0], (400, 400))
        facing = fitter.landmark_facing(FitResult(state, corr, FitDiagnostics(np.zeros((1, 400)))))
        far_side = far * mean[ids, 0] > 40.0
        assert far_side.any() and np.median(facing[far_side]) < 0 < np.median(facing[~far_side])


def test_woodbury_whitening_equals_the_dense_inverse_covariance():
    from facerecon.fitting.landmark_fit import woodbury_whitener

    rng = np.random.default_rng(5)
    m, k, p = 40, 6, 9
    d = rng.uniform(0.1, 2.0, m)
    u = rng.normal(size=(m, k))
    u[:, -1] = 0.0  # a zero factor is harmless
    jac, r = rng.normal(size=(m, p)), rng.normal(size=m)
    dense = np.linalg.inv(np.diag(d) + u @ u.T)
    whiten = woodbury_whitener(d, u)
    wj, wr = whiten(jac), whiten(r)
    np.testing.assert_allclose(wj.T @ wj, jac.T @ dense @ jac, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(wj.T @ wr, jac.T @ dense @ r, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(wr @ wr, r @ dense @ r, rtol=1e-9)
    # the Gauss-Newton step of the whitened residuals is the dense generalised least-squares step
    np.testing.assert_allclose(np.linalg.lstsq(wj, wr, rcond=None)[0],
                               np.linalg.solve(jac.T @ dense @ jac, jac.T @ dense @ r), rtol=1e-8)


def test_correlated_noise_restricted_to_the_used_points_is_the_marginal_covariance():
    from facerecon.fitting.landmark_fit import CorrelatedNoise, landmark_reprojection

    rng = np.random.default_rng(6)
    n_pts, p, k = 12, 5, 3
    mean = rng.normal(size=(n_pts, 3)) * 50
    basis = rng.normal(size=(n_pts, 3, p))
    coeffs = rng.normal(size=p)
    args = (mean, basis, coeffs, np.array([0.1, 0.2, 0.0]), np.array([0.0, 0.0, -600.0]), np.log(800.0),
            np.array([100.0, 100.0]))
    points = rng.normal(size=(n_pts, 2)) * 40 + 100
    weights = np.ones(n_pts)
    weights[[2, 7]] = 0.0
    weights[4] = 0.3
    d, u = rng.uniform(1, 4, (n_pts, 2)), rng.normal(size=(n_pts, 2, k))
    sigma = 2.0
    res = landmark_reprojection(*args, points, weights, sigma, None, True, CorrelatedNoise(d, u))
    plain = landmark_reprojection(*args, points, weights, sigma, None, True)
    used = np.repeat(weights > 0, 2)
    cov = (np.diag(d.ravel()) + u.reshape(-1, k) @ u.reshape(-1, k).T)[np.ix_(used, used)] / sigma ** 2
    j, r = plain.jacobian[used], plain.r[used]
    prec = np.linalg.inv(cov)
    assert res.r.shape == (2 * (n_pts - 2),)
    np.testing.assert_allclose(res.jacobian.T @ res.jacobian, j.T @ prec @ j, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(res.jacobian.T @ res.r, j.T @ prec @ r, rtol=1e-8, atol=1e-8)
    cost_only = landmark_reprojection(*args, points, weights, sigma, None, False, CorrelatedNoise(d, u))
    np.testing.assert_allclose(cost_only.r, res.r)


def test_diagonal_correlated_noise_is_the_weighted_fit(dense_setup, ict_head):
    from facerecon.fitting.config import LandmarkFitConfig, LandmarkNoise
    from facerecon.fitting.landmark_fit import CorrelatedNoise

    fitter, ids = dense_setup
    rng = np.random.default_rng(8)
    alpha = rng.normal(size=100) * 0.5
    verts = ict_head.vertices(torch.tensor(alpha[None], dtype=torch.float32), torch.zeros(1, 53))[0].double().numpy()
    size = (480, 640)
    pts = _project(verts[ids], np.array([0.0, 0.4, 0.0]), np.array([0.0, 0, -700]), 900.0, size)
    pts = pts + rng.normal(scale=0.5, size=pts.shape)
    cfg = LandmarkFitConfig(noise=LandmarkNoise(robust_scale=None))
    plain = fitter.fit(pts, size, config=cfg)
    face = float(np.linalg.norm(np.ptp(pts, axis=0)))
    sigma = cfg.noise.sigma * face
    # Sigma = sigma^2 I with zero factors: the same objective as independent points
    noise = CorrelatedNoise(np.full((len(ids), 2), sigma ** 2), np.zeros((len(ids), 2, 2)))
    corr = fitter.fit(pts, size, config=cfg, noise=noise)
    np.testing.assert_allclose(corr.state.params.identity, plain.state.params.identity, atol=1e-6)
    with pytest.raises(UsageError, match="landmarks"):
        fitter.fit(pts, size, noise=CorrelatedNoise(np.ones((5, 2)), np.zeros((5, 2, 1))))
    with pytest.raises(UsageError, match="positive"):
        CorrelatedNoise(np.zeros((5, 2)), np.zeros((5, 2, 1)))


def test_normal_equations_equal_the_dense_weighted_products():
    from facerecon.fitting.landmark_fit import normal_equations
    from facerecon.fitting.terms import Residual

    rng = np.random.default_rng(3)
    jac, r = rng.normal(size=(40, 9)), rng.normal(size=40)
    irls = rng.uniform(0.1, 1.0, size=40)
    block = Residual(rng.normal(size=4), rng.normal(size=(4, 3)), None, slice(2, 5))
    diagonal = Residual(rng.normal(size=9), rng.uniform(0.5, 2, size=9))
    a_mat, g = normal_equations([(Residual(r, jac, irls), 2.0), (block, 0.5), (diagonal, 3.0)], 9)
    want_a = 2.0 * jac.T @ (irls[:, None] * jac) + 3.0 * np.diag(diagonal.jacobian ** 2)
    want_a[2:5, 2:5] += 0.5 * block.jacobian.T @ block.jacobian
    want_g = 2.0 * jac.T @ (irls * r) + 3.0 * diagonal.jacobian * diagonal.r
    want_g[2:5] += 0.5 * block.jacobian.T @ block.r
    np.testing.assert_allclose(a_mat, want_a, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a_mat, a_mat.T, rtol=0, atol=0)
    np.testing.assert_allclose(g, want_g, rtol=1e-12, atol=1e-12)
    # a negative weight (no square root) takes the general product and gives the same formula
    signed = rng.normal(size=40)
    a_neg, g_neg = normal_equations([(Residual(r, jac, signed), 1.0)], 9)
    np.testing.assert_allclose(a_neg, jac.T @ (signed[:, None] * jac), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g_neg, jac.T @ (signed * r), rtol=1e-12, atol=1e-12)


def test_damped_step_solves_the_damped_system_and_survives_an_indefinite_matrix():
    from facerecon.fitting.landmark_fit import solve_damped_step

    rng = np.random.default_rng(4)
    m = rng.normal(size=(12, 8))
    a_mat, g = m.T @ m, rng.normal(size=8)
    step = solve_damped_step(a_mat, g, 0.1)
    damped = a_mat + 0.1 * np.diag(np.diag(a_mat) + 1e-6)
    np.testing.assert_allclose(damped @ step, -g, rtol=1e-10, atol=1e-10)
    indefinite = np.diag([1.0, -2.0, 3.0])  # Cholesky fails: the general solver answers
    np.testing.assert_allclose(solve_damped_step(indefinite, np.ones(3), 0.0), -1.0 / np.diag(indefinite))
    assert solve_damped_step(np.zeros((3, 3)), np.ones(3), 0.0) is None  # singular


def test_outline_update_recomputes_only_the_changed_rows_of_the_landmark_bases(dense_setup):
    fitter = dense_setup[0]
    corr = fitter.correspondence
    basis = fitter._basis(fitter.num_identity)
    before = fitter._landmark_bases(corr.vertex_ids, corr.weights, basis)
    moved = corr.vertex_ids.copy()
    moved[[4, 50, 200], :] = corr.vertex_ids[[7, 8, 9], :1]  # three points slid onto other fitted vertices
    full = fitter._landmark_bases(moved, corr.weights, basis)
    part = fitter._landmark_bases(moved, corr.weights, basis, previous=(corr.vertex_ids, before))
    assert not np.allclose(full[1], before[1])
    np.testing.assert_array_equal(part[0], full[0])
    np.testing.assert_array_equal(part[1], full[1])
    assert np.shares_memory(before[1], fitter._landmark_bases(corr.vertex_ids, corr.weights, basis)[1]) is False
