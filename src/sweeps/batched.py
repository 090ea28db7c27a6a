"""The pieces of a batched tensor program: per-run numbers as columns, masks over the run
dimension, and torch.optim's updates with a hyperparameter per run (sweeps.engine uses them)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Sequence

import torch
from torch import Tensor

from sweeps.config import OptimizerName, momentum_of

def col(values: Sequence[float], dtype: torch.dtype, device: torch.device) -> Tensor:
    """Per-run numbers as an (N,) tensor, rounded from float64 as a Python scalar would be."""
    return torch.tensor(list(values), dtype=torch.float64).to(device=device, dtype=dtype)


def per_run(v: Tensor, like: Tensor) -> Tensor:
    """View an (N,) tensor so it broadcasts over a (N, ...) parameter."""
    return v.view(v.shape[0], *([1] * (like.dim() - 1)))


def where(mask: Tensor, new: Sequence[Tensor], old: Sequence[Tensor]) -> list[Tensor]:
    return [torch.where(per_run(mask, n), n, o) for n, o in zip(new, old)]


class BatchedOptimizer:
    """torch.optim's single-tensor SGD / Adam / RMSprop updates with per-run hyperparameters,
    written with the kernels torch uses so float32 rounds alike: ``add_(x, alpha=a)`` and
    ``addcmul_`` are fused multiply-adds (``torch.addcmul`` here), ``addcdiv_(a, b, value=v)``
    is ``self + (v * a) / b``. Scalars are rounded to the dtype from float64, as torch does."""

    def __init__(self, family: str, runs: Sequence[SimpleNamespace], params: Sequence[Tensor],
                 lr64: Tensor, dtype: torch.dtype, device: torch.device) -> None:
        opts = [r.optimizer for r in runs]
        column = lambda vals: col(vals, dtype, device)  # noqa: E731
        zeros = lambda: [torch.zeros_like(p) for p in params]  # noqa: E731
        self.family = family
        self.wd = column([o.weight_decay for o in opts])
        self.any_wd = any(o.weight_decay != 0 for o in opts)
        self.state: dict[str, list[Tensor]] = {}
        self.use_m, self.has_m = False, None
        if family in (OptimizerName.sgd, OptimizerName.rmsprop):
            mom = [momentum_of(o) for o in opts]
            self.m = column(mom)
            self.use_m = any(v > 0 for v in mom)
            # torch keeps no buffer for momentum 0: with mixed runs those take the plain update
            self.has_m = self.m > 0 if self.use_m and not all(v > 0 for v in mom) else None
            if self.use_m:
                self.state["momentum_buffer"] = zeros()
        if family == OptimizerName.adam:
            b1 = torch.tensor([o.beta1 for o in opts], dtype=torch.float64)
            b2 = torch.tensor([o.beta2 for o in opts], dtype=torch.float64)
            steps = torch.arange(1, lr64.shape[0] + 1, dtype=torch.float64).unsqueeze(1)
            # torch computes these per step as Python floats: lr / (1 - b1^t), (1 - b2^t)^0.5
            self.step_size = (lr64 / (1 - b1**steps)).to(device=device, dtype=dtype)
            self.bc2_sqrt = (1 - b2**steps).sqrt().to(device=device, dtype=dtype)
            self.one_minus_b1, self.b2 = column((1 - b1).tolist()), column(b2.tolist())
            self.one_minus_b2 = column((1 - b2).tolist())
            self.eps = column([o.eps for o in opts])
            self.state.update(exp_avg=zeros(), exp_avg_sq=zeros())
        if family == OptimizerName.rmsprop:
            self.alpha = column([o.alpha for o in opts])
            self.one_minus_alpha = column([1 - o.alpha for o in opts])
            self.eps = column([o.eps for o in opts])
            self.state["square_avg"] = zeros()

    def step(self, params: list[Tensor], grads: list[Tensor], lr: Tensor, epoch: int
             ) -> tuple[list[Tensor], dict[str, list[Tensor]]]:
        """New parameters and optimizer state after one step (nothing is updated in place)."""
        new_params: list[Tensor] = []
        new_state: dict[str, list[Tensor]] = {k: [] for k in self.state}
        for i, (p, g) in enumerate(zip(params, grads)):
            r = lambda v: per_run(v, p)  # noqa: E731 - (N,) -> broadcastable over p
            d = torch.addcmul(g, r(self.wd), p) if self.any_wd else g  # L2 penalty, not in .grad
            if self.family == OptimizerName.sgd:
                step = d
                if self.use_m:  # buf = m * buf + d (buf = d on the first step: it starts at 0)
                    buf = r(self.m) * self.state["momentum_buffer"][i] + d
                    step = buf if self.has_m is None else torch.where(r(self.has_m), buf, d)
                    new_state["momentum_buffer"].append(step)
                new_params.append(torch.addcmul(p, r(-lr), step))  # p.add_(step, alpha=-lr)
            elif self.family == OptimizerName.adam:
                m = torch.lerp(self.state["exp_avg"][i], d, r(self.one_minus_b1))
                v = torch.addcmul(r(self.b2) * self.state["exp_avg_sq"][i],
                                  r(self.one_minus_b2) * d, d)
                denom = v.sqrt() / r(self.bc2_sqrt[epoch]) + r(self.eps)
                new_params.append(p - (r(self.step_size[epoch]) * m) / denom)
                new_state["exp_avg"].append(m)
                new_state["exp_avg_sq"].append(v)
            else:  # rmsprop
                sq = torch.addcmul(r(self.alpha) * self.state["square_avg"][i],
                                   r(self.one_minus_alpha) * d, d)
                avg = sq.sqrt() + r(self.eps)
                new_state["square_avg"].append(sq)
                if not self.use_m:
                    new_params.append(p - (r(lr) * d) / avg)  # p.addcdiv_(d, avg, value=-lr)
                    continue
                buf = r(self.m) * self.state["momentum_buffer"][i] + d / avg
                new_state["momentum_buffer"].append(buf)
                with_m = torch.addcmul(p, r(-lr), buf)  # p.add_(buf, alpha=-lr)
                new_params.append(with_m if self.has_m is None else
                                  torch.where(r(self.has_m), with_m, p - (r(lr) * d) / avg))
        return new_params, new_state
