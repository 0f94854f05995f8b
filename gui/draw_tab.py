"""The Draw tab: the pad and its tools beside the live prediction pane, and under it the buttons that save samples.

Predictions are throttled while a stroke moves. "Wrong? It was:" (keys 0-9), "Right" (Enter) and "Teach me" save
what is on the pad, as drawn, into your samples folder (gui/sample_library.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (QButtonGroup, QFrame, QHBoxLayout, QLabel, QPushButton, QSlider, QStackedWidget,
                               QVBoxLayout, QWidget)

from gui.correction_row import CorrectionRow, how_many
from gui.drawing_pad import BRUSH_RANGE, DEFAULT_BRUSH, DrawingPad
from gui.photo_view import BOX, ERASE, PhotoView
from gui.probability_bars import ProbabilityBars, blend
from gui.sample_library import SampleLibrary
from gui.teach_mode import TeachPanel

if TYPE_CHECKING:  # the core imports torch: only once the model is being loaded, never before the first paint
    from core.predict import Predictor

LIVE_INTERVAL_MS = 33  # ~30 predictions/s while a stroke moves; each costs a few ms, so the pen never lags
BLANK = "Nothing to save: the pad is blank. Draw a digit first."
NO_INK = "Nothing to save: no ink stands out from the paper."


class DrawTab(QWidget):
    """Owns the predictor in use; main window code swaps it with set_predictor()."""

    previous_weights_requested = Signal()  # the user clicked "Use previous weights" on the notice
    sample_saved = Signal(int)             # the digit a sample was just saved as

    def __init__(self, library: SampleLibrary | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._predictor: Predictor | None = None
        self._ink_found: bool | None = None  # the last prediction found ink (None: not predicted)
        self.library = library if library is not None else SampleLibrary(parent=self)
        self._no_model_message = "Loading model…"
        self._bars_stale = False  # the drawing changed while another tab showed the pad
        self.pad = DrawingPad()
        self.photo = PhotoView()  # an opened image is shown here, with the region read outlined
        self.bars = ProbabilityBars()
        self.corrections = CorrectionRow()
        self.teach = TeachPanel()
        for button in [*self.corrections.digit_buttons, self.corrections.right_button, self.teach.toggle,
                       self.teach.skip_button]:
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the pad keeps the focus, so keys 0-9 and Enter work
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
        self.brush_slider.setMinimumWidth(self.fontMetrics().horizontalAdvance("0") * 8)  # usable on a narrow pad
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

        # two rows (buttons, then the brush) keep the pad's column narrow enough for an 800-px-wide window
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.undo_button)
        buttons.addWidget(self.clear_button)
        brush = QHBoxLayout()
        brush.addWidget(QLabel("Brush"))
        brush.addWidget(self.brush_slider, 1)
        self.region_button = QPushButton("Choose region")
        self.region_button.setToolTip("Drag a box on the photo around the digit to read")
        self.erase_button = QPushButton("Erase")
        self.erase_button.setToolTip("Paint over marks on the photo that are not the digit")
        self.whole_button = QPushButton("Whole photo")
        self.whole_button.setToolTip("Forget the box and the erasing: find the digit anywhere")
        photo_tools = QButtonGroup(self)
        for button in (self.region_button, self.erase_button):
            button.setCheckable(True)
            photo_tools.addButton(button)
        self.region_button.setChecked(True)
        self.photo_tools = QWidget()
        photo_row = QHBoxLayout(self.photo_tools)
        photo_row.setContentsMargins(0, 0, 0, 0)
        for button in (self.region_button, self.erase_button, self.whole_button):
            photo_row.addWidget(button)
        self.photo_tools.hide()
        tools = QVBoxLayout()
        tools.addLayout(buttons)
        tools.addLayout(brush)
        tools.addWidget(self.photo_tools)
        # The pad with its tools is one panel that the Insight and Evaluate tabs borrow (dock_pad_panel), so the
        # user draws there too and sees every layer or the map follow; it keeps its strokes wherever it is.
        self.pad_panel = QWidget()
        self.pad_panel.setObjectName("padPanel")
        left = QVBoxLayout(self.pad_panel)
        left.setContentsMargins(0, 0, 0, 0)
        self.pad_stack = QStackedWidget()  # the pad, or the opened photo
        self.pad_stack.addWidget(self.pad)
        self.pad_stack.addWidget(self.photo)
        left.addWidget(self.pad_stack, 1)
        left.addLayout(tools)
        self._pad_home = QVBoxLayout()
        self._pad_home.setContentsMargins(0, 0, 0, 0)
        body = QHBoxLayout()
        body.addLayout(self._pad_home, 3)
        right = QVBoxLayout()
        right.addWidget(self.bars, 1)
        right.addWidget(self.corrections)
        right.addWidget(self.teach)
        body.addLayout(right, 2)
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
        self.photo.edits_changed.connect(self.on_photo_edits_changed)
        self.region_button.toggled.connect(self.on_region_button_toggled)
        self.whole_button.clicked.connect(self.on_whole_button_clicked)
        dismiss.clicked.connect(self.on_dismiss_button_clicked)
        self.corrections.digit_clicked.connect(self.on_corrections_digit_clicked)
        self.corrections.right_clicked.connect(self.on_corrections_right_clicked)
        self.teach.active_changed.connect(self.on_teach_active_changed)
        self.teach.digit_asked.connect(self.on_teach_digit_asked)
        self.library.samples_changed.connect(self.on_library_samples_changed)
        self.library.predictions_changed.connect(self.on_library_predictions_changed)
        self.pad.installEventFilter(self)  # keys 0-9 and Enter on the pad save samples
        self.dock_pad_panel(self.pad_panel)
        self.refresh_prediction()
        QTimer.singleShot(0, self.on_library_samples_changed)  # the folder is listed after the first paint

    def dock_pad_panel(self, panel: QWidget) -> None:
        """Take the pad panel back (from whichever tab borrowed it)."""
        self._pad_home.addWidget(panel, 1)

    # ------------------------------------------------------------ model
    def set_predictor(self, predictor: Predictor | None, message: str = "Loading model…") -> None:
        """Use this predictor from now on; with None, ink on the pad shows `message` instead of a guess."""
        self._predictor = predictor
        self._no_model_message = message
        self.refresh_prediction()

    # ------------------------------------------------------------ opened photos
    def show_photo(self, gray) -> None:
        """An opened image (H, W) uint8: on the pad (as before) and shown with the region read outlined."""
        self.photo.set_photo(gray)
        self.pad_stack.setCurrentWidget(self.photo)
        self.photo_tools.show()
        # the pad holds the same array (the Insight and Evaluate tabs read the pad); its signal predicts once
        self.pad.set_image(self.photo.source)

    def showing_photo(self) -> bool:
        return self.pad_stack.currentWidget() is self.photo

    def current_input(self):
        """What is read and saved: the photo as edited (box, erasing), else the pad's drawing; None when blank."""
        if self.showing_photo():
            return self.photo.edited_input()[0]
        return self.pad.model_input()

    def _leave_photo(self) -> None:
        self.pad_stack.setCurrentWidget(self.pad)
        self.photo_tools.hide()

    def refresh_prediction(self) -> None:
        """Predict the pad's content now (blank pad: empty bars and "Draw a digit")."""
        self._live_timer.stop()
        if self.showing_photo() and self.pad.model_input() is not self.photo.source:
            self._leave_photo()  # cleared, or a drawing or another picture is on the pad now
        image = self.current_input()
        self._ink_found = None
        if image is None:
            self.bars.clear_prediction("Draw a digit")
        elif self._predictor is None:
            self.bars.clear_prediction(self._no_model_message)
        else:
            prediction = self._predict_single_threaded(image)
            self._ink_found = prediction.digit is not None
            if prediction.digit is None:
                self.bars.clear_prediction("Nothing to recognize: no ink stands out from the paper")
            else:
                self.bars.set_prediction(prediction.probabilities, prediction.image28, prediction.verdict)
            if self.showing_photo():
                self._outline_found_region(prediction.region)
        self._update_corrections()

    def _outline_found_region(self, found) -> None:
        """Outline `found` (x0, y0, x1, y1) in the edited input's pixels, or nothing, on the opened photo."""
        left, top = self.photo.edited_input()[1]
        self.photo.set_found_region(None if found is None else
                                    (found[0] + left, found[1] + top, found[2] + left, found[3] + top))

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

    # ------------------------------------------------------------ your samples: correct and collect
    def save_sample(self, digit: int) -> bool:
        """Save what is on the pad, as drawn (or the opened image), as a sample of `digit`; then clear the pad.
        A failure says why in the status line and keeps the drawing."""
        if self._live_timer.isActive():
            self.refresh_prediction()  # a stroke is moving: what is saved is what the bars show
        image = self.current_input()  # (H, W) uint8
        if image is None or self._ink_found is False:
            self.corrections.show_status(BLANK if image is None else NO_INK, warning=True)
            return False
        from core.samples import SamplesError

        probabilities = self.bars.probabilities() if self.library.predictor() is self._predictor else None
        try:
            self.library.add(image, digit, probabilities)
        except (SamplesError, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
            self.corrections.show_status(f"Could not save the sample: {reason}{where}. The drawing stays on the pad.",
                                         warning=True)
            return False
        count = self.library.counts()[digit]
        self.pad.clear()
        if self.teach.is_active():
            self.teach.ask_next()
        self.corrections.show_status(f"Saved as a {digit} \u2014 {how_many(digit, count)} so far")
        self.sample_saved.emit(digit)
        return True

    def save_as_predicted(self) -> bool:
        """Enter / Right: save with the digit asked for ("Teach me"), else with the predicted digit."""
        digit = self.teach.asked_digit()
        if digit is None:
            digit = self.bars.top_digit()
        if digit is None:
            if self.pad.is_blank() or self._ink_found is False:
                self.corrections.show_status(BLANK if self.pad.is_blank() else NO_INK, warning=True)
            else:
                self.corrections.show_status("No prediction yet: press the digit it is (0-9).", warning=True)
            return False
        return self.save_sample(digit)

    def _update_corrections(self) -> None:
        has_input = not self.pad.is_blank() and self._ink_found is not False
        asked, top = self.teach.asked_digit(), self.bars.top_digit()
        self.corrections.set_ready(has_input, f"Save as {asked}" if asked is not None else
                                   None if top is None else f"Right: {top}")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.pad and event.type() == QEvent.Type.KeyPress and self.isVisible():
            plain = not event.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
                                             | Qt.KeyboardModifier.MetaModifier)
            key = event.key()
            if plain and Qt.Key.Key_0 <= key <= Qt.Key.Key_9:
                self.save_sample(int(key) - int(Qt.Key.Key_0))
                return True
            if plain and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.save_as_predicted()
                return True
        return super().eventFilter(watched, event)

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
        if self.isVisible() and not self._live_timer.isActive():
            self._live_timer.start()

    @Slot()
    def on_pad_drawing_changed(self) -> None:
        if self.isVisible():
            self.refresh_prediction()
        else:  # the pad is lent to another tab: predict when the bars are seen again, not on that tab's time
            self._bars_stale = True

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._bars_stale:
            self._bars_stale = False
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
    def on_photo_edits_changed(self) -> None:
        self.refresh_prediction()

    @Slot(bool)
    def on_region_button_toggled(self, checked: bool) -> None:
        self.photo.set_tool(BOX if checked else ERASE)

    @Slot()
    def on_whole_button_clicked(self) -> None:
        self.photo.reset_edits()

    @Slot()
    def on_dismiss_button_clicked(self) -> None:
        self.hide_notice()

    @Slot()
    def on_previous_button_clicked(self) -> None:
        self.previous_weights_requested.emit()

    @Slot(int)
    def on_corrections_digit_clicked(self, digit: int) -> None:
        self.save_sample(digit)

    @Slot()
    def on_corrections_right_clicked(self) -> None:
        self.save_as_predicted()

    @Slot(bool)
    def on_teach_active_changed(self, active: bool) -> None:
        self._update_corrections()
        if active:
            self.corrections.show_status("Draw the digit asked for, then press Enter.")

    @Slot(int)
    def on_teach_digit_asked(self, digit: int) -> None:
        self._update_corrections()

    @Slot()
    def on_library_samples_changed(self) -> None:
        self.corrections.set_counts(self.library.counts())
        self.on_library_predictions_changed()

    @Slot()
    def on_library_predictions_changed(self) -> None:
        self.teach.set_progress(self.library.counts(), self.library.mean_true_probability())
