"""GUI responsiveness, offscreen: GUI-thread heartbeat while training, GUI vs CLI training speed, stroke -> bars time.

Run from the repository root:  python -m bench.gui_responsiveness [--repeats 3] [--strokes 150] [--preset quick]
                                   [--gui-thread one|default] [--data DIR] [--json -]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEventLoop, QPoint, QSettings, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from bench._common import (SHARED_DATA, child_env, emit, format_table, log, machine, machine_line, median,
                           percentile, run_child)

IDLE_SECONDS = 3.0     # heartbeat baseline with nothing running, per repeat
MOVE_INTERVAL = 0.008  # a 125 Hz mouse: one move event every 8 ms while a stroke is drawn
STEP = 0.012           # paper units between move events (~7 px on the pad at the window's default size)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="idle, GUI and CLI runs of the preset, interleaved")
    p.add_argument("--preset", default="quick", help="the training preset both the window and the CLI run")
    p.add_argument("--gui-thread", choices=("one", "default"), default="one",
                   help="torch threads of the GUI thread: one, as gui.app.run sets it (the app), or torch's default "
                        "(the app before the sixth session), for comparison")
    p.add_argument("--strokes", type=int, default=150, help="strokes drawn for the stroke-end latency")
    p.add_argument("--data", default=str(SHARED_DATA), help="MNIST folder (torchvision layout)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the results as JSON to this file; '-' prints JSON to stdout")
    return p.parse_args(argv)


def wait_for(condition, timeout_s: float = 1800.0) -> None:
    """Run the Qt event loop (sleeping between events, as the app does) until condition() holds."""
    loop, poll = QEventLoop(), QTimer()
    poll.timeout.connect(lambda: condition() and loop.quit())
    poll.start(20)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    if not condition():
        loop.exec()
    poll.stop()
    if not condition():
        raise RuntimeError(f"gave up waiting after {timeout_s:.0f} s")


class Heartbeat:
    """A 10 ms precise QTimer in the GUI thread; every tick is a perf_counter stamp."""

    def __init__(self) -> None:
        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))
        self.timer.start(10)

    def stats(self, start: float, end: float) -> dict:
        """Gaps (ms) between ticks from start to end (both ends count): p50/p99/max and the 3 worst with their time."""
        stamps = [start, *(t for t in self.ticks if start < t < end), end]
        gaps = [1e3 * (b - a) for a, b in zip(stamps, stamps[1:])]
        worst = sorted(range(len(gaps)), key=gaps.__getitem__)[-3:][::-1]
        return {"ticks": len(gaps) - 1, "p50_ms": percentile(gaps, 50), "p99_ms": percentile(gaps, 99),
                "max_ms": max(gaps), "over_50_ms": sum(g > 50 for g in gaps),
                "worst": [[round(stamps[i] - start, 2), round(gaps[i], 1)] for i in worst]}  # [s after start, ms]


def gui_train(window, heartbeat: Heartbeat, data: str, preset: str) -> dict:
    """Press the Train button with the preset and the data folder, as a user does; wait for the end."""
    tab, done = window.train_tab, {}
    tab.form.preset.setCurrentText(preset)
    tab.form.set_data_folder(data)
    on_trained, on_ended = (lambda w: done.update(weights=w)), (lambda: done.update(end=time.perf_counter()))
    tab.weights_trained.connect(on_trained)
    tab.training_ended.connect(on_ended)
    clicked = time.perf_counter()
    QTest.mouseClick(tab.train_button, Qt.MouseButton.LeftButton)
    wait_for(lambda: "end" in done)
    tab.weights_trained.disconnect(on_trained)
    tab.training_ended.disconnect(on_ended)
    if "weights" not in done:
        raise RuntimeError(f"GUI training failed: {tab.result.text()}")
    settings, metrics = done["weights"].settings, done["weights"].metrics
    if settings["preset"] != preset:
        raise RuntimeError(f"the form trained {settings['preset']!r}, not the {preset} preset")
    return {"heartbeat": heartbeat.stats(clicked, done["end"]), "wall_s": done["end"] - clicked,
            "train_seconds": metrics["train_seconds"], "test_accuracy": metrics["test_accuracy"],
            "threads": settings["threads"]}


def cli_train(heartbeat: Heartbeat, data: str, home: Path, threads: int | None, preset: str) -> dict:
    """`main.py train --preset PRESET` in a child process while the GUI thread idles (heartbeat on)."""
    cmd = [sys.executable, "main.py", "train", "--preset", preset, "--data", data, "--out", str(home / "cli.pt"),
           "--json", "--quiet", *(["--threads", str(threads)] if threads else [])]
    out: dict = {}
    env = child_env(DIGIT_RECOGNIZER_HOME=str(home))
    worker = threading.Thread(target=lambda: out.update(run=run_child(cmd, env=env)))
    start = time.perf_counter()
    worker.start()
    wait_for(lambda: not worker.is_alive())
    run = out["run"]
    if run.returncode != 0:
        raise RuntimeError(f"CLI training failed (exit {run.returncode}):\n{run.stderr[-2000:]}")
    result = run.last_json()
    return {"heartbeat": heartbeat.stats(start, time.perf_counter()), "wall_s": run.wall,
            "train_seconds": result["train_seconds"], "test_accuracy": result["test_accuracy"], "threads": threads}


def digits(n_strokes: int, seed: int) -> list[tuple[int, list[list[tuple[float, float]]]]]:
    """Pen-drawn digits (core.pen_digits, every hand) at 40-85% of the paper, anywhere; about n_strokes strokes."""
    from core.pen_digits import VARIANTS, jittered_polylines

    rng, out, count = np.random.default_rng(seed), [], 0
    while count < n_strokes:
        variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
        polylines = jittered_polylines(variant, rng)
        lo, hi = np.concatenate(polylines).min(0), np.concatenate(polylines).max(0)
        scale = rng.uniform(0.4, 0.85) / max(hi - lo)
        offset = 0.06 + rng.uniform(0, 1, 2) * (0.88 - (hi - lo) * scale)
        strokes = []
        for line in polylines:
            pts = (line - lo) * scale + offset
            steps = [max(1, int(np.hypot(*(b - a)) / STEP)) for a, b in zip(pts, pts[1:])]
            dense = [pts[0]] + [a + (b - a) * j / k for a, b, k in zip(pts, pts[1:], steps) for j in range(1, k + 1)]
            strokes.append([(float(x), float(y)) for x, y in dense])
        out.append((variant.digit, strokes))
        count += len(strokes)
    return out


class PaintSeen:
    """Notes that the Draw tab's bars repainted (ProbabilityBars.bars_painted) since `seen` was reset."""

    seen = False

    def on_bars_painted(self) -> None:
        self.seen = True


