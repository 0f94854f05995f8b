"""The Insight tab: what every layer makes of the drawing, which pixels decided the answer, filters and layer shapes.

It borrows the Draw tab's pad (the user draws here too) and recomputes in a worker thread whenever the drawing
changes, always for the latest drawing: a new request while one runs waits and replaces any older waiting one, so
drawing never waits for the network.
"""
from __future__ import annotations

import copy
from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton,
                               QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget)

from gui.background import BackgroundTask
from gui.insight_panels import LayerTable, PipelineRow, ZoomView, pixmap, render_layers
from gui.map_grid import MapGrid

if TYPE_CHECKING:
    from core.insight import Explanation
    from core.predict import Predictor
    from gui.drawing_pad import DrawingPad

ATTRIBUTION_SIDE = 168  # 6x the 28x28 input
# Explanations also follow a stroke while it is drawn, but only for models explained faster than this: a slower one
# (DigitNet, ~40 ms) started mid-stroke would make the stroke's end wait for it, and that end is what must show
# within 100 ms (bench/insight_gui_latency.py).
LIVE_BUDGET_MS = 25.0


def _warm_up(predictor: Predictor) -> float:
    """Explain a drawn bar twice (worker thread): the first pays torch's one-time set-up for these shapes, so the
    user's first drawing is explained at full speed; the second's time in ms is what one explanation costs."""
    import time

    import numpy as np

    from core.insight import explain

    bar = np.zeros((28, 28), np.uint8)
    bar[6:22, 13:15] = 255
    explain(predictor, bar)
    started = time.perf_counter()
    explain(predictor, bar)
    return 1000 * (time.perf_counter() - started)


class WhyPanel(QWidget):
    """The attribution heatmap over the input, for the answer or any digit the user picks ("why not 7?")."""

    target_picked = Signal(object)  # int, or None for "the network's answer"
    method_picked = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.picture = QLabel()
        self.picture.setFixedSize(ATTRIBUTION_SIDE, ATTRIBUTION_SIDE)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.method = QComboBox()
        self.method.setToolTip("How the evidence is measured (each is a standard attribution method)")
        self.buttons = QButtonGroup(self)
        self.buttons.setExclusive(True)
        picker = QGridLayout()
        picker.setSpacing(2)
        for digit in range(10):
            button = QPushButton(str(digit))
            button.setObjectName(f"why_{digit}")
            button.setCheckable(True)
            button.setFixedWidth(self.fontMetrics().horizontalAdvance("00") * 2)
            button.setToolTip(f"Show the evidence for and against {digit}")
            self.buttons.addButton(button, digit)
            picker.addWidget(button, digit // 5, digit % 5)
        self.answer_button = QPushButton("The answer")
        self.answer_button.setToolTip("Explain the digit the network chose")
        picker.addWidget(self.answer_button, 2, 0, 1, 5)
        side = QVBoxLayout()
        side.addWidget(QLabel("Explain the digit:"))
        side.addLayout(picker)
        side.addWidget(self.method)
        side.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.picture)
        top.addLayout(side)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.text)
        self.buttons.idClicked.connect(lambda digit: self.target_picked.emit(digit))
        self.answer_button.clicked.connect(lambda: self.target_picked.emit(None))
        self.method.currentIndexChanged.connect(lambda _: self.method_picked.emit(self.method.currentData()))

    def set_methods(self, methods: dict[str, str]) -> None:
        if self.method.count():
            return
        for key, name in methods.items():
            self.method.addItem(name, key)

    def show_explanation(self, e: "Explanation") -> None:
        from core.insight_render import NEGATIVE, POSITIVE, attribution_rgb

        self.picture.setPixmap(pixmap(attribution_rgb(e.image28, e.attribution), ATTRIBUTION_SIDE))
        self.buttons.button(e.target).setChecked(True)
        p = e.probabilities[e.target]
        if e.target == e.digit:
            lead = f"<b>Why {e.digit}?</b> ({100 * p:.1f}%)"
        else:
            lead = (f"<b>Why not {e.target}?</b> The network says {e.digit}; {e.target} gets {100 * p:.1f}%.")
        orange, blue = ("#{:02x}{:02x}{:02x}".format(*rgb) for rgb in (POSITIVE, NEGATIVE))  # the picture's own
        self.text.setText(f"{lead} <span style='color:{orange}'><b>Orange</b></span>: pixels that made it look more "
                          f"like a {e.target}. <span style='color:{blue}'><b>Blue</b></span>: pixels that spoke "
                          f"against {e.target}. Grey: your drawing as the network sees it.")

    def clear(self, message: str) -> None:
        self.picture.clear()
        checked = self.buttons.checkedButton()
        if checked is not None:
            self.buttons.setExclusive(False)
            checked.setChecked(False)
            self.buttons.setExclusive(True)
        self.text.setText(message)


