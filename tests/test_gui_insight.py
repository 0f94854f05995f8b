"""The Insight tab, offscreen, with real mouse strokes: feature-map grids per conv layer, attribution, zoom, layers."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from tests.gui_support import TIMEOUT, draw, open_window, private_qsettings, settings, trained_window  # noqa: E402,F401

ONE = [[(0.52, 0.15), (0.48, 0.85)]]
SEVEN = [[(0.28, 0.2), (0.72, 0.2), (0.45, 0.82)]]


def conv_channels(model) -> list[int]:
    from torch import nn

    return [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]


def draw_and_wait(qtbot, window, strokes):
    tab = window.insight_tab
    with qtbot.waitSignal(tab.explanation_shown, timeout=TIMEOUT) as shown:
        draw(window.draw_tab.pad, strokes)
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=TIMEOUT)
    return tab.explanation() or shown.args[0]


@pytest.fixture
def insight(qtbot, trained_window):
    trained_window.tabs.setCurrentWidget(trained_window.insight_tab)
    return trained_window


def test_the_pad_moves_to_the_insight_tab_and_back_keeping_its_strokes(qtbot, insight):
    pad = insight.draw_tab.pad
    assert insight.insight_tab.isAncestorOf(pad)
    draw(pad, ONE)
    insight.tabs.setCurrentWidget(insight.draw_tab)
    assert insight.draw_tab.isAncestorOf(pad) and pad.stroke_count() == 1
    assert insight.draw_tab.bars.top_digit() == 1  # the Draw tab followed the drawing made in the Insight tab


def test_drawing_shows_one_grid_per_conv_layer_with_its_channel_count(qtbot, insight):
    explanation = draw_and_wait(qtbot, insight, SEVEN)
    tab = insight.insight_tab
    channels = conv_channels(insight.current_weights().model)  # digitnet: 32, 32, 64, 64, 128
    shown = [(layer, grid) for layer, grid in zip(explanation.layers, tab.pipeline.grids())]
    conv_grids = [grid for layer, grid in shown if not layer.pooled]
    assert [grid.tile_count() for grid in conv_grids] == channels
    assert len(tab.pipeline.grids()) == len(explanation.layers)
    pooled = [layer for layer in explanation.layers if layer.pooled]
    assert pooled and all(layer.maps.shape[-1] < 28 for layer in pooled)  # pooled layers at their real, smaller size
    insight.tabs.setCurrentWidget(insight.draw_tab)  # the bars, updated when seen, agree with the Insight tab
    assert explanation.digit == 7 == insight.draw_tab.bars.top_digit()
    assert explanation.probabilities == pytest.approx(insight.draw_tab.bars.probabilities(), abs=1e-5)


def test_the_tutorial_model_shows_its_two_conv_layers(qtbot, settings, tmp_path):
    import torch

    from core.models import build_model
    from core.weights import save_weights

    torch.manual_seed(0)
    path = save_weights(tmp_path / "tutorial.pt", build_model("tutorial"), "tutorial", {}, (0.0, 1.0))
    window = open_window(qtbot, settings, path)
    window.tabs.setCurrentWidget(window.insight_tab)
    explanation = draw_and_wait(qtbot, window, ONE)
    grids = window.insight_tab.pipeline.grids()
    conv = [g.tile_count() for g, layer in zip(grids, explanation.layers) if not layer.pooled]
    assert conv == [8, 16]
    assert [layer.maps.shape for layer in explanation.layers] == [(8, 26, 26), (8, 13, 13), (16, 11, 11), (16, 5, 5)]
    assert window.insight_tab.layers.row_count() == 8  # Conv, ReLU, Pool, Conv, ReLU, Pool, Flatten, Linear
    assert window.insight_tab.filters.tile_count() == 8


def test_picking_another_digit_changes_the_attribution(qtbot, insight):
    first = draw_and_wait(qtbot, insight, SEVEN)
    assert first.target == first.digit == 7
    tab = insight.insight_tab
    with qtbot.waitSignal(tab.explanation_shown, timeout=TIMEOUT,
                          check_params_cb=lambda e: e.target == 1):
        qtbot.mouseClick(tab.why.buttons.button(1), Qt.MouseButton.LeftButton)
    second = tab.explanation()
    assert second.digit == 7 and second.target == 1
    assert second.attribution.shape == (28, 28) and np.isfinite(second.attribution).all()
    assert not np.allclose(first.attribution, second.attribution)
    assert "Why not 1?" in tab.why.text.text()


def test_strongest_evidence_for_a_clear_one_lies_on_its_stroke(qtbot, insight):
    explanation = draw_and_wait(qtbot, insight, ONE)
    assert explanation.digit == 1
    y, x = np.unravel_index(np.argmax(explanation.attribution), (28, 28))
    assert explanation.image28[y, x] > 64  # the most convincing pixel is ink, not paper


def test_hovering_a_map_names_it_and_clicking_enlarges_it(qtbot, insight):
    draw_and_wait(qtbot, insight, SEVEN)
    grid = insight.insight_tab.pipeline.grids()[0]
    tip = grid.tooltip_at(3)
    assert "channel 3" in tip and "values" in tip and "×" in tip
    cell = grid.tile_rect(3)
    QTest.mouseClick(grid, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(cell.center().x(), cell.center().y()))
    zoom = insight.insight_tab.zoom
    assert zoom.selected == (0, 3)
    assert "channel 3" in zoom.text.text() and not zoom.picture.pixmap().isNull()


def test_layer_table_shows_every_architecture_with_its_total(qtbot, insight):
    from core.models import ARCHITECTURES, build_model, summary

    table = insight.insight_tab.layers
    assert table.row_count() == len(summary(insight.current_weights().model))
    for index, arch in enumerate(ARCHITECTURES, start=1):
        table.choice.setCurrentIndex(index)
        model = build_model(arch)
        assert table.row_count() == len(summary(model))
        total = table.table.item(table.row_count(), 3).text()
        assert total == f"{sum(p.numel() for p in model.parameters()):,}"
    table.choice.setCurrentIndex(1)
    assert table.table.item(table.row_count(), 3).text() == "5,258"  # the tutorial's network


def test_clearing_the_pad_clears_the_pictures(qtbot, insight):
    draw_and_wait(qtbot, insight, SEVEN)
    insight.draw_tab.pad.clear()
    tab = insight.insight_tab
    qtbot.waitUntil(lambda: tab.explanation() is None, timeout=TIMEOUT)
    assert "Draw a digit" in tab.status.text()
