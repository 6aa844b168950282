import numpy as np
import pytest
import torch

from facerecon.errors import FitError, UsageError
from facerecon.fitting.correspondence import VertexCorrespondence, correspondence_on
from facerecon.fitting.landmark_fit import LandmarkFitter, estimate_orthographic_projection_linear
from facerecon.geometry.rotation import axis_angle_to_matrix_np as rodrigues_np, matrix_to_axis_angle_np as so3_log, matrix_to_euler_deg_np as euler_from_matrix_deg


def _project(vertices, rot, trans, focal, size):
    y = vertices @ rodrigues_np(rot).T + trans
    return np.stack([size[1] / 2 + focal * y[:, 0] / -y[:, 2], size[0] / 2 - focal * y[:, 1] / -y[:, 2]], 1)


def test_rotation_helpers_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(20):
        aa = rng.normal(size=3)
        aa *= rng.uniform(0, 3.1) / np.linalg.norm(aa)
        np.testing.assert_allclose(rodrigues_np(so3_log(rodrigues_np(aa))), rodrigues_np(aa), atol=1e-9)
    yaw = np.radians(30)
    r = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    assert euler_from_matrix_deg(r) == pytest.approx((30.0, 0.0, 0.0), abs=1e-9)


def test_orthographic_estimate_recovers_rotation_and_scale():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 3)) * 40
    r = rodrigues_np(np.array([0.2, -0.4, 0.1]))
    p = np.stack([2.0 * (x @ r.T)[:, 0] + 100, -2.0 * (x @ r.T)[:, 1] + 80], 1)
    r_est, s, t = estimate_orthographic_projection_linear(x, p)
    np.testing.assert_allclose(r_est, r, atol=1e-9)
    assert s == pytest.approx(2.0) and t == pytest.approx([100, 80])


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
    assert fit.rms_px < 1.0
    np.testing.assert_allclose(fit.rotation, rot, atol=0.05)
    assert fit.expression.min() >= 0 and fit.expression.max() <= 1
    face = ict_head.regions["narrow_face"].numpy()
    err_fit = _shape_error(ict_head, (fit.identity, fit.expression), (alpha, psi), face)
    err_mean = _shape_error(ict_head, (np.zeros(100), np.zeros(53)), (alpha, psi), face)
    assert err_fit < 0.5 * err_mean
    # a known focal length is respected
    fixed = fitter.fit(pts, size, focal=900.0)
    assert fixed.focal == pytest.approx(900.0)
    assert abs(fixed.translation[2] - trans[2]) < abs(fit.translation[2] - trans[2]) + 1e-6 or fixed.rms_px < 1.0


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
