"""A predictor: weights loaded once, the shared preprocessing, softmax probabilities and the top digit."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from core.calibration import temperature_of
from core.digit_gate import DEFAULT_GATE, DigitGate, GateError, GateScore, load_gate
from core.photo import Reading
from core.preprocess import Preprocessed, Region, preprocess_gray, to_gray
from core.verdict import Verdict, drawing_hints, judge
from core.weights import LoadedWeights, load_default_weights, load_weights


@dataclass
class Prediction:
    """`digit` (the top guess) and `probabilities` (10 calibrated floats summing to 1) are None when there is nothing
    to recognize; `verdict` says whether the top guess is a digit, a hesitation or probably not a digit at all."""

    digit: int | None
    probabilities: list[float] | None
    image28: np.ndarray | None  # (28, 28) uint8: exactly what the model saw
    verdict: Verdict | None = None
    region: Region | None = None  # where the digit was found, (x0, y0, x1, y1) in the input's pixels
    route: str | None = None      # "drawing" or "photo" (core.preprocess); None when there was nothing to recognize

    @property
    def empty(self) -> bool:
        return self.digit is None


# A second reading replaces the usual one only when the classifier is at least SECOND_READING_SURE sure of it and the
# gate gives it at most SECOND_READING_GATE "not a digit": it is a guess at a harder photo, and on blank paper the
# cores alone can be a speck or a line's crossing that reads as a digit. Chosen on tune sets only (bench/README.md):
# of tune photos 0-2,799, 11 read right that the usual reading flagged; of 1,000 tune blank photos, 11 unflagged
# (42 at "a digit, 90% sure").
SECOND_READING_SURE = 0.98
SECOND_READING_GATE = 0.005


@dataclass
class Judged:
    """One input read: what the model saw, its calibrated probabilities, the gate's score and the verdict (the last
    three None when there was nothing to recognize)."""

    prepared: Preprocessed
    probabilities: list[float] | None = None
    gate: GateScore | None = None
    verdict: Verdict | None = None


def second_readings(first: Reading) -> list[Reading]:
    """Other ways to read a photo whose usual reading did not look like one clear digit: the dark stroke cores
    alone (a faint stain, shadow or speck had grown onto the digit), and dark ink where light ink was decided (a
    thick digit on mottled paper can look like the paper between light strokes)."""
    readings = [Reading(cores_only=True, light_ink=first.light_ink)]
    if first.light_ink:
        readings.append(Reading(light_ink=False))
    return readings


class Predictor:
    """Wraps a loaded model in eval mode; thread-safe for reads (no_grad, no state changes). Probabilities are
    calibrated by the temperature the weights file holds (core.calibration; 1.0 without one). Each prediction has a
    verdict (core.verdict) from them and from `gate`, the shipped "is this one digit?" network unless another or None
    (confidence alone) is given; the gate is separate from the weights, so it serves any weights the user loads."""

    def __init__(self, weights: LoadedWeights, gate: DigitGate | None | str = "default"):
        self.weights = weights
        self.model = weights.model.eval()
        self.temperature = temperature_of(weights.metrics)
        self.gate = default_gate() if gate == "default" else gate  # None: confidence alone judges

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
        """One batched forward pass for all non-empty images (and one more for each photo read a second way)."""
        results = []
        for read in self.read_many([to_gray(img) for img in images]):
            found = read.prepared
            if found.empty:
                results.append(Prediction(None, None, None))
                continue
            results.append(Prediction(int(np.argmax(read.probabilities)), read.probabilities, found.image28,
                                      read.verdict, found.region, found.route))
        return results

    def read_many(self, grays: Sequence[np.ndarray]) -> list[Judged]:
        """Each gray image (H, W) float32 0-255 (core.preprocess.to_gray) preprocessed, scored and judged. A photo
        whose usual reading is not judged a digit is read the second_readings ways too, and the one judged a digit
        surely enough (SECOND_READING_SURE, SECOND_READING_GATE) with the gate's lowest "not a digit" score replaces
        it; with none, the usual reading stands."""
        reads = self._judge([preprocess_gray(gray, self.weights.normalization) for gray in grays], grays)
        for i, read in enumerate(reads):
            if read.verdict is None or read.verdict.kind == "digit" or read.prepared.route != "photo":
                continue
            others = [read.prepared.read_again(reading) for reading in second_readings(read.prepared.reading)]
            judged = [r for r in self._judge(others, [grays[i]] * len(others)) if r.verdict and r.verdict.kind == "digit"
                      and max(r.probabilities) >= SECOND_READING_SURE
                      and (r.gate is None or r.gate.not_digit <= SECOND_READING_GATE)]
            if judged:
                reads[i] = min(judged, key=lambda r: r.gate.not_digit if r.gate is not None else 0.0)
        return reads

    def _judge(self, prepared: list[Preprocessed], grays: Sequence[np.ndarray]) -> list[Judged]:
        """Probabilities, gate scores and verdicts for preprocessed inputs, in one batch for the non-empty ones."""
        reads = [Judged(p) for p in prepared]
        filled = [i for i, p in enumerate(prepared) if not p.empty]
        if not filled:
            return reads
        probs = self.probabilities(torch.stack([prepared[i].tensor for i in filled]))  # (M, 10)
        images28 = torch.stack([torch.from_numpy(prepared[i].image28) for i in filled])  # (M, 28, 28) uint8
        scores = self.gate.scores(images28) if self.gate is not None else [None] * len(filled)
        threshold = self.gate.threshold if self.gate is not None else 1.0
        for row, score, i in zip(probs.tolist(), scores, filled):
            hints = drawing_hints(grays[i]) if prepared[i].route == "drawing" else []  # none for photos
            reads[i] = Judged(prepared[i], row, score, judge(row, score, threshold, hints))
        return reads


@functools.cache
def default_gate() -> DigitGate | None:
    """The shipped gate, read once; None (confidence alone judges, and a warning is logged) if it cannot be read."""
    try:
        return load_gate(DEFAULT_GATE)
    except GateError as exc:
        import logging

        logging.getLogger(__name__).warning("%s; verdicts use the confidence alone", exc)
        return None
