"""Training: presets, a callback-driven train loop and its results (the forward passes that score a model are in
core/inference.py)."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from core import augment as augmentation
from core import fast_optim
from core.autotune import ThreadTuner, measured_autocast_dtype
from core.calibration import fit_temperature, logits_of
from core import synthetic_digits
from core.data import MnistData, load_mnist, to_float
from core.inference import Evaluation, evaluate, inference_model, normalize  # noqa: F401 (re-exported)
from core.models import ARCHITECTURES, build_model, pool_before_relu
from core.models import arch_args as full_arch_args
from core.settings import (DEVICES, OPTIMIZERS, PRECISIONS, PRESETS, SCHEDULES, TrainingError,  # noqa: F401 (re-exported)
                           TrainSettings, preset)


def select_device(name: str = "auto") -> torch.device:
    """The one place that turns a device name into a torch.device, with a plain error if it is absent."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device 'cuda' was asked for, but no CUDA GPU is available: choose cpu or auto",
                            setting="device")
    if name == "mps" and not torch.backends.mps.is_available():
        raise TrainingError("device 'mps' was asked for, but Apple's MPS is not available: choose cpu or auto",
                            setting="device")
    if name not in DEVICES:
        raise TrainingError(f"device must be one of {', '.join(DEVICES)}", setting="device")
    return torch.device(name)


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes bfloat16 in hardware (emulated bf16 on other CPUs is slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":  # AVX512-BF16 or AMX tiles; the probes are private, so absent ones mean "no"
        return any(getattr(torch.cpu, probe, lambda: False)() for probe in
                   ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return False


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting on a device; None = plain fp32."""
    if precision == "bf16" or (precision == "auto" and native_bf16(device)):
        if device.type not in ("cpu", "cuda"):
            raise TrainingError(f"bf16 precision is not supported on {device.type}; use fp32")
        return torch.bfloat16
    return None


@dataclass
class BatchProgress:
    epoch: int              # 0-based
    batch: int              # 0-based within the epoch
    batches_per_epoch: int
    total_batches: int      # over all epochs
    loss: float
    accuracy: float         # this batch's share of argmax(logits) == label (augmented images, dropout on)
    running_accuracy: float  # the same over the epoch so far
    samples_done: int       # over all epochs
    elapsed: float          # wall seconds since the first batch began, validation passes included

    @property
    def batches_done(self) -> int:
        return self.epoch * self.batches_per_epoch + self.batch + 1

    @property
    def samples_per_second(self) -> float:
        """Samples done over the wall time they took (not a mean of per-batch rates, which fast batches inflate)."""
        return self.samples_done / max(self.elapsed, 1e-9)

    @property
    def eta_seconds(self) -> float:
        """Seconds left for the remaining batches at the rate so far (evaluation on the test set not included)."""
        return self.elapsed / self.batches_done * (self.total_batches - self.batches_done)


@dataclass
class EpochResult:
    epoch: int              # 0-based
    train_loss: float
    val_loss: float | None  # None when the validation share is 0
    val_accuracy: float | None
    train_accuracy: float | None = None  # on the epoch's (augmented) training batches, as they were trained


@dataclass
class TrainResult:
    model: nn.Module                    # on the CPU, eval mode
    settings: TrainSettings
    arch_args: dict
    normalization: tuple[float, float]
    epochs: list[EpochResult]
    val_accuracy: float | None
    test: Evaluation | None             # None when stopped early
    stopped: bool
    seconds: float
    precision: str = "fp32"             # what ran: "bf16" (autocast) or "fp32"; "auto" resolved by measurement
    threads: int | None = None          # torch threads at the end (CPU); chosen by timing unless set
    temperature: float | None = None    # fitted on the validation split (None without one): calibrated confidences

    @property
    def metrics(self) -> dict:
        metrics = {"val_accuracy": self.val_accuracy, "test_accuracy": self.test.accuracy if self.test else None,
                   "epochs_completed": len(self.epochs), "train_seconds": round(self.seconds, 2)}
        if self.temperature is not None:  # read by core.predict: softmax(logits / T)
            metrics["temperature"] = round(self.temperature, 4)
        return metrics


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to `count` (None: left alone) inside the block, restored after it."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)  # new threads take the last count set, so restore it even when unchanged


@contextmanager
def seeded_rng(seed: int, device: torch.device) -> Iterator[None]:
    """The global RNGs (CPU and the device's) seeded inside the block and restored after it.

    Dropout and model initialization draw from the global generator; forking it keeps a library call from
    changing what the caller's next torch.rand returns."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _make_optimizer(settings: TrainSettings, model: nn.Module):
    params, lr, wd = model.parameters(), settings.lr, settings.weight_decay
    device = next(model.parameters()).device
    if settings.optimizer in ("adam", "adamw") and fast_optim.available(device):
        # torch's fused kernel without torch.optim's import of torch._dynamo (~0.85 s) and per-step wrappers
        return fast_optim.FusedAdam(params, lr=lr, weight_decay=wd, decoupled=settings.optimizer == "adamw")
    # One fused kernel per step instead of ~10 ops per parameter: 0.65 -> 0.4 ms a step for the tutorial's net.
    fused = device.type in ("cpu", "cuda")
    if settings.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, fused=fused)
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, fused=fused)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd, fused=fused)


