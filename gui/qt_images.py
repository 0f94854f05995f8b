"""Conversions between QImage and numpy arrays (no torch; safe to import before the model loads)."""
from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def gray_to_qimage(array: np.ndarray) -> QImage:
    """(H, W) uint8 -> Grayscale8 QImage that owns a copy of the pixels."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    h, w = array.shape
    return QImage(array.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


def qimage_to_gray(image: QImage) -> np.ndarray:
    """Any opaque QImage -> (H, W) uint8 luminance (rows are padded to 4 bytes in QImage, hence the slicing)."""
    gray = image.convertToFormat(QImage.Format.Format_Grayscale8)
    w, h, stride = gray.width(), gray.height(), gray.bytesPerLine()
    buffer = np.frombuffer(gray.constBits(), dtype=np.uint8, count=stride * h)
    return buffer.reshape(h, stride)[:, :w].copy()


def qimage_to_rgba(image: QImage) -> np.ndarray:
    """Any QImage -> (H, W, 4) uint8 RGBA, alpha kept so the core can flatten transparency its own way."""
    rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
    w, h, stride = rgba.width(), rgba.height(), rgba.bytesPerLine()
    buffer = np.frombuffer(rgba.constBits(), dtype=np.uint8, count=stride * h)
    return buffer.reshape(h, stride)[:, :w * 4].reshape(h, w, 4).copy()


def rgb_to_qimage(array: np.ndarray) -> QImage:
    """(H, W, 3) uint8 -> RGB888 QImage that owns a copy of the pixels."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    h, w, _ = array.shape
    return QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
