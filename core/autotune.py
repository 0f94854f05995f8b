"""Choices made by timing real work: torch's thread count while training, and the precision "auto" means."""
from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.models import pool_before_relu


class ThreadTuner:
    """Times real training batches at a few thread counts and keeps the fastest, checking again when speed drifts.

    Why: all cores is not always fastest. With one other busy program on a 2-core laptop, one of two threads
    shares its core, every parallel op waits for that slow half, and `quick` ran ~3.4x slower than idle where
    one thread alone runs at about its idle speed. A tiny net can spend more on waking threads than it gains.
    Load changes during a run (a browser starts or closes), so the choice is checked again: at once when the
    speed at the chosen count drifts, and now and then anyway (one thread does not notice a core come free).
    """

    WARMUP = 6              # batches before the first timing: allocator and oneDNN caches settle
    SETTLE = 1              # batches after a switch that are not timed (the pool wakes or parks)
    WINDOW = 4              # a candidate is timed over at least this many batches...
    WINDOW_SECONDS = 0.2    # ...and this long: a busy core's scheduler slices are milliseconds long
    LOSING = 1.5            # a candidate this much slower than the best timed so far is dropped after 2 batches
    MARGIN = 0.05           # another count must be this much faster to replace the current one
    DRIFT = 0.25            # the chosen count's speed this far from its timing: the load changed, time again
    FIRST_RECHECK = 8.0     # seconds of training between sweeps, doubled each time the choice holds...
    LONGEST_RECHECK = 60.0  # ...up to this

    def __init__(self, max_threads: int, clock: Callable[[], float] = time.perf_counter,
                 set_threads: Callable[[int], None] = torch.set_num_threads):
        self.candidates = sorted({max_threads, max_threads - 1, max_threads // 2, 1} - {0}, reverse=True)
        self.best = max_threads
        self.history: list[tuple[int, dict[int, float]]] = []  # (batch index, {threads: seconds per sample})
        self._clock, self._set = clock, set_threads
        self._batch = 0
        self._last: float | None = None     # clock at the previous batch's end
        self._active = len(self.candidates) > 1
        self._sweep_at: float | None = None  # clock time of the next periodic sweep (None: after WARMUP batches)
        self._interval = self.FIRST_RECHECK
        self._plan: list[int] = []          # candidates still to time in this sweep
        self._current: int | None = None    # the candidate being timed (None: running at `best`)
        self._since_switch = 0
        self._window: list[tuple[float, int]] = []  # (seconds, samples) of the batches timed so far
        self._costs: dict[int, float] = {}

    @property
    def threads(self) -> int:
        return self._current if self._current is not None else self.best

    def batch_done(self, samples: int) -> None:
        """Call after every training batch with its size; switches the thread count between batches."""
        now = self._clock()
        seconds, self._last = (None if self._last is None else now - self._last), now
        self._batch += 1
        if not self._active:
            return
        self._since_switch += 1
        if seconds is not None and self._since_switch > self.SETTLE:
            self._window.append((seconds, samples))
        if self._current is not None:  # timing a candidate
            # a clear loser stops early: two threads beside a busy program can take 8x as long a batch
            losing = self._costs and len(self._window) >= 2 and \
                self._window_cost() > self.LOSING * min(self._costs.values())
            if self._window_full() or losing:
                self._costs[self._current] = self._window_cost()
                self._next_candidate()
        elif self._sweep_at is None:
            if self._batch >= self.WARMUP:
                self._start_sweep()
        elif now >= self._sweep_at:
            self._start_sweep()
        elif self._window_full():  # watching the chosen count: has its speed drifted since it was timed?
            drift = abs(self._window_cost() / self._costs[self.best] - 1)
            self._window = []
            if drift > self.DRIFT:
                self._interval = self.FIRST_RECHECK
                self._start_sweep()

    def _window_full(self) -> bool:
        return len(self._window) >= self.WINDOW and sum(s for s, _ in self._window) >= self.WINDOW_SECONDS

    def _window_cost(self) -> float:
        """Seconds per sample over the window: throughput, not a median (on a shared core, batches are fast while
        the thread has the core and stall while it waits, and only the total says what a run takes). The slowest
        tenth is left out: a validation pass or a garbage collection between batches is not the thread count."""
        kept = sorted(self._window, key=lambda b: b[0] / max(b[1], 1))[:max(1, len(self._window) * 9 // 10)]
        return sum(s for s, _ in kept) / max(sum(n for _, n in kept), 1)

    def _start_sweep(self) -> None:
        # the current choice first, so it is timed under the same conditions as the others
        self._plan, self._costs = [self.best] + [c for c in self.candidates if c != self.best], {}
        self._next_candidate()

    def _next_candidate(self) -> None:
        self._since_switch, self._window = 0, []
        if self._plan:
            self._current = self._plan.pop(0)
            self._set(self._current)
            return
        fastest = min(self._costs, key=self._costs.get)
        changed = self._costs[fastest] < self._costs[self.best] * (1 - self.MARGIN)
        if changed:
            self.best = fastest
        self.history.append((self._batch, dict(self._costs)))
        self._interval = self.FIRST_RECHECK if changed else min(2 * self._interval, self.LONGEST_RECHECK)
        self._sweep_at = self._clock() + self._interval
        self._current = None
        self._set(self.best)


# (device type, model class, parameter count, batch size, threads) -> the chosen dtype (None: fp32)
_PRECISION_CHOICES: dict[tuple, torch.dtype | None] = {}
BF16_MARGIN = 0.07  # bf16 must be this much faster than fp32 to be chosen: a tie stays in full precision


def _step_seconds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype | None) -> float:
    """Wall seconds of one forward + backward pass (no optimizer step: the weights never change)."""
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    with torch.autocast(x.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    sync()
    return time.perf_counter() - start


def measured_autocast_dtype(model: nn.Module, batch_size: int, device: torch.device, channels_last: bool,
                            rounds: int = 6, step_seconds: Callable = _step_seconds) -> torch.dtype | None:
    """bfloat16 when a bf16 step of this model and batch size is measurably faster than fp32 here, else None.

    Run only where the hardware has bf16 (elsewhere bf16 is emulated and always slower). Timed on a copy with
    random inputs, fp32 and bf16 steps interleaved so that load changes hit both, on one CPU thread (beside a busy
    program two threads can take 8x as long a step: the probe alone took ~1 s). Each path is judged by its fastest
    step: another program only ever adds time to a step (it takes the core for a few ms), so the fastest is the
    step's own cost. Beside three busy programs (bf16 ~20% faster there), the median chose bf16 in 24 of 60 probes,
    the fastest step in 45 of 60 on the same timings (with 10 rounds: 20 / 37 of 40). The global RNG and the thread
    count are restored, so a seeded run trains the same whether or not the probe ran. The answer is remembered."""
    params = sum(p.numel() for p in model.parameters())
    key = (device.type, type(model).__name__, params, batch_size)
    if key in _PRECISION_CHOICES:
        return _PRECISION_CHOICES[key]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 1, 28, 28, generator=generator).to(device)  # (B, 1, 28, 28)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch_size,), generator=generator).to(device)
    devices = [device.index or 0] if device.type == "cuda" else []
    threads = torch.get_num_threads()
    times: dict[torch.dtype | None, list[float]] = {None: [], torch.bfloat16: []}
    with torch.random.fork_rng(devices=devices):
        try:
            torch.set_num_threads(1)
            probe = pool_before_relu(copy.deepcopy(model).train())  # as core.training steps it
            for round_ in range(rounds + 2):  # the first two rounds warm up each path and are not counted
                for dtype in ((None, torch.bfloat16) if round_ % 2 else (torch.bfloat16, None)):
                    seconds = step_seconds(probe, x, y, dtype)
                    if round_ >= 2:
                        times[dtype].append(seconds)
        finally:
            torch.set_num_threads(threads)
    fp32, bf16 = min(times[None]), min(times[torch.bfloat16])
    choice = torch.bfloat16 if bf16 < fp32 * (1 - BF16_MARGIN) else None
    _PRECISION_CHOICES[key] = choice
    return choice
