"""The Evaluate tab: the weights in use on the MNIST test set: accuracy, confusion matrix, mistakes, a 2D map.

Evaluation runs in a worker thread with progress and Cancel; results are cached per weights (core.evaluation), so
switching back to weights already evaluated shows them at once. The map starts as PCA and switches to t-SNE when
that finishes in the background; the drawing on the pad is placed on it as you draw.
"""
from __future__ import annotations

import copy
from dataclasses import replace
from typing import TYPE_CHECKING, Callable

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSplitter,
                               QTabWidget, QVBoxLayout, QWidget)

from gui.background import MACHINE_THREADS, BackgroundTask
from gui.confusion_matrix import ConfusionMatrix
from gui.embedding_map import EmbeddingMap
from gui.gallery import Gallery
from gui.mnist_download import ensure_mnist

if TYPE_CHECKING:
    from core.embedding import Projection
    from core.evaluation import TestReport
    from core.predict import Predictor
    from gui.drawing_pad import DrawingPad


class EvaluateTab(QWidget):
    """set_predictor() gives it the weights in use; `data_folder()` says where MNIST is ("" = the default)."""

    image_chosen = Signal(object, str)  # (28, 28) uint8 test image, a caption: the user wants it on the pad
    report_shown = Signal(object)       # core.evaluation.TestReport now on screen
    map_changed = Signal(str)           # "pca" or "tsne": the map now shows this projection

    def __init__(self, pad: DrawingPad, data_folder: Callable[[], str], parent: QWidget | None = None):
        super().__init__(parent)
        self._pad = pad
        self._data_folder = data_folder
        self._predictor: Predictor | None = None
        self._report: TestReport | None = None
        self._projections: dict[str, Projection] = {}
        self._cache = None  # core.evaluation.ReportCache, made when the core is loaded
        self._task = BackgroundTask("evaluation", threads=MACHINE_THREADS)  # 10,000 images: every core
        self._task.progress_changed.connect(self.on_task_progress_changed)
        self._task.succeeded.connect(self.on_task_succeeded)
        self._task.failed.connect(self.on_task_failed)
        self._task.cancelled.connect(self.on_task_cancelled)
        self._task.finished.connect(self.on_task_finished)
        self._tsne = BackgroundTask("t-SNE", threads=1)  # one core: drawing and the Draw tab keep the other
        self._tsne.progress_changed.connect(self.on_tsne_progress_changed)
        self._tsne.succeeded.connect(self.on_tsne_succeeded)
        self._tsne.failed.connect(self.on_tsne_failed)

        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setObjectName("evaluateButton")
        self.evaluate_button.setToolTip("Run the weights in use on the 10,000 MNIST test images")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.matrix = ConfusionMatrix()
        self.normalized = QCheckBox("Row shares (%) instead of counts")
        self.normalized.setToolTip("Each cell as a share of that row's images: how often each digit is read as each")
        self.cell_gallery = Gallery("Click a cell of the confusion matrix to see its test images here.")
        self.mistakes_gallery = Gallery("Evaluate to see the mistakes the network was most sure of.")
        self.map = EmbeddingMap()
        self.map_choice = QComboBox()
        self.map_choice.addItem("PCA", "pca")
        self.map_choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.map_choice.setMinimumContentsLength(6)
        self.map_choice.setToolTip("PCA: a straight projection, at once. t-SNE: keeps neighbours together, computed "
                                   "in the background after each evaluation.")
        self.map_status = QLabel()
        self.map_status.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(self.evaluate_button)
        top.addWidget(self.cancel_button)
        top.addWidget(self.progress, 1)
        left = QVBoxLayout()
        left.addWidget(self.matrix, 1)
        left.addWidget(self.normalized)
        left_widget = QWidget()
        left_widget.setLayout(left)
        self.pages = QTabWidget()
        self.pages.addTab(self.cell_gallery, "Selected cell")
        self.pages.addTab(self.mistakes_gallery, "Most confident mistakes")
        self.pages.addTab(self._map_page(), "Map of the test set")
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left_widget)
        splitter.addWidget(self.pages)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(splitter, 1)

        self.evaluate_button.clicked.connect(self.on_evaluate_button_clicked)
        self.cancel_button.clicked.connect(self.on_cancel_button_clicked)
        self.normalized.toggled.connect(self.matrix.set_normalized)
        self.matrix.cell_clicked.connect(self.on_matrix_cell_clicked)
        self.cell_gallery.image_clicked.connect(self.on_gallery_image_clicked)
        self.mistakes_gallery.image_clicked.connect(self.on_gallery_image_clicked)
        self.map.point_clicked.connect(self.on_gallery_image_clicked)
        self.map_choice.currentIndexChanged.connect(self.on_map_choice_current_index_changed)
        self._marker_timer = QTimer(self)  # the star follows a stroke at most ~20 times a second
        self._marker_timer.setSingleShot(True)
        self._marker_timer.setInterval(50)
        self._marker_timer.timeout.connect(self.on_pad_drawing_changed)
        pad.drawing_changed.connect(self.on_pad_drawing_changed)
        pad.stroke_moved.connect(self.on_pad_stroke_moved)
        self._show_report(None, "Loading model…")

    def _map_page(self) -> QWidget:
        page = QWidget()
        self._pad_home = QVBoxLayout()
        explain = QLabel("Each dot is a test image, placed by what the network's last hidden layer makes of it and "
                         "coloured by its true digit: dots close together look alike to the network. The star is "
                         "your drawing; draw on the pad and watch it move. Click a dot to open that image.")
        explain.setWordWrap(True)
        choice_row = QHBoxLayout()
        choice_row.addWidget(QLabel("Map:"))
        choice_row.addWidget(self.map_choice)
        choice_row.addWidget(self.map_status, 1)
        right = QVBoxLayout()
        right.addLayout(choice_row)
        right.addWidget(self.map, 1)
        right.addWidget(explain)
        row = QHBoxLayout(page)
        row.addLayout(self._pad_home, 2)
        row.addLayout(right, 3)
        return page

    def dock_pad_panel(self, panel: QWidget) -> None:
        """Show the Draw tab's pad on the map page, so a drawing can be placed among the test images."""
        self._pad_home.addWidget(panel, 1)

    # ------------------------------------------------------------ model and cached results
    def set_predictor(self, predictor: Predictor | None) -> None:
        """Show the cached results of these weights at once, if any; otherwise offer to evaluate them."""
        self._task.cancel()  # results of other weights are no use now
        self._tsne.cancel()
        self._predictor = predictor
        if predictor is None:
            self._show_report(None, "No model loaded.")
            return
        from core.evaluation import ReportCache

        if self._cache is None:
            self._cache = ReportCache()
        report = self._cache.get(predictor.weights, self._data_dir())
        self._show_report(report, None if report else
                          f"Press Evaluate to test {predictor.weights.name} on the 10,000 MNIST test images.")

    def _data_dir(self) -> str | None:
        return self._data_folder() or None

    def start_evaluation(self) -> bool:
        """Evaluate the weights in use in the worker thread; False when busy or no model."""
        if self._predictor is None or self._task.is_running():
            return False
        if not ensure_mnist(self, self._data_dir(), self.start_evaluation):
            return False  # MNIST is being downloaded (gui/mnist_download.py): evaluation starts when it is there
        weights = self._predictor.weights
        private = replace(weights, model=copy.deepcopy(weights.model))  # the Draw tab keeps using the original
        data_dir = self._data_dir()

        def evaluate(control):
            from core.embedding import pca_projection
            from core.evaluation import evaluate_test_set

            report = evaluate_test_set(private, data_dir, on_progress=lambda done, total: control.report((done, total)),
                                       should_stop=control.should_stop)
            return None if report is None else (weights, data_dir, report, pca_projection(report.features))

        self._task.start(evaluate)
        self.evaluate_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText("Loading the MNIST test set…")
        return True

    def _show_report(self, report: TestReport | None, message: str | None = None,
                     pca: Projection | None = None) -> None:
        self._report = report
        self._projections = {}
        self._tsne.cancel()
        self.map_choice.blockSignals(True)
        while self.map_choice.count() > 1:
            self.map_choice.removeItem(1)
        self.map_choice.setCurrentIndex(0)
        self.map_choice.blockSignals(False)
        self.cell_gallery.clear()
        self.pages.setTabText(0, "Selected cell")
        if report is None:
            self.matrix.set_confusion(None)
            self.mistakes_gallery.clear()
            self.map.set_points(None, None)
            self.map.set_marker(None)
            self.map_status.setText("")
            self.status.setText(message or "")
            return
        from core.embedding import pca_projection

        ev = report.evaluation
        wrong = ev.n - round(ev.accuracy * ev.n)
        self.status.setText(f"<b>Test accuracy {100 * ev.accuracy:.2f}%</b> on {ev.n:,} MNIST test images "
                            f"({wrong:,} mistakes), weights {self._predictor.weights.name}. Rows: the true digit, "
                            "with its accuracy; columns: the answer. Click a cell to see its images.")
        self.matrix.set_confusion(ev.confusion)
        self._show_gallery(self.mistakes_gallery, report.confident_mistakes())
        self._projections["pca"] = pca if pca is not None else pca_projection(report.features)
        self._show_projection("pca")
        self._start_tsne(report)
        self.report_shown.emit(report)

    def _show_gallery(self, gallery: Gallery, indices: np.ndarray) -> None:
        r = self._report
        gallery.show_images(indices, r.images, r.labels, r.predictions, r.confidences)

    # ------------------------------------------------------------ the map
    def _start_tsne(self, report: TestReport) -> None:
        features, labels = report.features, report.labels

        def tsne(control):
            from core.embedding import tsne_projection

            return tsne_projection(features, should_stop=control.should_stop, labels=labels,
                                   on_progress=lambda done, total: control.report((done, total)))

        if not self._tsne.is_running():
            self._tsne.start(tsne)
            self.map_status.setText("t-SNE is being computed in the background…")

    def _show_projection(self, method: str) -> None:
        projection = self._projections[method]
        self.map.set_points(projection.points, self._report.labels)
        self.update_marker()
        self.map_changed.emit(method)

    def current_projection(self) -> Projection | None:
        method = self.map_choice.currentData()
        return self._projections.get(method)

    def update_marker(self) -> None:
        """Place what is on the pad on the map (the same preprocessing and model as the Draw tab)."""
        projection = self.current_projection()
        image = self._pad.model_input()
        if projection is None or image is None or self._predictor is None:
            self.map.set_marker(None)
            return
        import torch

        from core.embedding import penultimate_features
        from core.preprocess import to_gray

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as the Draw tab: one image on one thread never waits on a busy core
        try:
            prepared = self._predictor.read_many([to_gray(image)])[0].prepared  # the Draw tab's very reading
            if prepared.empty:
                self.map.set_marker(None)
                return
            features = penultimate_features(self._predictor.model, prepared.tensor.unsqueeze(0))  # (1, D)
        finally:
            torch.set_num_threads(threads)
        x, y = projection.place(features)[0]
        self.map.set_marker((float(x), float(y)))

    # ------------------------------------------------------------ slots
    @Slot()
    def on_evaluate_button_clicked(self) -> None:
        self.start_evaluation()

    @Slot()
    def on_cancel_button_clicked(self) -> None:
        self._task.cancel()
        self.status.setText("Cancelling…")

    @Slot(object)
    def on_task_progress_changed(self, progress: tuple[int, int]) -> None:
        done, total = progress
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.status.setText(f"Evaluating: {done:,} of {total:,} test images…")

    @Slot(object)
    def on_task_succeeded(self, result) -> None:
        if result is None:
            return
        weights, data_dir, report, pca = result
        self._cache.put(weights, data_dir, report)
        if self._predictor is not None and self._predictor.weights is weights:  # still the weights in use
            self.progress.setValue(self.progress.maximum())
            self._show_report(report, pca=pca)

    @Slot(str)
    def on_task_failed(self, message: str) -> None:
        self.progress.setValue(0)
        self.status.setText(f"<b>Could not evaluate.</b> {message}")

    @Slot()
    def on_task_cancelled(self) -> None:
        self.progress.setValue(0)
        if self._report is None:
            self.status.setText("Cancelled. Press Evaluate to start again.")

    @Slot()
    def on_task_finished(self) -> None:
        self.evaluate_button.setEnabled(self._predictor is not None)
        self.cancel_button.setEnabled(False)

    @Slot(object)
    def on_tsne_progress_changed(self, progress: tuple[int, int]) -> None:
        done, total = progress
        self.map_status.setText(f"t-SNE is being computed in the background: {100 * done // max(total, 1)}%")

    @Slot(object)
    def on_tsne_succeeded(self, projection: Projection | None) -> None:
        if projection is None or self._report is None or len(projection.points) != len(self._report.labels):
            return
        self._projections["tsne"] = projection
        self.map_choice.addItem("t-SNE", "tsne")
        self.map_status.setText("t-SNE is ready: choose it above.")

    @Slot(str)
    def on_tsne_failed(self, message: str) -> None:
        self.map_status.setText(f"t-SNE could not be computed: {message}")

    @Slot(int)
    def on_map_choice_current_index_changed(self, index: int) -> None:
        method = self.map_choice.itemData(index)
        if method in self._projections:
            self._show_projection(method)

    @Slot(int, int)
    def on_matrix_cell_clicked(self, true: int, predicted: int) -> None:
        if self._report is None:
            return
        indices = self._report.cell(true, predicted)
        self._show_gallery(self.cell_gallery, indices)
        what = f"{true}s read right" if true == predicted else f"{true}s read as {predicted}"
        self.pages.setTabText(0, f"Selected cell: {what} ({len(indices):,})")
        self.pages.setCurrentIndex(0)

    @Slot(int)
    def on_gallery_image_clicked(self, index: int) -> None:
        r = self._report
        if r is None:
            return
        true, answer = int(r.labels[index]), int(r.predictions[index])
        self.image_chosen.emit(r.images[index].copy(), f"test image #{index}, a {true} read as {answer} "
                                                       f"({100 * float(r.confidences[index]):.1f}% sure)")

    @Slot()
    def on_pad_stroke_moved(self) -> None:
        if not self._marker_timer.isActive():
            self._marker_timer.start()

    @Slot()
    def on_pad_drawing_changed(self) -> None:
        if self.isVisible() and self._report is not None:
            self.update_marker()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._report is not None:
            self.update_marker()

    # ------------------------------------------------------------ for tests and the window
    def report(self) -> TestReport | None:
        return self._report

    def is_busy(self) -> bool:
        return self._task.is_running()

    def shutdown(self) -> None:
        self._task.shutdown()
        self._tsne.shutdown()
