"""The Help menu's windows: keyboard shortcuts (read from the window's actions), About, and where the files live."""
from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Slot
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QGridLayout, QHeaderView, QLabel, QLineEdit, QMenuBar,
                               QMessageBox, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from core import logs, paths
from core.runs import runs_dir
from gui.mnist_download import MNIST_DOWNLOAD_SIZE

PACKAGE = "digit-recognizer"
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def app_version() -> str:
    """The installed package's version, else pyproject.toml's (a checkout run without installing), else "unknown"."""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        pass
    try:  # tomllib is Python 3.11+; the [project] version line is all that is needed
        match = re.search(r'^version\s*=\s*"([^"]+)"', PYPROJECT.read_text(encoding="utf-8"), re.MULTILINE)
    except OSError:
        match = None
    return match.group(1) if match else "unknown"


def about_text(title: str) -> str:
    return (f"<h3>{title} {app_version()}</h3>"
            "<p>Draw a digit and watch a convolutional network recognize it, see why, and train the network "
            "yourself.</p>"
            "<p><b>Offline:</b> recognizing what you draw or open, saving your own samples, loading and saving "
            "weights need no network: the trained weights ship with the app.</p>"
            f"<p><b>Needs a download once:</b> training and evaluating use MNIST (four files, {MNIST_DOWNLOAD_SIZE} "
            "compressed, from the MNIST mirrors torchvision knows), fetched the first time into the data folder and "
            "used offline from then on. Help &gt; Where are my files? shows that folder.</p>"
            "<p>PySide6 (Qt) and PyTorch. MIT license.</p>")


def about_box(parent: QWidget, title: str) -> QMessageBox:
    """A non-modal About box (nothing waits for it)."""
    box = QMessageBox(QMessageBox.Icon.Information, f"About {title}", about_text(title),
                      QMessageBox.StandardButton.Ok, parent)
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setWindowModality(Qt.WindowModality.NonModal)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    return box


def shortcut_rows(menu_bar: QMenuBar) -> list[tuple[str, str, str]]:
    """(menu, action, shortcuts) for every action in the menus that has a shortcut, in menu order."""
    rows = []
    for menu_action in menu_bar.actions():
        menu = menu_action.menu()
        if menu is None:
            continue
        for action in _actions_in(menu.actions()):
            keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts() if not k.isEmpty()]
            if keys:
                rows.append((_plain(menu_action.text()), _plain(action.text()), ", ".join(keys)))
    return rows


def _actions_in(actions: list[QAction]) -> list[QAction]:
    found = []
    for action in actions:
        if action.menu() is not None:  # a submenu: its actions, in place
            found += _actions_in(action.menu().actions())
        elif not action.isSeparator():
            found.append(action)
    return found


def _plain(text: str) -> str:
    """A menu text without its mnemonic marks ("&Open image…" -> "Open image…"; "&&" is a literal "&")."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


class ShortcutsDialog(QDialog):
    """The window's keyboard shortcuts, read from its menus when opened, so the list is always the one in effect."""

    def __init__(self, menu_bar: QMenuBar, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcut_rows(menu_bar)
        self.table = QTableWidget(len(rows), 3)
        self.table.setObjectName("shortcutsTable")
        self.table.setHorizontalHeaderLabels(["Menu", "Command", "Keys"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, cells in enumerate(rows):
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        note = QLabel("On the Draw tab, the digit keys 0-9 save the drawing as that digit, Enter saves it as the "
                      "digit shown, and the pad takes the mouse or a pen.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(520, 480)

    def rows(self) -> list[tuple[str, str, str]]:
        return [tuple(self.table.item(r, c).text() for c in range(3)) for r in range(self.table.rowCount())]


def file_locations() -> dict[str, Path]:
    """What the app keeps on disk, and where (DIGIT_RECOGNIZER_HOME moves all of it)."""
    return {"Trained weights": paths.user_weights_dir(), "My digit samples": paths.samples_dir(),
            "Training runs": runs_dir(), "MNIST data": paths.mnist_dir(), "Log": logs.log_path().parent}


class FilesDialog(QDialog):
    """Where are my files? One row per folder: its path (selectable), Copy, and Open (once the folder exists)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Where are my files?")
        self.copy_buttons: dict[str, QPushButton] = {}
        self.open_buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        for row, (name, folder) in enumerate(file_locations().items()):
            path = QLineEdit(str(folder))
            path.setReadOnly(True)
            path.setCursorPosition(0)
            path.setMinimumWidth(320)
            copy, open_ = QPushButton("Copy"), QPushButton("Open")
            copy.setToolTip("Copy this path to the clipboard")
            exists = folder.is_dir()
            open_.setEnabled(exists)  # the app makes a folder when it first writes there, never just to show it
            open_.setToolTip("Show this folder in the file manager" if exists else
                             "Not made yet: the app makes it when it first saves something there")
            copy.clicked.connect(lambda _=False, f=folder: self.copy_path(f))
            open_.clicked.connect(lambda _=False, f=folder: self.open_folder(f))
            grid.addWidget(QLabel(name), row, 0)
            grid.addWidget(path, row, 1)
            grid.addWidget(copy, row, 2)
            grid.addWidget(open_, row, 3)
            self.copy_buttons[name], self.open_buttons[name] = copy, open_
        note = QLabel("Setting DIGIT_RECOGNIZER_HOME to a folder moves all of these there (a portable install).")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(note)
        layout.addWidget(buttons)

    @Slot()
    def copy_path(self, folder: Path) -> None:
        QGuiApplication.clipboard().setText(str(folder))

    @Slot()
    def open_folder(self, folder: Path) -> bool:
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
