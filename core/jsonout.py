"""JSON text for every `--json` output: floats rounded by what they measure, and never NaN (always valid JSON)."""
from __future__ import annotations

import json
import math
from typing import Any

ACCURACY_PLACES = 4      # accuracies and other ratios: 0.9745, i.e. 97.45%
PROBABILITY_PLACES = 6   # a softmax output: enough to tell 0.999999 from 1
SECONDS_PLACES = 2       # durations: 12.34 s


def _places(key: str | None) -> int:
    """Decimal places for a float stored under `key` (a list's items take their list's key)."""
    if key is not None and (key == "probabilities" or key.endswith("probability")):
        return PROBABILITY_PLACES
    if key is not None and key.endswith("seconds"):
        return SECONDS_PLACES
    return ACCURACY_PLACES


def rounded(obj: Any, key: str | None = None) -> Any:
    """A copy of `obj` (dicts, lists, tuples, scalars) with each float rounded by the key it is stored under.

    Keys named `probabilities` or ending in `probability`: 6 places; ending in `seconds`: 2; every other float
    (accuracies, before/after ratios): 4. NaN and infinities stay as they are, so `dumps` refuses them."""
    if isinstance(obj, dict):
        return {k: rounded(v, k if isinstance(k, str) else key) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(item, key) for item in obj]
    if isinstance(obj, float) and math.isfinite(obj):
        return round(obj, _places(key))
    return obj


def dumps(obj: Any, indent: int | None = None) -> str:
    """`rounded(obj)` as JSON text; ValueError where a float is NaN or infinite, since JSON has no such value."""
    return json.dumps(rounded(obj), indent=indent, allow_nan=False)
