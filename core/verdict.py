"""The verdict on one input: a digit, "not sure" (the model hesitates between digits) or "not a digit" (the gate
says it is not one digit), with hints about the drawing ("draw bigger", strokes off the edge)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.digit_gate import GateScore
from core.not_digits import DESCRIPTIONS

VERDICTS = ("digit", "unsure", "not_a_digit")
# A calibrated top probability below this is "not sure". Chosen with the gate's threshold on bench/not_digits.py's
# tune sets only (bench/README.md): at most 0.5% of every tune set of drawn or typed real digits flagged (half the 1%
# budget, room for held-out data) and at least 92% of every non-digit tune set; among those, the fewest photo digits
# flagged.
UNSURE_BELOW = 0.4
SMALL_SHARE = 0.25           # ink's longer side under this share of the picture's shorter side: "draw bigger"
EDGE_INK_PIXELS = 3          # ink on at least this many border pixels: strokes run off the edge


@dataclass
class Verdict:
    """What to tell the user besides the bars. `candidates`: the top digit, or the two the model hesitates between."""

    kind: str                                   # one of VERDICTS
    candidates: list[int]
    looks_like: str | None = None               # for "not_a_digit": what it looks like instead (core.not_digits)
    not_digit_probability: float | None = None  # the gate's P(not one digit); None without a gate
    hints: list[str] = field(default_factory=list)

    @property
    def headline(self) -> str:
        """One short line: "7", "Not sure: 4 or 9?", "Not a digit?"."""
        if self.kind == "digit":
            return str(self.candidates[0])
        if self.kind == "unsure":
            return f"Not sure: {' or '.join(str(d) for d in self.candidates)}?"
        return "Not a digit?"

    def sentence(self, probabilities: list[float]) -> str:
        """The verdict in words with the candidates' probabilities, then the hints: "7 (99.98%)", "not sure: 4 (52.0%)
        or 9 (45.1%)?", "probably not a single digit (it looks like a letter or symbol); closest digit 4 (99.9%)"."""
        odds = [f"{d} ({100 * probabilities[d]:.2f}%)" for d in self.candidates]
        if self.kind == "digit":
            text = odds[0]
        elif self.kind == "unsure":
            text = f"not sure: {' or '.join(odds)}?"
        else:
            text = f"probably not a single digit (it looks like {self.looks_like}); closest digit {odds[0]}"
        return "; ".join([text, *self.hints])


def judge(probabilities: list[float], gate: GateScore | None, gate_threshold: float,
          hints: list[str] | None = None, unsure_below: float = UNSURE_BELOW) -> Verdict:
    """The verdict from the ten calibrated probabilities and the gate's score (None: confidence alone decides)."""
    order = [int(d) for d in np.argsort(probabilities)[::-1]]
    hints = list(hints or [])
    if gate is not None and gate.not_digit >= gate_threshold:
        if gate.kind == "dot":  # "draw bigger" would ask for a bigger dot
            hints = [h for h in hints if not h.startswith("draw bigger")]
        return Verdict("not_a_digit", order[:1], DESCRIPTIONS[gate.kind], gate.not_digit, hints)
    score = None if gate is None else gate.not_digit
    if probabilities[order[0]] < unsure_below:
        return Verdict("unsure", order[:2], None, score, hints)
    return Verdict("digit", order[:1], None, score, hints)


def drawing_hints(gray: np.ndarray) -> list[str]:
    """Hints from the picture itself (float (H, W), 0-255): a drawing far smaller than the picture, ink that runs
    off its edge. Polarity from the border, as in core.preprocess; nothing for a blank picture."""
    if gray.size == 0 or min(gray.shape) < 8:
        return []
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    paper = float(np.median(border))
    ink = np.abs(gray - paper)
    peak = float(ink.max())
    if peak < 32:
        return []
    mask = ink > 0.5 * peak  # (H, W) bool: clear ink only, not shadows or noise
    rows, cols = np.nonzero(mask)
    hints = []
    if max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 < SMALL_SHARE * min(gray.shape):
        hints.append("draw bigger: the digit fills only a small part of the picture")
    on_edge = int(mask[0].sum() + mask[-1].sum() + mask[1:-1, 0].sum() + mask[1:-1, -1].sum())
    if on_edge >= EDGE_INK_PIXELS:
        hints.append("strokes run off the edge: keep the whole digit inside")
    return hints
