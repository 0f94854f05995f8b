"""Several runs' curves in one chart (pyqtgraph): smoothed loss (left, log) and training accuracy (right, dashed)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from gui.loss_chart import SMOOTHING, TwoAxisChart

if TYPE_CHECKING:
    from core.runs import RunRecord

# matplotlib's tab10: distinct on light and dark backgrounds
RUN_COLORS = [QColor(c) for c in ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                                  "#7f7f7f", "#bcbd22", "#17becf")]


def smoothed(values: list[float | None]) -> np.ndarray:
    """Bias-corrected exponential moving average, as the Train tab's chart draws its loss; gaps (None) carry on."""
    out, average, seen = np.empty(len(values)), 0.0, 0
    for i, value in enumerate(values):
        if value is not None:
            seen += 1
            average = SMOOTHING * average + (1 - SMOOTHING) * value
        out[i] = average / (1 - SMOOTHING ** seen) if seen else np.nan
    return out


def has_curve(record: RunRecord) -> bool:
    """Whether the run has at least one loss point to draw (a run stopped before its first batch has none)."""
    return any(x is not None and y is not None for x, y in zip(record.curve["samples"], record.curve["loss"]))


def run_label(record: RunRecord) -> str:
    """The legend's name for a run: when it started, what it made, and its test accuracy."""
    accuracy = record.test_accuracy
    shown = f", {100 * accuracy:.2f}%" if accuracy is not None else ""
    return f"{record.started[5:16].replace('T', ' ')} {record.name}{shown}"


class RunsChart(TwoAxisChart):
    """x is samples seen (comparable across batch sizes and between training and fine-tuning); each run its own
    colour, solid for the loss and dashed for the training accuracy; the legend names each run once."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("runsChart")
        self.setMinimumHeight(160)
        plot = self.getPlotItem()
        plot.setLogMode(y=True)
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setLabel("bottom", "samples seen")
        plot.setLabel("left", "loss (smoothed)")
        plot.setMenuEnabled(False)
        self._legend = plot.addLegend(offset=(-10, 10))
        self._accuracy_view = pg.ViewBox()
        plot.scene().addItem(self._accuracy_view)
        right = plot.getAxis("right")
        right.linkToView(self._accuracy_view)
        right.setLabel("training accuracy (%, dashed)")
        right.setLogMode(False, False)
        self._accuracy_view.setXLink(plot)
        self._accuracy_view.setLimits(yMin=0, yMax=100.5)
        plot.vb.sigResized.connect(self._sync_views)
        self._loss_items: list[pg.PlotDataItem] = []
        self._accuracy_items: list[pg.PlotDataItem] = []
        self._apply_palette()
        self.set_runs([])

    def set_runs(self, records: list[RunRecord]) -> list[RunRecord]:
        """Draw these runs (in order, colours by position) and return those left out: a run with no loss point (one
        stopped before its first batch) gets no line, no legend entry and no axis. No runs: empty axes."""
        plot = self.getPlotItem()
        for item in self._loss_items:
            plot.removeItem(item)
        for item in self._accuracy_items:
            self._accuracy_view.removeItem(item)
        self._loss_items, self._accuracy_items = [], []
        self._legend.clear()
        drawn = [record for record in records if has_curve(record)]
        for index, record in enumerate(drawn):
            color = RUN_COLORS[index % len(RUN_COLORS)]
            samples = np.asarray(record.curve["samples"], dtype=float)
            loss = np.maximum(smoothed(record.curve["loss"]), 1e-6)  # the log axis needs positive values
            item = plot.plot(samples, loss, pen=pg.mkPen(color, width=2), name=run_label(record))
            item.setDownsampling(auto=True, method="mean")
            self._loss_items.append(item)
            if any(x is not None and a is not None for x, a in zip(record.curve["samples"], record.curve["accuracy"])):
                accuracy = pg.PlotDataItem(samples, 100 * smoothed(record.curve["accuracy"]),
                                           pen=pg.mkPen(color, width=1.5, style=Qt.PenStyle.DashLine))
                self._accuracy_view.addItem(accuracy)
                self._accuracy_items.append(accuracy)
        plot.showAxis("right", bool(self._accuracy_items))
        plot.enableAutoRange()
        self._accuracy_view.enableAutoRange(axis=pg.ViewBox.YAxis)
        return [record for record in records if not has_curve(record)]

    def legend_names(self) -> list[str]:
        return [label.text for _, label in self._legend.items]

    def loss_series(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(samples, smoothed loss) of each run drawn, in legend order."""
        return [(item.xData, item.yData) for item in self._loss_items]

    def accuracy_series_count(self) -> int:
        return len(self._accuracy_items)

    def right_axis_shown(self) -> bool:
        return self.getPlotItem().getAxis("right").isVisible()
