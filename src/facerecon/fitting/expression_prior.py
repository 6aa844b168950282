"""An expression prior centred on a blendshape network's estimate (MediaPipe's Face Landmarker).

Landmarks alone confuse identity and expression (a wide jaw or an open mouth, a long nose or a
sneer); the network looks at the whole face crop and gives ARKit scores in [0, 1], which map onto
ICT-FaceKit's expressions by name (`models.arkit.ICT_TO_ARKIT`; ICT's halves `browInnerUp_L/_R`,
`cheekPuff_L/_R` both take ARKit's one value).

    target = blendshapes_to_expression(model.expression_names, shapes.scores)     # (E,)
    config.terms[TERM] = 10.0
    fitter.fit(points, size, weights, config, init=state_with_target, extras={"blendshapes": target})

The term `expression_to_blendshapes` costs sum_e c_e (psi_e - target_e)^2: its weight is
1 / sigma^2 of the network's error in expression-weight units (the default prior on psi counts
|psi|^2 with weight 0.3). `extras["blendshapes"]` is the (E,) target in the model's expression order
(or (B, E), one per image, in the photometric fit); `extras["blendshape_confidence"]` optional (E,)
weights c_e (default 1).
The term does nothing when `extras` holds no "blendshapes".
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import UsageError
from ..models.arkit import ARKIT_NAMES, ICT_TO_ARKIT
from .terms import GaussNewtonInputs, LossInputs, Residual, register_term

TERM = "expression_to_blendshapes"

# ICT expression name -> the ARKit name whose score it takes
_ARKIT_OF: dict[str, str] = {ict: arkit for arkit, sources in ICT_TO_ARKIT.items() for ict in sources}


def blendshapes_to_expression(names: Sequence[str], arkit_scores: Mapping[str, float] | np.ndarray) -> np.ndarray:
    """ICT expression weights (E,) from ARKit blendshape scores.

    Args:
        names: the model's E expression names (ICT-FaceKit's; names without an ARKit counterpart get 0).
        arkit_scores: {ARKit name: score} (e.g. `Blendshapes.scores`; missing names count 0), or a (52,)
            array in `ARKIT_NAMES` order.

    Returns:
        (E,) float64 in [0, 1], in `names` order: each ICT expression takes its ARKit name's score.

    Raises:
        UsageError: an array of the wrong shape, an unknown ARKit name, or a non-finite score.
    """
    if isinstance(arkit_scores, Mapping):
        unknown = sorted(set(arkit_scores) - set(ARKIT_NAMES))
        if unknown:
            raise UsageError(f"not ARKit blendshape names: {unknown[:5]}")
        scores = {k: float(v) for k, v in arkit_scores.items()}
    else:
        arr = np.asarray(arkit_scores, dtype=np.float64)
        if arr.shape != (len(ARKIT_NAMES),):
            raise UsageError(f"arkit_scores must be a mapping or a ({len(ARKIT_NAMES)},) array, got shape {arr.shape}")
        scores = dict(zip(ARKIT_NAMES, arr.tolist()))
    if not np.isfinite(list(scores.values())).all():
        raise UsageError("arkit_scores contain NaN or inf values")
    out = np.array([scores.get(_ARKIT_OF.get(str(n), ""), 0.0) for n in names])
    return np.clip(out, 0.0, 1.0)


def _target(extras: dict | None, num_expression: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(target (B|1, E), confidence (E,)) from `extras`, or None when no estimate was given."""
    if not extras or extras.get("blendshapes") is None:
        return None
    target = np.asarray(extras["blendshapes"], dtype=np.float64)
    target = target[None] if target.ndim == 1 else target
    if target.ndim != 2 or target.shape[1] != num_expression or not np.isfinite(target).all():
        raise UsageError(f'extras["blendshapes"] must be finite (E,) or (B, E) with E = {num_expression}, '
                         f"got shape {np.shape(extras['blendshapes'])}")
    conf = extras.get("blendshape_confidence")
    conf = np.ones(num_expression) if conf is None else np.asarray(conf, dtype=np.float64)
    if conf.shape != (num_expression,) or not np.isfinite(conf).all() or (conf < 0).any():
        raise UsageError(f'extras["blendshape_confidence"] must be (E,) = ({num_expression},) non-negative weights, '
                         f"got shape {conf.shape}")
    return target, conf


def _residual(x: GaussNewtonInputs, with_jacobian: bool) -> Residual | None:
    got = _target(x.extras, len(x.expression))
    if got is None:
        return None
    target, conf = got
    if target.shape[0] != 1:
        raise UsageError(f'the landmark fit takes one image: extras["blendshapes"] must be (E,), got {target.shape}')
    root = np.sqrt(conf)
    return x.linear("expression", root * (x.expression - target[0]), root, with_jacobian)


def _loss(x: LossInputs) -> Tensor | None:
    got = _target(x.extras, x.expression.shape[-1])
    if got is None:
        return None
    target, conf = got
    if target.shape[0] not in (1, x.expression.shape[0]):
        raise UsageError(f'extras["blendshapes"] has {target.shape[0]} rows for {x.expression.shape[0]} images')
    to = dict(dtype=x.expression.dtype, device=x.expression.device)
    c = torch.as_tensor(conf, **to)
    d = x.expression - torch.as_tensor(target, **to)
    return (c * d * d).sum()


register_term(TERM, residual=_residual, loss=_loss)
