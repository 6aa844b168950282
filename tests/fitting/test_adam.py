"""The full fit's Adam: the same numbers as torch.optim.Adam, without importing torch._dynamo."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from facerecon.fitting.adam import Adam


def _problem(seed: int):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(1, 7, generator=g, dtype=torch.float64)
    b = torch.randn(3, 2, generator=g, dtype=torch.float32)
    c = torch.randn(1, 1, generator=g, dtype=torch.float64)
    return [t.clone().requires_grad_(True) for t in (a, b, c)]


def _run(opt_class, seed: int, steps: int = 25):
    a, b, c = _problem(seed)
    opt = opt_class([{"params": [a], "lr": 0.05}, {"params": [b], "lr": 0.01}, {"params": [c], "lr": 0.0}])
    for k in range(steps):
        opt.zero_grad()
        if k % 4 == 3:  # some steps leave b and c without a gradient: they are not stepped
            loss = (a ** 2).sum()
        else:
            loss = (a ** 2).sum() * 3 + (b.double() - 1).abs().sum() + torch.sin(c).sum()
        loss.backward()
        opt.step()
    return [t.detach().clone() for t in (a, b, c)]


def test_the_same_numbers_as_torch_optim_adam_to_the_last_bit():
    for seed in range(3):
        ours, theirs = _run(Adam, seed), _run(torch.optim.Adam, seed)
        assert all(torch.equal(x, y) for x, y in zip(ours, theirs))
        assert not torch.equal(ours[0], _problem(seed)[0])  # it did move
        assert torch.equal(ours[2], _problem(seed)[2])  # lr 0 leaves it


def test_zero_grad_forgets_the_gradients():
    a = torch.ones(2, requires_grad=True)
    opt = Adam([{"params": [a], "lr": 0.1}])
    a.sum().backward()
    opt.zero_grad()
    assert a.grad is None
    opt.step()  # nothing to do
    assert torch.equal(a.detach(), torch.ones(2))


def test_it_does_not_import_torch_dynamo():
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    code = ("import sys, torch\n"
            "from facerecon.fitting.adam import Adam\n"
            "a = torch.ones(3, requires_grad=True)\n"
            "opt = Adam([{'params': [a], 'lr': 0.1}])\n"
            "opt.zero_grad(); (a ** 2).sum().backward(); opt.step()\n"
            "print('torch._dynamo' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