class InsightTab(QWidget):
    """Set the model with set_predictor(); it follows the pad given at construction."""

    explanation_shown = Signal(object)  # core.insight.Explanation, once its pictures are on screen

    def __init__(self, pad: DrawingPad, parent: QWidget | None = None):
        super().__init__(parent)
        self._pad = pad
        self._predictor: Predictor | None = None
        self._target: int | None = None      # None: explain the network's answer
        self._method = "integrated_gradients"
        self._pending = False                 # the drawing changed while a computation ran
        self._stale = True                    # changed while the tab was hidden: recompute when shown
        self._explanation: Explanation | None = None
        self._compute_ms = float("inf")       # how long the last explanation took (worker thread); inf: not known
        self._task = BackgroundTask("insight", threads=1)  # one thread: never slows a training on the other core
        self._task.succeeded.connect(self.on_task_succeeded)
        self._task.failed.connect(self.on_task_failed)
        self._task.finished.connect(self.on_task_finished)

        self.pipeline = PipelineRow()
        self.zoom = ZoomView()
        self.why = WhyPanel()
        self.filters = MapGrid()
        self.filters_note = QLabel()
        self.filters_note.setWordWrap(True)
        self.layers = LayerTable()
        self.status = QLabel("Draw a digit to see what the network makes of it.")
        self.status.setWordWrap(True)

        scroll = QScrollArea()
        scroll.setWidget(self.pipeline)
        scroll.setWidgetResizable(True)
        pipeline_box = QGroupBox("What each layer makes of it (bright = strong response; hover or click a map)")
        QVBoxLayout(pipeline_box).addWidget(scroll)
        why_box = QGroupBox("Why this answer")
        QVBoxLayout(why_box).addWidget(self.why)
        filters_page = QWidget()
        filters_layout = QVBoxLayout(filters_page)
        filters_layout.addWidget(self.filters, 0, Qt.AlignmentFlag.AlignLeft)
        filters_layout.addWidget(self.filters_note)
        filters_layout.addStretch(1)
        filters_scroll = QScrollArea()
        filters_scroll.setWidget(filters_page)
        filters_scroll.setWidgetResizable(True)
        self.extras = QTabWidget()  # one box for three views keeps the tab usable in an 800-px-wide window
        self.extras.addTab(self.zoom, "Feature map")
        self.extras.setTabToolTip(0, "A feature map you clicked, enlarged: bright where its pattern is")
        self.extras.addTab(filters_scroll, "Filters")
        self.extras.addTab(self.layers, "Layers")
        bottom = QWidget()
        bottom_row = QHBoxLayout(bottom)
        bottom_row.setContentsMargins(0, 0, 0, 0)
        bottom_row.addWidget(why_box, 3)
        bottom_row.addWidget(self.extras, 2)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(pipeline_box)
        right.addWidget(bottom)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        right_column = QVBoxLayout()
        right_column.addWidget(self.status)
        right_column.addWidget(right, 1)
        self._pad_home = QVBoxLayout()
        layout = QHBoxLayout(self)
        layout.addLayout(self._pad_home, 2)
        layout.addLayout(right_column, 5)

        pad.drawing_changed.connect(self.on_pad_drawing_changed)
        pad.stroke_moved.connect(self.on_pad_stroke_moved)
        self.pipeline.map_clicked.connect(self.on_pipeline_map_clicked)
        self.why.target_picked.connect(self.on_why_target_picked)
        self.why.method_picked.connect(self.on_why_method_picked)

    def dock_pad_panel(self, panel: QWidget) -> None:
        """Show the Draw tab's pad here (MainWindow moves it when this tab becomes current)."""
        self._pad_home.addWidget(panel, 1)

    # ------------------------------------------------------------ model
    def set_predictor(self, predictor: Predictor | None) -> None:
        """Explain with this model from now on. Explanations use a private copy of it: they run in a worker thread
        while the Draw tab predicts with the original, and a model must not be shared across threads mid-forward."""
        from core.predict import Predictor as PredictorClass

        if predictor is None:
            self._predictor = None
            self._show_nothing("No model loaded.")
            return
        weights = predictor.weights
        self._compute_ms = float("inf")  # measured again by the warm-up below
        self._predictor = PredictorClass(replace(weights, model=copy.deepcopy(weights.model)))
        self._show_filters()
        self.layers.set_model(self._predictor.model, weights.arch)
        from core.insight import ATTRIBUTION_METHODS

        self.why.set_methods(ATTRIBUTION_METHODS)
        if not self._task.is_running():  # torch's first pass at a new batch shape is slow: pay it before a drawing
            self._task.start(lambda control, predictor=self._predictor: _warm_up(predictor))
        self.request_update()

    def _show_filters(self) -> None:
        from core.insight import first_layer_filters
        from core.insight_render import signed_rgb

        filters = first_layer_filters(self._predictor.model)  # (C, k, k)
        limit = max(float(abs(filters).max()), 1e-6)           # one signed scale shared by every filter
        self.filters.set_tiles([signed_rgb(f, limit) for f in filters],
                               [f"filter {c}: {f.shape[1]}×{f.shape[0]} weights from {f.min():.3g} to {f.max():.3g}"
                                for c, f in enumerate(filters)], target=24)
        size = filters.shape[-1]
        self.filters_note.setText(
            f"The {len(filters)} {size}×{size} kernels the first layer slides over the image (its learned filters). "
            f"Orange weights add where the image is bright, blue ones subtract; one scale, ±{limit:.2f}, for all. "
            "A filter responds most where the image looks like its orange part.")

    # ------------------------------------------------------------ computing (worker thread) for the latest drawing
    def request_update(self) -> None:
        """Recompute for what is on the pad now, unless hidden (then when shown) or busy (then right after)."""
        if not self.isVisible():
            self._stale = True
            return
        if self._task.is_running():
            self._pending = True
            return
        self._start()

    def _start(self) -> None:
        self._stale = self._pending = False
        image = self._pad.model_input()
        if self._predictor is None:
            self._show_nothing("Loading model…")
            return
        if image is None:
            self._target = None
            self._show_nothing("Draw a digit (on the pad at the left) to see what the network makes of it.")
            return
        predictor, target, method, image = self._predictor, self._target, self._method, image.copy()

        def explain_latest(control):
            import time

            from core.insight import explain

            started = time.perf_counter()
            explanation = explain(predictor, image, target, method)
            rendered = None if explanation is None else render_layers(explanation)
            self._compute_ms = 1000 * (time.perf_counter() - started)  # a float: atomic to set, read by the GUI
            return None if explanation is None else (explanation, rendered)

        self._task.start(explain_latest)

    def _show_nothing(self, message: str) -> None:
        self._explanation = None
        self.status.setText(message)
        self.pipeline.clear()
        self.why.clear(message)

    # ------------------------------------------------------------ slots
    @Slot(object)
    def on_task_succeeded(self, result: tuple | None) -> None:
        if self._pending:
            return  # already out of date: the next one starts in on_task_finished
        if isinstance(result, float):  # the warm-up's measured cost
            self._compute_ms = result
            return
        if result is None:
            self._show_nothing("Nothing to recognize: no ink stands out from the paper.")
            return
        explanation, rendered = result
        self._explanation = explanation
        self.pipeline.show_explanation(explanation, rendered)
        self.why.show_explanation(explanation)
        if self.zoom.selected is not None:
            layer, channel = self.zoom.selected
            if layer < len(explanation.layers) and channel < len(explanation.layers[layer].maps):
                self.zoom.show_map(explanation.layers[layer], channel)
        p = explanation.probabilities[explanation.digit]
        self.status.setText(f"The network reads <b>{explanation.digit}</b> ({100 * p:.1f}%). Left to right: what it "
                            "sees, what each layer detects, its ten outputs.")
        self.explanation_shown.emit(explanation)

    @Slot(str)
    def on_task_failed(self, message: str) -> None:
        self._show_nothing(f"Could not explain this input: {message}")

    @Slot()
    def on_task_finished(self) -> None:
        if self._pending:
            self._start()

    @Slot()
    def on_pad_drawing_changed(self) -> None:
        if self._pad.is_blank():
            self._target = None  # a new drawing: explain its answer again
        self.request_update()

    @Slot()
    def on_pad_stroke_moved(self) -> None:
        if not self._task.is_running() and self._compute_ms < LIVE_BUDGET_MS:  # live while drawing, if cheap
            self.request_update()

    @Slot(int, int)
    def on_pipeline_map_clicked(self, layer: int, channel: int) -> None:
        if self._explanation is None:
            return
        self.zoom.selected = (layer, channel)
        self.zoom.show_map(self._explanation.layers[layer], channel)
        self.extras.setCurrentWidget(self.zoom)

    @Slot(object)
    def on_why_target_picked(self, digit: int | None) -> None:
        self._target = digit
        self.request_update()

    @Slot(str)
    def on_why_method_picked(self, method: str) -> None:
        if method:
            self._method = method
            self.request_update()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale:
            self.request_update()

    # ------------------------------------------------------------ for tests and the window
    def explanation(self) -> Explanation | None:
        """The explanation on screen, or None."""
        return self._explanation

    def is_busy(self) -> bool:
        return self._task.is_running() or self._pending

    def pick_target(self, digit: int | None) -> None:
        self.on_why_target_picked(digit)

    def shutdown(self) -> None:
        self._pending = False
        self._task.shutdown()
