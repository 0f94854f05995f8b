"""The question Stop asks of a training or fine-tuning run: keep what was learned so far, discard it, or go on."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


class StopQuestion:
    """At most one non-modal question box per tab (the run goes on meanwhile, so nothing blocks quitting): ask()
    shows it, or raises the one already open; `box` is it while open (tests press its buttons, named stopKeep,
    stopDiscard and stopCancel); close() when the run ends before an answer."""

    def __init__(self, parent: QWidget, title: str, question: str, explanation: str, keep_text: str,
                 go_on_text: str, on_choice: Callable[[bool], None]):
        self._parent, self._texts, self._on_choice = parent, (title, question, explanation, keep_text, go_on_text), \
            on_choice
        self.box: QMessageBox | None = None

    def ask(self) -> None:
        """Show the question; `on_choice(keep)` runs for Keep (True) or Discard (False), nothing for going on."""
        if self.box is not None:
            self.box.raise_()
            return
        title, question, explanation, keep_text, go_on_text = self._texts
        box = QMessageBox(QMessageBox.Icon.Question, title, question, QMessageBox.StandardButton.NoButton,
                          self._parent)
        box.setInformativeText(explanation)
        keep = box.addButton(keep_text, QMessageBox.ButtonRole.AcceptRole)
        keep.setObjectName("stopKeep")
        discard = box.addButton("&Discard it", QMessageBox.ButtonRole.DestructiveRole)
        discard.setObjectName("stopDiscard")
        go_on = box.addButton(go_on_text, QMessageBox.ButtonRole.RejectRole)
        go_on.setObjectName("stopCancel")
        box.setDefaultButton(keep)
        box.setEscapeButton(go_on)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(lambda button: self._on_choice(True) if button is keep else
                                  self._on_choice(False) if button is discard else None)
        box.destroyed.connect(self._forget)
        self.box = box
        box.show()

    def close(self) -> None:
        if self.box is not None:
            self.box.close()
            self.box = None

    def _forget(self) -> None:
        self.box = None
