"""The Runs tab: every kept training and fine-tuning run in a sortable table; selected runs' curves overlaid; use a
run's weights; delete runs. The records are core/runs.py's; this is only the view of them."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import (QAbstractTableModel, QItemSelectionModel, QModelIndex, QPersistentModelIndex,
                            QSortFilterProxyModel, Qt, Signal, Slot)
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette, QShowEvent
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QHBoxLayout, QHeaderView, QLabel, QMessageBox,
                               QPushButton, QSplitter, QTableView, QVBoxLayout, QWidget)

from core.cli_runs import duration, epochs_text, when
from core.runs import RunError, RunRecord, RunStore, RunSummary
from core.settings import smoothed_loss_floor
from gui.runs_chart import RunsChart
from gui.train_form import LABEL_SMOOTHING_TIP

COLUMNS = ("When", "Kind", "Name", "Epochs", "Test accuracy", "Time", "Device", "Status", "Weights")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
MAX_OVERLAID = 10  # runs drawn at once: one colour each


def _is_ours(weights: str | None) -> bool:
    """Whether Delete may offer to remove this weights file (core.runs decides again when deleting)."""
    from core import paths

    if not weights or not Path(weights).is_file():
        return False
    resolved = Path(weights).resolve()
    return resolved != paths.DEFAULT_WEIGHTS.resolve() and paths.user_weights_dir().resolve() in resolved.parents


def smoothing_note(records: list[RunRecord]) -> str:
    """Why some of these runs' losses level off high: those trained with label smoothing, by name and amount, and
    the loss each amount cannot fall below; empty when none was."""
    smoothed: list[tuple[str, float]] = []  # (run name, label smoothing), each pair once, in the chart's order
    for record in records:
        value = record.settings.get("label_smoothing")  # a fine-tuning recipe has none
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 \
                and (record.name, value) not in smoothed:
            smoothed.append((record.name, value))
    if not smoothed:
        return ""
    names = ", ".join(f"{name}: {value:g}" for name, value in smoothed[:3]) + \
        (f" and {len(smoothed) - 3} more" if len(smoothed) > 3 else "")
    floors = ", ".join(f"{smoothed_loss_floor(v):.2f} at {v:g}" for v in sorted({v for _, v in smoothed}))
    runs = "A run" if len(smoothed) == 1 else "Runs"
    return (f"{runs} with label smoothing ({names}) level{'s' * (len(smoothed) == 1)} off at a higher loss even when "
            f"every answer is right (no lower than {floors}): compare {'its' if len(smoothed) == 1 else 'their'} "
            "accuracy, not the loss.")


class RunsTableModel(QAbstractTableModel):
    """One row per RunSummary, newest first as listed; SORT_ROLE gives each column's sort key."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._runs: list[RunSummary] = []

    def set_runs(self, runs: list[RunSummary]) -> None:
        self.beginResetModel()
        self._runs = list(runs)
        self.endResetModel()

    def run(self, row: int) -> RunSummary:
        return self._runs[row]

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._runs)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        run, column = self._runs[index.row()], COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(run, column)
        if role == SORT_ROLE:
            return self._key(run, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tip(run, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in ("Epochs", "Test accuracy", "Time"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if column == "Weights" and run.weights and not run.weights_exists:
            if role == Qt.ItemDataRole.FontRole:
                font = QFont()
                font.setItalic(True)
                return font
            if role == Qt.ItemDataRole.ForegroundRole:
                return QGuiApplication.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        if column == "Status" and role == Qt.ItemDataRole.ForegroundRole and run.status == "failed":
            return QColor(200, 40, 40)
        return None

    @staticmethod
    def _text(run: RunSummary, column: str) -> str:
        if column == "When":
            return when(run.started)
        if column == "Kind":
            return "fine-tune" if run.kind == "finetune" else "train"
        if column == "Name":
            return run.name
        if column == "Epochs":
            return epochs_text(run)
        if column == "Test accuracy":
            return "–" if run.test_accuracy is None else f"{100 * run.test_accuracy:.2f}%"
        if column == "Time":
            return duration(run.seconds)
        if column == "Device":
            return f"{run.device} · {run.precision}"
        if column == "Status":
            return run.status
        if not run.weights:
            return "none kept"
        return Path(run.weights).name if run.weights_exists else f"{Path(run.weights).name} (missing)"

    @staticmethod
    def _key(run: RunSummary, column: str) -> Any:
        keys = {"When": run.started_unix, "Epochs": run.epochs_done, "Test accuracy": run.test_accuracy or -1.0,
                "Time": run.seconds}
        return keys.get(column, RunsTableModel._text(run, column).lower())

    @staticmethod
    def _tip(run: RunSummary, column: str) -> str:
        if column == "Weights":
            return (run.weights or "This run kept no weights (stopped and discarded, or failed).") + \
                ("" if not run.weights or run.weights_exists else "\nThis file no longer exists.")
        return f"Run {run.id} ({run.source}): {run.kind} {run.name}, {run.status}"


class RunsView(QWidget):
    """The table above, the selected runs' chart below; refreshes when shown and through refresh()."""

    weights_requested = Signal(str)  # the path of a run's weights file: "Use these weights"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._store = RunStore()
        self._records: dict[str, tuple[float, RunRecord]] = {}  # id -> (mtime, record): curves read once
        self._delete_box: QMessageBox | None = None
        self.model = RunsTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setObjectName("runsTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)  # newest first
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.chart = RunsChart()
        self.smoothing_note = QLabel()
        self.smoothing_note.setObjectName("runsSmoothingNote")
        self.smoothing_note.setWordWrap(True)
        self.smoothing_note.setToolTip(LABEL_SMOOTHING_TIP)  # the Train form's own words
        self.smoothing_note.hide()
        self.hint = QLabel()
        self.hint.setObjectName("runsHint")
        self.hint.setWordWrap(True)
        self.use_button = QPushButton("&Use these weights")
        self.use_button.setObjectName("runsUse")
        self.use_button.setToolTip("Load the selected run's weights file, as File > Load weights does")
        self.delete_button = QPushButton("De&lete…")
        self.delete_button.setObjectName("runsDelete")
        self.delete_button.setToolTip("Delete the selected runs' records (you are asked about their weights files)")
        self.copy_button = QPushButton("&Copy path")
        self.copy_button.setObjectName("runsCopyPath")
        self.copy_button.setToolTip("Copy the selected run's weights file path (or its record's) to the clipboard")
        buttons = QHBoxLayout()
        buttons.addWidget(self.hint, 1)
        for button in (self.use_button, self.copy_button, self.delete_button):
            buttons.addWidget(button)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.table, 1)
        top_layout.addLayout(buttons)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addWidget(self.smoothing_note)
        bottom_layout.addWidget(self.chart, 1)
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        QVBoxLayout(self).addWidget(splitter)
        self.table.selectionModel().selectionChanged.connect(self.on_table_selection_changed)
        self.use_button.clicked.connect(self.on_use_button_clicked)
        self.delete_button.clicked.connect(self.on_delete_button_clicked)
        self.copy_button.clicked.connect(self.on_copy_button_clicked)
        self.refresh()

    # ------------------------------------------------------------ the list
    @Slot()
    def refresh(self) -> None:
        """Re-read the runs folder (each record is parsed once, then cached by its mtime) and keep the selection."""
        selected = set(self.selected_ids())
        try:
            listing = self._store.list()
        except RunError as exc:
            self.model.set_runs([])
            self.hint.setText(html.escape(str(exc)))
            return
        self.model.set_runs(listing.runs)
        self.table.resizeColumnsToContents()
        selection = self.table.selectionModel()
        for row in range(self.proxy.rowCount()):
            if self.model.run(self.proxy.mapToSource(self.proxy.index(row, 0)).row()).id in selected:
                selection.select(self.proxy.index(row, 0), QItemSelectionModel.SelectionFlag.Select
                                 | QItemSelectionModel.SelectionFlag.Rows)
        self._skipped = listing.skipped
        self._update_for_selection()

    def showEvent(self, event: QShowEvent) -> None:
        self.refresh()  # a run from the command line, or deleted there, shows on coming back
        super().showEvent(event)

    def runs(self) -> list[RunSummary]:
        """The rows in the order shown."""
        return [self.model.run(self.proxy.mapToSource(self.proxy.index(row, 0)).row())
                for row in range(self.proxy.rowCount())]

    def selected_runs(self) -> list[RunSummary]:
        rows = sorted(index.row() for index in self.table.selectionModel().selectedRows())
        return [self.model.run(self.proxy.mapToSource(self.proxy.index(row, 0)).row()) for row in rows]

    def selected_ids(self) -> list[str]:
        return [run.id for run in self.selected_runs()]

    def select_ids(self, ids: list[str]) -> None:
        """Select exactly these runs (tests, and a run just finished)."""
        selection = self.table.selectionModel()
        selection.clearSelection()
        for row, run in enumerate(self.runs()):
            if run.id in ids:
                selection.select(self.proxy.index(row, 0), QItemSelectionModel.SelectionFlag.Select
                                 | QItemSelectionModel.SelectionFlag.Rows)

    # ------------------------------------------------------------ selection -> chart and buttons
    @Slot()
    def on_table_selection_changed(self) -> None:
        self._update_for_selection()

    def _record(self, run: RunSummary) -> RunRecord | None:
        try:
            mtime = run.path.stat().st_mtime
            cached = self._records.get(run.id)
            if cached is None or cached[0] != mtime:
                cached = (mtime, self._store.load(run.id))
                self._records[run.id] = cached
            return cached[1]
        except (OSError, RunError):
            return None

    def _update_for_selection(self) -> None:
        runs = self.selected_runs()
        records = [r for r in (self._record(run) for run in runs[:MAX_OVERLAID]) if r is not None]
        no_curve = self.chart.set_runs(records)
        note = smoothing_note([r for r in records if all(r is not n for n in no_curve)])
        self.smoothing_note.setText(note)
        self.smoothing_note.setVisible(bool(note))
        single = runs[0] if len(runs) == 1 else None
        self.use_button.setEnabled(single is not None and single.weights_exists)
        self.copy_button.setEnabled(single is not None)
        self.delete_button.setEnabled(bool(runs))
        self.hint.setText(self._hint(runs, no_curve))

    def _hint(self, runs: list[RunSummary], no_curve: list[RunRecord] = ()) -> str:
        skipped = getattr(self, "_skipped", [])
        note = (f" {len(skipped)} file(s) in the runs folder are not readable run records and were skipped: "
                + "; ".join(why for _, why in skipped[:3])) if skipped else ""
        if no_curve:
            what = (f"The run {html.escape(no_curve[0].name)} of {when(no_curve[0].started)} has no curve to draw: it"
                    if len(no_curve) == 1 else f"{len(no_curve)} of the selected runs have no curve to draw: they")
            note = f" {what} ended before the first batch." + note
        if not self.model.rowCount():
            return "No runs yet: each training or fine-tuning run (here or from the command line) is kept here." + note
        if not runs:
            return "Select runs to compare their curves (Ctrl or Shift for several)." + note
        if len(runs) > MAX_OVERLAID:
            return f"The first {MAX_OVERLAID} selected runs are drawn." + note
        return note.strip()

    # ------------------------------------------------------------ buttons
    @Slot()
    def on_use_button_clicked(self) -> None:
        runs = self.selected_runs()
        if len(runs) == 1 and runs[0].weights_exists:
            self.weights_requested.emit(runs[0].weights)

    @Slot()
    def on_copy_button_clicked(self) -> None:
        runs = self.selected_runs()
        if len(runs) == 1:
            QGuiApplication.clipboard().setText(runs[0].weights or str(runs[0].path))

    @Slot()
    def on_delete_button_clicked(self) -> None:
        """Ask first (non-modal, like every message of the app); delete_box() gives the question to tests."""
        runs = self.selected_runs()
        if not runs:
            return
        if self._delete_box is not None:
            self._delete_box.close()
        ours = [run for run in runs if _is_ours(run.weights)]
        what = f"the run {runs[0].name} of {when(runs[0].started)}" if len(runs) == 1 else f"{len(runs)} runs"
        box = QMessageBox(QMessageBox.Icon.Question, "Delete runs", f"Delete the record of {what}?",
                          QMessageBox.StandardButton.Cancel, self)
        delete = box.addButton("&Delete", QMessageBox.ButtonRole.DestructiveRole)
        delete.setObjectName("runsDeleteConfirm")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        if ours:
            also = QCheckBox(f"Also delete {'its weights file' if len(ours) == 1 else 'their weights files'} "
                             f"({', '.join(Path(run.weights).name for run in ours[:3])})", box)  # box owns it
            box.setCheckBox(also)
        box.setInformativeText("Weights files outside the app's weights folder, and the shipped default weights, "
                               "are never deleted.")
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        ids = [run.id for run in runs]
        box.buttonClicked.connect(lambda button: self.delete_runs(ids, box.checkBox() is not None
                                                                  and box.checkBox().isChecked())
                                  if button is delete else None)
        box.destroyed.connect(self._forget_delete_box)
        self._delete_box = box
        box.show()

    def delete_box(self) -> QMessageBox | None:
        return self._delete_box

    @Slot()
    def _forget_delete_box(self) -> None:
        self._delete_box = None

    def delete_runs(self, ids: list[str], with_weights: bool) -> list[str]:
        """Delete these runs' records (and, if asked, their weights files where core.runs allows); the problems, in
        words, are shown under the table and returned."""
        problems = []
        for run_id in ids:
            try:
                deletion = self._store.delete(run_id, with_weights)
                if with_weights and deletion.weights_kept and "kept no weights" not in deletion.weights_kept:
                    problems.append(deletion.weights_kept)
            except RunError as exc:
                problems.append(str(exc))
            self._records.pop(run_id, None)
        self.refresh()
        if problems:
            self.hint.setText(html.escape(" ".join(problems)))
        return problems
