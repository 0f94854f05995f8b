"""The command line's progress bar: speed and ETA from elapsed time over work done, not tqdm's moving average."""
from __future__ import annotations

import sys
import time


def clock_duration(seconds: float) -> str:
    """4:05 or 1:02:03, as the window shows an ETA."""
    whole = max(0, round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}" if whole >= 3600 else \
        f"{whole // 60}:{whole % 60:02d}"


class ProgressBar:
    """A tqdm bar on stderr counting a `unit` (batch, step; `units` its plural) whose speed and ETA are work done
    over the wall time it took. tqdm's own rate is a moving average of recent updates: it read 699 batches/s in a
    run that averaged 353. Before there is a rate (one update), the ETA reads "…", never 0:00."""

    def __init__(self, total: int, unit: str, units: str, quiet: bool, clock=time.perf_counter):
        from tqdm import tqdm

        self.total, self.unit, self.units, self._clock = total, unit, units, clock
        self._first: tuple[float, int] | None = None  # (clock, units done) at the first update
        # {postfix} is ours alone: the rate and ETA below, then the caller's fields (loss, accuracy, ...)
        self._bar = tqdm(total=total, file=sys.stderr, disable=quiet, dynamic_ncols=True,
                         bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} " + units + " [{elapsed}{postfix}]")

    def update(self, done: int, samples: int | None = None, elapsed: float | None = None, **fields: str) -> str:
        """Show `done` units of `total`. `samples` done and the `elapsed` seconds they took give samples/s; without
        them the rate is units done since the first update over the time since it. Returns the postfix shown."""
        now = self._clock()
        if self._first is None:
            self._first = (now, done)
        if elapsed is not None and samples is not None:
            rate, per_second = (samples / elapsed if elapsed > 0 else None), "samples/s"
            unit_rate = done / elapsed if elapsed > 0 else None
        else:
            since, first_done = now - self._first[0], self._first[1]
            unit_rate = (done - first_done) / since if done > first_done and since > 0 else None
            rate, per_second = unit_rate, f"{self.units}/s"
        eta = clock_duration((self.total - done) / unit_rate) if unit_rate else "…"
        if rate is None:
            speed = f"… {per_second}"
        elif rate < 1 and per_second != "samples/s":  # a slow stretch: "300.0 s/step" reads better than "0 steps/s"
            speed = f"{1 / rate:,.1f} s/{self.unit}"
        else:
            speed = f"{rate:,.0f} {per_second}"
        postfix = ", ".join([f"ETA {eta}", speed, *(f"{k} {v}" for k, v in fields.items())])
        self._bar.set_postfix_str(postfix, refresh=False)
        self._bar.update(done - self._bar.n)
        return postfix

    def write(self, line: str) -> None:
        self._bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()
