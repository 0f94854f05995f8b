"""Checks on what a weights file holds, before anything is built from it: bounded architecture arguments, the
state_dict's keys, shapes and dtypes against a model on PyTorch's meta device, finite numbers, plain bounded metadata."""
from __future__ import annotations

import math

import torch

from core.models import ARCHITECTURES, build_model

MAX_WIDTH = 512                   # the Train tab offers up to 256
MAX_METADATA_VALUES = 10_000      # numbers, texts, lists and dicts in settings, metrics and the other fields
MAX_METADATA_TEXT = 10_000        # characters in any one text
MAX_METADATA_DEPTH = 8            # nesting of lists and dicts


class WeightsError(Exception):
    """A weights file could not be used or written; the message says why in plain words."""


def check_arch_args(arch: str, args: object, name: str) -> dict:
    """The constructor arguments, each known to the architecture and within bounds (width 1 to MAX_WIDTH)."""
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise WeightsError(f"{name}: the architecture arguments are a {type(args).__name__}, not a dict")
    known = ARCHITECTURES[arch].defaults
    for key, value in args.items():
        if key not in known:
            raise WeightsError(f"{name}: architecture {arch!r} takes no argument {key!r} "
                               f"(it takes {', '.join(known) or 'none'})")
        if key == "width" and not (type(value) is int and 1 <= value <= MAX_WIDTH):
            raise WeightsError(f"{name}: width must be a whole number from 1 to {MAX_WIDTH}, not {value!r:.40}")
        if key == "dropout" and not (type(value) in (int, float) and 0 <= value < 1):
            raise WeightsError(f"{name}: dropout must be a number from 0 to below 1, not {value!r:.40}")
    return dict(args)


def check_state(state: object, arch: str, args: dict, name: str) -> None:
    """Keys, shapes, dtypes and finiteness against the architecture, built on the meta device (no memory)."""
    if not isinstance(state, dict):
        raise WeightsError(f"{name} has no state_dict")
    with torch.device("meta"):
        expected = build_model(arch, **args).state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [str(k)[:40] for k in state if k not in expected]
    if missing or unexpected:
        raise WeightsError(f"{name} does not match architecture {arch!r}: "
                           f"missing {missing[:3] or 'none'}, unexpected {unexpected[:3] or 'none'}")
    for key, want in expected.items():
        value = state[key]
        if not isinstance(value, torch.Tensor) or value.layout != torch.strided:
            raise WeightsError(f"{name}: entry {key} is not a plain tensor")
        if tuple(value.shape) != tuple(want.shape):
            raise WeightsError(f"{name}: shapes don't match for {key}: file has {tuple(value.shape)}, "
                               f"architecture {arch!r} needs {tuple(want.shape)}")
        if want.is_floating_point():
            if not value.is_floating_point():
                raise WeightsError(f"{name}: entry {key} holds {value.dtype} numbers, not floating point")
            if not bool(torch.isfinite(value).all()):
                raise WeightsError(f"{name}: entry {key} holds NaN or infinite numbers; the weights are broken "
                                   "(training diverged?) and cannot be used")
        elif value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise WeightsError(f"{name}: entry {key} should hold whole numbers, not {value.dtype}")


def _check_plain(value: object, where: str, name: str, budget: list[int], depth: int = 0) -> None:
    """Metadata is plain data: None, bools, finite numbers, short texts, and lists and dicts of them, bounded."""
    budget[0] -= 1
    if budget[0] < 0:
        raise WeightsError(f"{name}: its metadata holds more than {MAX_METADATA_VALUES:,} values; not weights of this app")
    if depth > MAX_METADATA_DEPTH:
        raise WeightsError(f"{name}: {where} is nested too deeply")
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise WeightsError(f"{name}: {where} is not a finite number")
        return
    if isinstance(value, str):
        if len(value) > MAX_METADATA_TEXT:
            raise WeightsError(f"{name}: {where} is a text of {len(value):,} characters (at most {MAX_METADATA_TEXT:,})")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]", name, budget, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise WeightsError(f"{name}: {where} has a key that is not a text ({type(key).__name__})")
            _check_plain(item, f"{where}.{key[:40]}", name, budget, depth + 1)
        return
    kind = "a tensor" if isinstance(value, torch.Tensor) else f"a {type(value).__name__}"
    raise WeightsError(f"{name}: {where} is {kind}; only numbers and texts belong there")


def check_metadata(obj: dict, arch: str, name: str) -> tuple[tuple[float, float], dict, dict, str | None]:
    """normalization, settings, metrics, created: every field but the state_dict checked as plain, bounded data."""
    budget = [MAX_METADATA_VALUES]
    for key, value in obj.items():
        if key != "state_dict":
            _check_plain(value, str(key)[:40], name, budget)
    norm = obj.get("normalization")
    if norm is None:
        norm = ARCHITECTURES[arch].normalization
    if not (isinstance(norm, (list, tuple)) and len(norm) == 2
            and all(type(v) in (int, float) for v in norm) and norm[1] > 0):
        raise WeightsError(f"{name} has an invalid normalization {norm!r:.60} (it needs two numbers: mean and a "
                           "positive standard deviation)")
    sections = []
    for key in ("settings", "metrics"):
        value = obj.get(key)
        if value is not None and not isinstance(value, dict):
            raise WeightsError(f"{name}: its {key} are a {type(value).__name__}, not a dict")
        sections.append(dict(value or {}))
    settings, metrics = sections
    for key in ("test_accuracy", "val_accuracy"):
        value = metrics.get(key)
        if value is not None and not (type(value) in (int, float) and 0 <= value <= 1):
            raise WeightsError(f"{name}: its {key.replace('_', ' ')} must be a number from 0 to 1, not {value!r:.40}")
    temperature = metrics.get("temperature")  # core.calibration's fitted softmax temperature
    if temperature is not None and not (type(temperature) in (int, float) and 0.05 <= temperature <= 20):
        raise WeightsError(f"{name}: its temperature must be a number from 0.05 to 20, not {temperature!r:.40}")
    created = obj.get("created")
    if created is not None and not isinstance(created, str):
        raise WeightsError(f"{name}: its creation time is a {type(created).__name__}, not a text")
    return (float(norm[0]), float(norm[1])), settings, metrics, created
