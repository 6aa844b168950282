"""The full fit's optimiser: Adam, as `torch.optim.Adam` computes it, without `torch.optim`.

`torch.optim.Optimizer`'s methods are wrapped to keep torch's compiler out, and the first call of
any of them imports `torch._dynamo`: 1.2-2 s of every process's first full fit on this project's
CPU (a profile of `facerecon reconstruct --mode full`), for an update of a few lines. This is the
update of `torch.optim.Adam` with its defaults (no weight decay, no AMSGrad) in its single-tensor
form, the one it uses on the CPU, operation for operation, so results are the same to the last
bit there (`tests/fitting/test_adam.py` compares the two).
"""
from __future__ import annotations

import torch
from torch import Tensor


class Adam:
    """Adam over parameter groups [{"params": [tensor, ...], "lr": float}, ...].

    Args:
        groups: the parameter groups, as for `torch.optim.Adam`.
        betas: the running averages' coefficients (b1, b2).
        eps: added to the denominator.
    """

    def __init__(self, groups: list[dict], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.groups = [{"params": list(g["params"]), "lr": float(g["lr"])} for g in groups]
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        # per parameter (by identity): [steps taken, first moment, second moment]
        self._state: dict[int, list] = {}

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (as `set_to_none=True`)."""
        for group in self.groups:
            for p in group["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        beta1, beta2 = self.betas
        for group in self.groups:
            lr = group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self._state.get(id(p))
                if state is None:
                    state = self._state[id(p)] = [0.0, torch.zeros_like(p, memory_format=torch.preserve_format),
                                                  torch.zeros_like(p, memory_format=torch.preserve_format)]
                state[0] += 1.0
                _update(p, p.grad, state[1], state[2], state[0], lr, beta1, beta2, self.eps)


def _update(param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, step: float, lr: float,
            beta1: float, beta2: float, eps: float) -> None:
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    denom = (exp_avg_sq.sqrt() / bias_correction2 ** 0.5).add_(eps)
    param.addcdiv_(exp_avg, denom, value=-step_size)