def _make_schedule(settings: TrainSettings, optimizer, total_steps: int):
    own = isinstance(optimizer, fast_optim.FusedAdam)
    if settings.schedule == "onecycle":
        return fast_optim.OneCycle(optimizer, settings.lr, total_steps, pct_start=0.25) if own else \
            torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.lr, total_steps=total_steps, pct_start=0.25)
    if settings.schedule == "cosine":
        return fast_optim.Cosine(optimizer, total_steps) if own else \
            torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return None


def _add_my_samples(data: MnistData, share: float) -> MnistData:
    """The training split plus your saved samples (the per-user samples folder), repeated until they make up about
    `share` of it: a hundred samples next to 54,000 MNIST images would otherwise hardly count."""
    from dataclasses import replace

    from core import paths
    from core.samples import SamplesError, load_samples

    try:
        mine = load_samples(paths.samples_dir())
    except SamplesError as exc:
        raise TrainingError(f"could not add your samples ({exc}); save some in the Draw tab, or train on MNIST "
                            "alone") from exc
    copies = max(1, round(share * len(data.train_images) / ((1 - share) * len(mine))))
    images = torch.from_numpy(mine.images).repeat(copies, 1, 1)  # (copies * N, 28, 28) uint8
    labels = torch.from_numpy(mine.labels).repeat(copies)        # (copies * N,) int64
    return replace(data, train_images=torch.cat([data.train_images, images]),
                   train_labels=torch.cat([data.train_labels, labels]))


