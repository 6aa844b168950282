"""Objectives are lists of registered terms: a custom term added through the config changes the fit."""
import numpy as np
import pytest
import torch

from facerecon.errors import UsageError
from facerecon.fitting import LandmarkFitConfig, LandmarkFitter, VertexCorrespondence
from facerecon.fitting.terms import TERMS, LossInputs, objective, register_term, unregister_term, weighted_sum
from facerecon.geometry.rotation import axis_angle_to_matrix_np


@pytest.fixture
def pull_identity():
    """A custom term: pull the first identity coefficient toward extras["target"]."""
    def residual(x, with_jacobian):
        r = np.array([x.identity[0] - x.extras.get("target", 0.0)])
        d = np.zeros(len(x.identity))
        d[0] = 1.0
        return x.linear("identity", r, d[None], with_jacobian)

    register_term("pull_identity", residual=residual, loss=lambda x: (x.identity[:, 0] - 3.0).pow(2).sum())
    yield "pull_identity"
    unregister_term("pull_identity")


def _setup(ict_head):
    rng = np.random.default_rng(0)
    ids = rng.choice(ict_head.regions["narrow_face"].numpy(), 200, replace=False)
    corr = VertexCorrespondence(np.stack([ids] * 3, 1), np.tile([1.0, 0, 0], (200, 1)), np.zeros(200, bool))
    y = ict_head.mean.double().numpy()[ids] @ axis_angle_to_matrix_np(np.array([0.0, 0.2, 0.0])).T + [0, 0, -600.0]
    pts = np.stack([200 + 800 * y[:, 0] / -y[:, 2], 200 - 800 * y[:, 1] / -y[:, 2]], 1)
    return LandmarkFitter(ict_head, corr), pts


def test_a_custom_term_added_through_the_config_changes_the_gauss_newton_fit(ict_head, pull_identity):
    fitter, pts = _setup(ict_head)
    base = fitter.fit(pts, (400, 400))
    cfg = LandmarkFitConfig()
    cfg.terms[pull_identity] = 50.0
    pulled = fitter.fit(pts, (400, 400), config=cfg, extras={"target": 3.0})
    a0, a1 = base.state.params.identity[0, 0], pulled.state.params.identity[0, 0]
    assert abs(a1 - 3.0) < 0.5 < abs(a0 - 3.0)


def test_dropping_a_prior_through_the_config_changes_the_fit(ict_head):
    fitter, pts = _setup(ict_head)
    cfg = LandmarkFitConfig()
    cfg.terms["identity_prior"] = 0.0
    free = fitter.fit(pts, (400, 400), config=cfg)
    base = fitter.fit(pts, (400, 400))
    assert np.linalg.norm(free.state.params.identity) > np.linalg.norm(base.state.params.identity)


def test_loss_forms_are_weighted_and_per_landmark_terms_scale_with_the_landmarks(pull_identity):
    n = 10
    x = LossInputs(identity=torch.zeros(1, 4), expression=torch.zeros(1, 2), vertices=torch.zeros(1, 3, 3),
                   camera=None, landmarks=torch.zeros(1, n, 2), landmark_target=torch.ones(1, n, 2),
                   landmark_weights=torch.ones(n), sigma=1.0, robust_scale=None, expression_std=torch.ones(2))
    total, values = weighted_sum(objective({"landmark": 2.0, pull_identity: 0.5}, "loss"), x)
    assert values["landmark"].item() == pytest.approx(2.0)  # |(1, 1)|^2 per landmark
    assert total.item() == pytest.approx(n * 2.0 * 2.0 + 0.5 * 9.0)


def test_unknown_terms_and_missing_forms_are_reported():
    with pytest.raises(UsageError, match="unknown objective term 'nope'"):
        objective({"nope": 1.0}, "residual")
    # the photometric term has no residual form: the Gauss-Newton fit skips it
    assert [t.name for t, _ in objective({"photometric": 1.0, "landmark": 1.0}, "residual")] == ["landmark"]
    with pytest.raises(UsageError, match="registered already"):
        register_term("landmark", residual=TERMS["landmark"].residual)
