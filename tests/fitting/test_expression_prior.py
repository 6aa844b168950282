"""The blendshape-network expression prior: ARKit -> ICT mapping, residual and loss forms, and its pull in a fit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from facerecon.errors import UsageError
from facerecon.fitting import LandmarkFitConfig, LandmarkFitter, VertexCorrespondence
from facerecon.fitting.expression_prior import TERM, blendshapes_to_expression
from facerecon.fitting.terms import TERMS, GaussNewtonInputs, LossInputs
from facerecon.geometry.rotation import axis_angle_to_matrix_np
from facerecon.models.arkit import ARKIT_NAMES, ICT_TO_ARKIT

ICT_NAMES = sorted({s for sources in ICT_TO_ARKIT.values() for s in sources})


def test_scores_map_to_ict_names_halves_taking_the_combined_value():
    e = blendshapes_to_expression(ICT_NAMES + ["notArkit"], {"browInnerUp": 0.6, "eyeBlinkLeft": 0.9, "jawLeft": 0.2})
    got = dict(zip(ICT_NAMES + ["notArkit"], e))
    assert got["browInnerUp_L"] == got["browInnerUp_R"] == 0.6
    assert got["eyeBlink_L"] == 0.9 and got["eyeBlink_R"] == 0.0 and got["jawLeft"] == 0.2
    assert got["notArkit"] == 0.0 and e.shape == (len(ICT_NAMES) + 1,)
    assert sum(v > 0 for v in got.values()) == 4


def test_an_array_in_arkit_order_gives_the_same_as_a_mapping():
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, len(ARKIT_NAMES))
    a = blendshapes_to_expression(ICT_NAMES, scores)
    b = blendshapes_to_expression(ICT_NAMES, dict(zip(ARKIT_NAMES, scores)))
    assert np.array_equal(a, b)
    assert np.array_equal(blendshapes_to_expression(ICT_NAMES, np.full(52, 1.5)), np.ones(len(ICT_NAMES)))


def test_bad_scores():
    with pytest.raises(UsageError, match="shape"):
        blendshapes_to_expression(ICT_NAMES, np.zeros(51))
    with pytest.raises(UsageError, match="not ARKit"):
        blendshapes_to_expression(ICT_NAMES, {"_neutral": 1.0})
    with pytest.raises(UsageError, match="NaN"):
        blendshapes_to_expression(ICT_NAMES, {"jawOpen": float("nan")})


def _inputs(expression, extras):
    k = len(expression)
    return GaussNewtonInputs(np.zeros(3), np.asarray(expression, float), np.zeros(3), np.zeros(3), 0.0, 0.0,
                             [f"e{i}" for i in range(k)], LandmarkFitConfig(), None, extras)


def test_residual_form_is_the_weighted_difference_with_a_diagonal_jacobian():
    term = TERMS[TERM]
    assert term.residual is not None and term.loss is not None
    x = _inputs([0.2, 0.5, 0.0], {"blendshapes": np.array([0.1, 0.5, 0.4]),
                                  "blendshape_confidence": np.array([4.0, 1.0, 0.0])})
    res = term.residual(x, True)
    assert np.allclose(res.r, [0.2, 0.0, 0.0]) and np.allclose(res.jacobian, [2.0, 1.0, 0.0])
    assert res.columns == x.block("expression")
    assert term.residual(_inputs([0.2, 0.5, 0.0], {}), True) is None
    with pytest.raises(UsageError, match="blendshapes"):
        term.residual(_inputs([0.2, 0.5, 0.0], {"blendshapes": np.zeros(4)}), True)
    with pytest.raises(UsageError, match="confidence"):
        term.residual(_inputs([0.2, 0.5, 0.0], {"blendshapes": np.zeros(3), "blendshape_confidence": -np.ones(3)}),
                      True)


def test_loss_form_matches_the_residual_cost_and_its_gradient():
    e = torch.tensor([[0.2, 0.5, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64, requires_grad=True)
    target = np.array([[0.1, 0.5, 0.4], [0.0, 0.3, 1.0]])
    x = LossInputs(identity=torch.zeros(1, 3), expression=e, vertices=torch.zeros(2, 3, 3), camera=None,
                   landmarks=torch.zeros(2, 1, 2), landmark_target=torch.zeros(2, 1, 2),
                   landmark_weights=torch.ones(1), sigma=1.0, robust_scale=None, expression_std=torch.ones(3),
                   extras={"blendshapes": target})
    loss = TERMS[TERM].loss(x)
    assert loss.item() == pytest.approx(0.01 + 0.16 + 0.09)
    loss.backward()
    assert torch.allclose(e.grad, 2 * (e.detach() - torch.as_tensor(target)))
    x.extras = {"blendshapes": np.zeros((3, 3))}
    with pytest.raises(UsageError, match="rows"):
        TERMS[TERM].loss(x)
    x.extras = None
    assert TERMS[TERM].loss(x) is None


def _points(head, expression):
    rng = np.random.default_rng(0)
    ids = rng.choice(head.regions["narrow_face"].numpy(), 300, replace=False)
    corr = VertexCorrespondence(np.stack([ids] * 3, 1), np.tile([1.0, 0, 0], (300, 1)), np.zeros(300, bool))
    with torch.no_grad():
        v = head.vertices(torch.zeros(1, head.num_identity), torch.as_tensor(expression, dtype=head.dtype)[None])
    y = v[0].double().numpy()[ids] @ axis_angle_to_matrix_np(np.array([0.0, 0.3, 0.0])).T + [0, 0, -600.0]
    pts = np.stack([200 + 800 * y[:, 0] / -y[:, 2], 200 - 800 * y[:, 1] / -y[:, 2]], 1)
    return LandmarkFitter(head, corr), pts


def test_the_term_pulls_a_fit_toward_the_estimate_and_does_nothing_without_one(ict_head):
    names = list(ict_head.expression_names)
    fitter, pts = _points(ict_head, np.zeros(len(names)))
    target = blendshapes_to_expression(names, {"jawOpen": 0.5, "mouthSmileLeft": 0.4})
    cfg = LandmarkFitConfig()
    cfg.terms[TERM] = 1000.0
    base = fitter.fit(pts, (400, 400))
    without = fitter.fit(pts, (400, 400), config=cfg)
    pulled = fitter.fit(pts, (400, 400), config=cfg, extras={"blendshapes": target})
    jaw, smile = names.index("jawOpen"), names.index("mouthSmile_L")
    assert np.allclose(without.state.params.expression, base.state.params.expression)
    assert base.state.params.expression[0, jaw] < 0.05
    # 300 noiseless points of a neutral face argue back: the pull is partial, but large
    assert pulled.state.params.expression[0, jaw] > 0.25 and pulled.state.params.expression[0, smile] > 0.2
