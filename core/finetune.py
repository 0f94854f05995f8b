"""Fine-tuning the weights in use on the user's own samples without forgetting MNIST: held-out split, replay, before/after.

The recipe: a copy of the base model, BatchNorm statistics frozen (a batch of a few user samples would skew them),
batches that mix the user's samples (oversampled, augmented) with MNIST training images (replay), and on the replay
part a pull toward the base model's own outputs (distillation, "learning without forgetting"). Accuracy before and
after is measured on a stratified held-out share of the samples and on the MNIST test set.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from core import augment as augmentation
from core import paths
from core.data import DataError, MnistData, load_mnist, to_float
from core.models import pool_before_relu
from core.settings import DEVICES, PRECISIONS
from core.inference import evaluate, inference_model, normalize
from core.training import autocast_dtype, seeded_rng, select_device, torch_threads
from core.weights import save_training_result

if TYPE_CHECKING:
    from core.samples import SampleSet
    from core.weights import LoadedWeights


class FinetuneError(Exception):
    """Fine-tuning could not run or its result cannot be saved; the message says why in plain words."""


@dataclass
class FinetuneSettings:
    """Everything that defines a fine-tune; the defaults are the recipe measured for DigitNet (bench/finetune.py)."""

    steps: int = 60                  # optimizer steps, one batch each
    lr: float = 5e-4                 # AdamW learning rate at the start, cosine-decayed to 0
    batch_size: int = 64             # images per step: the user's samples and MNIST replay together
    replay_share: float = 0.75       # share of each batch drawn from MNIST's training images (0 = no replay)
    distill_weight: float = 3.0      # pull the replay outputs toward the base model's (0 = plain replay)
    held_out_share: float = 0.2      # share of each digit's samples kept back to measure before/after (0 = none)
    min_held_out_samples: int = 20   # with fewer samples than this, all are trained on and none held out
    augment_strength: float = 0.7    # core.augment on the user's samples each step (0 = none)
    seed: int = 0                    # held-out split, batch order, augmentation and dropout
    device: str = "auto"             # auto | cpu | cuda | mps
    precision: str = "auto"          # fp32 | auto (bfloat16 autocast where the hardware has it) | bf16; weights stay fp32
    threads: int | None = None       # torch intra-op threads while fine-tuning; None = as they are
    reuse_recorded_mnist: bool = True  # MNIST "before" = the test accuracy the base file records, if any (saves a pass)

    def validate(self) -> None:
        """Raise FinetuneError naming the first setting that cannot work."""
        checks = [
            (self.steps >= 1, "steps must be at least 1"),
            (self.lr > 0 and math.isfinite(self.lr), "learning rate must be a positive number"),
            (self.batch_size >= 2, "batch size must be at least 2"),
            (0 <= self.replay_share < 1, "replay share must be in [0, 1)"),
            (self.distill_weight >= 0 and math.isfinite(self.distill_weight), "distillation weight cannot be negative"),
            (0 <= self.held_out_share < 1, "held-out share must be in [0, 1)"),
            (self.min_held_out_samples >= 2, "the minimum for a held-out split must be at least 2 samples"),
            (self.augment_strength >= 0, "augmentation strength cannot be negative"),
            (self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (self.threads is None or self.threads >= 1, "threads must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise FinetuneError(message)


# The defaults above are DigitNet's (the shipped weights). The small nets need bolder steps to learn a new hand, and
# theirs cost ~1/20 of DigitNet's: measured on the three writers of bench/finetune.py (bench/README.md).
ARCH_RECIPES: dict[str, dict] = {"tutorial": {"steps": 400, "lr": 3e-3}, "fastnet": {"steps": 200, "lr": 2e-3}}


def finetune_settings(arch: str, **overrides) -> FinetuneSettings:
    """The measured recipe for an architecture, with some fields changed (what finetune() uses without settings)."""
    return replace(FinetuneSettings(), **{**ARCH_RECIPES.get(arch, {}), **overrides})


@dataclass
class FinetuneProgress:
    step: int    # 1-based: steps done
    total: int
    loss: float


@dataclass
class FinetuneResult:
    model: nn.Module                    # on the CPU, eval mode; the base model is untouched
    arch: str
    arch_args: dict
    normalization: tuple[float, float]
    samples: int                        # samples used (trained on + held out)
    held_out: dict | None               # {"n", "before", "after"}; None when too few samples (see notes)
    mnist_test: dict | None             # {"before", "after"}; None when MNIST was not available
    notes: list[str]                    # plain sentences for the user
    seconds: float
    stopped: bool
    settings: FinetuneSettings = field(default_factory=FinetuneSettings)
    trained_on: int = 0                 # samples trained on (the rest were held out)
    steps_done: int = 0
    timings: dict = field(default_factory=dict)  # seconds by phase: data, before, train, after
    precision: str = "fp32"             # what ran: "bf16" (autocast) or "fp32", as TrainResult.precision
    threads: int | None = None          # torch threads it ran with on a CPU; None on a GPU
    kept: bool = False                  # stopped, and measured to be kept (measure_when_stopped): it may be saved


def held_out_split(labels: torch.Tensor, share: float, min_samples: int, seed: int
                   ) -> tuple[torch.Tensor, torch.Tensor, str | None]:
    """Indices (train, held out), the same share of every digit held out, each digit keeping one to train on;
    a note when nothing could be held out."""
    n = len(labels)
    everything, nothing = torch.arange(n), torch.zeros(0, dtype=torch.long)
    if share == 0:
        return everything, nothing, "no samples were held out (held-out share 0), so accuracy on them is not measured"
    if n < min_samples:
        return everything, nothing, (f"only {n} samples: all were used for training and none held out to measure "
                                     f"accuracy on your handwriting (that needs at least {min_samples})")
    generator = torch.Generator().manual_seed(seed)
    train_parts, held_parts = [], []
    for digit in range(10):
        members = torch.nonzero(labels == digit).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_held = min(round(len(members) * share), len(members) - 1) if len(members) >= 2 else 0
        held_parts.append(members[:n_held])
        train_parts.append(members[n_held:])
    held = torch.cat(held_parts).sort().values
    if len(held) == 0:
        return everything, nothing, ("too few samples of each digit to hold some out: all were used for training, "
                                     "so accuracy on your handwriting is not measured")
    return torch.cat(train_parts).sort().values, held, None


def _freeze_batchnorm(model: nn.Module) -> None:
    """Train mode for the model (dropout on) but BatchNorm keeps the base model's running statistics."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, norm: tuple[float, float],
              device: torch.device) -> float:
    """core.inference.evaluate's accuracy (its BatchNorm-folded copy is channels-last on CPUs, where DigitNet reads
    MNIST's test set ~1.9x faster)."""
    return evaluate(model, images, labels, norm, device).accuracy


