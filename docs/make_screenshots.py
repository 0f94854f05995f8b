"""Regenerates the tabs' screenshots in docs/ offscreen: `python docs/make_screenshots.py`.

Options: --dark (dark palette), --scale 2 (200% scaling), --weights PATH, --out DIR.

The Draw tab shows a digit drawn with mouse events and its bars (shipped default weights); the Insight tab the same
drawing's feature maps and attribution; the Evaluate tab the test-set results and the map (real MNIST); the Runs tab
three short real runs made with `main.py train`, overlaid (`--only runs` makes just that one); the Train tab
is captured mid-run while the quick preset trains on real MNIST (../shared/data or --data). Settings and trained weights go to a
temporary folder, never the user's. If text renders as boxes, install a font (Debian/Ubuntu: fonts-dejavu-core).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TWO = [  # a handwritten 2 in paper coordinates: top arc, diagonal, base
    [(0.32 + 0.18 * (1 - math.cos(a)), 0.36 - 0.16 * math.sin(a)) for a in [i * math.pi / 16 for i in range(17)]]
    + [(0.6, 0.5), (0.45, 0.64), (0.3, 0.8), (0.72, 0.79)]
]


def shown_path(path: Path) -> str:
    """The data folder as the form shows it: relative to the working folder, so no screenshot shows this machine's
    own paths."""
    return os.path.relpath(path)


def wait_until(condition, seconds: float) -> None:
    """Run the event loop until condition() holds (QEventLoop, not QTest.qWait: qWait keeps the GIL from the worker)."""
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + seconds
    loop = QEventLoop()
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {seconds:.0f} s waiting for the app")
        QTimer.singleShot(20, loop.quit)
        loop.exec()


def draw(pad, strokes) -> None:
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    rect = pad.canvas_rect()

    def at(x, y):
        return QPoint(round(rect.x() + x * rect.width()), round(rect.y() + y * rect.height()))

    for stroke in strokes:
        dense = [stroke[0]]
        for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
            n = max(1, int(math.hypot(x1 - x0, y1 - y0) / 0.01))
            dense += [(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n) for i in range(1, n + 1)]
        QTest.mousePress(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(*dense[0]))
        for point in dense[1:]:
            QTest.mouseMove(pad, at(*point))
        QTest.mouseRelease(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(*dense[-1]))


def dark_palette():
    from PySide6.QtGui import QColor, QPalette

    palette = QPalette()
    for role, color in {QPalette.ColorRole.Window: "#2b2b2b", QPalette.ColorRole.WindowText: "#e6e6e6",
                        QPalette.ColorRole.Base: "#1e1e1e", QPalette.ColorRole.AlternateBase: "#333333",
                        QPalette.ColorRole.Text: "#e6e6e6", QPalette.ColorRole.Button: "#3a3a3a",
                        QPalette.ColorRole.ButtonText: "#e6e6e6", QPalette.ColorRole.Highlight: "#3d8ee0",
                        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.Mid: "#555555",
                        QPalette.ColorRole.ToolTipBase: "#3a3a3a", QPalette.ColorRole.ToolTipText: "#e6e6e6"}.items():
        palette.setColor(role, QColor(color))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor("#8a8a8a"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#8a8a8a"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#8a8a8a"))
    return palette


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the PNGs (default: docs/)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="real MNIST folder")
    parser.add_argument("--weights", type=Path, help="weights for the Draw tab (default: the shipped ones)")
    parser.add_argument("--batches", type=int, default=620, help="capture the Train tab after this many batches")
    parser.add_argument("--dark", action="store_true", help="use a dark palette (to check readability)")
    parser.add_argument("--scale", type=float, default=1.0, help="device pixel ratio, e.g. 2 for 200%% scaling")
    parser.add_argument("--only", choices=["runs"], help="make only this screenshot (runs: docs/runs_view.png)")
    args = parser.parse_args()

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["QT_SCALE_FACTOR"] = str(args.scale)
    scratch = Path(tempfile.mkdtemp(prefix="screenshots-"))
    os.environ["DIGIT_RECOGNIZER_HOME"] = str(scratch)  # trained weights land here, not in the user's folder

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from core import paths
    from gui.main_window import MainWindow

    if args.weights is None and not paths.DEFAULT_WEIGHTS.is_file():
        print(f"error: {paths.DEFAULT_WEIGHTS} is missing; train it first (python main.py train --preset best)")
        return 1
    app = QApplication([sys.argv[0]])
    if args.dark:
        app.setStyle("Fusion")
        app.setPalette(dark_palette())
    settings = QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("weights/last", str(args.weights.resolve()) if args.weights else "")
    window = MainWindow(settings)
    window.resize(1100, 720)
    window.show()
    try:
        return capture(window, args)
    finally:
        window.close()  # stops a run still going and joins its thread


def capture(window, args) -> int:
    wait_until(window.is_model_ready, 60)
    if args.only == "runs":
        return capture_runs(window, args)
    draw(window.draw_tab.pad, TWO)
    wait_until(lambda: window.draw_tab.bars.probabilities() is not None, 10)
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()  # the status bar lays out the weights' name it was just given (else cut short)
    args.out.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(args.out / "draw_tab.png"))
    print(f"draw tab: predicted {window.draw_tab.bars.top_digit()} -> {args.out / 'draw_tab.png'}")
    capture_insight(window, args)
    if capture_evaluate(window, args) != 0:
        return 1
    capture_my_digits(window, args)
    capture_photo(window, args)
    if capture_runs(window, args) != 0:
        return 1

    tab = window.train_tab
    window.tabs.setCurrentWidget(tab)
    tab.form.set_settings(replace(tab.form.settings(), epochs=3, data_dir=shown_path(args.data)))
    tab.train_button.click()
    wait_until(lambda: tab.progress.value() >= args.batches or not tab.is_training(), 600)
    if not tab.chart.point_count():
        print(f"error: training did not start: {tab.result.text()}")
        return 1
    window.grab().save(str(args.out / "train_tab.png"))
    print(f"train tab: {tab.progress.value()} of {tab.progress.maximum()} batches -> {args.out / 'train_tab.png'}")
    return 0

def capture_runs(window, args) -> int:
    """Three short runs on real MNIST from the command line (as a user would start them), then the Runs tab with
    all three selected: their curves overlaid against samples seen."""
    from core.cli import main as cli

    recipes = [["--preset", "tutorial"], ["--preset", "quick", "--arch", "tutorial"], ["--preset", "quick"]]
    for recipe in recipes:
        if cli(["train", *recipe, "--data", str(args.data), "--quiet", "--json"]) != 0:
            print(f"error: `main.py train {' '.join(recipe)}` failed")
            return 1
    view = window.runs_view
    window.tabs.setCurrentWidget(view)  # shown: the runs folder is read
    view.select_ids([run.id for run in view.runs()[:3]])
    shown = time.monotonic()
    wait_until(lambda: time.monotonic() - shown > 0.5, 5)  # the chart's axes are laid out
    args.out.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(args.out / "runs_view.png"))
    print(f"runs tab: {len(view.chart.legend_names())} runs overlaid -> {args.out / 'runs_view.png'}")
    return 0


def capture_photo(window, args) -> None:
    """A phone-photo-like picture (a 4 in blue pen on ruled paper, shadow, a scribble) opened on the Draw tab: the
    region read is outlined on the photo."""
    import numpy as np
    from PIL import Image

    from bench.photo_sets import Conditions, render, stroke_mask

    rng = np.random.default_rng(4)
    mask = stroke_mask(4, rng, heldout=False)
    rows, cols = np.nonzero(mask > 0.05)
    look = Conditions(size=(960, 720), digit_share=0.4, offset=(0.05, 0.05), lines="ruled", ink="blue",
                      lighting="shadow", light_depth=0.3, tilt_deg=6, specks=25, clutter=True, jpeg_quality=70)
    path = Path(os.environ["DIGIT_RECOGNIZER_HOME"]) / "notebook photo.jpg"
    Image.fromarray(render(mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1], look, rng)).save(path)
    window.open_image_file(path)
    wait_until(lambda: window.draw_tab.bars.probabilities() is not None, 10)
    shown = time.monotonic()
    wait_until(lambda: time.monotonic() - shown > 0.5, 5)  # the photo view and its tools are laid out and painted
    window.grab().save(str(args.out / "photo.png"))
    print(f"photo: predicted {window.draw_tab.bars.top_digit()} -> {args.out / 'photo.png'}")


def capture_insight(window, args) -> None:
    tab = window.insight_tab
    window.tabs.setCurrentWidget(tab)
    wait_until(lambda: tab.explanation() is not None and not tab.is_busy(), 30)
    grid = tab.pipeline.grids()[0]
    tab.on_pipeline_map_clicked(0, min(5, grid.tile_count() - 1))  # one map enlarged, as a click does
    wait_until(lambda: True, 0.2)
    window.grab().save(str(args.out / "insight_tab.png"))
    print(f"insight tab: {len(tab.pipeline.grids())} layers -> {args.out / 'insight_tab.png'}")


def capture_evaluate(window, args) -> int:
    import numpy as np

    tab = window.evaluate_tab
    window.train_tab.form.set_data_folder(shown_path(args.data))
    window.tabs.setCurrentWidget(tab)
    tab.start_evaluation()
    wait_until(lambda: not tab.is_busy(), 300)
    report = tab.report()
    if report is None:
        print(f"error: evaluation did not finish: {tab.status.text()}")
        return 1
    confusion = np.array(report.evaluation.confusion)
    np.fill_diagonal(confusion, 0)
    true, predicted = np.unravel_index(np.argmax(confusion), confusion.shape)
    tab.matrix.select(int(true), int(predicted))
    tab.on_matrix_cell_clicked(int(true), int(predicted))
    window.grab().save(str(args.out / "evaluate_tab.png"))
    print(f"evaluate tab: accuracy {report.evaluation.accuracy:.4f} -> {args.out / 'evaluate_tab.png'}")
    tab.pages.setCurrentIndex(2)
    wait_until(lambda: tab.map_choice.count() > 1, 120)  # t-SNE, computed in the background
    tab.map_choice.setCurrentIndex(1)
    window.draw_tab.pad.clear()
    draw(window.draw_tab.pad, TWO)
    wait_until(lambda: tab.map.marker_position() is not None, 10)
    window.grab().save(str(args.out / "evaluate_map.png"))
    print(f"evaluate map: t-SNE with the drawing placed -> {args.out / 'evaluate_map.png'}")
    window.draw_tab.pad.clear()
    return 0


def pen_strokes(digit: int, k: int) -> list:
    """A digit in one of the pen generator's hands, as strokes in paper coordinates filling ~70% of the pad."""
    import numpy as np

    from core.pen_digits import VARIANTS, jittered_polylines

    hands = [v for v in VARIANTS if v.digit == digit]
    polylines = jittered_polylines(hands[k % len(hands)], np.random.default_rng([digit, k]))
    points = np.concatenate(polylines)
    lo, hi = points.min(0), points.max(0)
    scale = 0.7 / max(hi - lo)
    offset = (1 - (hi - lo) * scale) / 2
    return [[(float(x), float(y)) for x, y in (line - lo) * scale + offset] for line in polylines]


def capture_my_digits(window, args) -> None:
    """Saves 16 drawn samples as a user does (two of them labelled wrongly on purpose) and shows My digits."""
    tab = window.draw_tab
    window.tabs.setCurrentWidget(tab)
    saved = [(d, d, k) for k in range(2) for d in range(10) if (d + k) % 3 != 2][:14] + [(1, 4, 0), (7, 1, 1)]
    for drawn, label, k in saved:  # (what is drawn, the label it is saved as, which hand)
        tab.pad.clear()
        draw(tab.pad, pen_strokes(drawn, k))
        tab.save_sample(label)
    library = window.my_digits_tab.library
    window.tabs.setCurrentWidget(window.my_digits_tab)
    wait_until(lambda: not library.is_busy(), 60)
    wait_until(lambda: True, 0.3)
    window.grab().save(str(args.out / "my_digits_tab.png"))
    print(f"my digits: {len(library.samples())} samples -> {args.out / 'my_digits_tab.png'}")


if __name__ == "__main__":
    sys.exit(main())
