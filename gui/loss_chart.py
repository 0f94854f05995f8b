"""The live training chart (pyqtgraph): batch loss raw and smoothed, training accuracy, validation per epoch."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QTimer, Slot
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget

SMOOTHING = 0.95  # exponential moving average of the batch loss (~20-batch memory), bias-corrected
# pyqtgraph paints in Python, holding the GIL (12 ms idle, 25-40 ms while training), and the training thread waits:
# redrawn on every progress report (20/s), the quick preset trained 1.5x slower than without a chart on 2 cores;
# redrawn at most every 250 ms, 1.15x (bench/gui_responsiveness.py)
REDRAW_MS = 250

LOSS_COLOR = QColor(31, 119, 180)
VAL_LOSS_COLOR = QColor(255, 127, 14)
VAL_ACCURACY_COLOR = QColor(44, 160, 44)
TRAIN_ACCURACY_COLOR = QColor(148, 103, 189)


class TwoAxisChart(pg.PlotWidget):
    """A plot with a second view box on the right axis (accuracy), a legend, and colours that follow the palette;
    subclasses make `_legend` and `_accuracy_view` and connect the plot's `sigResized` to `_sync_views`."""

    def _sync_views(self) -> None:
        plot = self.getPlotItem()
        self._accuracy_view.setGeometry(plot.vb.sceneBoundingRect())
        self._accuracy_view.linkedViewChanged(plot.vb, self._accuracy_view.XAxis)

    def _apply_palette(self) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        self.setBackground(palette.color(QPalette.ColorRole.Base))
        for name in ("left", "bottom", "right"):
            axis = self.getPlotItem().getAxis(name)
            axis.setPen(pg.mkPen(text))
            axis.setTextPen(pg.mkPen(text))
        self._legend.setLabelTextColor(text)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "_legend"):
            self._apply_palette()
        super().changeEvent(event)


