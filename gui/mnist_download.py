"""The first-run MNIST download in the window: a dialog with progress in MB and Cancel; offline, its one message."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QEvent, QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (QApplication, QDialog, QDialogButtonBox, QLabel, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from gui.background import BackgroundTask

MB = 1_000_000  # decimal megabytes, as browsers and torchvision's mirrors count them
# MNIST's four .gz files as the mirrors serve them: training images and labels, test images and labels
MNIST_DOWNLOAD_BYTES = 9_912_422 + 28_881 + 1_648_877 + 4_542
MNIST_DOWNLOAD_SIZE = f"about {MNIST_DOWNLOAD_BYTES / MB:.0f} MB"  # "about 12 MB": the dialog and Help > About


def ensure_mnist(parent: QWidget, data_dir: str | None, then: Callable[[], object], download: bool = True) -> bool:
    """True when MNIST is in `data_dir` (the caller goes on now). Otherwise a download dialog opens over `parent`,
    and `then()` is called once the four files are in place; offline, the dialog shows why, once, and `then` is
    never called. A data folder that cannot hold a download (a file) is left to the run's own message."""
    from core import paths
    from core.data import find_files

    root = Path(data_dir).expanduser() if data_dir else paths.mnist_dir()
    try:
        if not download or find_files(root) is not None or (root.exists() and not root.is_dir()):
            return True
    except OSError:  # e.g. a name too long for the file system: the run says so in its own words
        return True
    for old in parent.findChildren(MnistDownloadDialog):
        if old.is_downloading():  # already under way: bring it forward
            old.raise_()
            return False
        old.deleteLater()
    dialog = MnistDownloadDialog(root, parent)
    dialog.downloaded.connect(then)
    dialog.start()
    return False


class MnistDownloadDialog(QDialog):
    """Downloads MNIST into `root` in a BackgroundTask; success closes it, a failure becomes its text."""

    downloaded = Signal()          # the four files are in place; the dialog has closed
    download_failed = Signal(str)  # the one message, now shown in this dialog
    progress_shown = Signal(int, int, str)  # (done bytes, total bytes, file name) now on the bar

    def __init__(self, root: Path, parent: QWidget):
        super().__init__(parent)
        self._root = root
        self.setObjectName("mnistDownloadDialog")
        self.setWindowTitle("Downloading MNIST")
        self.setMinimumWidth(460)
        self.message = QLabel(f"Training and evaluating use MNIST: four files, {MNIST_DOWNLOAD_SIZE}, downloaded once "
                              f"into {root / 'MNIST' / 'raw'}.")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.file_label = QLabel("Connecting…")
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy until the first file's size is known
        self.buttons = QDialogButtonBox()
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.copy_button = QPushButton("Copy folder path")
        self.copy_button.setToolTip("Put the folder where the four files belong on the clipboard")
        self.buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.file_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.buttons)

        self._task = BackgroundTask("MNIST download", parent=self)
        self._task.progress_changed.connect(self.on_task_progress_changed)
        self._task.succeeded.connect(self.on_task_succeeded)
        self._task.failed.connect(self.on_task_failed)
        self._task.cancelled.connect(self.on_task_cancelled)
        self.cancel_button.clicked.connect(self.reject)
        self.copy_button.clicked.connect(self.on_copy_button_clicked)
        parent.window().installEventFilter(self)  # the window closing joins the download's thread

    def is_downloading(self) -> bool:
        return self._task.is_running()

    def start(self) -> None:
        root = self._root

        def download(control) -> None:
            from core.data import locate

            def report(done: int, total: int, name: str) -> None:
                control.report((done, total, name), force=done == total)  # the end of each file always shows

            locate(root, True, progress=report, should_stop=control.should_stop)

        self._task.start(download)
        self.open()  # window-modal, without a nested event loop

    def shutdown(self) -> None:
        """Cancel and join the thread (the window is closing); a stalled read ends within core's timeout."""
        self._task.shutdown()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Close:
            self.shutdown()
        return False

    def reject(self) -> None:
        """Cancel (or Esc, or the title bar's close): stop between chunks; nothing half-written stays."""
        if self._task.is_running():
            self._task.cancel()
            self.file_label.setText("Cancelling…")
            self.cancel_button.setEnabled(False)
            return  # closes when the thread has ended (on_task_cancelled)
        super().reject()

    # ------------------------------------------------------------ task signals (GUI thread)
    @Slot(object)
    def on_task_progress_changed(self, report: tuple[int, int, str]) -> None:
        done, total, name = report
        if total:
            self.progress.setRange(0, max(1, total // 1024))  # KB steps: a QProgressBar holds an int
            self.progress.setValue(done // 1024 if done < total else self.progress.maximum())
            self.progress.setFormat(f"{done / MB:.1f} of {total / MB:.1f} MB")
        else:
            self.progress.setRange(0, 0)
        self.file_label.setText(f"Downloading {name}…")
        self.progress_shown.emit(done, total, name)

    @Slot(object)
    def on_task_succeeded(self, _result: object) -> None:
        self.accept()
        self.downloaded.emit()

    @Slot(str)
    def on_task_failed(self, message: str) -> None:
        self.setWindowTitle("MNIST could not be downloaded")
        self.message.setText(message)
        self.file_label.hide()
        self.progress.hide()
        self.cancel_button.setText("Close")
        self.cancel_button.setEnabled(True)
        self.copy_button.show()
        self.download_failed.emit(message)

    @Slot()
    def on_task_cancelled(self) -> None:
        super().reject()

    @Slot()
    def on_copy_button_clicked(self) -> None:
        QApplication.clipboard().setText(str(self._root / "MNIST" / "raw"))
        self.copy_button.setText("Copied")
