"""The start-up model, loaded in a BackgroundTask (importing torch takes seconds), so the window and pad work at once."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.predict import Predictor
    from gui.background import TaskControl

log = logging.getLogger(__name__)


@dataclass
class StartupModel:
    """What start-up could load: a ready predictor and a notice, or no predictor and why."""

    predictor: Predictor | None  # None: neither the remembered nor the shipped weights could be used
    message: str                 # "" when the remembered (or default) weights loaded as asked; else for the user


def load_startup_model(remembered_path: str | None, control: TaskControl | None = None) -> StartupModel:
    """The remembered weights file, or the shipped default weights when it fails for any reason (the BackgroundTask's
    function: `control` is unused, loading cannot be interrupted)."""
    from core.weights import load_default_weights, load_weights

    notice = ""
    if remembered_path:
        try:
            return StartupModel(_ready(load_weights(remembered_path)), "")
        except Exception as exc:  # noqa: BLE001 - any failure of a remembered file means: use the shipped weights
            notice = f"Your last weights could not be loaded ({_reason(exc)}); using the default weights instead."
    try:
        return StartupModel(_ready(load_default_weights()), notice)
    except Exception as exc:  # noqa: BLE001 - the window must still come up, and say what to do
        return StartupModel(None, f"{notice} No model is loaded: {_reason(exc)}. Load weights (File > Load weights…) "
                                  "or train a model in the Train tab.".strip())


def _ready(weights) -> Predictor:
    import torch

    from core.predict import Predictor

    predictor = Predictor(weights)
    predictor.probabilities(torch.zeros(1, 1, 28, 28))  # the first forward pass pays torch's one-time set-up here
    return predictor


def _reason(exc: Exception) -> str:
    """Our own errors are a plain sentence; anything else is a bug or a damaged install: its traceback is logged."""
    from core.weights import WeightsError

    if isinstance(exc, WeightsError):
        return str(exc).rstrip(".")
    log.error("unexpected error while loading weights at start-up", exc_info=exc)
    return f"unexpected {type(exc).__name__}: {exc}"
