"""The person's identity, estimated once per video from keyframes chosen for pose diversity, and the
personalised model the per-frame fits then use.

`select_keyframes` takes the frame whose face is most frontal, then repeatedly the frame whose head
pose (yaw, pitch from a closed-form scaled-orthographic fit of the mean face) is farthest from those
taken: a few frames that see the face from as many sides as the clip offers.

`identity_from_keyframes` is the one place the identity comes from: each keyframe is fitted alone
(the fast fit, then a second pass on landmarks de-biased by the detector's error model, as the
pipeline does a photo), and those fits start the joint multi-image fit
(`fitting.multi_image_fit.fit_multi_image`), whose one shared identity explains all keyframes at
once; the focal length is the median of the joint fit's per-keyframe focals. benchmarks/bench_track.py
(90-frame clips, 8 keyframes) measured the joint identity against the mean of the keyframes' own
identities (method rts_mean_identity): expression error 0.095 -> 0.083 on the moving clip, 0.066 ->
0.041 on the still one.

`personalised_view` bakes that identity into the fitted view's mean shape, so the per-frame fits
solve only for expression, pose (and nothing of the identity's 100 modes): about 3x faster per
Gauss-Newton iteration.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from ..errors import NoFaceError
from ..fitting import FitResult, LandmarkFitConfig, LandmarkFitter, estimate_orthographic_projection_linear
from ..fitting.multi_image_fit import MultiImageFitResult, fit_multi_image
from ..geometry.rotation import matrix_to_euler_deg_np
from ..models import MorphableModel

NUM_KEYFRAMES = 8


def rough_pose_deg(mean_points: np.ndarray, points: np.ndarray, weights: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) degrees of a face from its landmarks (L, 2) and the mean face's (L, 3) points."""
    r, _, _ = estimate_orthographic_projection_linear(mean_points, points, weights)
    return tuple(float(a) for a in matrix_to_euler_deg_np(r))


def select_keyframes(poses_deg: np.ndarray, count: int = NUM_KEYFRAMES) -> list[int]:
    """Indices (into `poses_deg`, (N, 2+) yaw, pitch, ...) of up to `count` poses, most frontal first,
    then farthest-point sampling over (yaw, pitch)."""
    yp = np.asarray(poses_deg, dtype=np.float64)[:, :2]
    if len(yp) == 0:
        return []
    chosen = [int(np.argmin(np.linalg.norm(yp, axis=1)))]
    dist = np.linalg.norm(yp - yp[chosen[0]], axis=1)
    while len(chosen) < min(count, len(yp)):
        nxt = int(np.argmax(dist))
        if dist[nxt] <= 0:
            break
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(yp - yp[nxt], axis=1))
    return chosen


def identity_from_keyframes(fitter: LandmarkFitter, points: list[np.ndarray], image_size: tuple[int, int],
                            weights: np.ndarray, config: LandmarkFitConfig | None = None,
                            focal: float | None = None,
                            debias: Callable[[np.ndarray, FitResult], tuple[np.ndarray, np.ndarray]] | None = None,
                            joint: bool = True) -> tuple[np.ndarray, float, MultiImageFitResult | None]:
    """One identity (and focal length) for the whole clip from its keyframes' landmarks.

    Args:
        fitter: the fast fitter of the full model view. points: per keyframe (L, 2) px.
        image_size: (H, W) of the video. weights: (L,) landmark weights. config: the fast fit's.
        focal: a known focal length in px (held fixed), else estimated.
        debias: (points, first fit) -> (points, weights) of the second pass (`debias.debiased_landmarks`),
            or None for one pass on the points as they are.
        joint: the joint multi-image fit (default); False: the mean of the keyframes' own identities
            and the median of their focals (what benchmarks/bench_track.py compares it with).

    Returns:
        identity (K,), focal px, and the joint fit (None when not `joint`).
    """
    if not points:
        raise NoFaceError("no keyframe with a face to estimate the identity from")
    fits, used_points, used_weights = [], [], []
    for p in points:
        fit = fitter.fit(p, image_size, weights, config, focal=focal)
        q, w = (p, weights) if debias is None else debias(p, fit)
        if debias is not None:
            fit = fitter.fit(q, image_size, w, config, focal=focal, init=fit)
        fits.append(fit)
        used_points.append(q)
        used_weights.append(w)
    if not joint:
        state = [f.state.to_numpy() for f in fits]
        focal_px = float(focal) if focal is not None else float(np.median([st.camera.focal[0] for st in state]))
        return np.mean([st.params.identity[0] for st in state], axis=0), focal_px, None
    result = fit_multi_image(fitter, used_points, [image_size] * len(points), used_weights, config,
                             focals=None if focal is None else [focal] * len(points), init=fits)
    state = result.state.to_numpy()
    focal_px = float(focal) if focal is not None else float(np.median(state.camera.focal / result.image_scales))
    return np.asarray(state.params.identity[0], dtype=np.float64), focal_px, result


def personalised_view(view: MorphableModel, identity: np.ndarray) -> MorphableModel:
    """`view` with `identity` (K,) added to its mean shape: fit it with `num_identity=0`."""
    alpha = torch.as_tensor(np.asarray(identity), dtype=view.dtype, device=view.device)
    with torch.no_grad():
        mean = view.mean + torch.einsum("k,kvc->vc", alpha, view.identity_basis[: len(alpha)])
    return dataclasses.replace(view, mean=mean)
