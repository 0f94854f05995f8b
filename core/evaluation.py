"""The test-set report behind `evaluate` and the Evaluate tab: per-image results, features, a cache per weights."""
from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from core import paths
from core.data import FILE_NAMES, find_files, load_mnist
from core.embedding import capturing_features
from core.inference import Evaluation, evaluate, inference_model
from core.weights import LoadedWeights

# images per forward pass: the unit of progress and of cancelling (~30 ms for DigitNet). Smaller batches stay in the
# CPU's caches: the 10k test images took 2.1 s for DigitNet in batches of 1000, 1.2 s in batches of 250.
EVAL_BATCH = 250


@dataclass
class TestReport:
    """One weights file on the MNIST test set: the summary numbers and every image's result."""

    __test__ = False  # a result, not a pytest test class

    evaluation: Evaluation    # accuracy, loss, per_class_accuracy, confusion[true][pred], misclassified, n
    labels: np.ndarray        # (N,) int64 true digits
    predictions: np.ndarray   # (N,) int64
    confidences: np.ndarray   # (N,) float32 softmax probability of the predicted digit
    features: np.ndarray      # (N, D) float32 penultimate-layer features (the input of the model's last Linear)
    images: np.ndarray        # (N, 28, 28) uint8 test images as stored (ink high, MNIST polarity)

    def _most_confident_first(self, indices: np.ndarray) -> np.ndarray:
        order = np.argsort(-self.confidences[indices], kind="stable")  # ties keep test-set order
        return indices[order]

    def cell(self, true: int, predicted: int) -> np.ndarray:
        """Indices of the images of digit `true` answered `predicted`, most confident first."""
        if true not in range(10) or predicted not in range(10):
            raise ValueError(f"digits are 0-9, got true={true}, predicted={predicted}")
        return self._most_confident_first(np.flatnonzero((self.labels == true) & (self.predictions == predicted)))

    def confident_mistakes(self, k: int = 60) -> np.ndarray:
        """Indices of at most `k` wrong predictions, most confident first."""
        return self._most_confident_first(np.flatnonzero(self.labels != self.predictions))[:max(k, 0)]


def evaluate_test_set(weights: LoadedWeights, data_dir: str | Path | None = None, download: bool = True,
                      on_progress: Callable[[int, int], None] | None = None,
                      should_stop: Callable[[], bool] | None = None,
                      batch_size: int = EVAL_BATCH) -> TestReport | None:
    """Run the weights on the MNIST test set (CPU); None when `should_stop()` said stop.

    The numbers come from core.inference.evaluate, the same call `python main.py evaluate` makes through here.
    `on_progress(images done, total)` after loading and after every batch. Raises core.data.DataError, with
    training's message, when MNIST is missing or unreadable.
    """
    data = load_mnist(data_dir, val_fraction=0.0, download=download)
    images, labels = data.test_images, data.test_labels  # (N, 28, 28) uint8, (N,) int64
    total = len(images)
    if on_progress is not None:
        on_progress(0, total)
    model = weights.model
    modes = {module: module.training for module in model.modules()}
    predictions: list[torch.Tensor] = []
    confidences: list[torch.Tensor] = []

    def keep_batch(done: int, logits: torch.Tensor) -> None:
        predicted = logits.argmax(1)  # the same argmax evaluate() counts
        probabilities = torch.softmax(logits.float(), dim=1)
        predictions.append(predicted.cpu())
        confidences.append(probabilities.gather(1, predicted[:, None])[:, 0].cpu())
        if on_progress is not None:
            on_progress(done, total)

    try:
        # Fold BatchNorm once here, so the hook sits on the very model whose logits evaluate() counts
        # (evaluate() leaves an already folded model as it is).
        runnable = inference_model(model)
        with capturing_features(runnable) as features:
            evaluation = evaluate(runnable, images, labels, weights.normalization, batch_size=batch_size,
                                  on_batch=keep_batch, should_stop=should_stop)
    finally:
        for module, training in modes.items():  # inference_model() switched the model to eval mode
            module.training = training
    if evaluation is None:
        return None
    width = features[0].shape[1] if features else 0
    return TestReport(
        evaluation=evaluation,
        labels=labels.numpy().astype(np.int64),
        predictions=torch.cat(predictions).numpy().astype(np.int64) if predictions else np.zeros(0, np.int64),
        confidences=torch.cat(confidences).numpy().astype(np.float32) if confidences else np.zeros(0, np.float32),
        features=torch.cat(features).float().numpy() if features else np.zeros((0, width), np.float32),
        images=images.numpy().copy(),
    )


def weights_fingerprint(weights: LoadedWeights) -> str:
    """A SHA-256 of the architecture, its arguments, the normalization and every parameter and buffer."""
    digest = hashlib.sha256()
    described = {"arch": weights.arch, "arch_args": weights.arch_args, "normalization": list(weights.normalization)}
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    for name, tensor in weights.model.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"|{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())  # raw bytes: any dtype, bfloat16 included
    return digest.hexdigest()


def _data_key(data_dir: str | Path | None) -> tuple:
    """The data folder, resolved, and the size and time of its test files (replaced files are other data)."""
    root = Path(data_dir).expanduser() if data_dir else paths.mnist_dir()
    found = find_files(root) or {}
    stamps = []
    for name in FILE_NAMES[False]:
        path = found.get(name)
        if path is not None:
            stat = path.stat()
            stamps.append((str(path.resolve()), stat.st_size, stat.st_mtime_ns))
    return (str(root.resolve()), tuple(stamps))


class ReportCache:
    """The last few reports, keyed by weights fingerprint and data folder, so switching back is instant."""

    def __init__(self, max_entries: int = 4):
        self.max_entries = max_entries
        self._reports: OrderedDict[tuple, TestReport] = OrderedDict()
        self._lock = threading.Lock()  # the GUI reads while a worker thread may store

    def _key(self, weights: LoadedWeights, data_dir: str | Path | None) -> tuple:
        return (weights_fingerprint(weights), _data_key(data_dir))

    def get(self, weights: LoadedWeights, data_dir: str | Path | None) -> TestReport | None:
        try:
            key = self._key(weights, data_dir)
        except OSError:  # a data folder the system cannot look up has nothing cached
            return None
        with self._lock:
            report = self._reports.get(key)
            if report is not None:
                self._reports.move_to_end(key)  # most recently used last
            return report

    def put(self, weights: LoadedWeights, data_dir: str | Path | None, report: TestReport) -> None:
        try:
            key = self._key(weights, data_dir)
        except OSError:  # the folder vanished or cannot be looked up: nothing to key the report by
            return
        with self._lock:
            self._reports[key] = report
            self._reports.move_to_end(key)
            while len(self._reports) > self.max_entries:
                self._reports.popitem(last=False)

    def __len__(self) -> int:
        return len(self._reports)
