"""The Draw tab: the pad and its tools beside the prediction pane; predicts live while drawing, throttled."""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from gui.drawing_pad import BRUSH_RANGE, DEFAULT_BRUSH, DrawingPad
from gui.probability_bars import ProbabilityBars, blend

if TYPE_CHECKING:  # the core imports torch: only once the model is being loaded, never before the first paint
    from core.predict import Predictor

LIVE_INTERVAL_MS = 33  # ~30 predictions/s while a stroke moves; each costs a few ms, so the pen never lags


class DrawTab(QWidget):
    """Owns the predictor in use; main window code swaps it with set_predictor()."""

    previous_weights_requested = Signal()  # the user clicked "Use previous weights" on the notice

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._predictor: Predictor | None = None
        self._no_model_message = "Loading model…"
        self.pad = DrawingPad()
        self.bars = ProbabilityBars()
        self.open_button = QPushButton("Open image…")
        self.open_button.setToolTip("Recognize a digit in an image file (Ctrl+O); you can also drop or paste one")
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Remove the last stroke (Ctrl+Z)")
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("clearButton")
        self.clear_button.setToolTip("Clear the pad (Esc or Delete)")
        self.brush_slider = QSlider(Qt.Orientation.Horizontal)
        self.brush_slider.setObjectName("brushSlider")
        self.brush_slider.setRange(*BRUSH_RANGE)
        self.brush_slider.setValue(DEFAULT_BRUSH)
        self.brush_slider.setToolTip(f"Brush width for new strokes; {DEFAULT_BRUSH} draws MNIST-like strokes")
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.previous_button = QPushButton("Use previous weights")
        dismiss = QPushButton("Dismiss")
        self._banner = QFrame()
        self._banner.setFrameShape(QFrame.Shape.StyledPanel)
        self._banner.setAutoFillBackground(True)
        banner_row = QHBoxLayout(self._banner)
        banner_row.addWidget(self.notice, 1)
        banner_row.addWidget(self.previous_button)
        banner_row.addWidget(dismiss)
        self._banner.hide()

        tools = QHBoxLayout()
        tools.addWidget(self.open_button)
        tools.addWidget(self.undo_button)
        tools.addWidget(self.clear_button)
        tools.addSpacing(self.fontMetrics().height())
        tools.addWidget(QLabel("Brush"))
        tools.addWidget(self.brush_slider, 1)
        # The pad with its tools is one panel that the Insight and Evaluate tabs borrow (dock_pad_panel), so the
        # user draws there too and sees every layer or the map follow; it keeps its strokes wherever it is.
        self.pad_panel = QWidget()
        self.pad_panel.setObjectName("padPanel")
        left = QVBoxLayout(self.pad_panel)
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(self.pad, 1)
        left.addLayout(tools)
        self._pad_home = QVBoxLayout()
        self._pad_home.setContentsMargins(0, 0, 0, 0)
        body = QHBoxLayout()
        body.addLayout(self._pad_home, 3)
        body.addWidget(self.bars, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self._banner)
        layout.addLayout(body, 1)

        self._live_timer = QTimer(self)
        self._live_timer.setSingleShot(True)
        self._live_timer.setInterval(LIVE_INTERVAL_MS)
        self._live_timer.timeout.connect(self.on_live_timer_timeout)
        self.pad.stroke_moved.connect(self.on_pad_stroke_moved)
        self.pad.drawing_changed.connect(self.on_pad_drawing_changed)
        self.clear_button.clicked.connect(self.on_clear_button_clicked)
        self.undo_button.clicked.connect(self.on_undo_button_clicked)
        self.brush_slider.valueChanged.connect(self.on_brush_slider_value_changed)
        self.previous_button.clicked.connect(self.on_previous_button_clicked)
        dismiss.clicked.connect(self.on_dismiss_button_clicked)
        self.dock_pad_panel(self.pad_panel)
        self.refresh_prediction()

    def dock_pad_panel(self, panel: QWidget) -> None:
        """Take the pad panel back (from whichever tab borrowed it)."""
        self._pad_home.addWidget(panel, 1)

    # ------------------------------------------------------------ model
    def set_predictor(self, predictor: Predictor | None, message: str = "Loading model…") -> None:
        """Use this predictor from now on; with None, ink on the pad shows `message` instead of a guess."""
        self._predictor = predictor
        self._no_model_message = message
        self.refresh_prediction()

    def refresh_prediction(self) -> None:
        """Predict the pad's content now (blank pad: empty bars and "Draw a digit")."""
        self._live_timer.stop()
        image = self.pad.model_input()
        if image is None:
            self.bars.clear_prediction("Draw a digit")
        elif self._predictor is None:
            self.bars.clear_prediction(self._no_model_message)
        else:
            prediction = self._predict_single_threaded(image)
            if prediction.digit is None:
                self.bars.clear_prediction("Nothing to recognize: no ink stands out from the paper")
            else:
                self.bars.set_prediction(prediction.probabilities, prediction.image28)

    def _predict_single_threaded(self, image):
        """One image on one torch thread: a second thread saves ~5% on idle cores, but while another program (or a
        training) keeps them busy it waits at every op's barrier: with one other training on 2 cores, stroke end to
        bars took ~125 ms instead of ~6 ms (bench/gui_responsiveness.py). Changes this thread's setting for this call
        only (torch's thread count is per thread, and new threads take the last one set)."""
        import torch  # already loaded: there is a predictor

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._predictor.predict(image)
        finally:
            torch.set_num_threads(threads)

    # ------------------------------------------------------------ notice after training
    def show_notice(self, text: str, can_go_back: bool) -> None:
        palette = self._banner.palette()
        palette.setColor(QPalette.ColorRole.Window, blend(self.palette().color(QPalette.ColorRole.Window),
                                                           self.palette().color(QPalette.ColorRole.Highlight), 0.18))
        self._banner.setPalette(palette)
        self.notice.setText(text)
        self.previous_button.setVisible(can_go_back)
        self._banner.show()

    def hide_notice(self) -> None:
        self._banner.hide()

    def notice_text(self) -> str | None:
        return None if self._banner.isHidden() else self.notice.text()

    # ------------------------------------------------------------ slots
    @Slot()
    def on_pad_stroke_moved(self) -> None:
        if not self._live_timer.isActive():
            self._live_timer.start()

    @Slot()
    def on_pad_drawing_changed(self) -> None:
        self.refresh_prediction()

    @Slot()
    def on_live_timer_timeout(self) -> None:
        self.refresh_prediction()

    @Slot()
    def on_clear_button_clicked(self) -> None:
        self.pad.clear()

    @Slot()
    def on_undo_button_clicked(self) -> None:
        self.pad.undo()

    @Slot(int)
    def on_brush_slider_value_changed(self, value: int) -> None:
        self.pad.set_brush_width(value)

    @Slot()
    def on_dismiss_button_clicked(self) -> None:
        self.hide_notice()

    @Slot()
    def on_previous_button_clicked(self) -> None:
        self.previous_weights_requested.emit()
