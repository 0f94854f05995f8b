"""Loads the startup model in a QThread (importing torch takes seconds), so the window and pad work at once."""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot


class ModelLoader(QObject):
    """Tries the remembered weights file, then the shipped default weights."""

    predictor_loaded = Signal(object, str)  # core.predict.Predictor, a notice ("" unless the remembered file failed)
    loading_failed = Signal(str)            # why no model could be loaded, and what to do
    finished = Signal()                     # always last: the thread may quit

    def __init__(self, remembered_path: str | None):
        super().__init__()
        self._remembered = remembered_path or None

    @Slot()
    def run(self) -> None:
        try:
            self._load()
        except Exception as exc:  # e.g. a broken torch install: one message, never a dead thread
            self.loading_failed.emit(f"The model could not be loaded: {type(exc).__name__}: {exc}")
        finally:
            self.finished.emit()

    def _load(self) -> None:
        from core.predict import Predictor
        from core.weights import WeightsError, load_default_weights, load_weights

        notice = ""
        if self._remembered:
            try:
                predictor = Predictor(load_weights(self._remembered))
            except WeightsError as exc:
                notice = f"Your last weights could not be loaded ({exc}); using the default weights instead."
            else:
                return self._ready(predictor, notice)
        try:
            predictor = Predictor(load_default_weights())
        except WeightsError as exc:
            self.loading_failed.emit(f"{notice} No model is loaded: {exc}. Load weights (File > Load weights…) "
                                     "or train a model in the Train tab.".strip())
            return
        self._ready(predictor, notice)

    def _ready(self, predictor, notice: str) -> None:
        import torch

        predictor.probabilities(torch.zeros(1, 1, 28, 28))  # first forward pass pays torch's one-time set-up here
        self.predictor_loaded.emit(predictor, notice)
