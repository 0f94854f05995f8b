"""A grid of small images (one layer's feature maps, or the first layer's filters), each labelled with its channel.

Hovering a tile shows what it is (layer, channel, size, value range); clicking it emits tile_clicked so the tab can
show it enlarged. The pictures themselves come from core.insight_render, the same as the command line's PNGs.
"""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from gui.qt_images import rgb_to_qimage

GAP = 3           # px between tiles
MAX_HEIGHT = 220  # px: a grid grows sideways beyond this, so the pipeline scrolls one way (left to right)


def tile_scale(height: int, channels: int, target: int | None = None) -> int:
    """Whole-pixel magnification: bigger tiles for few maps, so a 128-map layer still fits on screen."""
    target = target or (44 if channels <= 16 else 28 if channels <= 32 else 18 if channels <= 64 else 14)
    return max(1, round(target / height))


def grid_rows(channels: int, row_height: int) -> int:
    """About twice as many rows as columns (the pipeline runs left to right), at most MAX_HEIGHT tall."""
    return max(1, min(math.ceil(math.sqrt(channels * 2)), MAX_HEIGHT // max(row_height, 1)))


class MapGrid(QWidget):
    """Shows C tiles; set_tiles() takes the tiles' RGB pictures and one tooltip text per tile."""

    tile_clicked = Signal(int)  # the channel whose tile was clicked

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self._images: list[QImage] = []
        self._tips: list[str] = []
        self._scale = 1
        self._tile = QSize(0, 0)
        self._rows = 1
        self._label_font = QFont(self.font())
        self._label_font.setPointSizeF(max(6.0, self.font().pointSizeF() * 0.7))
        self._label_h = round(self.fontMetrics().height() * 0.75)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def set_tiles(self, tiles: list[np.ndarray], tips: list[str], target: int | None = None) -> None:
        """`tiles`: C pictures (H, W, 3) uint8 of one size; `tips`: what hovering each one says; `target`: the
        tiles' side on screen in px (default: by how many there are)."""
        self.set_images([rgb_to_qimage(t) for t in tiles], tips, target)

    def set_images(self, images: list[QImage], tips: list[str], target: int | None = None) -> None:
        """The same from ready QImages (made in a worker thread: QImage, unlike QPixmap, may be)."""
        self._images = images
        self._tips = tips
        h, w = (images[0].height(), images[0].width()) if images else (1, 1)
        self._scale = tile_scale(h, len(images), target)
        self._tile = QSize(w * self._scale, h * self._scale)
        self._rows = grid_rows(len(images), self._tile.height() + self._label_h + GAP)
        self.updateGeometry()
        self.adjustSize()
        self.update()

    def tile_count(self) -> int:
        return len(self._images)

    def tile_size(self) -> QSize:
        """The size of one tile on screen (the map's own size times a whole-pixel scale)."""
        return QSize(self._tile)

    def _columns(self) -> int:
        return max(1, math.ceil(len(self._images) / self._rows))

    def tile_rect(self, index: int) -> QRect:
        """Where tile `index` is drawn (widget coordinates)."""
        # column-major: channel 0, 1, 2... run down the first column, like reading a layer top to bottom
        col, row = divmod(index, self._rows)
        x = col * (self._tile.width() + GAP)
        y = row * (self._tile.height() + self._label_h + GAP)
        return QRect(x, y + self._label_h, self._tile.width(), self._tile.height())

    def sizeHint(self) -> QSize:
        rows = min(self._rows, len(self._images)) or 1
        return QSize(self._columns() * (self._tile.width() + GAP),
                     rows * (self._tile.height() + self._label_h + GAP))

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def index_at(self, point: QPoint) -> int | None:
        for i in range(len(self._images)):
            if self.tile_rect(i).adjusted(0, -self._label_h, 0, 0).contains(point):
                return i
        return None

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setFont(self._label_font)
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        for i, image in enumerate(self._images):
            cell = self.tile_rect(i)
            painter.drawImage(cell, image)  # no smoothing: each activation stays a crisp square
            painter.drawText(QRect(cell.x(), cell.y() - self._label_h, cell.width(), self._label_h),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, str(i))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        index = self.index_at(event.position().toPoint())
        if index is None:
            QToolTip.hideText()
        else:
            QToolTip.showText(event.globalPosition().toPoint(), self._tips[index], self, self.tile_rect(index))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        index = self.index_at(event.position().toPoint())
        if event.button() == Qt.MouseButton.LeftButton and index is not None:
            self.tile_clicked.emit(index)
        else:
            super().mousePressEvent(event)

    def tooltip_at(self, index: int) -> str:
        return self._tips[index]
