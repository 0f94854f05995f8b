"""Images into the app: File > Open image…, drag and drop and paste; all of them land on the Draw tab's pad."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, Slot
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QGuiApplication, QImage, QPixmap
from PySide6.QtWidgets import QFileDialog

from gui.remembered_settings import remembered_folder

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp *.ppm *.pgm *.pbm);;All files (*)"
WEIGHTS_SUFFIXES = (".pt", ".pth", ".safetensors")


class ImageInputMixin:
    """Part of MainWindow (it provides tabs, draw_tab, statusBar, show_message, load_weights_file, _settings)."""

    # ------------------------------------------------------------ images: file, drop, paste
    def open_image_file(self, path: str | Path) -> bool:
        """The slot File > Open image… calls; an unreadable file shows why and leaves the pad unchanged."""
        from core.preprocess import ImageError, load_image

        try:
            image = load_image(path)
        except ImageError as exc:
            self.show_message(f"Could not open the image: {exc}")
            return False
        return self._show_image(image, Path(path).name)

    def _show_image(self, image, name: str) -> bool:
        from core.preprocess import ImageError, to_gray

        try:
            gray = to_gray(image)  # the core's own flattening of modes and transparency
        except ImageError as exc:  # NaN/inf pixels
            self.show_message(f"Could not open the image: {exc}")
            return False
        if gray.size == 0:
            self.show_message(f"Could not open the image: {name} is empty")
            return False
        self.tabs.setCurrentWidget(self.draw_tab)
        self.draw_tab.show_photo(np.clip(np.round(gray), 0, 255).astype(np.uint8))  # outlined where the digit is
        self.statusBar().showMessage(f"Opened {name}", 5000)
        return True

    def _show_qimage(self, image: QImage, name: str) -> bool:
        from PIL import Image

        from core.preprocess import ImageError, check_image_size
        from gui.qt_images import qimage_to_rgba

        if image.isNull():
            self.show_message(f"Could not open the image: the {name} holds no readable picture")
            return False
        try:  # the files' decompression-bomb limit, before any conversion (12000x12000 had frozen the GUI 14 s)
            check_image_size(image.width(), image.height(), name)
        except ImageError as exc:
            self.show_message(f"Could not open the image: {exc}")
            return False
        return self._show_image(Image.fromarray(qimage_to_rgba(image)), name)  # (H, W, 4) uint8 -> RGBA

    def _open_mime(self, mime: QMimeData, name: str) -> bool:
        for url in mime.urls():
            if url.isLocalFile():
                path = url.toLocalFile()
                if path.lower().endswith(WEIGHTS_SUFFIXES):
                    return self.load_weights_file(path)
                return self.open_image_file(path)
        if mime.hasImage():
            data = mime.imageData()  # a QImage, or a QPixmap from some sources
            return self._show_qimage(data.toImage() if isinstance(data, QPixmap) else QImage(data), name)
        return False

    @Slot()
    def paste_image(self) -> bool:
        """Ctrl+V: an image (or an image file) from the clipboard."""
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None or not self._open_mime(mime, "pasted image"):
            if mime is None or not (mime.hasImage() or mime.hasUrls()):
                self.statusBar().showMessage("The clipboard holds no image", 5000)
            return False
        return True

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if mime.hasImage() or any(url.isLocalFile() for url in mime.urls()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        event.acceptProposedAction()
        self._open_mime(event.mimeData(), "dropped image")

    @Slot()
    def open_image_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", remembered_folder(self._settings, "dialogs/images"),
                                              IMAGE_FILTER)
        if path:
            self._settings.setValue("dialogs/images", str(Path(path).parent))
            self.open_image_file(path)
