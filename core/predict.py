"""A predictor: weights loaded once, the shared preprocessing, softmax probabilities and the top digit."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from core.calibration import temperature_of
from core.preprocess import preprocess
from core.weights import LoadedWeights, load_default_weights, load_weights


@dataclass
class Prediction:
    """`digit` and `probabilities` (10 floats summing to 1) are None when there is nothing to recognize."""

    digit: int | None
    probabilities: list[float] | None
    image28: np.ndarray | None  # (28, 28) uint8: exactly what the model saw

    @property
    def empty(self) -> bool:
        return self.digit is None


class Predictor:
    """Wraps a loaded model in eval mode; thread-safe for reads (no_grad, no state changes). Probabilities are
    calibrated by the temperature the weights file holds (core.calibration; 1.0 without one)."""

    def __init__(self, weights: LoadedWeights):
        self.weights = weights
        self.model = weights.model.eval()
        self.temperature = temperature_of(weights.metrics)

    @classmethod
    def from_file(cls, path: Path | str | None = None) -> "Predictor":
        """From a weights file, or the shipped default weights when `path` is None."""
        return cls(load_weights(path) if path else load_default_weights())

    @torch.no_grad()
    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """Calibrated softmax over the 10 digits for normalized inputs (N, 1, 28, 28) -> (N, 10)."""
        return torch.softmax(self.model(batch) / self.temperature, dim=1)

    def predict(self, image: Image.Image | np.ndarray) -> Prediction:
        return self.predict_many([image])[0]

    def predict_many(self, images: Sequence[Image.Image | np.ndarray]) -> list[Prediction]:
        """One batched forward pass for all non-empty images."""
        prepared = [preprocess(img, self.weights.normalization) for img in images]
        filled = [i for i, p in enumerate(prepared) if not p.empty]
        results = [Prediction(None, None, None) for _ in prepared]
        if filled:
            probs = self.probabilities(torch.stack([prepared[i].tensor for i in filled]))  # (M, 10)
            for row, i in zip(probs.tolist(), filled):
                results[i] = Prediction(int(np.argmax(row)), row, prepared[i].image28)
        return results
