import numpy as np
import pytest
import torch

from facerecon.errors import UsageError
from facerecon.fitting.landmark_fit import project_with_jacobian, thinned_vertices
from facerecon.fitting.outline import (OutlineTargets, background_residuals, edge_residuals, outline_residual,
                                       outline_targets)
from facerecon.fitting.config import LandmarkFitConfig
from facerecon.fitting.state import FaceState
from facerecon.fitting.terms import GaussNewtonInputs, SurfaceProjection
from facerecon.render import render_mesh

from .test_multi_image_fit import sparse_fitter


def _half_person():
    person = np.zeros((40, 40), np.float32)
    person[:, :20] = 1.0  # person on the left half
    pts = np.array([[5.0, 5.0], [25.0, 5.0], [25.0, 35.0], [5.0, 35.0]])  # the hull crosses into the background
    return person, pts


def test_targets_put_edges_on_the_person_side_with_outward_normals():
    person, pts = _half_person()
    t = outline_targets(person, pts, band_fraction=0.1)
    assert len(t.edge_points) >= 5
    np.testing.assert_allclose(t.edge_points[:, 0], 19.5)  # the last person column's centre
    assert (t.edge_points[:, 1] > 5).all() and (t.edge_points[:, 1] < 36).all()  # inside the hull only
    np.testing.assert_allclose(t.edge_normals, np.tile([1.0, 0.0], (len(t.edge_normals), 1)), atol=1e-6)
    assert t.background_distance[10, 25] == pytest.approx(6.0) and t.background_distance[10, 5] == 0
    assert tuple(t.nearest_person[10, 25]) == (10, 19)
    r, c = (t.edge_points[:, 1] - 0.5).astype(int), (t.edge_points[:, 0] - 0.5).astype(int)
    assert (t.edge_distance[r, c] == 0).all() and t.edge_distance[20, 5] >= 14  # from the edge column 19
    with pytest.raises(UsageError):
        outline_targets(person, pts[:2])
    # collinear points have no hull: no edges, with or without a margin
    line = np.array([[5.0, 5.0], [15.0, 15.0], [25.0, 25.0]])
    assert len(outline_targets(person, line, band_fraction=0.1, margin_fraction=0.2).edge_points) == 0
    # the margin reaches past the hull, but never above the face's top along its axis
    grown = outline_targets(person, pts, band_fraction=0.1, margin_fraction=0.1)
    assert grown.edge_points[:, 1].min() < t.edge_points[:, 1].min()
    capped = outline_targets(person, pts, band_fraction=0.1, margin_fraction=0.1,
                             face_axis=(np.array([15.0, 35.0]), np.array([15.0, 5.0])))
    assert capped.edge_points[:, 1].min() >= 5.0


def test_background_residuals_measure_how_far_past_the_edge_a_sample_lies():
    person, pts = _half_person()
    t = outline_targets(person, pts, band_fraction=0.1)
    rows, dist, direction = background_residuals(np.array([[25.5, 10.5], [10.5, 10.5], [-3.0, 10.0]]), t)
    assert rows.tolist() == [0]  # the sample off the image clamps to its border pixel, which is person
    assert dist[0] == pytest.approx(5.5)
    np.testing.assert_allclose(direction[0], [1.0, 0.0])


def test_edge_residuals_pair_each_edge_with_the_outermost_sample_near_its_normal():
    t = OutlineTargets((0, 0), np.zeros((40, 40), np.float32), np.zeros((40, 40, 2), np.int32),
                       np.zeros((40, 40), np.float32), np.array([[19.5, 10.5], [19.5, 30.5]]), np.array([[1.0, 0.0], [1.0, 0.0]]), reach=8.0)
    samples = np.array([[15.0, 10.0], [17.0, 11.0], [18.0, 20.0],  # near the first edge: 17 is outermost
                        [21.0, 30.0], [5.0, 30.5]])  # the second edge is reached (21 beyond it)
    rows, short, normals = edge_residuals(samples, t, window=2.0)
    assert rows.tolist() == [1] and short[0] == pytest.approx(2.5)
    np.testing.assert_allclose(normals, [[1.0, 0.0]])
    far = edge_residuals(np.array([[5.0, 10.5]]), t, window=2.0)  # beyond the reach: not paired
    assert len(far[0]) == 0


def test_projection_jacobian_matches_finite_differences():
    rng = np.random.default_rng(0)
    mean = rng.normal(scale=40.0, size=(6, 3))
    basis = rng.normal(size=(6, 3, 4))
    coeffs = rng.normal(size=4)
    rot, trans, log_f, principal = np.array([0.1, 0.6, -0.05]), np.array([3.0, -4.0, -500.0]), np.log(800.0), np.array([320.0, 240.0])
    uv, jac = project_with_jacobian(mean, basis, coeffs, rot, trans, log_f, principal, True)
    assert uv.shape == (6, 2) and jac.shape == (6, 2, 11)
    from facerecon.geometry.rotation import axis_angle_to_matrix_np, matrix_to_axis_angle_np
    eps = 1e-6
    for k in range(11):
        d = np.zeros(11)
        d[k] = eps
        r2 = matrix_to_axis_angle_np(axis_angle_to_matrix_np(d[4:7]) @ axis_angle_to_matrix_np(rot))
        uv2, _ = project_with_jacobian(mean, basis, coeffs + d[:4], r2, trans + d[7:10], log_f + d[10], principal,
                                       False)
        np.testing.assert_allclose((uv2 - uv) / eps, jac[:, :, k], rtol=1e-4, atol=1e-4)


