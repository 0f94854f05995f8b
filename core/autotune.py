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

    Finding out must be cheap when a count stalls: on 4 cores beside one busy program, 4 threads took 630 ms a
    batch against 3 threads' 7.7 ms (a Xeon, measured), and warming up and timing 4 threads first cost ~6 s of a
    7 s run. So it warms up on one thread (safe under any load, ~2x slower idle for a few batches), whose last
    batches time one thread; every other count is then met with a reference, and dropped after a single batch that
    is hopelessly slow.
    """

    WARMUP = 6              # batches on one thread before the first sweep: allocator and oneDNN caches settle...
    WARMUP_TIMED = 2        # ...of which those after the first two time one thread, at least a WINDOW of batches
    WARMUP_SECONDS = 0.05   # and this long (it only has to rule out a stalling count; sweeps time it again)
    SETTLE = 1              # batches after a switch that are not timed (the pool wakes or parks)...
    HOPELESS = 3.0          # ...unless one is this much slower a sample than the best timed so far: dropped at once,
    HOPELESS_SECONDS = 0.1  # if it also took this long (a stall of scheduler slices, not a hiccup of a few ms)
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
        self._threads = max_threads         # the count set now
        self._sweep_at: float | None = None  # clock time of the next periodic sweep (None: warming up)
        self._interval = self.FIRST_RECHECK
        self._plan: list[int] = []          # candidates still to time in this sweep
        self._current: int | None = None    # the candidate being timed (None: warming up or running at `best`)
        self._since_switch = 0
        self._window: list[tuple[float, int]] = []  # (seconds, samples) of the batches timed so far
        self._costs: dict[int, float] = {}
        if self._active:
            self._switch(min(self.candidates))

    @property
    def threads(self) -> int:
        return self._threads

    def batch_done(self, samples: int) -> None:
        """Call after every training batch with its size; switches the thread count between batches."""
        now = self._clock()
        seconds, self._last = (None if self._last is None else now - self._last), now
        self._batch += 1
        if not self._active:
            return
        if self._sweep_at is None and self._current is None:  # warming up on one thread
            if seconds is not None and self._batch > self.WARMUP_TIMED:
                self._window.append((seconds, samples))
            if self._batch >= self.WARMUP and len(self._window) >= self.WINDOW and \
                    sum(s for s, _ in self._window) >= self.WARMUP_SECONDS:
                self._start_sweep(first=True)
            return
        self._since_switch += 1
        if self._current is not None and seconds is not None and self._costs and seconds >= self.HOPELESS_SECONDS \
                and seconds / max(samples, 1) > self.HOPELESS * min(self._costs.values()):
            self._costs[self._current] = seconds / max(samples, 1)  # one batch says enough: 4 threads, 630 ms
            self._next_candidate()
            return
        if seconds is not None and self._since_switch > self.SETTLE:
            self._window.append((seconds, samples))
        if self._current is not None:  # timing a candidate
            # a clear loser stops early: two threads beside a busy program can take 8x as long a batch
            losing = self._costs and len(self._window) >= 2 and \
                self._window_cost() > self.LOSING * min(self._costs.values())
            if self._window_full() or losing:
                self._costs[self._current] = self._window_cost()
                self._next_candidate()
        elif now >= self._sweep_at:
            self._start_sweep()
        elif self._window_full():  # watching the chosen count: has its speed drifted since it was timed?
            cost = self._window_cost()
            drift = abs(cost / self._costs[self.best] - 1)
            self._window = []
            if drift > self.DRIFT:  # this window has just timed the chosen count under the new load
                self._interval = self.FIRST_RECHECK
                self._start_sweep(known={self.best: cost})

    def pause(self) -> None:
        """Call after work between batches that is not a batch (a validation pass): the next batch is not timed."""
        self._last = None

    def _window_full(self) -> bool:
        return len(self._window) >= self.WINDOW and sum(s for s, _ in self._window) >= self.WINDOW_SECONDS

    def _window_cost(self) -> float:
        """Seconds per sample over the window: throughput, not a median (on a shared core, batches are fast while
        the thread has the core and stall while it waits, and only the total says what a run takes). The slowest
        tenth is left out: a validation pass or a garbage collection between batches is not the thread count."""
        kept = sorted(self._window, key=lambda b: b[0] / max(b[1], 1))[:max(1, len(self._window) * 9 // 10)]
        return sum(s for s, _ in kept) / max(sum(n for _, n in kept), 1)

    def _start_sweep(self, first: bool = False, known: dict[int, float] | None = None) -> None:
        """Time every candidate against a reference, so that a count that stalls is dropped after one batch. The
        first sweep has one thread's warm-up timing and goes from many threads to few (on an idle machine the
        fastest is timed first and the slower ones are dropped early); a periodic sweep times the current choice
        first, under the same conditions as the others; a sweep started by drift already has it (`known`)."""
        if first:
            fewest = min(self.candidates)
            known = {fewest: self._window_cost()}
            self._plan, self._costs = [c for c in self.candidates if c != fewest], known
        elif known is not None:
            self._plan, self._costs = [c for c in self.candidates if c not in known], dict(known)
        else:
            self._plan, self._costs = [self.best] + [c for c in self.candidates if c != self.best], {}
        self._next_candidate()

    def _switch(self, threads: int) -> None:
        if threads != self._threads:
            self._set(threads)
            self._threads = threads

    def _next_candidate(self) -> None:
        self._since_switch, self._window = 0, []
        if self._plan:
            self._current = self._plan.pop(0)
            self._switch(self._current)
            return
        fastest = min(self._costs, key=self._costs.get)
        changed = self._costs[fastest] < self._costs[self.best] * (1 - self.MARGIN)
        if changed:
            self.best = fastest
        self.history.append((self._batch, dict(self._costs)))
        self._interval = self.FIRST_RECHECK if changed else min(2 * self._interval, self.LONGEST_RECHECK)
        self._sweep_at = self._clock() + self._interval
        self._current = None
        self._switch(self.best)


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