def train(
    settings: TrainSettings,
    data: MnistData | None = None,
    on_batch: Callable[[BatchProgress], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train a fresh model by `settings`; callbacks report progress, `should_stop()` is checked every batch.

    The process is left as found: torch's thread count and the global random generators are restored."""
    settings.validate()
    started = time.perf_counter()
    device = select_device(settings.device)
    with torch_threads(settings.threads), seeded_rng(settings.seed, device):
        return _train(settings, device, data, on_batch, on_epoch, should_stop, started)


def _initial_state(path: str, arch: str, args: dict) -> dict:
    """The state_dict of the weights file at `path`, which must hold `arch` built with `args`."""
    from core.weights import WeightsError, load_weights

    try:
        start = load_weights(path)
    except WeightsError as exc:
        raise TrainingError(f"cannot start from {path}: {exc}", "init_weights") from exc
    if start.arch != arch or full_arch_args(start.arch, **start.arch_args) != args:
        raise TrainingError(f"cannot start from {path}: it holds a {start.arch} {start.arch_args}, and this run "
                            f"trains a {arch} {args}; choose the same architecture", "init_weights")
    return start.model.state_dict()


def _train(settings: TrainSettings, device: torch.device, data: MnistData | None,
           on_batch: Callable[[BatchProgress], None] | None, on_epoch: Callable[[EpochResult], None] | None,
           should_stop: Callable[[], bool] | None, started: float) -> TrainResult:
    # The global generator is seeded from here on (seeded_rng); nothing before model init draws from it.
    if data is None:
        data = load_mnist(settings.data_dir, settings.val_fraction, settings.seed, settings.download)
    if len(data.train_images) == 0:
        raise TrainingError("the training split is empty")
    if settings.my_samples_share:  # "MNIST + my samples": the caller's `data` is left as it is
        data = _add_my_samples(data, settings.my_samples_share)

    args = full_arch_args(settings.arch, **settings.arch_args)
    normalization = ARCHITECTURES[settings.arch].normalization
    model = build_model(settings.arch, **args)
    if settings.init_weights:  # continue from trained weights: the random initial ones are replaced
        model.load_state_dict(_initial_state(settings.init_weights, settings.arch, args))
    model = model.to(device)
    # On CPUs, max-pooling runs ~5x faster on channels-last tensors (the tutorial's net: 2.3 -> 1.7 ms a step).
    channels_last = device.type == "cpu"
    amp_dtype = autocast_dtype(settings.precision, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if settings.precision == "auto" and amp_dtype is not None:  # native bf16 here: still slower for some nets
        amp_dtype = measured_autocast_dtype(model, settings.batch_size, device, channels_last)
    # "threads: default" on a CPU: the count is chosen by timing batches (a busy core or a tiny net needs fewer)
    tuner = ThreadTuner(torch.get_num_threads()) if settings.threads is None and device.type == "cpu" else None
    optimizer = _make_optimizer(settings, model)
    forward = pool_before_relu(model)  # the same numbers, faster: ReLU after max-pooling, on a quarter of the pixels
    train_images, train_labels = data.train_images, data.train_labels
    if settings.synthetic_digits:  # mouse-style pen digits and handwriting fonts next to MNIST's scanned ones
        made_images, made_labels = synthetic_digits.training_digits(settings.synthetic_digits, settings.seed,
                                                                    settings.synthetic_font_share)
        train_images, train_labels = torch.cat([train_images, made_images]), torch.cat([train_labels, made_labels])
    batches_per_epoch = math.ceil(len(train_images) / settings.batch_size)
    total_batches = batches_per_epoch * settings.epochs
    schedule = _make_schedule(settings, optimizer, total_batches)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)

    # Whole uint8 tensors live on the training device (47 MB for MNIST): batches are plain indexing.
    data_device = device if device.type == "cuda" else torch.device("cpu")
    train_images, train_labels = train_images.to(data_device), train_labels.to(data_device)
    generator = torch.Generator(device=data_device).manual_seed(settings.seed)
    strength = settings.augment_strength if settings.augment else 0.0

    epochs: list[EpochResult] = []
    stopped = False
    samples_done, loop_started = 0, time.perf_counter()  # the rate's clock: data loading and model setup left out
    for epoch in range(settings.epochs):
        model.train()
        order = torch.randperm(len(train_images), generator=generator, device=data_device)
        loss_sum, correct, seen = 0.0, 0, 0
        for batch in range(batches_per_epoch):
            if should_stop is not None and should_stop():
                stopped = True
                break
            idx = order[batch * settings.batch_size:(batch + 1) * settings.batch_size]
            x = augmentation.augment(to_float(train_images[idx]), strength, generator)  # (B, 1, 28, 28)
            x = normalize(x, normalization).to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = train_labels[idx].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
                logits = forward(x)  # (B, 10)
                loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise TrainingError(f"the loss became {loss_value} in epoch {epoch + 1}, batch {batch + 1}: "
                                    "the learning rate is probably too high")
            batch_correct = int((logits.argmax(1) == y).sum())  # the logits are there: one cheap reduction
            loss_sum += loss_value * len(idx)
            correct += batch_correct
            seen += len(idx)
            samples_done += len(idx)
            if tuner is not None:
                tuner.batch_done(len(idx))
            if on_batch is not None:
                on_batch(BatchProgress(epoch, batch, batches_per_epoch, total_batches, loss_value,
                                       batch_correct / len(idx), correct / seen, samples_done,
                                       time.perf_counter() - loop_started))
        if stopped:
            break
        val = evaluate(model, data.val_images, data.val_labels, normalization, device) if len(data.val_images) else None
        result = EpochResult(epoch, loss_sum / max(seen, 1), val.loss if val else None, val.accuracy if val else None,
                             correct / max(seen, 1))
        epochs.append(result)
        if on_epoch is not None:
            on_epoch(result)
        if tuner is not None:
            tuner.pause()  # the validation pass and the callback are not the next batch's time

    test = None if stopped else evaluate(model, data.test_images, data.test_labels, normalization, device)
    model = model.to("cpu", memory_format=torch.contiguous_format).eval()
    temperature = None
    if not stopped and len(data.val_images):  # images it never trained on: label smoothing's ~96% becomes honest
        with torch.no_grad():
            temperature = fit_temperature(logits_of(model, data.val_images, normalization), data.val_labels)
    return TrainResult(model, settings, args, normalization, epochs,
                       epochs[-1].val_accuracy if epochs else None, test, stopped, time.perf_counter() - started,
                       "bf16" if amp_dtype is not None else "fp32",
                       torch.get_num_threads() if device.type == "cpu" else None, temperature)
