"""The Insight tab's parts: the pipeline row (28x28 -> feature maps -> outputs), the zoomed map and the layer table."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QHeaderView, QLabel, QLayout, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from gui.map_grid import MapGrid
from gui.probability_bars import BarChart
from gui.qt_images import gray_to_qimage, rgb_to_qimage

if TYPE_CHECKING:
    from core.insight import Explanation, LayerMaps


def pixmap(rgb_or_gray: np.ndarray, side: int) -> QPixmap:
    """A crisp (nearest-neighbour) square picture `side` px wide from (H, W) gray or (H, W, 3) RGB uint8."""
    image = gray_to_qimage(rgb_or_gray) if rgb_or_gray.ndim == 2 else rgb_to_qimage(rgb_or_gray)
    return QPixmap.fromImage(image.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.FastTransformation))


def map_tip(layer: "LayerMaps", channel: int, low: float | None = None, high: float | None = None) -> str:
    values = layer.maps[channel]
    h, w = values.shape
    low = float(values.min()) if low is None else low
    high = float(values.max()) if high is None else high
    return f"{layer.title}\nlayer {layer.name} ({layer.kind}) · channel {channel} · {w}×{h}\nvalues {low:.3g} to {high:.3g}"


def render_layers(explanation: "Explanation") -> list[tuple[list[QImage], list[str]]]:
    """Every layer's tiles as QImages with their tooltips. Called in the worker thread with the computation, so the
    GUI thread only places finished pictures (digitnet has 416 maps: rendering them there stalled drawing ~30 ms)."""
    from core.insight_render import activation_rgb

    rendered = []
    for layer in explanation.layers:
        top = max(float(layer.maps.max()), 1e-6)  # one scale per layer, so its channels compare
        rgb = activation_rgb(layer.maps, top)     # (C, H, W, 3) in one table lookup
        lows, highs = layer.maps.min(axis=(1, 2)), layer.maps.max(axis=(1, 2))
        rendered.append(([rgb_to_qimage(tile) for tile in rgb],
                         [map_tip(layer, c, float(lo), float(hi)) for c, (lo, hi) in enumerate(zip(lows, highs))]))
    return rendered


def short_title(layer: "LayerMaps") -> str:
    """Two short lines for a column's head, e.g. "Conv 2 + ReLU" / "32 maps, 14×14" (BatchNorm is in the tooltip)."""
    name = layer.title.split(":")[0].replace(" + BatchNorm", "")
    c, h, w = layer.maps.shape
    return f"{name}\n{c} maps, {w}×{h}" if h * w > 1 else f"{name}\n{c} numbers"


