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

    def update(self, done: int, samples_per_second: float | None = None, eta_seconds: float | None = None,
               **fields: str) -> str:
        """Show `done` units of `total`. Training passes its own samples/s and ETA (core.training.BatchProgress,
        from its clock); without them the rate is units done since the first update over the time since it.
        Returns the postfix shown."""
        if samples_per_second is not None:
            speed = f"{samples_per_second:,.0f} samples/s"
        else:
            now = self._clock()
            if self._first is None:
                self._first = (now, done)
            since, first_done = now - self._first[0], self._first[1]
            rate = (done - first_done) / since if done > first_done and since > 0 else None
            eta_seconds = (self.total - done) / rate if rate else None
            speed = f"… {self.units}/s" if rate is None else \
                f"{1 / rate:,.1f} s/{self.unit}" if rate < 1 else f"{rate:,.0f} {self.units}/s"  # not "0 steps/s"
        eta = clock_duration(eta_seconds) if eta_seconds is not None else "…"
        postfix = ", ".join([f"ETA {eta}", speed, *(f"{k} {v}" for k, v in fields.items())])
        self._bar.set_postfix_str(postfix, refresh=False)
        self._bar.update(done - self._bar.n)
        return postfix

    def write(self, line: str) -> None:
        self._bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()