def _load_replay(data_dir: str | Path | None, download: bool, notes: list[str]) -> MnistData | None:
    try:
        return load_mnist(data_dir, val_fraction=0.0, download=download)
    except DataError as exc:
        where = Path(data_dir).expanduser() if data_dir else paths.mnist_dir()
        reason = "not found" if "not found" in str(exc) else f"unusable ({exc})"
        notes.append(f"MNIST {reason} in {where}: fine-tuned without replay, so it could not guard against "
                     "forgetting, and MNIST test accuracy is unknown")
        return None


def finetune(base: LoadedWeights, samples: SampleSet, settings: FinetuneSettings | None = None,
             data_dir: str | Path | None = None, download: bool = False,
             on_progress: Callable[[FinetuneProgress], None] | None = None,
             should_stop: Callable[[], bool] | None = None,
             measure_when_stopped: Callable[[], bool] | None = None) -> FinetuneResult:
    """Fine-tune a copy of `base` on `samples` (MNIST replay from `data_dir` when found); `should_stop()` each step.

    A stopped run skips the accuracy-after passes unless `measure_when_stopped()` says the model will be kept.
    Without `settings`, the recipe measured for the base's architecture (finetune_settings)."""
    settings = settings or finetune_settings(base.arch)
    settings.validate()
    if len(samples) == 0:
        raise FinetuneError("there are no samples to fine-tune on")
    started = time.perf_counter()
    timings: dict[str, float] = {}
    notes: list[str] = []
    with torch_threads(settings.threads):  # threads and global RNG as the caller had them, afterwards
        device = select_device(settings.device)
        with seeded_rng(settings.seed, device):  # dropout draws from the global generator
            result = _finetune(base, samples, settings, device, data_dir, download, on_progress, should_stop,
                               measure_when_stopped, notes, timings)
    result.seconds = time.perf_counter() - started
    return result


