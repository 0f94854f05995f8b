"""Shared helpers for the speed benchmarks: machine info, percentiles, child processes with peak RSS, table + JSON."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def machine(threads: int | None = None) -> dict:
    """Cores, load, Python and torch versions and torch's thread count (as a child would get it)."""
    import torch

    return {
        "cpu_count": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
        "load_average_1m": round(os.getloadavg()[0], 2), "platform": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__,
        "torch_threads": threads or torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }


def machine_line(info: dict) -> str:
    return (f"machine: {info['cores_usable']} cores, load {info['load_average_1m']} (1 min), torch {info['torch']}, "
            f"{info['torch_threads']} torch threads, Python {info['python']}"
            + (f", OMP_WAIT_POLICY={info['omp_wait_policy']}" if info.get("omp_wait_policy") else ""))


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100] (numpy's default method)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return percentile(values, 50)


@dataclass
class ChildRun:
    """One finished child process: exit status, wall seconds, peak RSS (bytes), CPU seconds and its output."""

    returncode: int
    wall: float
    max_rss: int
    cpu: float
    stdout: str
    stderr: str

    def last_json(self) -> dict:
        """The last stdout line that parses as a JSON object (children print their result there)."""
        for line in reversed(self.stdout.strip().splitlines()):
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    continue
        raise RuntimeError(f"child printed no JSON result (exit {self.returncode}):\n{self.stderr[-2000:]}")


def run_child(args: list[str], env: dict | None = None, cwd: Path = REPO) -> ChildRun:
    """Run a command to completion; os.wait4 gives this child's own peak RSS and CPU time (not its siblings')."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
        out.seek(0)
        err.seek(0)
        return ChildRun(proc.returncode, wall, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime,
                        out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def child_env(**extra: str | None) -> dict:
    """This environment plus `extra` (None removes a variable); children import bench/ and core/ from the repo."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def format_table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """A Markdown table (pastes into bench/README.md); `align` has one 'l' or 'r' per column (default: l then r)."""
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.ljust(w) if a == "l" else v.rjust(w)
                                 for v, w, a in zip(values, widths, align)) + " |"

    rule = "| " + " | ".join("-" * (w - 1) + (":" if a == "r" else "-") for w, a in zip(widths, align)) + " |"
    return "\n".join([line(headers), rule, *(line(r) for r in cells)])


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(report: dict, text: str, json_arg: str | None) -> None:
    """Print the table (to stderr with --json -, so stdout stays pure JSON) and write the JSON where asked."""
    print(text, file=sys.stderr if json_arg == "-" else sys.stdout, flush=True)
    if json_arg == "-":
        print(json.dumps(report, indent=2))
    elif json_arg:
        Path(json_arg).write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {json_arg}")
