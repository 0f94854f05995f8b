"""Insight tab in the real window, offscreen: stroke end -> every layer's pictures on screen, per architecture.

Run from the repository root:  python -m bench.insight_gui_latency [--strokes 40] [--json -]

For each architecture (the shipped digitnet weights; fastnet and the tutorial's net freshly built, as timing does not
depend on training) it draws digits with mouse events on the pad while the Insight tab is shown and measures, for
every stroke, the time from the mouse release to the end of the slot that puts the explanation on screen (the worker's
computation, waiting for one already running, and building the pictures). A 10 ms heartbeat timer in the GUI thread
measures how long drawing could have waited (the longest gaps between ticks), on the Insight tab and, as the
baseline in the same run, on the Draw tab. Target: stroke end -> pictures within 100 ms on 2 cores.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from bench._common import emit, format_table, log, machine, machine_line, median, percentile

TARGET_MS = 100.0
STEP = 0.012  # paper units between mouse moves (~7 px at the window's default size)
MOVE_INTERVAL = 0.008  # 125 Hz mouse
STROKES = [  # a 7, a 1, a 0, a 4 in paper coordinates
    [(0.28, 0.2), (0.72, 0.2), (0.45, 0.82)],
    [(0.52, 0.15), (0.48, 0.85)],
    [(0.5 + 0.2 * math.sin(t / 24 * 2 * math.pi), 0.5 - 0.32 * math.cos(t / 24 * 2 * math.pi)) for t in range(25)],
    [(0.6, 0.15), (0.25, 0.6), (0.75, 0.6)],
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--strokes", type=int, default=40, help="strokes drawn per architecture")
    p.add_argument("--json", help="write the results as JSON to this file; '-' prints JSON to stdout")
    return p.parse_args(argv)


def dense(points):
    out = [points[0]]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        n = max(1, int(math.hypot(x1 - x0, y1 - y0) / STEP))
        out += [(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n) for i in range(1, n + 1)]
    return out


def pump(seconds: float) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(max(0, int(seconds * 1000)), loop.quit)
    loop.exec()


def draw_stroke(pad, points) -> float:
    """Press, move at 125 Hz with the event loop running between moves, release; returns the release time."""
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    rect = pad.canvas_rect()

    def at(x, y):
        return QPoint(round(rect.x() + x * rect.width()), round(rect.y() + y * rect.height()))

    path = dense(points)
    QTest.mousePress(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(*path[0]))
    for p in path[1:]:
        QTest.mouseMove(pad, at(*p))
        pump(MOVE_INTERVAL)
    released = time.perf_counter()
    QTest.mouseRelease(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(*path[-1]))
    return released


class Heartbeat:
    """A 10 ms precise QTimer in the GUI thread; gaps between ticks are how long the GUI could not react."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def gaps_ms(self) -> list[float]:
        return [1000 * (b - a) for a, b in zip(self.ticks, self.ticks[1:])]


def measure(window, tab_widget, strokes: int, insight: bool) -> dict:
    pad = window.draw_tab.pad
    window.tabs.setCurrentWidget(tab_widget)
    shown: list[float] = []
    tab = window.insight_tab
    handler = (lambda _e: shown.append(time.perf_counter()))
    if insight:
        tab.explanation_shown.connect(handler)
    heartbeat = Heartbeat()
    heartbeat.timer.start(10)
    latencies = []
    for i in range(strokes):
        pad.clear()
        pump(0.05)
        if insight:
            while tab.is_busy():
                pump(0.005)
        shown.clear()
        released = draw_stroke(pad, STROKES[i % len(STROKES)])
        if insight:
            deadline = time.perf_counter() + 5
            while (not shown or shown[-1] < released or tab.is_busy()) and time.perf_counter() < deadline:
                pump(0.001)
            after = [t for t in shown if t >= released]
            latencies.append(1000 * (after[-1] - released) if after else float("nan"))
        pump(0.05)
    heartbeat.timer.stop()
    if insight:
        tab.explanation_shown.disconnect(handler)
    gaps = heartbeat.gaps_ms()
    return {"latency_ms": latencies, "gap_p99_ms": percentile(gaps, 99), "gap_max_ms": max(gaps, default=0.0)}


def weights_files(folder: Path) -> dict[str, Path | None]:
    import torch

    from core.models import ARCHITECTURES, arch_args, build_model
    from core.weights import save_weights

    files: dict[str, Path | None] = {"digitnet (shipped weights)": None}
    for arch in ("fastnet", "tutorial"):
        torch.manual_seed(0)
        files[arch] = save_weights(folder / f"{arch}.pt", build_model(arch), arch, arch_args(arch),
                                   ARCHITECTURES[arch].normalization)
    return files


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    scratch = Path(tempfile.mkdtemp(prefix="insight-bench-"))
    os.environ["DIGIT_RECOGNIZER_HOME"] = str(scratch)
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    results = []
    for label, path in weights_files(scratch).items():
        settings = QSettings(str(scratch / f"{len(results)}.ini"), QSettings.Format.IniFormat)
        settings.setValue("weights/last", str(path) if path else "")
        window = MainWindow(settings)
        window.resize(1100, 720)
        window.show()
        while not window.is_model_ready():
            pump(0.02)
        log(f"{label}: drawing {args.strokes} strokes on the Draw tab, then on the Insight tab…")
        baseline = measure(window, window.draw_tab, args.strokes, insight=False)
        insight = measure(window, window.insight_tab, args.strokes, insight=True)
        window.close()
        lat = [x for x in insight["latency_ms"] if x == x]
        results.append({"model": label, "strokes": args.strokes, "median_ms": round(median(lat), 1),
                        "p95_ms": round(percentile(lat, 95), 1), "max_ms": round(max(lat), 1),
                        "missed": len(insight["latency_ms"]) - len(lat),
                        "gui_gap_p99_ms": round(insight["gap_p99_ms"], 1),
                        "gui_gap_max_ms": round(insight["gap_max_ms"], 1),
                        "baseline_gap_p99_ms": round(baseline["gap_p99_ms"], 1),
                        "baseline_gap_max_ms": round(baseline["gap_max_ms"], 1)})
    app.processEvents()
    info = machine()
    rows = [[r["model"], r["median_ms"], r["p95_ms"], r["max_ms"], "yes" if r["p95_ms"] <= TARGET_MS else "NO",
             f"{r['gui_gap_p99_ms']} / {r['gui_gap_max_ms']}", f"{r['baseline_gap_p99_ms']} / {r['baseline_gap_max_ms']}"]
            for r in results]
    text = "\n".join([machine_line(info), "",
                      format_table(["model", "stroke end -> pictures, median ms", "p95 ms", "max ms",
                                    f"p95 <= {TARGET_MS:.0f} ms", "GUI stall p99 / max ms (Insight)",
                                    "GUI stall p99 / max ms (Draw tab, baseline)"], rows)])
    emit({"machine": info, "target_ms": TARGET_MS, "results": results}, text, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