def _finetune(base, samples, settings: FinetuneSettings, device: torch.device, data_dir, download, on_progress,
              should_stop, measure_when_stopped, notes: list[str], timings: dict[str, float]) -> FinetuneResult:
    tick = time.perf_counter()
    images = torch.from_numpy(samples.images).to(torch.uint8)     # (N, 28, 28)
    labels = torch.from_numpy(samples.labels).to(torch.long)      # (N,)
    train_idx, held_idx, note = held_out_split(labels, settings.held_out_share, settings.min_held_out_samples,
                                               settings.seed)
    if note:
        notes.append(note)
    mnist = _load_replay(data_dir, download, notes)
    norm = base.normalization
    model = copy.deepcopy(base.model).to(device)
    timings["data"] = time.perf_counter() - tick

    tick = time.perf_counter()
    held_before = _accuracy(model, images[held_idx], labels[held_idx], norm, device) if len(held_idx) else None
    mnist_before = None
    if mnist is not None:
        recorded = base.metrics.get("test_accuracy") if settings.reuse_recorded_mnist else None
        mnist_before = (float(recorded) if isinstance(recorded, (int, float)) and 0 <= recorded <= 1 else
                        _accuracy(model, mnist.test_images, mnist.test_labels, norm, device))
    timings["before"] = time.perf_counter() - tick

    tick = time.perf_counter()
    model, steps_done, stopped = _train(model, images[train_idx], labels[train_idx], mnist, settings, norm, device,
                                        on_progress, should_stop)
    timings["train"] = time.perf_counter() - tick
    if not stopped and should_stop is not None and should_stop():
        # asked during the last step: every step ran, so a run to be kept is complete; else skip the measuring passes
        stopped = not (measure_when_stopped is not None and measure_when_stopped())

    tick = time.perf_counter()
    held_out = mnist_test = None
    cpu = torch.device("cpu")
    # a stopped run is measured only to be kept, and only once it has learned something (a step)
    measure = not stopped or (steps_done > 0 and measure_when_stopped is not None and measure_when_stopped())
    if len(held_idx):
        after = _accuracy(model, images[held_idx], labels[held_idx], norm, cpu) if measure else None
        held_out = {"n": len(held_idx), "before": held_before, "after": after}
    if mnist is not None:
        after = _accuracy(model, mnist.test_images, mnist.test_labels, norm, cpu) if measure else None
        mnist_test = {"before": mnist_before, "after": after}
    model = model.to(memory_format=torch.contiguous_format).eval()
    if stopped:
        notes.append(f"stopped after {steps_done} of {settings.steps} steps" +
                     ("" if measure else ": accuracy after was not measured"))
    timings["after"] = time.perf_counter() - tick
    return FinetuneResult(model, base.arch, dict(base.arch_args), norm, len(samples), held_out, mnist_test, notes,
                          0.0, stopped, settings, len(train_idx), steps_done, timings,
                          "bf16" if autocast_dtype(settings.precision, device) is not None else "fp32",  # as _train ran
                          torch.get_num_threads() if device.type == "cpu" else None, stopped and measure)


