"""Where things live: per-user data and weights folders (platformdirs) and the shipped default weights."""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "digit-recognizer"
# The weights trained by `python main.py train --preset best --data ../shared/data`, shipped with the app.
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "resources" / "default_weights.pt"


def user_data_dir() -> Path:
    """Per-user data folder; DIGIT_RECOGNIZER_HOME overrides it (tests, portable installs)."""
    override = os.environ.get("DIGIT_RECOGNIZER_HOME")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def mnist_dir() -> Path:
    """The per-user folder where MNIST is looked for and downloaded to."""
    return user_data_dir() / "mnist"


def user_weights_dir() -> Path:
    """Where trained weights are saved by default."""
    return user_data_dir() / "weights"


def samples_dir() -> Path:
    """The user's own digit samples, in ImageFolder layout (samples/<digit>/<timestamp>.png)."""
    return user_data_dir() / "samples"
