"""A grid of your saved samples: each drawing as saved, its digit and what the model in use reads (mistakes marked)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QKeyEvent, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem, QWidget

from gui.confusion_matrix import CORRECT, MISTAKE
from gui.qt_images import gray_to_qimage
from gui.sample_library import THUMBNAIL_SIDE

if TYPE_CHECKING:
    from core.samples import Sample
    from gui.sample_library import SampleLibrary

PATH_ROLE = Qt.ItemDataRole.UserRole
STATE_ROLE = Qt.ItemDataRole.UserRole + 1  # what the tile shows now: (caption, tooltip, has a thumbnail)
FRAME = 3  # px of the correct/mistake colour around each thumbnail


def sample_icon(library: SampleLibrary, sample: Sample, colour: QColor | None) -> QIcon:
    """The thumbnail centred on a square of paper, framed in `colour` (None: not known yet, no frame)."""
    side = THUMBNAIL_SIDE + 2 * FRAME
    pixmap = QPixmap(side, side)
    pixmap.fill(QColor(colour) if colour is not None else QColor(Qt.GlobalColor.transparent))
    painter = QPainter(pixmap)
    painter.fillRect(FRAME, FRAME, THUMBNAIL_SIDE, THUMBNAIL_SIDE, Qt.GlobalColor.white)
    thumbnail = library.thumbnail(sample)
    if thumbnail is not None:
        h, w = thumbnail.shape
        painter.drawImage(FRAME + (THUMBNAIL_SIDE - w) // 2, FRAME + (THUMBNAIL_SIDE - h) // 2,
                          gray_to_qimage(thumbnail))
    painter.end()
    return QIcon(pixmap)


class SampleGrid(QListWidget):
    """show_samples() fills it; the Delete key asks to delete the selected ones."""

    delete_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sampleGrid")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setUniformItemSizes(True)
        side = THUMBNAIL_SIDE + 2 * FRAME
        self.setIconSize(QSize(side, side))
        self.setGridSize(QSize(side + self.fontMetrics().horizontalAdvance("0") * 4,
                               side + 2 * self.fontMetrics().height() + 8))
        self.setWordWrap(True)
        self.setSpacing(2)
        self._library: SampleLibrary | None = None
        self._samples: dict[Path, Sample] = {}
        self._items: dict[Path, QListWidgetItem] = {}
        self._empty_text = ""

    def show_samples(self, library: SampleLibrary, samples: list[Sample], empty_text: str) -> None:
        """One tile per sample, in this order; captions and frames follow library.prediction()."""
        self._library, self._empty_text = library, empty_text
        selected = {s.path for s in self.selected_samples()}
        self.clear()
        self._samples = {s.path: s for s in samples}
        self._items = {}
        for sample in samples:
            item = QListWidgetItem()
            item.setData(PATH_ROLE, str(sample.path))
            self._items[sample.path] = item
            self.addItem(item)
            item.setSelected(sample.path in selected)
        self.refresh_predictions()

    def refresh_predictions(self) -> None:
        """Update every tile's caption, frame and tooltip from the library (predictions arrive in chunks)."""
        if self._library is None:
            return
        model = self._library.predictor() is not None
        for path, item in self._items.items():
            sample = self._samples[path]
            prediction = self._library.prediction(sample)
            digit = sample.digit
            if prediction is not None and prediction.error:
                caption, colour, tip = f"{digit} \u26a0", QColor(MISTAKE), f"Unreadable: {prediction.error}"
            elif prediction is None:
                caption, colour = f"{digit}", None
                tip = "Being read by the model in use\u2026" if model else "No model loaded"
            elif prediction.digit == digit:
                sure = 100 * prediction.probabilities[digit]
                caption, colour, tip = f"{digit} \u2713", QColor(CORRECT), f"A {digit}, read right ({sure:.0f}% sure)"
            elif prediction.digit is None:
                caption, colour, tip = f"{digit} \u2192 ?", QColor(MISTAKE), f"A {digit}; no ink stands out"
            else:
                sure = 100 * prediction.probabilities[prediction.digit]
                caption, colour = f"{digit} \u2192 {prediction.digit}", QColor(MISTAKE)
                tip = f"A {digit}, read as {prediction.digit} ({sure:.0f}% sure): a mistake"
            state = (caption, tip, self._library.thumbnail(sample) is not None)
            if item.data(STATE_ROLE) != state:  # redraw only the tiles whose reading changed
                item.setData(STATE_ROLE, state)
                item.setText(caption)
                item.setToolTip(f"{tip}\n{path.name}")
                item.setIcon(sample_icon(self._library, sample, colour))

    def selected_samples(self) -> list[Sample]:
        return [self._samples[Path(item.data(PATH_ROLE))] for item in self.selectedItems()
                if Path(item.data(PATH_ROLE)) in self._samples]

    def shown_samples(self) -> list[Sample]:
        return list(self._samples.values())

    def caption(self, sample: Sample) -> str:
        return self._items[sample.path].text()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.selectedItems():
            self.delete_requested.emit()
            return
        super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.count() == 0 and self._empty_text:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.viewport().rect().adjusted(8, 8, -8, -8),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._empty_text)