def _caption(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
    return label


class PipelineRow(QWidget):
    """Left to right: the 28x28 input, one grid per conv layer (and per pooling layer), the ten outputs."""

    map_clicked = Signal(int, int)  # (index into explanation.layers, channel)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._layout = QHBoxLayout(self)
        self._layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)  # the scroll area scrolls, never squeezes
        self._layout.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.seen = QLabel()
        self.seen.setToolTip("What the network sees: your drawing after MNIST-style preprocessing, 28×28 pixels")
        self.outputs = BarChart()
        self.outputs.setMinimumWidth(self.fontMetrics().horizontalAdvance("0") * 18)
        self.outputs.setToolTip("The ten outputs: softmax probability of each digit")
        self._grids: list[MapGrid] = []
        self._titles: list[QLabel] = []
        self._structure: list[tuple] = []
        self._build([])

    def _column(self, title: str, widget: QWidget) -> QWidget:
        column = QWidget()
        box = QVBoxLayout(column)
        box.setContentsMargins(4, 0, 4, 0)
        label = _caption(title)
        box.addWidget(label)
        box.addWidget(widget, 0, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        box.addStretch(1)
        self._titles.append(label)
        return column

    def _arrow(self) -> QLabel:
        arrow = QLabel("→")
        arrow.setEnabled(False)
        return arrow

    def _build(self, layers: list["LayerMaps"]) -> None:
        for kept in (self.seen, self.outputs):  # out of the old columns before those are deleted
            kept.setParent(None)
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self._grids, self._titles = [], []
        self._layout.addWidget(self._column("The network sees\n28×28", self.seen))
        for index, layer in enumerate(layers):
            grid = MapGrid()
            grid.tile_clicked.connect(lambda channel, index=index: self.map_clicked.emit(index, channel))
            self._layout.addWidget(self._arrow())
            self._layout.addWidget(self._column(short_title(layer), grid))
            self._grids.append(grid)
        self._layout.addWidget(self._arrow())
        self._layout.addWidget(self._column("Outputs", self.outputs))
        self._structure = [(layer.name, layer.maps.shape) for layer in layers]

    def show_explanation(self, explanation: "Explanation", rendered: list[tuple[list[QImage], list[str]]]) -> None:
        """`rendered`: render_layers(explanation), made in the worker thread."""
        structure = [(layer.name, layer.maps.shape) for layer in explanation.layers]
        if structure != self._structure:  # another architecture: new columns; same one: new pictures only
            self._build(explanation.layers)
        for grid, title, layer, (images, tips) in zip(self._grids, self._titles[1:], explanation.layers, rendered):
            grid.set_images(images, tips)
            title.setText(short_title(layer))
            title.setToolTip(layer.title)
        self.seen.setPixmap(pixmap(explanation.image28, 112))
        self.outputs.probabilities = list(explanation.probabilities)
        self.outputs.update()

    def clear(self) -> None:
        self.seen.clear()
        self.outputs.probabilities = None
        self.outputs.update()
        for grid in self._grids:
            grid.set_tiles([], [])

    def grids(self) -> list[MapGrid]:
        return list(self._grids)


class ZoomView(QWidget):
    """One feature map enlarged, with what it is; follows the drawing while it changes."""

    SIDE = 112

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.picture = QLabel()
        self.picture.setFixedSize(self.SIDE, self.SIDE)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text = QLabel("Click any feature map to see it large here.")
        self.text.setWordWrap(True)
        layout = QHBoxLayout(self)  # side by side: the tab it lives in is wider than it is tall
        layout.addWidget(self.picture, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.text, 1, Qt.AlignmentFlag.AlignTop)
        self.selected: tuple[int, int] | None = None  # (layer index, channel)

    def show_map(self, layer: "LayerMaps", channel: int) -> None:
        from core.insight_render import activation_rgb

        values = layer.maps[channel]
        self.picture.setPixmap(pixmap(activation_rgb(values, max(float(layer.maps.max()), 1e-6)), self.SIDE))
        h, w = values.shape
        self.text.setText(f"{short_title(layer).splitlines()[0]}, channel {channel}\n"
                          f"{w}×{h}, values {float(values.min()):.3g} to {float(values.max()):.3g}")
        self.text.setToolTip(map_tip(layer, channel))

    def clear(self) -> None:
        self.selected = None
        self.picture.clear()
        self.text.setText("Click any feature map to see it large here.")


class LayerTable(QWidget):
    """Every layer's output shape and parameters, and the total, for the model in use or any architecture."""

    IN_USE = "The model in use"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.choice = QComboBox()
        self.choice.setToolTip("See the layers of the model in use, or of any architecture this app can train")
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["layer", "type", "output shape", "parameters"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.note = QLabel("Shapes are (batch, channels, height, width), found by passing one blank image through "
                           "the network, the tutorial's trick for sizing the last Linear layer.")
        self.note.setWordWrap(True)
        self.note.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.choice)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.note)
        self._model = None
        self.choice.currentIndexChanged.connect(self.on_choice_current_index_changed)

    def set_model(self, model, arch: str | None) -> None:
        from core.models import ARCHITECTURES

        self._model = model
        self.choice.blockSignals(True)
        self.choice.clear()
        self.choice.addItem(f"{self.IN_USE} ({arch})" if arch else self.IN_USE)
        self.choice.addItems(list(ARCHITECTURES))
        self.choice.blockSignals(False)
        self._show(model)

    def on_choice_current_index_changed(self, index: int) -> None:
        from core.models import build_model

        self._show(self._model if index <= 0 else build_model(self.choice.itemText(index)))

    def _show(self, model) -> None:
        from core.models import summary

        rows = summary(model) if model is not None else []
        self.table.setRowCount(len(rows) + 1)
        for r, row in enumerate(rows):
            for c, value in enumerate([row.name, row.kind, str(tuple(row.output_shape)), f"{row.parameters:,}"]):
                item = QTableWidgetItem(value)
                if c == 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        total = sum(p.numel() for p in model.parameters()) if model is not None else 0
        for c, value in enumerate(["total", "", "", f"{total:,}"]):
            item = QTableWidgetItem(value)
            font = item.font()
            font.setBold(True)
            item.setFont(font)
            if c == 3:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(len(rows), c, item)

    def row_count(self) -> int:
        """Layers shown (without the total row)."""
        return self.table.rowCount() - 1
