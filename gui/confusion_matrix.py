"""A 10x10 confusion-matrix heatmap: rows are the true digit, columns the prediction; click a cell to see its images.

Correct answers (the diagonal) are drawn in their own colour, so the mistakes stand out in the other; counts or
row-normalized shares; each row's label carries that digit's accuracy.
"""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from gui.probability_bars import blend

# Okabe-Ito colours (colour-blind safe): bluish green for correct answers, vermillion for mistakes
CORRECT = QColor("#009e73")
MISTAKE = QColor("#d55e00")


class ConfusionMatrix(QWidget):
    """set_confusion(confusion[true][predicted]); cell_clicked(true, predicted) on a click."""

    cell_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("confusionMatrix")
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._confusion: list[list[int]] | None = None
        self._normalized = False
        self._selected: tuple[int, int] | None = None
        self.setToolTip("Rows: the true digit. Columns: what the network answered. Click a cell to see its images.")

    def set_confusion(self, confusion: list[list[int]] | None) -> None:
        self._confusion = confusion
        self._selected = None
        self.update()

    def set_normalized(self, normalized: bool) -> None:
        """True: each cell shows its share of the row (of that true digit's images), else the count."""
        self._normalized = normalized
        self.update()

    def select(self, true: int, predicted: int) -> None:
        self._selected = (true, predicted)
        self.update()

    # ------------------------------------------------------------ geometry
    def _label_sizes(self) -> tuple[float, float]:
        metrics = self.fontMetrics()
        return metrics.horizontalAdvance("9  100.0%") + 8, metrics.height() * 2.2  # row labels, column labels

    def _grid(self) -> tuple[float, float, float]:
        """(left, top, cell side) of the 10x10 grid."""
        left, top = self._label_sizes()
        side = max(8.0, min((self.width() - left - 4) / 10, (self.height() - top - 4) / 10))
        return left, top, side

    def cell_rect(self, true: int, predicted: int) -> QRectF:
        left, top, side = self._grid()
        return QRectF(left + predicted * side, top + true * side, side, side)

    def cell_at(self, point: QPointF) -> tuple[int, int] | None:
        left, top, side = self._grid()
        col, row = int((point.x() - left) // side), int((point.y() - top) // side)
        if point.x() < left or point.y() < top or not (0 <= row < 10 and 0 <= col < 10):
            return None
        return row, col

    def sizeHint(self) -> QSize:
        left, top = self._label_sizes()
        side = self.fontMetrics().horizontalAdvance("1000") + 12
        return QSize(round(left + 10 * side + 4), round(top + 10 * side + 4))

    def minimumSizeHint(self) -> QSize:
        left, top = self._label_sizes()
        return QSize(round(left + 10 * 22), round(top + 10 * 22))

    # ------------------------------------------------------------ painting
    def _value(self, true: int, predicted: int) -> float:
        count = self._confusion[true][predicted]
        if not self._normalized:
            return count
        return count / max(sum(self._confusion[true]), 1)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        base = palette.color(QPalette.ColorRole.Base)
        left, top, side = self._grid()
        painter.setPen(text)
        painter.drawText(QRectF(left, 0, 10 * side, top / 2), Qt.AlignmentFlag.AlignCenter, "predicted digit")
        painter.drawText(QRectF(0, top / 2, left - 6, top / 2),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, "true digit")
        for d in range(10):
            painter.drawText(QRectF(left + d * side, top / 2, side, top / 2), Qt.AlignmentFlag.AlignCenter, str(d))
        if self._confusion is None:
            painter.drawText(QRectF(left, top, 10 * side, 10 * side), Qt.AlignmentFlag.AlignCenter,
                             "No results yet")
            return
        off_diagonal = [self._value(t, p) for t in range(10) for p in range(10) if t != p]
        worst = max(off_diagonal + [1e-9])
        small = QFont(self.font())
        small.setPointSizeF(max(6.0, min(self.font().pointSizeF(), side / 3.2)))
        for t in range(10):
            row_total = sum(self._confusion[t])
            accuracy = self._confusion[t][t] / row_total if row_total else 0.0
            painter.setFont(self.font())
            painter.setPen(text)
            painter.drawText(QRectF(0, top + t * side, left - 6, side),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             f"{t}  {100 * accuracy:.1f}%")
            painter.setFont(small)
            for p in range(10):
                value = self._value(t, p)
                rect = self.cell_rect(t, p)
                if t == p:  # the share of this digit read right
                    colour = blend(base, CORRECT, 0.3 + 0.5 * accuracy)
                else:
                    colour = blend(base, MISTAKE, 0.0 if value == 0 else 0.15 + 0.85 * (value / worst) ** 0.5)
                painter.fillRect(rect.adjusted(1, 1, -1, -1), colour)
                if value:
                    painter.setPen(QColor("white") if colour.lightnessF() < 0.5 else QColor("black"))
                    label = f"{100 * value:.1f}" if self._normalized else str(value)
                    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, label)
        if self._selected is not None:
            painter.setPen(palette.color(QPalette.ColorRole.Highlight))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(self.cell_rect(*self._selected).adjusted(0.5, 0.5, -0.5, -0.5))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position())
        if event.button() == Qt.MouseButton.LeftButton and cell is not None and self._confusion is not None:
            self.select(*cell)
            self.cell_clicked.emit(*cell)
        else:
            super().mousePressEvent(event)
