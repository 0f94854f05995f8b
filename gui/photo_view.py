"""An opened photo with the digit's region outlined; drag a box to choose another region, or paint to erase."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from core.photo import Region  # (x0, y0, x1, y1) in the photo's pixels (numpy only: no torch)
from gui.qt_images import gray_to_qimage

BOX, ERASE = "box", "erase"
ERASER_SHARE = 0.03  # the eraser's radius as a share of the photo's longer side


class PhotoView(QWidget):
    """Shows `source` scaled to fit. Tool BOX: a drag sets the region to read; ERASE: a drag paints pixels out."""

    edits_changed = Signal()  # the box or the erased pixels changed (the prediction should follow)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("photoView")
        self.setAccessibleName("Opened photo")
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 200)
        self.source: np.ndarray | None = None  # (H, W) uint8 as opened
        self._image: QImage | None = None
        self._box: Region | None = None         # the user's box; None: the whole photo
        self._erase: np.ndarray | None = None   # (H, W) bool, True where the user erased
        self._found: Region | None = None       # where the core found the digit (photo pixels)
        self._tool = BOX
        self._drag: list[tuple[float, float]] | None = None  # photo-pixel points of the drag in progress

    # ------------------------------------------------------------ state
    def set_photo(self, gray: np.ndarray) -> None:
        """Show a new photo (H, W) uint8 with no box and nothing erased."""
        self.source = np.ascontiguousarray(gray, dtype=np.uint8)
        self._image = gray_to_qimage(self.source)
        self._box = self._erase = self._found = None
        self._drag = None
        self.update()

    def set_tool(self, tool: str) -> None:
        self._tool = tool

    def tool(self) -> str:
        return self._tool

    def box(self) -> Region | None:
        return self._box

    def erased(self) -> np.ndarray | None:
        return self._erase

    def reset_edits(self) -> None:
        """Back to the whole photo, nothing erased."""
        self._box = self._erase = None
        self.update()
        self.edits_changed.emit()

    def set_found_region(self, region: Region | None) -> None:
        """The region the core read (photo pixels), outlined."""
        self._found = region
        self.update()

    def edited_input(self) -> tuple[np.ndarray, tuple[int, int]] | None:
        """What the predictor gets: the photo with erased pixels painted over and cropped to the box (uint8), and
        the crop's top-left in photo pixels; None without a photo."""
        if self.source is None:
            return None
        from core.photo import erase_and_crop  # OpenCV loads with the first photo, not at start-up

        gray, origin = erase_and_crop(self.source, self._box, self._erase)
        return np.clip(np.round(gray), 0, 255).astype(np.uint8), origin

    # ------------------------------------------------------------ geometry
    def sizeHint(self) -> QSize:
        return QSize(420, 420)

    def image_rect(self) -> QRectF:
        """Where the photo is drawn (widget coordinates): fitted, centred, aspect kept."""
        if self.source is None:
            return QRectF()
        h, w = self.source.shape
        scale = min((self.width() - 12) / w, (self.height() - 12) / h)
        return QRectF((self.width() - w * scale) / 2, (self.height() - h * scale) / 2, w * scale, h * scale)

    def to_photo(self, point: QPointF) -> tuple[float, float]:
        rect = self.image_rect()
        h, w = self.source.shape
        return ((point.x() - rect.x()) * w / rect.width(), (point.y() - rect.y()) * h / rect.height())

    def to_widget(self, x: float, y: float) -> QPointF:
        rect = self.image_rect()
        h, w = self.source.shape
        return QPointF(rect.x() + x * rect.width() / w, rect.y() + y * rect.height() / h)

    def _region_rect(self, region: Region) -> QRectF:
        x0, y0, x1, y1 = region
        return QRectF(self.to_widget(x0, y0), self.to_widget(x1, y1))

    # ------------------------------------------------------------ painting
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        if self._image is None:
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(self.image_rect(), self._image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self._erase is not None:  # erased pixels tinted, so the user sees what is ignored
            tint = np.zeros((*self._erase.shape, 4), np.uint8)
            tint[self._erase] = (255, 80, 80, 110)
            overlay = QImage(tint.data, tint.shape[1], tint.shape[0], tint.strides[0], QImage.Format.Format_RGBA8888)
            painter.drawImage(self.image_rect(), overlay)
        if self._box is not None:
            painter.setPen(QPen(QColor(40, 110, 220), 1.5, Qt.PenStyle.DashLine))
            painter.drawRect(self._region_rect(self._box))
        if self._found is not None:
            painter.setPen(QPen(QColor(20, 170, 60), 2.5))
            painter.drawRect(self._region_rect(self._found).adjusted(-2, -2, 2, 2))
        if self._drag and self._tool == BOX:
            (x0, y0), (x1, y1) = self._drag[0], self._drag[-1]
            painter.setPen(QPen(QColor(40, 110, 220), 1.5, Qt.PenStyle.DashLine))
            painter.drawRect(QRectF(self.to_widget(x0, y0), self.to_widget(x1, y1)).normalized())

    # ------------------------------------------------------------ mouse
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.source is None or event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        self._drag = [self.to_photo(event.position())]
        if self._tool == ERASE:
            self._paint_erase(self._drag)
        self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag is None:
            return super().mouseMoveEvent(event)
        self._drag.append(self.to_photo(event.position()))
        if self._tool == ERASE:
            self._paint_erase(self._drag[-2:])
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag is None or event.button() != Qt.MouseButton.LeftButton:
            return super().mouseReleaseEvent(event)
        self._drag.append(self.to_photo(event.position()))
        drag, self._drag = self._drag, None
        if self._tool == BOX:
            h, w = self.source.shape
            (ax, ay), (bx, by) = drag[0], drag[-1]
            x0, x1 = sorted((int(np.clip(ax, 0, w)), int(np.clip(bx, 0, w))))
            y0, y1 = sorted((int(np.clip(ay, 0, h)), int(np.clip(by, 0, h))))
            if x1 - x0 < 4 or y1 - y0 < 4:  # a click, not a box: nothing chosen
                self.update()
                return
            self._box = (x0, y0, x1, y1)
        else:
            self._paint_erase(drag[-2:])
        self.update()
        self.edits_changed.emit()

    def _paint_erase(self, points: list[tuple[float, float]]) -> None:
        """A round eraser along the segment through `points` (photo pixels)."""
        import cv2  # installed with the core's photo pipeline

        if self._erase is None:
            self._erase = np.zeros(self.source.shape, bool)
        radius = max(2, round(ERASER_SHARE * max(self.source.shape)))
        canvas = self._erase.view(np.uint8)
        pts = [(int(round(x)), int(round(y))) for x, y in points]
        for a, b in zip(pts, pts[1:] or pts):
            cv2.line(canvas, a, b, 1, 2 * radius)
        cv2.circle(canvas, pts[-1], radius, 1, -1)
