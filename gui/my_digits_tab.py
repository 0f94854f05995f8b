"""The My digits tab: your saved samples by digit, what the model in use reads in them, and fine-tuning on them.

Per digit: the samples and the model's accuracy on them; delete one, a digit's or all (with Undo); import and export
folders in ImageFolder layout (in a worker thread); and "Teach it my handwriting" (gui/finetune_panel.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
                               QPushButton, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from gui.background import BackgroundTask
from gui.finetune_panel import FinetunePanel
from gui.sample_grid import SampleGrid
from gui.sample_library import SampleLibrary

if TYPE_CHECKING:
    from core.predict import Predictor
    from core.samples import DeletedSamples, ImportReport, Sample
    from core.weights import LoadedWeights

ALL_ROW = 10          # the digit table's last row: every sample
SKIPPED_NAMED = 5     # an import report names this many skipped files, then counts the rest


def accuracy_text(right: int, total: int) -> str:
    return "\u2013" if total == 0 else f"{right}/{total} ({100 * right / total:.0f}%)"


class MyDigitsTab(QWidget):
    """set_predictor() gives it the model in use; current_weights() is the base for fine-tuning."""

    weights_finetuned = Signal(object)     # core.weights.LoadedWeights: fine-tuned, saved, to be used
    previous_weights_requested = Signal()  # go back to the weights used before fine-tuning
    files_done = Signal(str)               # an import or export ended; the message shown

    def __init__(self, library: SampleLibrary, current_weights: Callable[[], LoadedWeights | None],
                 data_folder: Callable[[], str], parent: QWidget | None = None):
        super().__init__(parent)
        self.library = library
        self._undo: tuple[DeletedSamples, int] | None = None  # the last deletion and how many samples it held
        self._files = BackgroundTask("sample files", parent=self)  # import / export: never on the GUI thread
        self._files.succeeded.connect(self.on_files_succeeded)
        self._files.failed.connect(self.on_files_failed)
        self._files.finished.connect(self.on_files_finished)
        self._files_message: Callable[[object], str] | None = None

        self.table = QTableWidget(11, 3)
        self.table.setObjectName("digitTable")
        self.table.setHorizontalHeaderLabels(["Digit", "Samples", "Read right"])
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setToolTip("Choose a digit to see its samples; \u201cRead right\u201d is how many of them the "
                              "model in use recognizes")
        for row in range(11):
            item = QTableWidgetItem("All" if row == ALL_ROW else str(row))
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            self.table.setItem(row, 0, item)
            for column in (1, 2):
                cell = QTableWidgetItem()
                cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, cell)
        self.summary = QLabel()
        self.summary.setObjectName("samplesSummary")
        self.summary.setWordWrap(True)
        self.grid = SampleGrid()
        self.delete_button = QPushButton("Delete selected")
        self.delete_button.setObjectName("deleteSelected")
        self.delete_button.setToolTip("Delete the samples selected in the grid (Delete key); Undo brings them back")
        self.delete_digit_button = QPushButton("Delete a digit's")
        self.delete_digit_button.setObjectName("deleteDigit")
        self.delete_digit_button.setToolTip("Delete every sample of the digit chosen in the table; Undo brings them "
                                            "back")
        self.delete_all_button = QPushButton("Delete all")
        self.delete_all_button.setObjectName("deleteAll")
        self.delete_all_button.setToolTip("Delete all your samples; Undo brings them back")
        self.undo_button = QPushButton("Undo")
        self.undo_button.setObjectName("undoDelete")
        self.undo_button.setEnabled(False)
        self.import_button = QPushButton("Import folder\u2026")
        self.import_button.setToolTip("Add the images of a folder with subfolders 0 to 9 (ImageFolder layout)")
        self.export_button = QPushButton("Export\u2026")
        self.export_button.setToolTip("Copy your samples into a folder, one subfolder per digit (ImageFolder layout)")
        self.message = QLabel()
        self.message.setObjectName("samplesMessage")
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # file names are shown as they are
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.finetune = FinetunePanel(library, current_weights, data_folder)

        actions = QHBoxLayout()
        for button in (self.delete_button, self.delete_digit_button, self.delete_all_button, self.undo_button):
            actions.addWidget(button)
        actions.addStretch(1)
        actions.addWidget(self.import_button)
        actions.addWidget(self.export_button)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.summary)
        right_layout.addWidget(self.grid, 1)
        right_layout.addLayout(actions)
        right_layout.addWidget(self.message)
        self._splitter = QSplitter()
        self._splitter.addWidget(self.table)
        self._splitter.addWidget(right)
        self._splitter.setStretchFactor(1, 1)
        teach_box = QGroupBox("Fine-tune on your samples")
        explanation = QLabel("Trains the weights in use a little more on your samples, mixed with MNIST images so "
                             "that it does not forget them; saves the result as new weights and uses them (you can go "
                             "back). A share of your samples is held out to show the accuracy before and after.")
        explanation.setWordWrap(True)
        teach_layout = QVBoxLayout(teach_box)
        teach_layout.addWidget(explanation)
        teach_layout.addWidget(self.finetune)
        layout = QVBoxLayout(self)
        layout.addWidget(self._splitter, 1)
        layout.addWidget(teach_box)

        self.table.selectRow(ALL_ROW)
        self.table.itemSelectionChanged.connect(self.on_table_item_selection_changed)
        self.grid.delete_requested.connect(self.delete_selected)
        self.grid.itemSelectionChanged.connect(self._update_buttons)
        self.delete_button.clicked.connect(self.delete_selected)
        self.delete_digit_button.clicked.connect(self.delete_digit)
        self.delete_all_button.clicked.connect(self.delete_all)
        self.undo_button.clicked.connect(self.undo_delete)
        self.import_button.clicked.connect(self.on_import_button_clicked)
        self.export_button.clicked.connect(self.on_export_button_clicked)
        self.finetune.weights_finetuned.connect(self.weights_finetuned)
        self.finetune.previous_weights_requested.connect(self.previous_weights_requested)
        self.library.samples_changed.connect(self.on_library_samples_changed)
        self.library.predictions_changed.connect(self.on_library_predictions_changed)
        self._shown = False  # the grid is filled the first time the tab shows (the folder may hold many files)

    # ------------------------------------------------------------ the model in use
    def set_predictor(self, predictor: Predictor | None) -> None:
        self.library.set_predictor(predictor)
        self.finetune.set_weights_in_use(None if predictor is None else predictor.weights)

    def shutdown(self) -> None:
        """Stop every worker and join its thread (the window is closing)."""
        self.finetune.shutdown()
        self._files.shutdown()
        self.library.shutdown()

    # ------------------------------------------------------------ what is shown
    def selected_digit(self) -> int | None:
        """The digit chosen in the table; None for "All"."""
        rows = self.table.selectionModel().selectedRows()
        row = rows[0].row() if rows else ALL_ROW
        return None if row == ALL_ROW else row

    def select_digit(self, digit: int | None) -> None:
        self.table.selectRow(ALL_ROW if digit is None else digit)

    def _fill_grid(self) -> None:
        digit = self.selected_digit()
        samples = sorted(self.library.samples(digit), key=lambda s: s.digit)  # by digit, oldest first within one
        empty = ("No samples yet. Draw a digit in the Draw tab and press its number, or use \u201cTeach me\u201d."
                 if digit is None else f"No samples of {digit} yet.")
        self.grid.show_samples(self.library, samples, empty)
        self._update_numbers()

    def _update_numbers(self) -> None:
        counts = self.library.counts()
        accuracy = self.library.accuracy_by_digit()
        model = self.library.predictor() is not None
        for digit in range(10):
            self.table.item(digit, 1).setText(str(counts[digit]))
            self.table.item(digit, 2).setText(accuracy_text(*accuracy[digit]) if model else "\u2013")
        right, judged = sum(r for r, _ in accuracy), sum(t for _, t in accuracy)
        self.table.item(ALL_ROW, 1).setText(str(sum(counts)))
        self.table.item(ALL_ROW, 2).setText(accuracy_text(right, judged) if model else "\u2013")
        total = sum(counts)
        if total == 0:
            text = "No samples saved yet."
        elif not model:
            text = f"{total} samples. No model is loaded, so none is read."
        else:
            text = f"{total} samples; the model in use reads {right} of {judged} right"
            text += f" ({100 * right / judged:.0f}%)." if judged else "."
            if self.library.is_busy():
                text += " Reading the rest\u2026"
        self.summary.setText(text)
        self._update_buttons()

    def _update_buttons(self) -> None:
        digit, files_busy = self.selected_digit(), self._files.is_running()
        shown = bool(self.grid.shown_samples())
        self.delete_button.setEnabled(bool(self.grid.selectedItems()) and not files_busy)
        self.delete_digit_button.setText("Delete a digit's" if digit is None else f"Delete all {digit}s")
        self.delete_digit_button.setEnabled(digit is not None and shown and not files_busy)
        self.delete_all_button.setEnabled(bool(self.library.samples()) and not files_busy)
        self.undo_button.setEnabled(self._undo is not None and not files_busy)
        self.import_button.setEnabled(not files_busy)
        self.export_button.setEnabled(not files_busy and bool(self.library.samples()))

    # ------------------------------------------------------------ deleting, with a way back
    @Slot()
    def delete_selected(self) -> int:
        return self._delete(self.grid.selected_samples(), "selected")

    @Slot()
    def delete_digit(self) -> int:
        digit = self.selected_digit()
        return 0 if digit is None else self._delete(self.library.samples(digit), f"of {digit}")

    @Slot()
    def delete_all(self) -> int:
        return self._delete(self.library.samples(), "")

    def _delete(self, samples: list[Sample], which: str) -> int:
        if not samples:
            return 0
        from core.samples import SamplesError

        try:
            deleted = self.library.delete(samples)
        except (SamplesError, OSError) as exc:
            self.message.setText(f"Could not delete: {exc}. Nothing was deleted.")
            self.library.reload()
            return 0
        self._undo = (deleted, len(samples))
        noun = "sample" if len(samples) == 1 else "samples"
        self.message.setText(f"Deleted {len(samples)} {noun}{' ' + which if which else ''}. Undo brings "
                             f"{'it' if len(samples) == 1 else 'them'} back.")
        self._update_buttons()
        return len(samples)

    @Slot()
    def undo_delete(self) -> int:
        if self._undo is None:
            return 0
        from core.samples import SamplesError

        deleted, _ = self._undo
        try:
            restored = self.library.restore(deleted)
        except (SamplesError, OSError) as exc:
            self.message.setText(f"Could not restore the samples: {exc}.")
            return 0
        self._undo = None
        self.message.setText(f"Restored {restored} {'sample' if restored == 1 else 'samples'}.")
        self._update_buttons()
        return restored

    # ------------------------------------------------------------ import and export (worker thread)
    def import_folder(self, folder: str | Path) -> bool:
        """Add a folder's samples (ImageFolder layout); the report arrives in `message` and files_done."""
        store, folder = self.library.store, Path(folder)
        return self._run_files(lambda control: store.import_folder(folder),
                               lambda report: self._import_message(report, folder), f"Importing {folder}\u2026")

    def export_folder(self, folder: str | Path) -> bool:
        store, folder = self.library.store, Path(folder)
        return self._run_files(lambda control: store.export_folder(folder),
                               lambda n: f"Exported {n} {'sample' if n == 1 else 'samples'} to {folder} (one "
                                         "subfolder per digit).", f"Exporting to {folder}\u2026")

    def _run_files(self, work, message: Callable[[object], str], busy: str) -> bool:
        if not self._files.start(work):
            return False
        self._files_message = message
        self.message.setText(busy)
        self._update_buttons()
        return True

    @staticmethod
    def _import_message(report: ImportReport, folder: Path) -> str:
        text = f"Imported {report.added} {'sample' if report.added == 1 else 'samples'} from {folder}."
        if report.skipped:
            named = "; ".join(f"{Path(path).name} ({reason})" for path, reason in report.skipped[:SKIPPED_NAMED])
            more = len(report.skipped) - SKIPPED_NAMED
            text += f" Skipped {len(report.skipped)}: {named}" + (f"; and {more} more." if more > 0 else ".")
        return text

    @Slot(object)
    def on_files_succeeded(self, outcome: object) -> None:
        self.message.setText(self._files_message(outcome))
        self.library.reload()  # imported files are new samples

    @Slot(str)
    def on_files_failed(self, message: str) -> None:
        self.message.setText(message if message.endswith(".") else message + ".")
        self.library.reload()

    @Slot()
    def on_files_finished(self) -> None:
        self._update_buttons()
        self.files_done.emit(self.message.text())

    @Slot()
    def on_import_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import samples from a folder with subfolders 0-9")
        if folder:
            self.import_folder(folder)

    @Slot()
    def on_export_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export your samples into a folder")
        if folder:
            self.export_folder(folder)

    # ------------------------------------------------------------ slots
    @Slot()
    def on_table_item_selection_changed(self) -> None:
        self._fill_grid()

    @Slot()
    def on_library_samples_changed(self) -> None:
        if self._shown:
            self._fill_grid()

    @Slot()
    def on_library_predictions_changed(self) -> None:
        if self._shown:
            self.grid.refresh_predictions()
            self._update_numbers()

    def showEvent(self, event) -> None:
        if not self._shown:
            self._shown = True
            self._fill_grid()
            self.table.resizeColumnsToContents()
            table_width = self.table.horizontalHeader().length() + 2 * self.table.frameWidth() + \
                self.table.verticalScrollBar().sizeHint().width()
            self._splitter.setSizes([table_width, max(1, self.width() - table_width)])
        super().showEvent(event)
