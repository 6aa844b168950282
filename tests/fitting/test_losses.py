import pytest
import torch

from facerecon.fitting.losses import (closure_loss, coefficient_prior, landmark_loss, photometric_loss,
                                      smoothness_loss, symmetry_loss)


def _grad_at(fn, x):
    x = x.clone().requires_grad_(True)
    fn(x).backward()
    return x.grad


def test_landmark_loss_zero_at_optimum_and_points_toward_target():
    target = torch.randn(2, 10, 2) * 50
    assert float(landmark_loss(target, target, scale=100.0)) == pytest.approx(0.0, abs=1e-12)
    g0 = _grad_at(lambda p: landmark_loss(p, target, scale=100.0, delta=1.0), target)
    assert g0.abs().max() < 1e-6
    pred = target + torch.tensor([3.0, -2.0])
    g = _grad_at(lambda p: landmark_loss(p, target, scale=100.0, delta=0.01), pred)
    # descending the gradient moves every point toward its target
    assert (g[..., 0] > 0).all() and (g[..., 1] < 0).all()
    w = torch.ones(10)
    w[0] = 0
    far = target.clone()
    far[:, 0] += 1000
    assert float(landmark_loss(far, target, weights=w)) == pytest.approx(0.0, abs=1e-9)


def test_huber_bounds_the_influence_of_outliers():
    target = torch.zeros(1, 2, 2)
    small = _grad_at(lambda p: landmark_loss(p, target, delta=1.0), torch.tensor([[[10.0, 0], [0, 0]]]))
    big = _grad_at(lambda p: landmark_loss(p, target, delta=1.0), torch.tensor([[[1000.0, 0], [0, 0]]]))
    torch.testing.assert_close(small, big)


def test_closure_loss_sees_a_blink_that_moves_both_lids():
    target = torch.tensor([[[0.0, 0.0], [0.0, 1.0]]])  # upper at y=0, lower at y=1: almost closed
    pairs = torch.tensor([[0, 1]])
    assert float(closure_loss(target, target, pairs)) == 0.0
    opened = torch.tensor([[[0.0, -5.0], [0.0, 6.0]]])
    g = _grad_at(lambda p: closure_loss(p, target, pairs), opened)
    assert g[0, 0, 1] < 0 and g[0, 1, 1] > 0  # descending closes the eye
    shifted = target + 7.0  # same opening, moved: no closure error
    assert float(closure_loss(shifted, target, pairs)) == pytest.approx(0.0)


def test_photometric_loss_masked_zero_at_optimum_and_sign():
    img = torch.rand(1, 8, 8, 3)
    mask = torch.zeros(1, 8, 8)
    mask[:, 2:6, 2:6] = 1
    assert float(photometric_loss(img, img, mask)) == pytest.approx(0.0, abs=1e-7)
    g0 = _grad_at(lambda r: photometric_loss(r, img, mask), img)
    assert g0.abs().max() < 1e-6
    brighter = img + 0.2
    g = _grad_at(lambda r: photometric_loss(r, img, mask), brighter)
    assert (g[mask.bool()] > 0).all() and (g[~mask.bool()] == 0).all()


def test_priors_smoothness_and_symmetry():
    c = torch.randn(3, 5)
    g = _grad_at(lambda x: coefficient_prior(x), c)
    torch.testing.assert_close(g, c / 3)
    assert float(coefficient_prior(torch.zeros(3, 5))) == 0.0
    edges = torch.tensor([[0, 1], [1, 2]])
    flat = torch.ones(1, 3, 3)
    assert float(smoothness_loss(flat, edges)) == 0.0
    bumpy = torch.tensor([[[0.0] * 3, [1.0] * 3, [0.0] * 3]])
    g = _grad_at(lambda x: smoothness_loss(x, edges), bumpy)
    assert (g[0, 1] > 0).all() and (g[0, 0] < 0).all()
    sym = torch.tensor([2, 1, 0])
    assert float(symmetry_loss(bumpy, sym)) == 0.0
    lopsided = torch.tensor([[[1.0] * 3, [0.0] * 3, [0.0] * 3]])
    assert float(symmetry_loss(lopsided, sym)) > 0