def test_thinned_vertices_keep_one_per_cell():
    pts = np.array([[0.1, 0.1, 0.1], [0.4, 0.6, 0.5], [0.9, 0.9, 0.9], [2.5, 0.5, 0.5]])
    assert thinned_vertices(pts, np.arange(4), 1.0).tolist() == [1, 3]  # 1 is nearest its cell's centre
    assert len(thinned_vertices(pts, np.zeros(0, np.int64), 1.0)) == 0


@pytest.fixture(scope="module")
def head_fitter(ict_head):
    return sparse_fitter(ict_head)


def _turned_face(ict_head, alpha, size=256):
    rot, trans, focal = np.array([0.0, np.radians(60.0), 0.0]), np.array([0.0, 0.0, -650.0]), 500.0
    state = FaceState.single(alpha, np.zeros(ict_head.num_expression), rot, trans, focal,
                             np.array([size / 2.0, size / 2.0]), (size, size))
    verts = ict_head.vertices(torch.tensor(alpha[None], dtype=torch.float32),
                              torch.zeros(1, ict_head.num_expression))
    with torch.no_grad():
        alpha_map = render_mesh(verts.double(), ict_head.triangles, state.pinhole(dtype=torch.float64)).alpha[0].numpy()
    return state, verts[0].double().numpy(), alpha_map.astype(np.float32)


def test_the_outline_term_moves_a_turned_faces_profile_toward_the_person_mask(ict_head, head_fitter):
    fitter, ids = head_fitter
    size = 256
    state, verts, person = _turned_face(ict_head, np.zeros(ict_head.num_identity), size)
    targets = outline_targets(person, state.project(verts[ids]))
    # landmarks that put the face 8 mm off sideways, weighted down: the outline must pull it back
    pts = state.replace(translation=state.params.translation + np.array([[8.0, 0.0, 0.0]])).project(verts[ids])
    cfg = LandmarkFitConfig(terms={"landmark": 1.0, "identity_prior": 1.0, "outline": 1.0}, num_identity=10,
                            focal_prior_sigma=0.0)
    weights = np.full(len(ids), 0.01)
    fit = fitter.fit(pts, (size, size), weights, config=cfg, focal=500.0, init=state, freeze_identity=True,
                     freeze_expression=True, extras={"outline": targets})
    still = fitter.fit(pts, (size, size), weights, config=cfg, focal=500.0, init=state, freeze_identity=True,
                       freeze_expression=True)
    truth_x = state.params.translation[0, 0]
    assert abs(still.state.params.translation[0, 0] - truth_x) > 6.0  # the landmarks alone move it off
    assert abs(fit.state.params.translation[0, 0] - truth_x) < 4.0

    # and the term's own residual fell
    def cost(f):
        p = f.state.params
        log_f = float(np.log(f.state.camera.focal[0]))
        coeffs = np.r_[p.identity[0], p.expression[0]]
        x = GaussNewtonInputs(p.identity[0], p.expression[0], p.rotation[0], p.translation[0], log_f, 0.0, [],
                              cfg, None, {"outline": targets}, 0.01 * np.linalg.norm(np.ptp(pts, axis=0)),
                              lambda: fitter._surface_projection(fitter._surface_arrays(fitter._basis(10)), coeffs,
                                                                 p.rotation[0], p.translation[0], log_f,
                                                                 f.state.camera.principal[0]))
        r = outline_residual(x, False)
        return 0.0 if r is None else float(r.r @ r.r)
    assert cost(fit) < 0.5 * cost(still)


def test_the_term_is_silent_without_targets_and_rejects_wrong_ones():
    x = GaussNewtonInputs(np.zeros(2), np.zeros(1), np.zeros(3), np.array([0, 0, -500.0]), 0.0, 0.0, [],
                          LandmarkFitConfig(), None, {}, 1.0, None)
    assert outline_residual(x, True) is None
    x.extras = {"outline": "not targets"}
    with pytest.raises(UsageError):
        outline_residual(x, True)


def test_an_edge_whose_outermost_sample_is_off_the_face_is_left_out():
    t = OutlineTargets((0, 0), np.zeros((40, 40), np.float32), np.zeros((40, 40, 2), np.int32),
                       np.zeros((40, 40), np.float32), np.array([[19.5, 10.5]]), np.array([[1.0, 0.0]]), reach=8.0)
    uv = np.array([[17.0, 10.5], [18.0, 11.0]])

    def inputs(in_face):
        jac = lambda rows: np.tile(np.eye(2)[None, :, :], (len(rows), 1, 1))  # noqa: E731 - d(u, v) / d(u, v)
        surface = SurfaceProjection(uv, np.zeros(2), jac, np.asarray(in_face))
        return GaussNewtonInputs(np.zeros(0), np.zeros(0), np.zeros(3), np.array([0.0, 0.0, -500.0]), np.log(500.0),
                                 0.0, [], LandmarkFitConfig(), None, {"outline": t}, 0.5, lambda: surface)

    res = outline_residual(inputs([True, True]), True)
    np.testing.assert_allclose(res.r, [1.5 / 0.5])  # the outermost sample, 1.5 px short, in units of sigma
    np.testing.assert_allclose(res.jacobian, [[-2.0, 0.0]])  # moving it outward shortens the gap
    assert outline_residual(inputs([True, False]), True) is None  # the outline there is not the face's
