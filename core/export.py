"""Sharing a model: ONNX for onnxruntime and other runtimes, safetensors with the weights file's metadata."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch

from core.atomic_files import atomic_write
from core.weights import (FORMAT_TAG, FORMAT_VERSION, SAFETENSORS_FIELDS, LoadedWeights, WeightsError,
                          _same_file, check_save_target)

ONNX_PACKAGES = ("onnx", "onnxscript")  # what torch.onnx.export(..., dynamo=True) needs
ONNX_INSTALL = 'pip install "digit-recognizer[onnx]"  (or: pip install onnx onnxscript)'
ONNX_OPSET = 20                          # the exporter's default; onnxruntime >= 1.17 runs it
ONNX_INPUT, ONNX_OUTPUT = "image", "logits"
MAX_ONNX_BATCH = 2**16                   # the dynamic batch dimension's upper bound (any batch a user will run)
FORMATS = {  # --format choice -> what the written file is, in one phrase
    "tutorial": "a bare state_dict that the tutorial's inference script loads unchanged",
    "onnx": "an ONNX model: input 'image' (N, 1, 28, 28) float32 preprocessed and normalized, output 'logits' (N, 10)",
    "safetensors": "the state_dict as safetensors, with this app's metadata as JSON text; it loads like a .pt file",
}


class ExportError(Exception):
    """An export could not be made (a missing package, the exporter failed); the message says why in one sentence."""


def missing_onnx_packages() -> list[str]:
    """The packages ONNX export needs that are not installed (empty when it can run)."""
    return [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]


def _export_target(weights: LoadedWeights, out: Path | str) -> Path:
    """check_save_target, and never the file the weights came from (the original stays)."""
    target = check_save_target(out)
    if _same_file(target, weights.path):
        raise WeightsError(f"{out} is the weights file being exported; choose another file, so the original stays")
    return target


def export_onnx(weights: LoadedWeights, out: Path | str) -> Path:
    """Write the model (eval mode: dropout off, BatchNorm's running statistics, which the exporter's optimizer folds
    into the convolutions) as ONNX with a dynamic batch dimension: input 'image' (N, 1, 28, 28) float32 exactly as
    core.preprocess.preprocess(...).tensor gives it (the weights' normalization applied), output 'logits' (N, 10).
    ExportError when onnx/onnxscript are missing or the exporter fails; WeightsError for a refused target."""
    missing = missing_onnx_packages()
    if missing:
        raise ExportError(f"ONNX export needs the {' and '.join(missing)} package{'s' * (len(missing) > 1)}: "
                          f"{ONNX_INSTALL}")
    target = _export_target(weights, out)
    model = weights.model
    was_training = model.training
    example = torch.zeros(2, 1, 28, 28)  # (N, 1, 28, 28); batch 2, not 1, so N is never specialized to a constant
    batch = torch.export.Dim("batch", min=1, max=MAX_ONNX_BATCH)
    try:
        model.eval()
        program = torch.onnx.export(model, (example,), dynamo=True, input_names=[ONNX_INPUT],
                                    output_names=[ONNX_OUTPUT], dynamic_shapes=({0: batch},), opset_version=ONNX_OPSET,
                                    verbose=False)
    except Exception as exc:  # the exporter's errors are pages long; one line says which
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ExportError(f"the ONNX exporter failed ({type(exc).__name__}: {first_line})") from exc
    finally:
        model.train(was_training)
    proto = program.model_proto
    proto.doc_string = f"digit-recognizer {weights.arch}: {FORMATS['onnx']}"
    for key, value in _metadata(weights).items():  # readable with onnx.load(...).metadata_props
        proto.metadata_props.add(key=key, value=value)
    atomic_write(proto.SerializeToString(), target)
    return Path(out)


def export_safetensors(weights: LoadedWeights, out: Path | str) -> Path:
    """Write the state_dict as safetensors, the weights file's metadata as JSON text per field;
    core.weights.load_weights reads it back with the same checks as a .pt file. WeightsError for a refused target."""
    from safetensors.torch import save

    target = _export_target(weights, out)
    state = {k: v.detach().cpu().contiguous() for k, v in weights.model.state_dict().items()}
    atomic_write(save(state, metadata=_metadata(weights)), target)
    return Path(out)


def _metadata(weights: LoadedWeights) -> dict[str, str]:
    fields = {"format": FORMAT_TAG, "version": FORMAT_VERSION, "arch": weights.arch, "arch_args": weights.arch_args,
              "normalization": list(weights.normalization), "settings": weights.settings, "metrics": weights.metrics,
              "created": weights.created}
    return {key: json.dumps(fields[key], allow_nan=False) for key in SAFETENSORS_FIELDS}
