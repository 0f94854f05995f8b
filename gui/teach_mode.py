""""Teach me": the app asks "Draw a 4", most often for digits it misreads or lacks, with a progress row per digit."""
from __future__ import annotations

import random

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from core.teach import TARGET, next_digit


class TeachPanel(QWidget):
    """Chooses the digits (core.teach); the Draw tab saves the drawing and calls ask_next() after each sample."""

    active_changed = Signal(bool)
    digit_asked = Signal(int)  # the prompt now asks for this digit

    def __init__(self, seed: int | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._rng = random.Random(seed)  # its own generator: the process-wide random state is left alone
        self._asked: int | None = None
        self.toggle = QPushButton("Teach me")
        self.toggle.setObjectName("teachButton")
        self.toggle.setCheckable(True)
        self.toggle.setToolTip(f"The app asks for digits to draw, most often those it gets wrong or has few of, "
                               f"until each has {TARGET} samples; press Enter after drawing each")
        self.skip_button = QPushButton("Another digit")
        self.skip_button.setObjectName("teachSkip")
        self.skip_button.setToolTip("Ask for a different digit")
        self.prompt = QLabel()
        self.prompt.setObjectName("teachPrompt")
        big = QFont(self.font())
        big.setPointSizeF(big.pointSizeF() * 1.6)
        big.setBold(True)
        self.prompt.setFont(big)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.progress_bars: list[QProgressBar] = []
        row = QGridLayout()
        row.setHorizontalSpacing(2)
        row.setVerticalSpacing(0)
        for digit in range(10):
            bar = QProgressBar()
            bar.setObjectName(f"teachProgress_{digit}")
            bar.setOrientation(Qt.Orientation.Vertical)
            bar.setRange(0, TARGET)
            bar.setTextVisible(False)
            bar.setFixedHeight(self.fontMetrics().height() * 2)
            label = QLabel(str(digit))
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            row.addWidget(bar, 0, digit, Qt.AlignmentFlag.AlignHCenter)
            row.addWidget(label, 1, digit)
            self.progress_bars.append(bar)
        self._progress = QWidget()  # shown in Teach me mode only
        progress_layout = QVBoxLayout(self._progress)
        progress_layout.setContentsMargins(0, 0, 0, 0)
        progress_layout.setSpacing(2)
        progress_layout.addLayout(row)
        progress_layout.addWidget(self.hint)
        buttons = QHBoxLayout()
        buttons.addWidget(self.toggle)
        buttons.addWidget(self.prompt, 1, Qt.AlignmentFlag.AlignCenter)
        buttons.addWidget(self.skip_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(buttons)
        layout.addWidget(self._progress)
        self._progress.hide()
        self.skip_button.hide()
        self.prompt.hide()
        self._counts = [0] * 10
        self._mean_true_probability: list[float | None] = [None] * 10
        self.toggle.toggled.connect(self.on_toggle_toggled)
        self.skip_button.clicked.connect(self.on_skip_button_clicked)

    def is_active(self) -> bool:
        return self.toggle.isChecked()

    def asked_digit(self) -> int | None:
        """The digit the prompt asks for; None outside Teach me mode."""
        return self._asked if self.is_active() else None

    def set_active(self, active: bool) -> None:
        self.toggle.setChecked(active)

    def set_progress(self, counts: list[int], mean_true_probability: list[float | None]) -> None:
        """The samples so far and how sure the current model is of them (None: unknown)."""
        self._counts = list(counts)
        self._mean_true_probability = list(mean_true_probability)
        for digit, (bar, n) in enumerate(zip(self.progress_bars, counts)):
            bar.setValue(min(n, TARGET))
            sure = mean_true_probability[digit]
            bar.setToolTip(f"{digit}: {n} of {TARGET} samples" +
                           ("" if sure is None else f"; the model gives your {digit}s {100 * sure:.0f}% on average"))
        done = sum(min(n, TARGET) for n in counts)
        self.hint.setText(f"All ten digits have {TARGET} samples: press \u201cTeach it my handwriting\u201d in the "
                          "My digits tab, or go on drawing the digits it still doubts." if done == 10 * TARGET else
                          f"{done} of {10 * TARGET} samples. Draw the digit, then press Enter (or its button).")

    def ask_next(self) -> int:
        """Choose the next digit to ask for (never the same twice in a row) and show it."""
        self._asked = next_digit(self._counts, self._mean_true_probability, self._rng, self._asked)
        self.prompt.setText(f"Draw a {self._asked}")
        for digit, bar in enumerate(self.progress_bars):
            bar.setEnabled(digit == self._asked)  # the digit asked for stands out, the others are muted
        self.digit_asked.emit(self._asked)
        return self._asked

    @Slot(bool)
    def on_toggle_toggled(self, active: bool) -> None:
        for widget in (self._progress, self.skip_button, self.prompt):
            widget.setVisible(active)
        self.toggle.setText("Stop teaching" if active else "Teach me")
        if active:
            self.ask_next()
        else:
            self._asked = None
        self.active_changed.emit(active)

    @Slot()
    def on_skip_button_clicked(self) -> None:
        self.ask_next()
