"""Shared by the GUI tests: private settings, opening the real window, and drawing on its pad with mouse drags."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtTest import QTest

from core import paths
from gui.main_window import MainWindow

TIMEOUT = 60_000  # ms; generous for 2 busy cores, never reached when things work


# ---------------------------------------------------------------- fixtures (import them into a test module to use)
@pytest.fixture(autouse=True)
def private_qsettings(tmp_path, monkeypatch):
    """Any QSettings() made without a path lands in this test's folder, never in the user's real settings."""
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def open_window(qtbot, settings: QSettings, weights: Path | None) -> MainWindow:
    settings.setValue("weights/last", str(weights) if weights else "")
    window = MainWindow(settings)
    qtbot.addWidget(window)  # closed (and its threads joined) at teardown
    window.show()
    qtbot.waitUntil(window.is_model_ready, timeout=TIMEOUT)
    return window


@pytest.fixture
def tutorial_weights(tmp_path) -> Path:
    """An untrained but valid weights file of the tutorial's architecture (fast to load, any prediction)."""
    import torch

    from core.models import build_model
    from core.weights import save_weights

    with torch.random.fork_rng():  # the same file every time, and the caller's random stream left alone
        torch.manual_seed(0)
        model = build_model("tutorial")
    return save_weights(tmp_path / "tutorial-test.pt", model, "tutorial", {}, (0.0, 1.0), {"preset": "tutorial"},
                        {"test_accuracy": 0.5})


@pytest.fixture
def window(qtbot, settings, tutorial_weights) -> MainWindow:  # noqa: F811 (fixtures by name)
    """The real window with `tutorial_weights` in use."""
    return open_window(qtbot, settings, tutorial_weights)


@pytest.fixture
def trained_window(qtbot, settings) -> MainWindow:
    """The window with the shipped default weights, for tests that need real recognition."""
    if not paths.DEFAULT_WEIGHTS.is_file():
        pytest.skip(f"the shipped default weights are missing ({paths.DEFAULT_WEIGHTS})")
    return open_window(qtbot, settings, None)


# ---------------------------------------------------------------- drawing with the mouse
def densify(points, step=0.01):
    """Mouse events every ~1% of the paper, as a real drag produces."""
    out = [points[0]]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        n = max(1, int(math.hypot(x1 - x0, y1 - y0) / step))
        out += [(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n) for i in range(1, n + 1)]
    return out


def to_widget(pad, point) -> QPoint:
    rect = pad.canvas_rect()
    return QPoint(round(rect.x() + point[0] * rect.width()), round(rect.y() + point[1] * rect.height()))


def press_and_move(pad, points):
    points = densify(points)
    QTest.mousePress(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, to_widget(pad, points[0]))
    for p in points[1:]:
        QTest.mouseMove(pad, to_widget(pad, p))
    return points[-1]


def release(pad, point):
    QTest.mouseRelease(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, to_widget(pad, point))


def draw(pad, strokes):
    for stroke in strokes:
        release(pad, press_and_move(pad, stroke))