def draw_strokes(window, n: int, seed: int) -> dict:
    """Draw in real time (a move every 8 ms) on the Draw tab; time each move and each stroke end -> bars."""
    app, pad, bars = QApplication.instance(), window.draw_tab.pad, window.draw_tab.bars
    window.tabs.setCurrentWidget(window.draw_tab)
    stamps: list[float] = []
    painted = PaintSeen()

    def on_bars_prediction_shown() -> None:
        stamps.append(time.perf_counter())

    bars.prediction_shown.connect(on_bars_prediction_shown)
    bars.bars_painted.connect(painted.on_bars_painted)  # the ten bars' repaint is what the user sees change
    rect = pad.canvas_rect()

    def at(p) -> QPoint:
        return QPoint(round(rect.x() + p[0] * rect.width()), round(rect.y() + p[1] * rect.height()))

    def spin_until(t: float) -> None:  # the GUI thread does its own work (live predictions, paints) meanwhile
        while time.perf_counter() < t:
            app.processEvents()

    times: dict[str, list[float]] = {"to_set": [], "to_painted": [], "move_handling": [], "move_lag": []}
    right, plan = 0, digits(n + 3, seed)
    for i, (digit, strokes) in enumerate(plan):
        warm = i == 0  # the first digit pays one-time set-up: not counted
        pad.clear()
        for points in strokes:
            due = time.perf_counter()
            QTest.mousePress(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(points[0]))
            for p in points[1:]:
                due += MOVE_INTERVAL
                spin_until(due)
                start = time.perf_counter()
                QTest.mouseMove(pad, at(p))
                end = time.perf_counter()
                if not warm:
                    times["move_handling"].append(1e3 * (end - start))
                    times["move_lag"].append(1e3 * (end - due))  # waiting behind other GUI-thread work + handling
            spin_until(due + MOVE_INTERVAL)
            stamps.clear()
            painted.seen = False
            released = time.perf_counter()
            QTest.mouseRelease(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(points[-1]))
            while not (stamps and painted.seen):
                app.processEvents()
            if not warm:
                times["to_set"].append(1e3 * (stamps[0] - released))
                times["to_painted"].append(1e3 * (time.perf_counter() - released))
        right += not warm and bars.top_digit() == digit
    bars.prediction_shown.disconnect(on_bars_prediction_shown)
    bars.bars_painted.disconnect(painted.on_bars_painted)
    pad.clear()
    out = {k: {"n": len(v), "p50_ms": percentile(v, 50), "p95_ms": percentile(v, 95), "max_ms": max(v)}
           for k, v in times.items()}
    return {**out, "digits": len(plan) - 1, "recognized": right}


