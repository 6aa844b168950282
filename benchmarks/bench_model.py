"""Time `MorphableModel.vertices()` for a batch against a plain numpy einsum baseline (same run).

    python benchmarks/bench_model.py [--quick] [--batch 64]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from facerecon.models import load_model


def best_of(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    repeats = 3 if args.quick else 10
    model = load_model("ict")
    b = args.batch
    gen = torch.Generator().manual_seed(0)
    ident = torch.randn(b, model.num_identity, generator=gen)
    expr = torch.rand(b, model.num_expression, generator=gen)
    mean, id_basis, ex_basis = model.mean.numpy(), model.identity_basis.numpy(), model.expression_basis.numpy()
    a_np, e_np = ident.numpy(), expr.numpy()

    def baseline():
        return mean + np.einsum("bk,kvc->bvc", a_np, id_basis) + np.einsum("bk,kvc->bvc", e_np, ex_basis)

    def ours():
        with torch.no_grad():
            return model.vertices(ident, expr)

    np.testing.assert_allclose(ours().numpy(), baseline(), atol=1e-3)
    t_base, t_ours = best_of(baseline, repeats), best_of(ours, repeats)
    print(f"model: {model}")
    print(f"vertices() batch {b}: {t_ours * 1e3:.2f} ms   numpy einsum baseline: {t_base * 1e3:.2f} ms   "
          f"ratio ours/baseline: {t_ours / t_base:.3f} (target <= 1.0)")
    view = model.view("head")
    t_view = best_of(lambda: view.vertices(ident, expr), repeats)
    print(f"head view ({view.num_vertices} vertices) batch {b}: {t_view * 1e3:.2f} ms   "
          f"ratio to full model: {t_view / t_ours:.3f}")


if __name__ == "__main__":
    main()
