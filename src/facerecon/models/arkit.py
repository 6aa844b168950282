"""Apple ARKit's 52 blendshape names and the one mapping from ICT-FaceKit's 53 expressions to them.

Left and right are the subject's, as in ARKit (`eyeBlinkLeft` closes the subject's left eye). ICT's
`_L` is also the subject's left: its `_L` expressions move vertices on the +x side of the mean face,
which is the subject's left (docs/conventions.md); `tests/models/test_arkit.py` checks this on the
model's geometry. So `X_L` -> `XLeft`, `X_R` -> `XRight`, and the unsided names are ARKit's already.

ICT splits two ARKit shapes in halves (`browInnerUp_L/_R`, `cheekPuff_L/_R`): the ARKit target is
the sum of the two halves' offsets (both sides at once, as ARKit's single coefficient means), and
the halves stay as extra targets under ICT's names, so a fitted asymmetric weight can still be shown.

`tongueOut` has no ICT counterpart (ICT has no tongue blendshape, and the tongue shares its vertices
with the gums, so no honest displacement can be cut out of the geometry): it is written as a zero
target, so all 52 names exist for tools that drive a face by name, and moving it changes nothing.
`ABSENT` lists it.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import UsageError

# Apple's ARFaceAnchor.BlendShapeLocation names, in Apple's documentation order.
ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose",
    "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)

# ARKit names ICT has no expression for (written as zero targets).
ABSENT: tuple[str, ...] = ("tongueOut",)


# Names whose Left/Right is a direction of movement (same name in ICT), not the side of the face.
_MOVES_SIDEWAYS = ("jawLeft", "jawRight", "mouthLeft", "mouthRight")


def _ict_to_arkit() -> dict[str, tuple[str, ...]]:
    """ARKit name -> the ICT expressions whose offsets add up to it (the one mapping table)."""
    table: dict[str, tuple[str, ...]] = {}
    for name in ARKIT_NAMES:
        if name in ABSENT:
            table[name] = ()
        elif name in ("browInnerUp", "cheekPuff"):
            table[name] = (f"{name}_L", f"{name}_R")
        elif name in _MOVES_SIDEWAYS:
            table[name] = (name,)
        elif name.endswith("Left"):
            table[name] = (name[:-4] + "_L",)
        elif name.endswith("Right"):
            table[name] = (name[:-5] + "_R",)
        else:
            table[name] = (name,)
    return table


ICT_TO_ARKIT: dict[str, tuple[str, ...]] = _ict_to_arkit()
# ICT expressions kept as extra targets beside the ARKit ones (the halves of a combined ARKit shape).
ICT_EXTRAS: tuple[str, ...] = ("browInnerUp_L", "browInnerUp_R", "cheekPuff_L", "cheekPuff_R")


def _index(names: Sequence[str]) -> dict[str, int]:
    index = {str(n): k for k, n in enumerate(names)}
    needed = {s for sources in ICT_TO_ARKIT.values() for s in sources}
    missing = sorted(needed - set(index))
    if missing:
        raise UsageError(f"not ICT-FaceKit expression names: missing {missing[:5]}"
                         f"{' ...' if len(missing) > 5 else ''} ({len(missing)} of {len(needed)})")
    return index


def _weights(names: Sequence[str], weights) -> np.ndarray:
    w = np.asarray(weights.detach().cpu().numpy() if hasattr(weights, "detach") else weights, dtype=np.float64)
    if w.shape != (len(names),):
        raise UsageError(f"weights must have shape ({len(names)},) for {len(names)} names, got {w.shape}")
    if not np.isfinite(w).all():
        raise UsageError("weights contain NaN or inf values")
    return w


def uses_ict_names(names: Sequence[str]) -> bool:
    """True when `names` hold every ICT-FaceKit expression the ARKit mapping needs (any order)."""
    needed = {s for sources in ICT_TO_ARKIT.values() for s in sources} | set(ICT_EXTRAS)
    return needed <= set(names)


def arkit_targets(names: Sequence[str], basis) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """ICT expression offsets as ARKit's 52 targets plus the ICT halves as extras.

    Args:
        names: the model's K expression names (ICT-FaceKit's 53, any order).
        basis: (K, V, 3) expression offsets (mm), row k for names[k]; numpy or torch.

    Returns:
        arkit_names: the 52 names of `ARKIT_NAMES`, in that order; arkit_offsets (52, V, 3) float64
        (combined halves summed, `tongueOut` zero); extra_names: `ICT_EXTRAS`; extra_offsets
        (4, V, 3). `UsageError` if a needed ICT name is missing or the basis does not match.
    """
    index = _index(names)
    if hasattr(basis, "detach"):
        basis = basis.detach().cpu().numpy()
    basis = np.asarray(basis, dtype=np.float64)
    if basis.ndim != 3 or basis.shape[0] != len(names) or basis.shape[2] != 3:
        raise UsageError(f"basis must have shape ({len(names)}, V, 3) for {len(names)} names, got {basis.shape}")
    offsets = np.zeros((len(ARKIT_NAMES),) + basis.shape[1:])
    for k, name in enumerate(ARKIT_NAMES):
        for source in ICT_TO_ARKIT[name]:
            offsets[k] += basis[index[source]]
    extras = basis[[index[n] for n in ICT_EXTRAS]]
    return list(ARKIT_NAMES), offsets, list(ICT_EXTRAS), extras


def arkit_weights(names: Sequence[str], weights) -> dict[str, float]:
    """ICT expression weights as {ARKit name: weight} for the 52 names, in `ARKIT_NAMES` order.

    For `params.json` and CSVs: a combined shape gets the mean of its halves (browInnerUp_L 0.8 and
    _R 0.4 -> browInnerUp 0.6), ARKit's one coefficient for both sides; `tongueOut` is 0. This
    loses the asymmetry; `gltf_weights` gives weights that reproduce the ICT blend exactly.
    """
    index, w = _index(names), _weights(names, weights)
    return {name: float(np.mean([w[index[s]] for s in sources])) if sources else 0.0
            for name, sources in ICT_TO_ARKIT.items()}


def gltf_weights(names: Sequence[str], weights) -> tuple[list[float], list[float]]:
    """Weights for the targets of `arkit_targets` that reproduce the ICT expression exactly.

    The combined ARKit shapes take min(left, right) (the symmetric part) and each half its excess
    over that, so sum_k w_k * target_k equals the ICT blend. Returns (52 ARKit weights, 4 extras).
    """
    index, w = _index(names), _weights(names, weights)
    ark = []
    extra = dict.fromkeys(ICT_EXTRAS, 0.0)
    for name, sources in ICT_TO_ARKIT.items():
        if len(sources) == 2:
            both = min(w[index[s]] for s in sources)
            ark.append(float(both))
            for s in sources:
                extra[s] = float(w[index[s]] - both)
        else:
            ark.append(float(w[index[sources[0]]]) if sources else 0.0)
    return ark, [extra[n] for n in ICT_EXTRAS]
