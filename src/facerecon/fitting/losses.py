"""Loss terms of the fit, as pure functions `loss(pred, target, mask/weights) -> scalar tensor`.

The DECA family's terms: landmark (robust), eye and lip closure, photometric inside a face mask,
and regularisers on shape, expression and albedo (smoothness and left/right symmetry for a free
per-vertex albedo). Their weights live in one place: `fitting.config.LossWeights`.
"""
from __future__ import annotations

import torch
from torch import Tensor


def huber(x: Tensor, delta: float) -> Tensor:
    """Elementwise Huber penalty of non-negative magnitudes `x`: x^2/2 inside delta, linear outside."""
    return torch.where(x <= delta, 0.5 * x * x, delta * (x - 0.5 * delta))


def landmark_loss(pred: Tensor, target: Tensor, weights: Tensor | None = None, scale: Tensor | float = 1.0,
                  delta: float | None = None) -> Tensor:
    """Robust 2D landmark reprojection loss.

    Args:
        pred: (B, L, 2) projected model landmarks, px.
        target: (B, L, 2) detected landmarks, px.
        weights: (L,) or (B, L) per-landmark weights (0 ignores a landmark), default ones.
        scale: normaliser in px (scalar or (B,)), e.g. the face size, so the loss is size-invariant.
        delta: Huber threshold in normalised units (None: squared error / 2).

    Returns:
        Scalar: weighted mean over landmarks of the (robust) squared normalised distance.
    """
    scale_t = torch.as_tensor(scale, dtype=pred.dtype, device=pred.device).reshape(-1, 1)
    dist = torch.sqrt(((pred - target) ** 2).sum(-1) + 1e-12) / scale_t
    per = 0.5 * dist * dist if delta is None else huber(dist, delta)
    w = torch.ones_like(per) if weights is None else weights.to(per).expand_as(per)
    return (per * w).sum() / w.sum().clamp_min(1e-12)


def closure_loss(pred: Tensor, target: Tensor, pairs: Tensor, scale: Tensor | float = 1.0) -> Tensor:
    """Eye- or lip-closure loss (DECA): the 2D offset between paired upper/lower contour points of the
    model must match the detected one, which catches blinks and closed lips that per-point losses
    underweight.

    Args:
        pred: (B, L, 2) projected model landmarks. target: (B, L, 2) detected landmarks.
        pairs: (P, 2) long indices (upper, lower) into L.
        scale: normaliser in px (scalar or (B,)).

    Returns:
        Scalar mean over pairs of the squared normalised difference of offsets.
    """
    scale_t = torch.as_tensor(scale, dtype=pred.dtype, device=pred.device).reshape(-1, 1, 1)
    d_pred = pred[:, pairs[:, 0]] - pred[:, pairs[:, 1]]
    d_tgt = target[:, pairs[:, 0]] - target[:, pairs[:, 1]]
    return (((d_pred - d_tgt) / scale_t) ** 2).sum(-1).mean()


def photometric_loss(rendered: Tensor, target: Tensor, mask: Tensor, eps: float = 1e-3) -> Tensor:
    """Robust photometric error ||M * (I - I_r)|| inside a mask (per-pixel colour distance, Charbonnier).

    Args:
        rendered: (B, H, W, 3) or (B, N, 3) predicted colours.
        target: same shape, observed colours.
        mask: (B, H, W) or (B, N) weights in [0, 1] (face skin x visibility x inlier).
        eps: Charbonnier smoothing, so the gradient is defined at zero error.

    Returns:
        Scalar: masked mean of sqrt(||I - I_r||^2 + eps^2) - eps.
    """
    dist = torch.sqrt(((rendered - target) ** 2).sum(-1) + eps * eps) - eps
    return (dist * mask).sum() / mask.sum().clamp_min(1e-6)


def coefficient_prior(coefficients: Tensor, std: Tensor | float = 1.0) -> Tensor:
    """Tikhonov prior 0.5 * ||c / std||^2 summed over modes, mean over the batch. `coefficients` (B, K)."""
    return 0.5 * ((coefficients / std) ** 2).sum(-1).mean()


def smoothness_loss(values: Tensor, edges: Tensor) -> Tensor:
    """Mean squared difference of a per-vertex field across mesh edges. `values` (B, V, C), `edges` (E, 2)."""
    return ((values[:, edges[:, 0]] - values[:, edges[:, 1]]) ** 2).sum(-1).mean()


def symmetry_loss(values: Tensor, symmetry: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean squared difference between a per-vertex field and its mirror. `values` (B, V, C),
    `symmetry` (V,) long, `weights` (V,) optional."""
    diff = ((values - values[:, symmetry]) ** 2).sum(-1)
    if weights is None:
        return diff.mean()
    return (diff * weights).sum() / (weights.sum() * values.shape[0]).clamp_min(1e-12)
