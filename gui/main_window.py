"""The main window: the Draw, Insight, Evaluate, My digits, Train and Runs tabs, menus, weights, messages and
settings."""
from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, QTimer, Qt, Signal, Slot
from PySide6.QtGui import (QAction, QCloseEvent, QKeySequence)
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QMessageBox, QTabWidget, QWidget

from gui.background import MACHINE_THREADS, BackgroundTask, apply_gui_torch_threads
from gui.draw_tab import DrawTab
from gui.drawing_pad import BRUSH_RANGE
from gui.evaluate_tab import EvaluateTab
from gui.image_input import ImageInputMixin
from gui.insight_tab import InsightTab
from gui.model_loader import StartupModel, load_startup_model
from gui.my_digits_tab import MyDigitsTab
from gui.remembered_settings import remembered_bytes, remembered_folder, remembered_int, remembered_text
from gui.runs_view import RunsView
from gui.train_tab import TrainTab
from gui.weights_files import WeightsFilesMixin

if TYPE_CHECKING:
    from core.predict import Predictor
    from core.weights import LoadedWeights

APP_TITLE = "Digit Recognizer"
ONNX_TIP = "A model for onnxruntime and other runtimes: input (N, 1, 28, 28) preprocessed and normalized, output logits"


def describe(weights: LoadedWeights) -> str:
    """One line for the status bar: name, architecture, test accuracy."""
    accuracy = weights.test_accuracy
    shown = "test accuracy unknown" if accuracy is None else f"test accuracy {100 * accuracy:.2f}%"
    return f"Weights: {weights.name} · {weights.arch} · {shown}"


