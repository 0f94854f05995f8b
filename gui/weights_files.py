"""Weights files from the File menu and drops: load, save as, export (tutorial, ONNX, safetensors), and their dialogs."""
from __future__ import annotations

import copy
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QFileDialog, QProgressBar

from gui.background import BackgroundTask

if TYPE_CHECKING:
    from core.weights import LoadedWeights

WEIGHTS_FILTER = "Weights (*.pt *.pth *.safetensors);;All files (*)"
# File > Export: format -> (file dialog title, default suffix, file filter); the writing is core.export's
EXPORT_DIALOGS = {
    "tutorial": ("Export for the tutorial script", ".pth", "PyTorch state_dict (*.pth);;All files (*)"),
    "onnx": ("Export as ONNX", ".onnx", "ONNX model (*.onnx);;All files (*)"),
    "safetensors": ("Export as safetensors", ".safetensors", "safetensors (*.safetensors);;All files (*)"),
}


class WeightsFilesMixin:
    """Part of MainWindow (it provides current_weights, _use, _use_weights, _previous, draw_tab, statusBar and
    show_message). The window's state changes only after a load fully succeeded."""

    def load_weights_file(self, path: str | Path) -> bool:
        """The slot File > Load weights… (and a dropped .pt file) calls; a bad file shows why and keeps the current
        model: nothing changes until the file is loaded and its predictor built."""
        from core.predict import Predictor
        from core.weights import WeightsError, load_weights

        try:
            predictor = Predictor(load_weights(path))
        except WeightsError as exc:
            self.show_message(f"Could not load the weights: {exc}. The current model stays in use.")
            return False
        except Exception as exc:  # any loader failure is one message; its traceback goes to the log
            logging.getLogger(__name__).exception("loading weights from %s failed", path)
            self.show_message(f"Could not load the weights from {Path(path).name} (unexpected {type(exc).__name__}: "
                              f"{exc}). The current model stays in use.")
            return False
        self._previous = None
        self.draw_tab.hide_notice()
        self._use(predictor)
        self.statusBar().showMessage(f"Loaded {predictor.weights.name}", 5000)
        return True

    @Slot()
    def use_default_weights(self) -> bool:
        from core import paths

        return self.load_weights_file(paths.DEFAULT_WEIGHTS)

    def save_weights_file(self, path: str | Path) -> bool:
        """Save the weights in use (atomically) under a new name, which they then carry."""
        from core.weights import WeightsError, save_weights

        weights = self.current_weights()
        if weights is None:
            return False
        try:  # refuses folders, pipes, devices, write-protected files and the shipped defaults; follows symlinks
            path = save_weights(path, weights.model, weights.arch, weights.arch_args, weights.normalization,
                                weights.settings, weights.metrics)
        except WeightsError as exc:
            self.show_message(f"Could not save the weights: {exc}.")
            return False
        except OSError as exc:
            self.show_message(f"Could not save the weights to {path}: {exc.strerror or exc}")
            return False
        self._use_weights(replace(weights, path=path))  # the weights in use now carry the new name
        self.statusBar().showMessage(f"Saved {Path(path).name}", 5000)
        return True

    def export_tutorial_file(self, path: str | Path) -> bool:
        """Write a bare state_dict for the tutorial's own inference script (tutorial architecture only)."""
        return self.export_file(path, "tutorial")

    def export_file(self, path: str | Path, fmt: str) -> bool:
        """Write the weights in use as `fmt` (tutorial, onnx or safetensors: see core.export); a failure shows why.
        ONNX takes seconds of tracing, so it runs in `export_task` and True means started: its outcome is a
        status-bar line or one message, after `export_task.finished`."""
        weights = self.current_weights()
        if weights is None:
            return False
        if fmt == "onnx":
            return self._start_onnx_export(weights, Path(path))
        return self._show_export_outcome(fmt, Path(path), _write_export(fmt, weights, path))

    @property
    def export_task(self) -> BackgroundTask:
        """The ONNX export's worker thread (made on first use; shut down with the window's other workers)."""
        task = getattr(self, "_export_task", None)
        if task is None:
            task = self._export_task = BackgroundTask("ONNX export", parent=self)
            task.succeeded.connect(self.on_export_task_succeeded)
            task.failed.connect(self.on_export_task_failed)
            task.finished.connect(self.on_export_task_finished)
        return task

    def shutdown_export(self) -> None:
        """Join a running export's thread (the window is closing); the exporter cannot stop early, so it finishes."""
        if getattr(self, "_export_task", None) is not None:
            self._export_task.shutdown()

    def _start_onnx_export(self, weights: LoadedWeights, path: Path) -> bool:
        # a private copy: the exporter switches the model to eval mode while the Draw tab may be predicting with it
        private = replace(weights, model=copy.deepcopy(weights.model))
        if not self.export_task.start(lambda _control: _write_export("onnx", private, path)):
            self.show_message("An ONNX export is still running; try again when it has finished.")
            return False
        self._export_path = path
        self._export_busy = QProgressBar()  # busy (no steps: the exporter reports none)
        self._export_busy.setObjectName("exportBusy")
        self._export_busy.setRange(0, 0)
        self._export_busy.setMaximumWidth(120)
        self.statusBar().addPermanentWidget(self._export_busy)
        self.statusBar().showMessage(f"Exporting {path.name} as ONNX…")
        return True

    def _show_export_outcome(self, fmt: str, path: Path, failure: str | None) -> bool:
        if failure is not None:
            self.show_message(failure)
            return False
        done = "for the tutorial's script" if fmt == "tutorial" else f"as {fmt}"
        self.statusBar().showMessage(f"Exported {path.name} {done}", 5000)
        return True

    @Slot(object)
    def on_export_task_succeeded(self, failure: str | None) -> None:
        self.statusBar().clearMessage()  # "Exporting…" goes, whatever the outcome
        self._show_export_outcome("onnx", self._export_path, failure)

    @Slot(str)
    def on_export_task_failed(self, message: str) -> None:
        self.statusBar().clearMessage()
        self.show_message(f"Could not export {self._export_path.name}: {message}")

    @Slot()
    def on_export_task_finished(self) -> None:
        self.statusBar().removeWidget(self._export_busy)
        self._export_busy.deleteLater()

    # ------------------------------------------------------------ dialogs (thin: they call the slots above)
    @Slot()
    def load_weights_dialog(self) -> None:
        from core import paths

        path, _ = QFileDialog.getOpenFileName(self, "Load weights", str(paths.user_weights_dir()), WEIGHTS_FILTER)
        if path:
            self.load_weights_file(path)

    @Slot()
    def save_weights_dialog(self) -> None:
        from core import paths

        weights = self.current_weights()
        suggested = paths.user_weights_dir() / (weights.name if weights and weights.path else "weights.pt")
        path, _ = QFileDialog.getSaveFileName(self, "Save weights as", str(suggested), WEIGHTS_FILTER)
        if path:
            self.save_weights_file(path)

    @Slot()
    def export_tutorial_dialog(self) -> None:
        self.export_dialog("tutorial")

    def export_dialog(self, fmt: str) -> None:
        title, suffix, file_filter = EXPORT_DIALOGS[fmt]
        weights = self.current_weights()
        stem = "cnn_mnist" if fmt == "tutorial" or weights is None or weights.path is None else Path(weights.name).stem
        path, _ = QFileDialog.getSaveFileName(self, title, stem + suffix, file_filter)
        if path:
            self.export_file(path, fmt)


def _write_export(fmt: str, weights: LoadedWeights, path: str | Path) -> str | None:
    """Write the export; None when done, else the one message saying why not. No widgets: it runs on either thread."""
    from core.export import ExportError, export_onnx, export_safetensors
    from core.weights import WeightsError, export_tutorial

    write = {"tutorial": export_tutorial, "onnx": export_onnx, "safetensors": export_safetensors}[fmt]
    try:
        write(weights, path)
    except (WeightsError, ExportError) as exc:
        hint = (" Train with the \"tutorial\" preset to get weights its script can load."
                if fmt == "tutorial" and weights.arch != "tutorial" else "")
        return f"Could not export: {exc}.{hint}"
    except OSError as exc:
        return f"Could not write {path}: {exc.strerror or exc}"
    return None
