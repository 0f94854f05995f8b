"""Adam/AdamW as torch's own fused kernel, with the one-cycle and cosine schedules, without torch.optim's wrappers.

Why not torch.optim: building any torch.optim optimizer imports torch._dynamo (~0.85 s on a quiet 2-core laptop,
2-3 s on a busy one), a sixth of the tutorial preset's whole run, and each step goes through ~60 us of Python
wrappers around the same kernel. These classes call that kernel (`torch._fused_adam_` / `torch._fused_adamw_`)
exactly as torch.optim's fused path does and replay its schedulers' arithmetic, so a seeded run trains to the
same bits: tests/test_fast_optim.py checks that against torch.optim step by step. Where the kernel is missing
(another torch build), `available()` is False and training uses torch.optim.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def available(device: torch.device) -> bool:
    return device.type in ("cpu", "cuda") and hasattr(torch, "_fused_adam_") and hasattr(torch, "_fused_adamw_")


class FusedAdam:
    """Adam (L2 weight decay in the gradient) or AdamW (decoupled decay); `lr` and `betas` may change per step."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0,
                 decoupled: bool = False, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self._kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
        self._exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self._exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        # one float32 step counter per parameter on the CPU, as torch.optim keeps them for fused CPU/CUDA Adam
        self._steps = [torch.tensor(0.0, dtype=torch.float32, device=p.device) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        steps = [self._steps[i] for i in live]
        torch._foreach_add_(steps, 1)
        self._kernel([self.params[i] for i in live], [self.params[i].grad for i in live],
                     [self._exp_avgs[i] for i in live], [self._exp_avg_sqs[i] for i in live], [], steps,
                     amsgrad=False, lr=self.lr, beta1=self.betas[0], beta2=self.betas[1],
                     weight_decay=self.weight_decay, eps=self.eps, maximize=False)


def _cos_anneal(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)  # torch's OneCycleLR._annealing_cos


class OneCycle:
    """torch.optim.lr_scheduler.OneCycleLR (cosine, two phases, beta1 cycled 0.95 -> 0.85 -> 0.95), same floats."""

    def __init__(self, optimizer: FusedAdam, max_lr: float, total_steps: int, pct_start: float = 0.3,
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 base_momentum: float = 0.85, max_momentum: float = 0.95):
        initial_lr = max_lr / div_factor
        min_lr = initial_lr / final_div_factor
        self.optimizer, self.total_steps = optimizer, total_steps
        # (end step, start lr, end lr, start beta1, end beta1), as OneCycleLR's two phases
        self.phases = [(float(pct_start * total_steps) - 1, initial_lr, max_lr, max_momentum, base_momentum),
                       (total_steps - 1, max_lr, min_lr, base_momentum, max_momentum)]
        self.step_num = -1
        self.step()  # like torch's schedulers: the first lr is set on construction

    def step(self) -> None:
        self.step_num += 1
        start_step = 0.0
        for i, (end_step, lr0, lr1, m0, m1) in enumerate(self.phases):
            if self.step_num <= end_step or i == len(self.phases) - 1:
                pct = (self.step_num - start_step) / (end_step - start_step)
                self.optimizer.lr = _cos_anneal(lr0, lr1, pct)
                self.optimizer.betas = (_cos_anneal(m0, m1, pct), self.optimizer.betas[1])
                return
            start_step = end_step


class Cosine:
    """torch.optim.lr_scheduler.CosineAnnealingLR (eta_min 0), with its recursive form, so the same floats."""

    def __init__(self, optimizer: FusedAdam, t_max: int):
        self.optimizer, self.t_max, self.base_lr, self.epoch = optimizer, t_max, optimizer.lr, 0

    def step(self) -> None:
        self.epoch += 1
        e, t, lr = self.epoch, self.t_max, self.optimizer.lr
        if (e - 1 - t) % (2 * t) == 0:
            self.optimizer.lr = lr + self.base_lr * (1 - math.cos(math.pi / t)) / 2
        else:
            self.optimizer.lr = (1 + math.cos(math.pi * e / t)) / (1 + math.cos(math.pi * (e - 1) / t)) * lr