class MainWindow(ImageInputMixin, WeightsFilesMixin, QMainWindow):
    """Constructible without an event loop; the model loads in a thread right after, see is_model_ready()."""

    model_ready = Signal()       # a model is in use: at startup, after Load weights, after training, after going back
    message_shown = Signal(str)  # a message box was shown (non-modal, so nothing blocks; tests observe this)

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._settings = settings if settings is not None else QSettings()
        self._predictor: Predictor | None = None
        self._previous: LoadedWeights | None = None  # the model in use before training replaced it
        self._messages: list[str] = []
        self._message_box: QMessageBox | None = None
        self._help_window: QWidget | None = None
        self._loader = BackgroundTask("loading the model", threads=MACHINE_THREADS, parent=self)
        self._closed = False
        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self.draw_tab = DrawTab()
        self.train_tab = TrainTab()
        self.insight_tab = InsightTab(self.draw_tab.pad)
        self.evaluate_tab = EvaluateTab(self.draw_tab.pad, self.train_tab.form.data_folder)
        self.my_digits_tab = MyDigitsTab(self.draw_tab.library, self.current_weights, self.train_tab.form.data_folder)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.draw_tab, "&Draw")
        self.tabs.addTab(self.insight_tab, "&Insight")
        self.tabs.addTab(self.evaluate_tab, "Ev&aluate")
        self.tabs.addTab(self.my_digits_tab, "&My digits")
        self.tabs.addTab(self.train_tab, "&Train")
        self.runs_view = RunsView()  # every kept training and fine-tuning run (core/runs.py)
        self.tabs.addTab(self.runs_view, "R&uns")
        self.setCentralWidget(self.tabs)
        self.weights_label = QLabel("Loading model…")
        self.weights_label.setObjectName("weightsStatus")
        self.statusBar().addPermanentWidget(self.weights_label)
        self._build_menus()
        self._restore_settings()

        self.tabs.currentChanged.connect(self.on_tabs_current_changed)
        self.draw_tab.open_button.clicked.connect(self.open_image_dialog)
        self.draw_tab.previous_weights_requested.connect(self.on_draw_tab_previous_weights_requested)
        self.train_tab.weights_trained.connect(self.on_train_tab_weights_trained)
        self.train_tab.training_failed.connect(self.on_train_tab_training_failed)
        self.train_tab.training_ended.connect(self.runs_view.refresh)  # the run's record is written by then
        self.runs_view.weights_requested.connect(self.load_weights_file)  # File > Load weights' own path
        self.evaluate_tab.image_chosen.connect(self.on_evaluate_tab_image_chosen)
        self.my_digits_tab.weights_finetuned.connect(self.on_my_digits_tab_weights_finetuned)
        self.my_digits_tab.previous_weights_requested.connect(self.on_draw_tab_previous_weights_requested)
        self._loader.succeeded.connect(self.on_loader_succeeded)
        self._loader.failed.connect(self.on_loader_failed)
        self._loader.finished.connect(self.on_loader_finished)
        app = QApplication.instance()
        if app is not None:  # quitting without closing this window must still stop and join the worker threads
            app.aboutToQuit.connect(self._shutdown_workers)
        self.draw_tab.pad.setFocus()
        QTimer.singleShot(0, self._start_loading)  # after the first paint when run(); at the first event in tests

    # ------------------------------------------------------------ building
    def _action(self, menu, text: str, slot, shortcuts=(), tip: str = "") -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "&Open image…", self.open_image_dialog, [QKeySequence.StandardKey.Open],
                     "Recognize the digit in an image file")
        self._action(file, "&Paste image", self.paste_image, [QKeySequence.StandardKey.Paste],
                     "Recognize an image from the clipboard")
        file.addSeparator()
        self.load_action = self._action(file, "&Load weights…", self.load_weights_dialog, ["Ctrl+L"],
                                        "Use a weights file (this app's or the tutorial's cnn_mnist.pth)")
        self._action(file, "Use the &default weights", self.use_default_weights, [],
                     "Go back to the weights shipped with the app")
        self.save_action = self._action(file, "&Save weights as…", self.save_weights_dialog,
                                        [QKeySequence.StandardKey.SaveAs, "Ctrl+S"],
                                        "Save the weights in use to a file")
        export = file.addMenu("&Export")
        self.export_action = self._action(export, "For the &tutorial script…", self.export_tutorial_dialog,
                                          ["Ctrl+E"], "Write a bare state_dict the tutorial's script loads (tutorial "
                                                      "architecture only)")
        self.export_onnx_action = self._action(export, "&ONNX…", lambda: self.export_dialog("onnx"), [], ONNX_TIP)
        self.export_safetensors_action = self._action(export, "&safetensors…",
                                                      lambda: self.export_dialog("safetensors"), [],
                                                      "The weights and their metadata as .safetensors (loads like a "
                                                      ".pt file)")
        export.setToolTipsVisible(True)  # a greyed-out entry says why on hover
        file.addSeparator()
        self._action(file, "&Quit", self.close, [QKeySequence.StandardKey.Quit, "Ctrl+Q"])
        edit = bar.addMenu("&Edit")
        self.undo_action = self._action(edit, "&Undo stroke", self.draw_tab.pad.undo, [QKeySequence.StandardKey.Undo])
        self.clear_action = self._action(edit, "&Clear pad", self.draw_tab.pad.clear, ["Esc", "Delete"])
        train = bar.addMenu("T&raining")
        self._action(train, "&Start training", self._start_training_from_menu, ["Ctrl+T"])
        self._action(train, "S&top training", self.train_tab.stop_training, ["Ctrl+Shift+T"])
        view = bar.addMenu("&View")
        for number, (tab, name) in enumerate([(self.draw_tab, "&Draw"), (self.insight_tab, "&Insight"),
                                              (self.evaluate_tab, "Ev&aluate"), (self.my_digits_tab, "&My digits"),
                                              (self.train_tab, "&Train"), (self.runs_view, "R&uns")], 1):
            self._action(view, f"{name} tab", lambda _=False, tab=tab: self.tabs.setCurrentWidget(tab),
                         [f"Ctrl+{number}"])
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", self._show_shortcuts, ["F1"],
                     "Every keyboard shortcut of the menus")
        self._action(help_menu, "&Where are my files?", self._show_files, [],
                     "The folders of your weights, samples, MNIST data and log, to copy or open")
        help_menu.addSeparator()
        self._action(help_menu, "&About", self._show_about, [], "Version, and what works offline")
        for action in (self.save_action, self.export_action, self.export_onnx_action, self.export_safetensors_action):
            action.setEnabled(False)  # until a model is loaded

    @Slot()
    def _start_training_from_menu(self) -> None:
        self.tabs.setCurrentWidget(self.train_tab)
        self.train_tab.start_training()

    @Slot()
    def _show_about(self) -> None:
        from gui.help_dialogs import about_box

        self._show_help_window(about_box(self, APP_TITLE))

    @Slot()
    def _show_shortcuts(self) -> None:
        from gui.help_dialogs import ShortcutsDialog

        self._show_help_window(ShortcutsDialog(self.menuBar(), self))  # read from the menus now: always current

    @Slot()
    def _show_files(self) -> None:
        from gui.help_dialogs import FilesDialog

        self._show_help_window(FilesDialog(self))

    def _show_help_window(self, window: QWidget) -> None:
        """One Help window at a time, non-modal (the app stays usable beside it); help_window() for tests."""
        if self._help_window is not None:
            self._help_window.close()
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        window.destroyed.connect(lambda _=None, w=window: self._forget_help_window(w))
        self._help_window = window
        window.show()

    def _forget_help_window(self, window: QWidget) -> None:
        if self._help_window is window:
            self._help_window = None

    def help_window(self) -> QWidget | None:
        return self._help_window

    # ------------------------------------------------------------ remembered settings (QSettings)
    def _restore_settings(self) -> None:
        """Every remembered value is checked; a bad one (a hand-edited or damaged file) gives its default."""
        geometry = remembered_bytes(self._settings, "window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1100, 720)
        self._fit_to_screen()
        brush = self.draw_tab.brush_slider
        brush.setValue(remembered_int(self._settings, "draw/brush", *BRUSH_RANGE, brush.value()))
        self.train_tab.form.set_data_folder(remembered_folder(self._settings, "train/data_dir"))

    def _fit_to_screen(self) -> None:
        """Keep the window, frame included, inside its screen's available area (a remembered geometry from a larger
        screen, or the default size on a small laptop, would otherwise open partly off-screen)."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None:
            return
        area = screen.availableGeometry()
        frame = self.frameGeometry()
        # before the first show the frame is unknown: allow for a typical title bar and border
        extra_w = max(frame.width() - self.width(), 0) or 16
        extra_h = max(frame.height() - self.height(), 0) or 40
        width = min(self.width(), area.width() - extra_w)
        height = min(self.height(), area.height() - extra_h)
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)
        x = min(max(frame.x(), area.left()), area.right() + 1 - width - extra_w)
        y = min(max(frame.y(), area.top()), area.bottom() + 1 - height - extra_h)
        if (x, y) != (frame.x(), frame.y()):
            self.move(max(x, area.left()), max(y, area.top()))

    def _save_settings(self) -> None:
        self._settings.setValue("window/geometry", self.saveGeometry())
        self._settings.setValue("draw/brush", self.draw_tab.brush_slider.value())
        self._settings.setValue("train/data_dir", self.train_tab.form.data_folder())
        self._settings.sync()

    # ------------------------------------------------------------ the model in use
    def _start_loading(self) -> None:
        if self._closed:
            return  # closed before the event loop got here: nothing to load for
        remembered = remembered_text(self._settings, "weights/last")
        self._loader.start(lambda control: load_startup_model(remembered, control))

    def is_model_ready(self) -> bool:
        return self._predictor is not None

    def current_weights(self) -> LoadedWeights | None:
        return None if self._predictor is None else self._predictor.weights

    def _use(self, predictor: Predictor) -> None:
        """Make this model the one the Draw tab uses, show it in the status bar and remember its file."""
        self._predictor = predictor
        weights = predictor.weights
        self.draw_tab.set_predictor(predictor)
        self.insight_tab.set_predictor(predictor)
        self.evaluate_tab.set_predictor(predictor)
        self.my_digits_tab.set_predictor(predictor)
        self.weights_label.setText(describe(weights))
        self.weights_label.setToolTip(str(weights.path or ""))
        self.save_action.setEnabled(True)
        self.export_action.setEnabled(weights.arch == "tutorial")  # the tutorial's script builds only its own net
        self._enable_onnx_export()
        self.export_safetensors_action.setEnabled(True)
        from core import paths

        is_default = weights.path is not None and Path(weights.path).resolve() == paths.DEFAULT_WEIGHTS.resolve()
        self._settings.setValue("weights/last", "" if is_default or weights.path is None else str(weights.path))
        self.model_ready.emit()

    def _enable_onnx_export(self) -> None:
        """File > Export > ONNX only where its optional packages are installed; otherwise its tips say what to
        install (checked each time a model comes into use)."""
        from core import export

        missing = export.missing_onnx_packages()
        tip = ONNX_TIP if not missing else (f"ONNX export needs {' and '.join(missing)}, not installed here: "
                                            f"pip install {' '.join(missing)}")
        self.export_onnx_action.setEnabled(not missing)
        self.export_onnx_action.setStatusTip(tip)
        self.export_onnx_action.setToolTip(tip)

    def _use_weights(self, weights: LoadedWeights) -> None:
        from core.predict import Predictor

        self._use(Predictor(weights))

    # ------------------------------------------------------------ messages
    def show_message(self, text: str, title: str = APP_TITLE,
                     icon: QMessageBox.Icon = QMessageBox.Icon.Warning) -> None:
        """A non-modal message box (never blocks the caller); the text is kept for last_message()."""
        if self._message_box is not None:
            self._message_box.close()
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(self.on_message_box_finished)
        self._message_box = box
        self._messages.append(text)
        box.show()
        self.message_shown.emit(text)

    def last_message(self) -> str | None:
        return self._messages[-1] if self._messages else None

    # ------------------------------------------------------------ slots
    @Slot(object)
    def on_loader_succeeded(self, loaded: StartupModel) -> None:
        apply_gui_torch_threads()  # torch is loaded now, and this thread has not used it yet
        if loaded.predictor is None:
            return self._show_no_model(loaded.message)
        self._use(loaded.predictor)
        if loaded.message:
            self.show_message(loaded.message)

    @Slot(str)
    def on_loader_failed(self, message: str) -> None:
        self._show_no_model(f"The model could not be loaded: {message}")  # e.g. a broken torch install

    def _show_no_model(self, message: str) -> None:
        self.weights_label.setText("No model loaded")
        self.draw_tab.set_predictor(None, "No model loaded")
        self.insight_tab.set_predictor(None)
        self.evaluate_tab.set_predictor(None)
        self.my_digits_tab.set_predictor(None)
        self.show_message(message)

    @Slot()
    def on_loader_finished(self) -> None:
        if gc.get_freeze_count() == 0:
            # Qt, pyqtgraph, torch and the model (~230k objects) live as long as the app: out of the collector's
            # reach, a full collection (it pauses every Python thread, the GUI's too) while training on 2 busy cores
            # takes ~25-45 ms instead of 80-170 ms (bench/gui_responsiveness.py). Once per process.
            gc.freeze()

    @Slot(object)
    def on_train_tab_weights_trained(self, weights: LoadedWeights) -> None:
        self._previous = self.current_weights()
        self._use_weights(weights)
        stopped = weights.metrics.get("stopped") is True  # Stop, then "Keep the model trained so far"
        which = "partly trained weights kept at Stop" if stopped else "weights you just trained"
        self.draw_tab.show_notice(f"Now using the {which}: {weights.name} "
                                  f"(test accuracy {100 * weights.test_accuracy:.2f}%).",
                                  can_go_back=self._previous is not None)
        self.statusBar().showMessage(f"Training stopped; the partly trained model is kept and in use: {weights.name}"
                                     if stopped else f"Training done: now using {weights.name}", 10000)

    @Slot(object)
    def on_my_digits_tab_weights_finetuned(self, weights: LoadedWeights) -> None:
        self._previous = self.current_weights()
        self._use_weights(weights)
        self.draw_tab.show_notice(f"Now using the weights fine-tuned on your handwriting: {weights.name}.",
                                  can_go_back=self._previous is not None)
        done = "Fine-tuning stopped; what it learned is kept and in use:" if weights.metrics.get("stopped") else \
            "Fine-tuning done: now using"
        self.statusBar().showMessage(f"{done} {weights.name}", 10000)

    @Slot(str)
    def on_train_tab_training_failed(self, message: str) -> None:
        self.show_message(f"Training failed: {message} The current model stays in use.")

    @Slot()
    def on_draw_tab_previous_weights_requested(self) -> None:
        if self._previous is None:
            return
        previous, self._previous = self._previous, None
        self._use_weights(previous)
        self.draw_tab.hide_notice()
        self.statusBar().showMessage(f"Back to {previous.name}", 5000)

    @Slot(int)
    def on_tabs_current_changed(self, index: int) -> None:
        tab = self.tabs.widget(index)
        drawing = hasattr(tab, "dock_pad_panel")  # the tabs that show the pad borrow it (it keeps its strokes)
        if drawing:
            tab.dock_pad_panel(self.draw_tab.pad_panel)
        self.undo_action.setEnabled(drawing)   # Esc, Delete and Ctrl+Z belong to the pad only where it is shown
        self.clear_action.setEnabled(drawing)

    @Slot(object, str)
    def on_evaluate_tab_image_chosen(self, image28, caption: str) -> None:
        """A test image from a gallery or the map goes onto the pad, and the Insight tab shows why it was read so."""
        self.draw_tab.pad.set_image(image28)
        self.tabs.setCurrentWidget(self.insight_tab)
        self.statusBar().showMessage(f"On the pad: {caption}", 10000)

    @Slot()
    def _shutdown_workers(self) -> None:
        """Stop every worker and join its thread: no running QThread outlives the window."""
        self.train_tab.shutdown()
        self.insight_tab.shutdown()
        self.evaluate_tab.shutdown()
        self.my_digits_tab.shutdown()
        self.shutdown_export()  # gui/weights_files.py

    @Slot(int)
    def on_message_box_finished(self, result: int) -> None:
        self._message_box = None

    def closeEvent(self, event: QCloseEvent) -> None:
        self._closed = True
        self._shutdown_workers()  # stop the workers and join their threads before the window goes
        self._loader.shutdown()  # loading cannot be interrupted, but it ends on its own
        self._save_settings()
        super().closeEvent(event)