def summarize(runs: dict, draw: dict, info: dict, args: argparse.Namespace, seconds: float) -> tuple[dict, str]:
    from core.settings import PRESETS

    chosen = PRESETS[args.preset]
    images = (round(60_000 * (1 - chosen.val_fraction)) + chosen.synthetic_digits) * chosen.epochs
    hb = {k: {key: (max if key == "max_ms" else median)([r["heartbeat"][key] for r in runs[k]])
              for key in ("ticks", "p50_ms", "p99_ms", "max_ms")} for k in runs}  # max: the worst of all repeats
    secs = {k: median([r["train_seconds"] for r in runs[k]]) for k in ("gui", "cli", "cli_same")}
    ratio = {k: median([c["train_seconds"] / g["train_seconds"] for g, c in zip(runs["gui"], runs[k])])
             for k in ("cli", "cli_same")}
    threads = {"gui": runs["gui"][0]["threads"], "cli": info["torch_threads"]}
    met = {"heartbeat": hb["gui"]["p99_ms"] <= 50 and hb["gui"]["max_ms"] <= 150, "throughput": ratio["cli"] >= 0.85,
           "stroke": draw["to_painted"]["p95_ms"] <= 50}
    yes = {True: "yes", False: "NO"}

    def trio(d: dict, keys: tuple = ("p50_ms", "p95_ms", "max_ms"), places: int = 2) -> str:
        return " / ".join(f"{d[k]:.{places}f}" for k in keys) + " ms"

    def gaps(k: str) -> str:
        return trio(hb[k], ("p50_ms", "p99_ms", "max_ms"), 1) + f" ({hb[k]['ticks']:.0f} ticks)"

    def rate(k: str) -> str:
        return f"{images / secs[k]:,.0f} ({secs[k]:.1f} s)"

    g, c = threads["gui"], threads["cli"]
    rows = [
        ["heartbeat gap p50 / p99 / max, idle (baseline)", gaps("idle"), "-", "-"],
        [f"heartbeat gap, Train tab training {args.preset}", gaps("gui"), "p99 <= 50 ms, max <= 150 ms",
         yes[met["heartbeat"]]],
        [f"heartbeat gap, CLI training {args.preset} in a child", gaps("cli"), "-", "-"],
        [f"training images/s: GUI, {g} torch thread(s)", rate("gui"), "-", "-"],
        [f"training images/s: CLI, {c} torch thread(s) (its default)", rate("cli"), "-", "-"],
        [f"training images/s: CLI --threads {g}", rate("cli_same"), "-", "-"],
        ["GUI / CLI throughput (CLI at its default)", f"{ratio['cli']:.2f}", ">= 0.85", yes[met["throughput"]]],
        [f"GUI / CLI throughput (CLI --threads {g})", f"{ratio['cli_same']:.2f}", "-", "-"],
        ["stroke end -> bars set, p50 / p95 / max", trio(draw["to_set"]), "-", "-"],
        ["stroke end -> bars painted, p50 / p95 / max", trio(draw["to_painted"]), "p95 <= 50 ms", yes[met["stroke"]]],
        ["mouseMove handling, p50 / p95 / max", trio(draw["move_handling"]), "-", "-"],
        ["pen lag (move due -> handled), p50 / p95 / max", trio(draw["move_lag"]), "-", "-"],
    ]
    report = {"benchmark": "gui_responsiveness", "machine": info, "repeats": args.repeats, "seconds": round(seconds, 1),
              "preset": args.preset, "gui_thread": args.gui_thread,
              "heartbeat": hb, "train_images": images, "train_seconds": secs, "gui_over_cli": ratio,
              "threads": threads, "strokes": draw, "met": met, "runs": runs}
    text = (format_table(["metric", "value", "target", "met"], rows, "llll")
            + f"\n\n{args.repeats} repeat(s): medians, max = the worst of all; {draw['to_set']['n']} strokes "
            f"({draw['recognized']}/{draw['digits']} digits read right); GUI thread on {args.gui_thread} torch "
            f"thread(s); {seconds:.0f} s in all\n{machine_line(info)}")
    return report, text


