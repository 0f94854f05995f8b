"""A scrollable gallery of test images with captions (true digit, answer, confidence); clicking one emits its index."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QWidget

from gui.confusion_matrix import CORRECT, MISTAKE
from gui.qt_images import gray_to_qimage

TILE = 56  # 2x the 28x28 image
INDEX_ROLE = Qt.ItemDataRole.UserRole


def tile_icon(image28: np.ndarray, correct: bool) -> QIcon:
    """The image at 2x, crisp, with a thin frame in the correct/mistake colour."""
    pixmap = QPixmap.fromImage(gray_to_qimage(image28).scaled(TILE, TILE, Qt.AspectRatioMode.KeepAspectRatio,
                                                               Qt.TransformationMode.FastTransformation))
    painter = QPainter(pixmap)
    painter.setPen(QColor(CORRECT if correct else MISTAKE))
    painter.drawRect(0, 0, TILE - 1, TILE - 1)
    painter.end()
    return QIcon(pixmap)


class Gallery(QListWidget):
    """show(indices, ...) fills it; image_clicked(index into the test set) when one is clicked or activated."""

    image_clicked = Signal(int)

    def __init__(self, empty_text: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setIconSize(QSize(TILE, TILE))
        self.setGridSize(QSize(TILE + self.fontMetrics().horizontalAdvance("0") * 6, TILE + 2 * self.fontMetrics().height() + 8))
        self.setWordWrap(True)
        self.setSpacing(2)
        self.setToolTip("Click an image to put it on the pad and see in the Insight tab why it was read so")
        self._empty_text = empty_text
        self.itemClicked.connect(self.on_item_clicked)
        self.itemActivated.connect(self.on_item_clicked)

    def show_images(self, indices: np.ndarray, images: np.ndarray, labels: np.ndarray, predictions: np.ndarray,
                    confidences: np.ndarray) -> None:
        """One tile per index: (N, 28, 28) uint8 images; caption "true → answer" and the answer's confidence."""
        self.clear()
        for i in indices.tolist():
            true, answer = int(labels[i]), int(predictions[i])
            caption = f"{true} → {answer}\n{100 * float(confidences[i]):.1f}%" if true != answer else \
                f"{true} ✓\n{100 * float(confidences[i]):.1f}%"
            item = QListWidgetItem(tile_icon(images[i], true == answer), caption)
            item.setData(INDEX_ROLE, i)
            item.setToolTip(f"Test image #{i}: a {true}, read as {answer} ({100 * float(confidences[i]):.1f}% sure)")
            self.addItem(item)

    def index_of(self, row: int) -> int:
        """The test-set index shown in this row."""
        return int(self.item(row).data(INDEX_ROLE))

    @Slot(QListWidgetItem)
    def on_item_clicked(self, item: QListWidgetItem) -> None:
        self.image_clicked.emit(int(item.data(INDEX_ROLE)))

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.count() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.viewport().rect().adjusted(8, 8, -8, -8),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._empty_text)
