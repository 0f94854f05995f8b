"""Start-up: launching the desktop app (offscreen) to its window painted and to its model ready, vs bare imports.

Run from the repository root:  python -m bench.startup [--launches 5] [--json -]

The app has no timing hook, so a probe (PROBE below) does what main.py does -- `main.main([])` -- after creating
the QApplication that gui.app.run() then reuses, with an event filter that notes the main window's first paint
and a connection to its `model_ready` signal. Times are wall seconds since the launcher's time.time() (argv).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time

from bench._common import REPO, child_env, emit, format_table, log, machine, machine_line, median, run_child

PROBE = '''\
import json, sys, time
launched, mode = float(sys.argv[1]), sys.argv[2]
marks = {"interpreter": time.time() - launched}
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget

app = QApplication(sys.argv[:1])  # gui.app.run() reuses the running instance


class Probe(QObject):
    """Notes the first paint of the (main) window and when its model is ready, then closes it."""

    def __init__(self):
        super().__init__()
        self.window = None

    def mark(self, name):
        marks.setdefault(name, time.time() - launched)
        if "painted" in marks and ("model_ready" in marks or mode == "empty") and self.window is not None:
            self.window.close()  # the app's own shutdown path; the last window closed ends app.exec()

    def eventFilter(self, obj, event):
        kind = event.type()
        if kind == QEvent.Type.Show and self.window is None and isinstance(obj, QMainWindow if mode == "app" else QWidget):
            self.window = obj
            marks["shown"] = time.time() - launched
            if mode == "app":
                if hasattr(obj, "model_ready"):
                    obj.model_ready.connect(lambda: self.mark("model_ready"))
                else:  # no signal: poll the documented is_model_ready()
                    self.poll = QTimer(interval=5, timeout=lambda: obj.is_model_ready() and self.mark("model_ready"))
                    self.poll.start()
        elif kind == QEvent.Type.Paint and self.window is not None and "paint_started" not in marks \\
                and isinstance(obj, QWidget) and obj.window() is self.window:
            marks["paint_started"] = time.time() - launched
            QTimer.singleShot(0, lambda: self.mark("painted"))  # runs once this paint pass has been flushed
        return False


probe = Probe()
app.installEventFilter(probe)
QTimer.singleShot(60_000, app.quit)  # never hang the benchmark
if mode == "app":
    import main
    status = main.main([])
else:  # a bare Qt window: what Qt itself costs to show something
    window = QWidget()
    window.resize(1100, 720)
    window.show()
    status = app.exec()
marks["exited"] = time.time() - launched
print(json.dumps(marks), flush=True)
sys.exit(status)
'''

BASELINES = {  # name -> python -c code; process wall = launch to exit
    "python -c pass": "pass",
    "python -c 'import PySide6.QtWidgets'": "import PySide6.QtWidgets",
    "python -c 'import pyqtgraph'": "import pyqtgraph",
    "python -c 'import gui.main_window'": "import gui.main_window",  # every GUI module (torch comes later)
    "python -c 'import torch'": "import torch",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--launches", type=int, default=5, help="launches of every row, interleaved (median)")
    p.add_argument("--json", help="write the results as JSON to this file; '-' prints JSON to stdout")
    return p.parse_args(argv)


def launch(code: str, *argv: str, env: dict) -> tuple[dict, float]:
    """Start `python -c code argv...`; the probe's JSON marks (if any) and the launch-to-exit wall seconds."""
    launched = time.time()
    run = run_child([sys.executable, "-c", code, f"{launched:.6f}", *argv], env=env, cwd=REPO)
    if run.returncode != 0:
        raise RuntimeError(f"launch failed (exit {run.returncode}):\n{run.stderr[-2000:]}")
    return (run.last_json() if argv else {}), run.wall


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    rows = {"app: python main.py (offscreen)": (PROBE, "app"), "bare Qt window (offscreen)": (PROBE, "empty"),
            **{name: (code, None) for name, code in BASELINES.items()}}
    results: dict[str, list[dict]] = {name: [] for name in rows}
    for i in range(args.launches):
        for name, (code, mode) in rows.items():
            # a fresh user each launch: no remembered window geometry or weights (XDG config) and no user data
            with tempfile.TemporaryDirectory() as home:
                env = child_env(QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=home, DIGIT_RECOGNIZER_HOME=home)
                marks, wall = launch(code, *([mode] if mode else []), env=env)
            marks["process_wall"] = wall
            results[name].append(marks)
            log(f"launch {i + 1}/{args.launches}: {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in marks.items()))

    def cell(name: str, key: str) -> str:
        values = [m[key] for m in results[name] if key in m]
        return f"{median(values):.2f}" if values else "-"

    table_rows = [[name, len(results[name]), cell(name, "interpreter"), cell(name, "painted"),
                   cell(name, "model_ready"), cell(name, "process_wall")] for name in rows]
    summary = {name: {key: median([m[key] for m in marks]) for key in marks[0]} for name, marks in results.items()}
    app = summary["app: python main.py (offscreen)"]
    info = machine()
    report = {"benchmark": "startup", "machine": info, "launches": args.launches,
              "seconds": round(time.perf_counter() - started, 1), "summary": summary, "launch_marks": results,
              "target": {"painted_s": 1.5, "met": app["painted"] <= 1.5}}
    text = (format_table(["launch", "n", "interpreter s", "window painted s", "model ready s", "launch to exit s"],
                         table_rows)
            + f"\n\ntarget window painted <= 1.5 s: median {app['painted']:.2f} s "
            f"({'met' if app['painted'] <= 1.5 else 'NOT met'}); first prediction possible at "
            f"{app.get('model_ready', float('nan')):.2f} s (model_ready)\nseconds since launch, medians of "
            f"{args.launches} interleaved launches; {machine_line(info)}")
    emit(report, text, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