def repeats(window, args: argparse.Namespace, home: Path) -> dict[str, list[dict]]:
    """Each repeat: heartbeat idle, while the GUI trains, while the CLI trains (its default and the GUI's threads)."""
    window.tabs.setCurrentWidget(window.train_tab)  # where the user is while training runs
    settled = time.perf_counter() + 0.5
    wait_for(lambda: time.perf_counter() >= settled)  # the tab's first paint is not idle time
    runs: dict[str, list[dict]] = {"idle": [], "gui": [], "cli": [], "cli_same": []}
    heartbeat = Heartbeat()
    for r in range(args.repeats):
        start = time.perf_counter()
        wait_for(lambda: time.perf_counter() >= start + IDLE_SECONDS)
        runs["idle"].append({"heartbeat": heartbeat.stats(start, start + IDLE_SECONDS)})
        runs["gui"].append(g := gui_train(window, heartbeat, args.data, args.preset))
        runs["cli"].append(c := cli_train(heartbeat, args.data, home, None, args.preset))
        runs["cli_same"].append(c1 := cli_train(heartbeat, args.data, home, g["threads"], args.preset))
        log(f"repeat {r + 1}/{args.repeats}: train_seconds GUI {g['train_seconds']:.1f}, CLI {c['train_seconds']:.1f}, "
            f"CLI same threads {c1['train_seconds']:.1f}; GUI heartbeat worst gaps [s, ms] {g['heartbeat']['worst']}")
    heartbeat.timer.stop()
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory(prefix="gui-bench-") as tmp:
        home = Path(tmp)
        os.environ["DIGIT_RECOGNIZER_HOME"] = str(home)  # private weights folder; QSettings below is private too
        app = QApplication.instance() or QApplication(sys.argv[:1])
        from gui.background import one_torch_thread_for_the_gui
        from gui.main_window import MainWindow

        info = machine()  # torch's default threads (the CLI's), before the GUI thread or a training sets them
        if args.gui_thread == "one":
            one_torch_thread_for_the_gui()  # as gui.app.run does before the window
        window = MainWindow(QSettings(str(home / "settings.ini"), QSettings.Format.IniFormat))
        window.show()
        wait_for(lambda: window.is_model_ready() and window.train_tab.train_button.isEnabled(), 120)
        log(f"drawing {args.strokes} strokes, then {args.repeats} repeat(s) of idle, GUI and CLI training ...")
        draw = draw_strokes(window, args.strokes, args.seed)
        runs = repeats(window, args, home)
        window.close()
        app.processEvents()
    report, text = summarize(runs, draw, info, args, time.perf_counter() - started)
    emit(report, text, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