class LossChart(TwoAxisChart):
    """x is the batch number over all epochs; loss on a log axis (left), accuracy in % (right).

    A series enters the legend with its first point, and the right axis shows with the first accuracy: a run
    without a validation share never shows validation entries."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("lossChart")
        self.setMinimumHeight(180)
        plot = self.getPlotItem()
        plot.setLogMode(y=True)  # a loss falling from 2.3 to 0.02 stays readable end to end
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setLabel("bottom", "batch")
        plot.setLabel("left", "loss")
        plot.setMenuEnabled(False)
        self._legend = plot.addLegend(offset=(-10, 10))
        faint = QColor(LOSS_COLOR)
        faint.setAlpha(70)
        self._raw = plot.plot(pen=pg.mkPen(faint, width=1))
        self._raw.setDownsampling(auto=True, method="peak")  # thousands of batches stay interactive
        self._raw.setClipToView(True)
        self._smooth = plot.plot(pen=pg.mkPen(LOSS_COLOR, width=2))
        self._val_loss = plot.plot(pen=pg.mkPen(VAL_LOSS_COLOR, width=2), symbol="o", symbolSize=7,
                                   symbolBrush=VAL_LOSS_COLOR, symbolPen=None)
        # accuracies get their own view box, drawn against the right axis
        self._accuracy_view = pg.ViewBox()
        plot.scene().addItem(self._accuracy_view)
        plot.getAxis("right").linkToView(self._accuracy_view)
        plot.getAxis("right").setLabel("accuracy (%)")
        plot.getAxis("right").setLogMode(False, False)  # setLogMode above applied to every axis; accuracy is linear
        self._accuracy_view.setXLink(plot)
        self._accuracy_view.setLimits(yMin=0, yMax=100.5)  # autorange never shows accuracies above 100%
        self._accuracy = pg.PlotDataItem(pen=pg.mkPen(VAL_ACCURACY_COLOR, width=2), symbol="s", symbolSize=7,
                                         symbolBrush=VAL_ACCURACY_COLOR, symbolPen=None)
        self._accuracy_view.addItem(self._accuracy)
        self._train_accuracy = pg.PlotDataItem(pen=pg.mkPen(TRAIN_ACCURACY_COLOR, width=2))
        self._train_accuracy.setDownsampling(auto=True, method="mean")  # one point per batch, like the raw loss
        self._train_accuracy.setClipToView(True)
        self._accuracy_view.addItem(self._train_accuracy)
        self._names = {self._raw: "batch loss", self._smooth: "smoothed loss", self._train_accuracy:
                       "training accuracy (smoothed)", self._val_loss: "validation loss",
                       self._accuracy: "validation accuracy"}  # in legend order
        plot.vb.sigResized.connect(self._sync_views)
        self._apply_palette()
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(REDRAW_MS)
        self._redraw_timer.timeout.connect(self.on_redraw_timer_timeout)
        self.reset()

    def reset(self) -> None:
        """Forget every point (a new run starts)."""
        self._redraw_timer.stop()
        self._losses: list[float] = []
        self._smoothed: list[float] = []
        self._average = 0.0
        self._accuracies: list[float] = []  # smoothed training accuracy in %, one per batch that reported one
        self._accuracy_average = 0.0
        self._epochs: list[tuple[int, float | None, float | None]] = []  # (batch, val loss, val accuracy)
        for item in self._names:
            item.setData([], [])
        self._legend.clear()
        self.getPlotItem().showAxis("right", False)
        # sensible empty axes (log10 units on the left: 0.01 to 3); they follow the data once it arrives
        plot = self.getPlotItem()
        plot.setRange(xRange=(0, 100), yRange=(-2, 0.5), padding=0)
        self._accuracy_view.setRange(yRange=(80, 100), padding=0)
        plot.enableAutoRange()
        self._accuracy_view.enableAutoRange(axis=pg.ViewBox.YAxis)

    def add_losses(self, losses: list[float], accuracies: list[float] | None = None) -> None:
        """Append batch losses (and their batches' training accuracies, 0..1) in order; the curves are redrawn at
        most every REDRAW_MS."""
        for loss in losses:
            self._losses.append(loss)
            self._average = SMOOTHING * self._average + (1 - SMOOTHING) * loss
            self._smoothed.append(self._average / (1 - SMOOTHING ** len(self._losses)))
        for accuracy in accuracies or []:
            self._accuracy_average = SMOOTHING * self._accuracy_average + (1 - SMOOTHING) * 100 * accuracy
            self._accuracies.append(self._accuracy_average / (1 - SMOOTHING ** (len(self._accuracies) + 1)))
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()

    @Slot()
    def on_redraw_timer_timeout(self) -> None:
        x = np.arange(1, len(self._losses) + 1)
        # the log axis needs positive values; a loss of exactly 0 is drawn at 1e-6
        self._raw.setData(x, np.maximum(self._losses, 1e-6))
        self._smooth.setData(x, np.maximum(self._smoothed, 1e-6))
        if self._accuracies:
            self._train_accuracy.setData(np.arange(1, len(self._accuracies) + 1), self._accuracies)
        self._sync_legend()

    def add_epoch(self, batch: int, val_loss: float | None, val_accuracy: float | None) -> None:
        """One validation point at the batch where the epoch ended (no point when there is no validation share)."""
        self._redraw_timer.stop()
        self.on_redraw_timer_timeout()  # the loss curve reaches the epoch's end before its point shows
        self._epochs.append((batch, val_loss, val_accuracy))
        losses = [(b, v) for b, v, _ in self._epochs if v is not None]
        accuracies = [(b, 100 * a) for b, _, a in self._epochs if a is not None]
        if losses:
            self._val_loss.setData([b for b, _ in losses], [max(v, 1e-6) for _, v in losses])
        if accuracies:
            self._accuracy.setData([b for b, _ in accuracies], [a for _, a in accuracies])
        self._sync_legend()

    def set_loss_note(self, note: str) -> None:
        """A tooltip on the chart (e.g. why a label-smoothed loss levels off); empty for none."""
        self.setToolTip(note)

    def legend_names(self) -> list[str]:
        """The legend's entries, in order: only series that have data."""
        return [label.text for _, label in self._legend.items]

    def right_axis_shown(self) -> bool:
        return self.getPlotItem().getAxis("right").isVisible()

    def _sync_legend(self) -> None:
        """Legend entries for exactly the series with data, in a fixed order; the right axis once an accuracy is."""
        wanted = [item for item in self._names if item.xData is not None and len(item.xData)]
        if [sample.item for sample, _ in self._legend.items] != wanted:
            self._legend.clear()
            for item in wanted:
                self._legend.addItem(item, self._names[item])
        self.getPlotItem().showAxis("right", self._accuracy in wanted or self._train_accuracy in wanted)

    def point_count(self) -> int:
        """How many batch losses the chart holds."""
        return len(self._losses)

    def epoch_points(self) -> list[tuple[int, float | None, float | None]]:
        return list(self._epochs)