def _train(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, mnist: MnistData | None,
           settings: FinetuneSettings, norm: tuple[float, float], device: torch.device,
           on_progress, should_stop) -> tuple[nn.Module, int, bool]:
    """The fine-tuning loop; returns the model (CPU, eval mode, channels-last on CPUs), steps done, whether stopped."""
    generator = torch.Generator().manual_seed(settings.seed)
    n_replay = round(settings.batch_size * settings.replay_share) if mnist is not None else 0
    n_user = settings.batch_size - n_replay
    teacher = None
    if n_replay and settings.distill_weight > 0:
        teacher = inference_model(copy.deepcopy(model))  # the base model, BatchNorm folded: cheaper forward passes
    channels_last = device.type == "cpu"  # faster convolutions and pooling on CPUs (see core/training.py)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        teacher = teacher.to(memory_format=torch.channels_last) if teacher is not None else None
    amp_dtype = autocast_dtype(settings.precision, device)
    _freeze_batchnorm(model)
    forward = pool_before_relu(model)  # the same numbers, faster (see core.models)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.steps)
    order = torch.zeros(0, dtype=torch.long)
    steps_done, stopped = 0, False
    for step in range(settings.steps):
        if should_stop is not None and should_stop():
            stopped = True
            break
        while len(order) < n_user:  # oversampling: reshuffled passes over the samples, each seen equally often
            order = torch.cat([order, torch.randperm(len(images), generator=generator)])
        idx, order = order[:n_user], order[n_user:]
        x = augmentation.augment(to_float(images[idx]), settings.augment_strength, generator)  # (U, 1, 28, 28)
        y = labels[idx]
        if n_replay:
            replay = torch.randint(len(mnist.train_images), (n_replay,), generator=generator)
            x = torch.cat([x, to_float(mnist.train_images[replay])])  # (U + R, 1, 28, 28)
            y = torch.cat([y, mnist.train_labels[replay]])
        x = normalize(x, norm).to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
            logits = forward(x).float()
            if teacher is not None:
                with torch.no_grad():
                    target = F.log_softmax(teacher(x[n_user:]).float(), dim=1)
        loss = F.cross_entropy(logits, y.to(device))
        if teacher is not None:
            loss = loss + settings.distill_weight * F.kl_div(F.log_softmax(logits[n_user:], dim=1), target,
                                                             log_target=True, reduction="batchmean")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise FinetuneError(f"the loss became {loss_value} at step {step + 1}: the learning rate is probably too high")
        steps_done = step + 1
        if on_progress is not None:
            on_progress(FinetuneProgress(steps_done, settings.steps, loss_value))
    return model.to("cpu").eval(), steps_done, stopped


def _same_file(a: Path, b: Path | None) -> bool:
    if b is None:
        return False
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def check_output(out: Path, base: LoadedWeights) -> None:
    """FinetuneError if `out` is the shipped default weights, the base file, or not a writable regular file."""
    if _same_file(out, paths.DEFAULT_WEIGHTS):
        raise FinetuneError(f"{out} is the shipped default weights; they are never overwritten, choose another file")
    if _same_file(out, base.path):
        raise FinetuneError(f"{out} is the file being fine-tuned; choose another file, so the original stays")
    if out.exists() and not out.is_file():
        raise FinetuneError(f"{out} exists and is not a regular file")
    if out.exists() and not out.stat().st_mode & 0o222:
        raise FinetuneError(f"{out} is write-protected")


def save_finetuned(result: FinetuneResult, base: LoadedWeights, out: Path | str | None = None) -> Path:
    """Write the fine-tuned weights (default: a new file in the per-user weights folder); never over the shipped
    defaults or the base file (FinetuneError). If `out` cannot be written, the weights go to a new file in the weights
    folder and a note says so; WeightsError only if nothing could be saved."""
    if result.stopped and not result.kept:
        raise FinetuneError("the fine-tune was stopped before it finished; there is nothing to save")
    out = Path(out).expanduser() if out is not None else None
    if out is not None:
        check_output(out, base)
    held, mnist = result.held_out or {}, result.mnist_test or {}
    metrics = {
        "test_accuracy": mnist.get("after"), "test_accuracy_before": mnist.get("before"),
        "held_out_accuracy": held.get("after"), "held_out_before": held.get("before"), "held_out_n": held.get("n"),
        "finetune_samples": result.samples, "train_seconds": round(result.seconds, 2),
        **({"stopped": True, "steps_done": result.steps_done} if result.stopped else {}),
    }
    settings = {
        "preset": "fine-tuned", "arch": result.arch, "arch_args": dict(result.arch_args),
        "finetuned_from": base.name, "base_path": str(base.path) if base.path else None,
        "base_preset": base.settings.get("preset"), "finetune": asdict(result.settings), "notes": list(result.notes),
    }
    saved = save_training_result(result.model, result.arch, result.arch_args, result.normalization, settings, metrics,
                                 out, f"finetuned-{result.arch}" + ("-stopped" if result.stopped else ""))
    if saved.fell_back:
        result.notes.append(f"could not save to {saved.requested} ({saved.reason}); saved to {saved.path} instead")
    return saved.path
