"""Starts the desktop app: QApplication with organization and app names (for QSettings), the main window, exec."""
from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication

from gui.main_window import APP_TITLE, MainWindow


def run(argv: list[str] | None = None) -> int:
    """Show the main window and run the event loop; returns the exit status."""
    app = QApplication.instance() or QApplication(sys.argv if argv is None else argv)
    app.setOrganizationName("digit-recognizer")
    app.setApplicationName("digit-recognizer")
    app.setApplicationDisplayName(APP_TITLE)
    window = MainWindow()
    window.show()  # the model loads in a thread after this first paint
    return app.exec()
