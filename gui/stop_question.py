"""The question Stop asks of a training or fine-tuning run: keep what was learned so far, discard it, or go on."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


def ask_keep_or_discard(parent: QWidget, title: str, question: str, explanation: str, keep_text: str,
                        go_on_text: str, on_choice: Callable[[bool], None]) -> QMessageBox:
    """Show a non-modal box (the run goes on meanwhile, so nothing blocks quitting) and return it; `on_choice(keep)`
    runs for Keep (True) or Discard (False), nothing for going on. Its buttons are named stopKeep, stopDiscard and
    stopCancel for tests; it deletes itself when closed."""
    box = QMessageBox(QMessageBox.Icon.Question, title, question, QMessageBox.StandardButton.NoButton, parent)
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
    box.buttonClicked.connect(lambda button: on_choice(True) if button is keep else
                              on_choice(False) if button is discard else None)
    box.show()
    return box
