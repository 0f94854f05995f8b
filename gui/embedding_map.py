"""The 2D map of the test set (pyqtgraph): one dot per test image coloured by its digit, and a marker for the drawing.

Points are the penultimate layer's features projected to 2D (PCA, or t-SNE once computed). Nearby points are images
the network finds alike; the drawing's marker moves as you draw. Clicking a dot emits its test-set index.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

# Ten distinguishable colours (Tableau 10, the usual choice for categorical scatter plots)
DIGIT_COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                "#9c755f", "#bab0ac"]


class EmbeddingMap(pg.PlotWidget):
    """set_points(points (N, 2), labels (N,)); set_marker(x, y) or None; point_clicked(index)."""

    point_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("embeddingMap")
        plot = self.getPlotItem()
        plot.hideAxis("left")
        plot.hideAxis("bottom")
        plot.setMenuEnabled(False)
        plot.setAspectLocked(False)
        self._legend = plot.addLegend(offset=(-10, 10), labelTextSize="8pt")
        self._scatters: list[pg.ScatterPlotItem] = []
        for digit, colour in enumerate(DIGIT_COLORS):
            brush = QColor(colour)
            brush.setAlpha(150)
            scatter = pg.ScatterPlotItem(size=4, pen=None, brush=brush, name=str(digit))
            scatter.sigClicked.connect(self.on_scatter_clicked)
            plot.addItem(scatter)
            self._scatters.append(scatter)
        self._marker = pg.ScatterPlotItem(size=22, symbol="star", brush=pg.mkBrush("#000000"),
                                          pen=pg.mkPen("#ffffff", width=2), name="your drawing")
        self._marker.setZValue(10)
        plot.addItem(self._marker)
        self._point_count = 0

    def set_points(self, points: np.ndarray | None, labels: np.ndarray | None) -> None:
        """One dot per row of `points` (N, 2), coloured by `labels` (N,) 0-9; None clears the map."""
        self._point_count = 0 if points is None else len(points)
        for digit, scatter in enumerate(self._scatters):
            if points is None:
                scatter.setData([], [])
                continue
            index = np.flatnonzero(labels == digit)
            scatter.setData(x=points[index, 0], y=points[index, 1], data=index)
        self.getPlotItem().enableAutoRange()

    def set_marker(self, xy: tuple[float, float] | None) -> None:
        """Where the drawing lands on the map (None hides the marker)."""
        if xy is None:
            self._marker.setData([], [])
        else:
            self._marker.setData([xy[0]], [xy[1]])

    def marker_position(self) -> tuple[float, float] | None:
        x, y = self._marker.getData()
        return None if len(x) == 0 else (float(x[0]), float(y[0]))

    def point_count(self) -> int:
        return self._point_count

    def on_scatter_clicked(self, scatter, points, event=None) -> None:
        if len(points):
            self.point_clicked.emit(int(points[0].data()))
