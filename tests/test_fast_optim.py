"""Our fused Adam/AdamW and schedules train to the same bits as torch.optim's fused path and schedulers."""
from __future__ import annotations

import pytest
import torch

from core import fast_optim
from core.models import build_model

pytestmark = pytest.mark.skipif(not fast_optim.available(torch.device("cpu")), reason="no fused Adam kernel here")


def run(make, steps: int = 40):
    """Train a fresh seeded tutorial net on fixed random batches; returns (state_dict, lrs, beta1s)."""
    model = build_model("tutorial")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for p in model.parameters():
            torch.nn.init.normal_(p, std=0.1)
    optimizer, schedule, read = make(model)
    g = torch.Generator().manual_seed(1)
    lrs, betas = [], []
    for _ in range(steps):
        x, y = torch.randn(16, 1, 28, 28, generator=g), torch.randint(0, 10, (16,), generator=g)
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
        lrs.append(read(optimizer)[0])
        betas.append(read(optimizer)[1])
    return model.state_dict(), lrs, betas


def torch_read(opt):
    return opt.param_groups[0]["lr"], opt.param_groups[0]["betas"][0]


def ours_read(opt):
    return opt.lr, opt.betas[0]


@pytest.mark.parametrize("kind,schedule", [("adam", None), ("adamw", "onecycle"), ("adam", "cosine"),
                                           ("adamw", "cosine")])
def test_same_bits_as_torch_optim(kind, schedule):
    steps = 40
    torch_cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam

    def with_torch(model):
        opt = torch_cls(model.parameters(), lr=3e-3, weight_decay=5e-4, fused=True)
        sched = {None: None,
                 "onecycle": lambda: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps,
                                                                         pct_start=0.25),
                 "cosine": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps // 2)}[schedule]
        return opt, sched() if sched else None, torch_read

    def with_ours(model):
        opt = fast_optim.FusedAdam(model.parameters(), lr=3e-3, weight_decay=5e-4, decoupled=kind == "adamw")
        sched = {None: None,
                 "onecycle": lambda: fast_optim.OneCycle(opt, 3e-3, steps, pct_start=0.25),
                 "cosine": lambda: fast_optim.Cosine(opt, steps // 2)}[schedule]  # past T_max: the periodic branch
        return opt, sched() if sched else None, ours_read

    theirs, their_lrs, their_betas = run(with_torch, steps)
    ours, our_lrs, our_betas = run(with_ours, steps)
    assert our_lrs == their_lrs and our_betas == their_betas
    for name in theirs:
        assert torch.equal(ours[name], theirs[name]), name


def test_training_does_not_import_dynamo():
    import subprocess
    import sys

    code = ("import sys; from core.training import _make_optimizer, preset; from core.models import build_model;"
            "o = _make_optimizer(preset('tutorial'), build_model('tutorial')); print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
