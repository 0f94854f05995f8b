"""The command line's MNIST step before train/evaluate: find it, or download it with a progress bar per file."""
from __future__ import annotations

import sys
from pathlib import Path


def locate_with_progress(data_dir: str | Path | None, download: bool = True, quiet: bool = False) -> None:
    """core.data.locate with a tqdm bar on stderr for each file downloaded (none when the files are there or
    `quiet`); raises core.data.DataError with the one-line offline message."""
    from tqdm import tqdm

    from core.data import locate

    bars: dict[str, tqdm] = {}

    def on_progress(done: int, total: int, name: str) -> None:
        bar = bars.get(name)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[name] = tqdm(total=total or None, desc=f"downloading {name}", unit="B", unit_scale=True,
                                    unit_divisor=1000, file=sys.stderr, disable=quiet, dynamic_ncols=True)
        bar.update(done - bar.n)

    try:
        locate(data_dir, download, progress=on_progress)
    finally:
        for bar in bars.values():
            bar.close()
