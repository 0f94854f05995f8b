"""The drawing pad: a square sheet of paper; strokes are kept as point lists so undo and resize re-render them."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPen, QResizeEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from gui.qt_images import gray_to_qimage, qimage_to_gray

UNITS = 280           # brush widths are in 1/280ths of the paper's side (10x MNIST's 28 px)
# A digit drawn ~2/3 of the pad tall (~180 units) scales to 20 px, so 24 units -> ~2.6 px strokes at 28x28:
# measured, its preview then holds as much ink as MNIST's digits (mean intensity ~0.13 for a 0, MNIST 0.16).
DEFAULT_BRUSH = 24
BRUSH_RANGE = (6, 60)
RENDER_SIDE = 280     # the predictor sees the paper at this resolution, whatever the widget's size

Stroke = list[tuple[float, float]]  # points in paper coordinates: (0, 0) top-left, (1, 1) bottom-right


class DrawingPad(QWidget):
    """Draw with the mouse (tablets and touch arrive as synthesized mouse events), or show an opened image."""

    stroke_moved = Signal()     # the stroke in progress grew (listeners throttle live predictions)
    drawing_changed = Signal()  # a stroke ended, or undo / clear / a new image changed the drawing

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("drawingPad")
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 200)
        self.setAccessibleName("Drawing pad")
        self._strokes: list[tuple[Stroke, float]] = []  # (points, brush width in UNITS)
        self._current: Stroke | None = None
        self._brush = float(DEFAULT_BRUSH)
        self._background: np.ndarray | None = None      # (H, W) uint8 gray of an opened image
        self._background_image: QImage | None = None
        self._paper = 255                               # paper grey level; an image brings its own
        self._cache: QImage | None = None               # committed strokes at device resolution

    # ------------------------------------------------------------ state
    def brush_width(self) -> float:
        return self._brush

    def set_brush_width(self, units: float) -> None:
        """Width of the next strokes; strokes already drawn keep theirs."""
        self._brush = float(min(max(units, BRUSH_RANGE[0]), BRUSH_RANGE[1]))

    def is_blank(self) -> bool:
        return not self._strokes and self._current is None and self._background is None

    def stroke_count(self) -> int:
        return len(self._strokes)

    def has_image(self) -> bool:
        return self._background is not None

    def clear(self) -> None:
        """Remove every stroke and any opened image."""
        self._strokes.clear()
        self._current = None
        self._background = self._background_image = None
        self._paper = 255
        self._changed()

    def undo(self) -> bool:
        """Remove the last stroke; False when there is none."""
        if not self._strokes:
            return False
        self._strokes.pop()
        self._changed()
        return True

    def set_image(self, gray: np.ndarray) -> None:
        """Show an opened image (H, W) uint8 in place of the drawing; later strokes are drawn on top of it."""
        self._background = np.ascontiguousarray(gray, dtype=np.uint8)
        self._background_image = gray_to_qimage(self._background)
        self._paper = int(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])))
        self._strokes.clear()
        self._current = None
        self._changed()

    def _changed(self) -> None:
        self._cache = None
        self.update()
        self.drawing_changed.emit()

    # ------------------------------------------------------------ what the predictor gets
    def model_input(self) -> np.ndarray | None:
        """(H, W) uint8 for the core's preprocessing: the opened image untouched, else the paper; None when blank."""
        if self.is_blank():
            return None
        if self._background is not None and not self._strokes and self._current is None:
            return self._background
        side = RENDER_SIDE if self._background is None else max(RENDER_SIDE, min(1024, max(self._background.shape)))
        return self.render_array(side)

    def render_array(self, side: int = RENDER_SIDE) -> np.ndarray:
        """The paper with every stroke (the one in progress too) as (side, side) uint8, independent of the widget."""
        image = QImage(side, side, QImage.Format.Format_RGB32)
        painter = QPainter(image)
        self._render(painter, side, include_current=True)
        painter.end()
        return qimage_to_gray(image)

    # ------------------------------------------------------------ geometry and painting
    def canvas_rect(self) -> QRectF:
        """The paper: the largest centred square with a small margin (widget coordinates)."""
        margin = 6.0
        side = max(1.0, min(self.width(), self.height()) - 2 * margin)
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def sizeHint(self) -> QSize:
        return QSize(420, 420)

    def _ink(self) -> QColor:
        value = 0 if self._paper > 127 else 255  # ink contrasts with the paper (black on white by default)
        return QColor(value, value, value)

    def _draw_stroke(self, painter: QPainter, points: Stroke, width: float, side: float) -> None:
        pen = QPen(self._ink(), width * side / UNITS, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                   Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        scaled = [QPointF(x * side, y * side) for x, y in points]
        if len(scaled) == 1:
            painter.drawPoint(scaled[0])  # a dot: the round cap makes it a disc
            return
        # quadratic curves through the midpoints smooth the mouse's polyline without lagging behind it
        path = QPainterPath(scaled[0])
        for a, b in zip(scaled[1:-1], scaled[2:]):
            path.quadTo(a, (a + b) / 2)
        path.lineTo(scaled[-1])
        painter.drawPath(path)

    def _render(self, painter: QPainter, side: float, include_current: bool) -> None:
        painter.fillRect(QRectF(0, 0, side, side), QColor(self._paper, self._paper, self._paper))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self._background_image is not None:
            h, w = self._background.shape
            scale = side / max(h, w)  # fit, keeping the aspect ratio
            painter.drawImage(QRectF((side - w * scale) / 2, (side - h * scale) / 2, w * scale, h * scale),
                              self._background_image)
        for points, width in self._strokes:
            self._draw_stroke(painter, points, width, side)
        if include_current and self._current:
            self._draw_stroke(painter, self._current, self._brush, side)

    def paintEvent(self, event: QPaintEvent) -> None:
        rect = self.canvas_rect()
        ratio = self.devicePixelRatioF()
        pixels = max(1, round(rect.width() * ratio))
        if self._cache is None or self._cache.width() != pixels:
            self._cache = QImage(pixels, pixels, QImage.Format.Format_RGB32)
            cache_painter = QPainter(self._cache)
            self._render(cache_painter, pixels, include_current=False)
            cache_painter.end()
        painter = QPainter(self)
        painter.drawImage(rect, self._cache)
        painter.setPen(QPen(self.palette().mid().color(), 1))
        painter.drawRect(rect.adjusted(-0.5, -0.5, 0.5, 0.5))
        painter.setClipRect(rect)
        painter.translate(rect.topLeft())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self._current:
            self._draw_stroke(painter, self._current, self._brush, rect.width())  # only the live stroke is redrawn
        elif self.is_blank():
            painter.setPen(QColor(160, 160, 160))
            painter.drawText(QRectF(0, 0, rect.width(), rect.height()), Qt.AlignmentFlag.AlignCenter,
                             "Draw a digit here")

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._cache = None  # re-rendered from the strokes at the new size
        super().resizeEvent(event)

    # ------------------------------------------------------------ mouse (and synthesized tablet/touch)
    def _paper_point(self, event: QMouseEvent) -> tuple[float, float]:
        rect = self.canvas_rect()
        pos = event.position()
        return ((pos.x() - rect.x()) / rect.width(), (pos.y() - rect.y()) / rect.height())

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        self._current = [self._paper_point(event)]
        self.update()
        self.stroke_moved.emit()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._current is None:
            return super().mouseMoveEvent(event)
        x, y = self._paper_point(event)
        last_x, last_y = self._current[-1]
        if abs(x - last_x) + abs(y - last_y) < 1.0 / self.canvas_rect().width():
            return  # less than a pixel: nothing new to draw
        self._current.append((x, y))
        self.update()
        self.stroke_moved.emit()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._current is None or event.button() != Qt.MouseButton.LeftButton:
            return super().mouseReleaseEvent(event)
        x, y = self._paper_point(event)
        last_x, last_y = self._current[-1]
        if abs(x - last_x) + abs(y - last_y) >= 1.0 / self.canvas_rect().width():
            self._current.append((x, y))
        stroke, self._current = self._current, None
        self._strokes.append((stroke, self._brush))
        if self._cache is not None:  # add just this stroke to the cached paper instead of re-rendering all
            painter = QPainter(self._cache)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            self._draw_stroke(painter, stroke, self._brush, self._cache.width())
            painter.end()
        self.update()
        self.drawing_changed.emit()
