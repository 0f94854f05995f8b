"""The prediction pane: the top digit large (or "?" / "×" and the verdict in words), the model's 28x28 input, 10 bars."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from gui.qt_images import gray_to_qimage

if TYPE_CHECKING:  # only the type: importing core.verdict would load torch before the window shows
    from core.verdict import Verdict


def blend(a: QColor, b: QColor, t: float) -> QColor:
    """a*(1-t) + b*t: derives quiet colours from the palette so light and dark themes both read well."""
    return QColor.fromRgbF(*(x * (1 - t) + y * t for x, y in zip(a.getRgbF()[:3], b.getRgbF()[:3])))


class _Preview(QWidget):
    """The model's 28x28 input, scaled up without smoothing so each pixel stays visible (white ink on black)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._image: QImage | None = None
        self.setToolTip("Exactly what the network sees: the drawing after MNIST-style preprocessing (28x28)")

    def set_image(self, image28: np.ndarray | None) -> None:
        self._image = None if image28 is None else gray_to_qimage(image28)
        self.update()

    def sizeHint(self) -> QSize:
        side = 28 * max(3, round(self.fontMetrics().height() / 4))  # whole multiples of 28 keep pixels square
        return QSize(side, side)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        side = min(self.width(), self.height())
        target = QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)
        painter.fillRect(target, Qt.GlobalColor.black)
        if self._image is not None:
            painter.drawImage(target, self._image)  # no SmoothPixmapTransform: crisp pixels
        painter.setPen(self.palette().color(QPalette.ColorRole.Mid))
        painter.drawRect(target.adjusted(0, 0, -1, -1))


class BarChart(QWidget):
    """Ten rows "d [bar] p%"; the top digit's bar in the highlight colour."""

    painted = Signal()  # after each repaint: when a new prediction has reached the screen

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.probabilities: list[float] | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def _row_height(self) -> int:
        return round(self.fontMetrics().height() * 1.6)

    def sizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance("0") * 30, self._row_height() * 10)

    def minimumSizeHint(self) -> QSize:
        # rows may shrink to 1.2 lines (from 1.6) so the Draw tab fits a window 600 px high
        return QSize(self.fontMetrics().horizontalAdvance("0") * 16, round(self.fontMetrics().height() * 1.2) * 10)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette, metrics = self.palette(), self.fontMetrics()
        text = palette.color(QPalette.ColorRole.WindowText)
        groove = blend(palette.color(QPalette.ColorRole.Window), text, 0.10)
        strong = palette.color(QPalette.ColorRole.Highlight)
        weak = blend(strong, palette.color(QPalette.ColorRole.Window), 0.45)
        row = self.height() / 10
        label_w = metrics.horizontalAdvance("0") * 2
        percent_w = metrics.horizontalAdvance("100.0%") + metrics.horizontalAdvance("0")
        bar_w = max(1.0, self.width() - label_w - percent_w)
        top = None if self.probabilities is None else int(np.argmax(self.probabilities))
        for digit in range(10):
            y = digit * row
            p = None if self.probabilities is None else self.probabilities[digit]
            bold = QFont(self.font())
            bold.setBold(digit == top)
            painter.setFont(bold)
            painter.setPen(text)
            painter.drawText(QRectF(0, y, label_w, row), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                             str(digit))
            bar = QRectF(label_w, y + row * 0.2, bar_w, row * 0.6)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(groove)
            painter.drawRoundedRect(bar, 3, 3)
            if p is not None and bar_w * p >= 1:  # under a pixel: nothing, so 0.0% looks empty
                painter.setBrush(strong if digit == top else weak)
                radius = min(3.0, bar_w * p / 2)
                painter.drawRoundedRect(QRectF(bar.x(), bar.y(), bar_w * p, bar.height()), radius, radius)
            painter.setPen(text)
            label = "–" if p is None else f"{100 * p:.1f}%"
            painter.drawText(QRectF(label_w + bar_w, y, percent_w, row),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, label)
        painter.end()
        self.painted.emit()


class ProbabilityBars(QWidget):
    """Shows one prediction, or a message ("Draw a digit", "Loading model…") and empty bars, never a guess."""

    prediction_shown = Signal()  # set_prediction() has put new values on the bars (they repaint later)
    bars_painted = Signal()      # the ten bars repainted: what was set is on the screen

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("probabilityBars")
        self._digit = QLabel("–")
        big = QFont(self.font())
        big.setPointSizeF(big.pointSizeF() * 4.5)
        big.setBold(True)
        self._digit.setFont(big)
        self._digit.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._digit.setMinimumWidth(self.fontMetrics().horizontalAdvance("0") * 8)
        self._caption = QLabel()
        self._caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._caption.setWordWrap(True)
        self._preview = _Preview()
        preview_caption = QLabel("What the network sees\n(28×28)")
        preview_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        preview_caption.setEnabled(False)  # the palette's muted text colour
        self._bars = BarChart()
        self._bars.painted.connect(self.bars_painted)

        header = QGridLayout()
        header.addWidget(self._digit, 0, 0, Qt.AlignmentFlag.AlignCenter)
        header.addWidget(self._preview, 0, 1, Qt.AlignmentFlag.AlignCenter)
        header.addWidget(self._caption, 1, 0)
        header.addWidget(preview_caption, 1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addSpacing(self.fontMetrics().height())
        layout.addWidget(self._bars, 1)
        self._probabilities: list[float] | None = None
        self.clear_prediction()

    def set_prediction(self, probabilities: list[float], image28: np.ndarray, verdict: Verdict | None = None) -> None:
        """Show the model's ten softmax values and its (28, 28) uint8 input; with a verdict (core/verdict.py), a
        hesitation or a non-digit is said in words above the bars, which stay, and hints follow on their own lines."""
        self._probabilities = [float(p) for p in probabilities]
        self._image28 = image28
        self._verdict = verdict
        digit = int(np.argmax(self._probabilities))
        sure = f"{100 * self._probabilities[digit]:.1f}% sure"
        if verdict is None or verdict.kind == "digit":
            self._digit.setText(str(digit))
            lines = [sure]
        elif verdict.kind == "unsure":
            self._digit.setText("?")
            lines = [verdict.headline]
        else:
            self._digit.setText("\u00d7")  # a multiplication sign: every font has it
            lines = [f"Not a digit? It looks like {verdict.looks_like}."]
        hints = [] if verdict is None else verdict.hints
        self._caption.setText("\n".join(lines + [h[0].upper() + h[1:] + "." for h in hints]))
        self._preview.set_image(image28)
        self._bars.probabilities = self._probabilities
        self._bars.update()
        self.prediction_shown.emit()

    def clear_prediction(self, message: str = "Draw a digit") -> None:
        """Empty bars and a message instead of a guess."""
        self._probabilities = None
        self._image28 = None
        self._verdict = None
        self._digit.setText("–")
        self._caption.setText(message)
        self._preview.set_image(None)
        self._bars.probabilities = None
        self._bars.update()

    def probabilities(self) -> list[float] | None:
        """The ten values shown, or None when nothing is shown."""
        return None if self._probabilities is None else list(self._probabilities)

    def preview(self):
        """The (28, 28) uint8 image shown as "what the network sees", or None."""
        return self._image28

    def verdict(self) -> str | None:
        """The verdict shown ("digit", "unsure", "not_a_digit"), or None without a prediction or a verdict."""
        return None if self._verdict is None else self._verdict.kind

    def top_digit(self) -> int | None:
        return None if self._probabilities is None else int(np.argmax(self._probabilities))

    def message(self) -> str:
        return self._caption.text()
