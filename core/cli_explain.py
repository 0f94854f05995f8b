"""The `explain` command: what the network makes of one image, as PNG pictures and explain.json (for slides, tests)."""
from __future__ import annotations

import argparse
import math
import os
import re
from pathlib import Path

from core import jsonout
from core.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, _fail, _load_weights_or_default, _percent

DEFAULT_METHOD = "integrated_gradients"


def add_explain_parser(sub: argparse._SubParsersAction) -> None:
    """Register `explain` with the main parser's subcommands."""
    from core.insight import ATTRIBUTION_METHODS

    e = sub.add_parser("explain", help="pictures of what the network sees in an image: feature maps, filters, "
                                       "which pixels decided the answer")
    e.add_argument("image", metavar="IMAGE", help="the image to explain (any format Pillow reads)")
    e.add_argument("--weights", metavar="PATH", help="weights file (default: the shipped default weights)")
    e.add_argument("--out", metavar="DIR", required=True,
                   help="folder for the PNGs and explain.json (created if missing)")
    e.add_argument("--target", type=int, choices=range(10), metavar="D",
                   help="explain this digit instead of the predicted one (\"why not 7?\")")
    e.add_argument("--method", choices=list(ATTRIBUTION_METHODS), default=DEFAULT_METHOD,
                   help=f"attribution method (default: {DEFAULT_METHOD})")
    e.set_defaults(func=cmd_explain)


def _slug(title: str) -> str:
    """'Conv 1 + BatchNorm + ReLU: 32 maps, 28×28' -> 'conv1'; 'Max-pool 2: ...' -> 'maxpool2'."""
    return re.sub(r"[^a-z0-9]", "", title.split(":")[0].split(" + ")[0].lower())


def _report(explanation, weights, image: str, files: list[str]) -> dict:
    from core.models import summary

    layers = [{"name": row.name, "type": row.kind, "shape": list(row.output_shape[1:]), "parameters": row.parameters}
              for row in summary(weights.model)]  # shapes per image, without the batch dimension
    return {"image": image, "weights": str(weights.path) if weights.path else None, "arch": weights.arch,
            "digit": explanation.digit, "probabilities": [round(p, 6) for p in explanation.probabilities],
            "target": explanation.target, "method": explanation.method, "layers": layers,
            "parameters": sum(p.numel() for p in weights.model.parameters()), "files": files}


def _pictures(explanation, model) -> dict[str, object]:
    """File name -> PIL image, all rendered in memory before anything is written."""
    from core.insight import ATTRIBUTION_METHODS, first_layer_filters
    from core.insight_render import attribution_image, feature_grid_image, filters_image, input_image

    pictures: dict[str, object] = {"input28.png": input_image(explanation.image28)}
    for k, layer in enumerate(explanation.layers, start=1):
        pictures[f"maps_{k:02d}_{_slug(layer.title)}.png"] = feature_grid_image(layer)
    pictures["filters_conv1.png"] = filters_image(first_layer_filters(model))
    why = "Why" if explanation.target == explanation.digit else "Why not"
    title = (f"{why} {explanation.target}? {ATTRIBUTION_METHODS[explanation.method]} "
             f"(answer {explanation.digit}, {_percent(explanation.probabilities[explanation.target])} for "
             f"{explanation.target})")
    pictures[f"attribution_{explanation.target}_{explanation.method}.png"] = attribution_image(
        explanation.image28, explanation.attribution, title)
    return pictures


def _write_all(out: Path, pictures: dict[str, object], report: dict) -> None:
    """All files or none: every file goes to a temp file first, then all are renamed into place."""
    from core.insight_render import check_writable_target, write_temp_png

    created = [p for p in (out, *out.parents) if not p.exists()]
    out.mkdir(parents=True, exist_ok=True)
    temps: dict[Path, Path] = {}
    try:
        targets = [out / name for name in [*pictures, "explain.json"]]
        for target in targets:
            check_writable_target(target)
        for name, picture in pictures.items():
            temps[out / name] = write_temp_png(picture, out / name)
        temps[out / "explain.json"] = _write_temp_json(report, out / "explain.json")
        for target, tmp in list(temps.items()):
            os.replace(tmp, target)
            del temps[target]
    except BaseException:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        for folder in created:  # innermost first; only folders this run made, and only while empty
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def _write_temp_json(report: dict, path: Path) -> Path:
    from core.insight_render import write_temp

    text = jsonout.dumps(report, indent=2) + "\n"
    return write_temp(path, lambda f: f.write(text.encode()))


def cmd_explain(args: argparse.Namespace) -> int:
    from core.insight import explain
    from core.predict import Predictor
    from core.preprocess import ImageError, load_image

    weights = _load_weights_or_default(args.weights)  # unusable weights: exit 2, as predict
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return _fail(f"--out {out} exists and is not a folder", EXIT_USAGE)
    try:
        image = load_image(args.image)
    except ImageError as exc:
        return _fail(str(exc), EXIT_FAILED)
    explanation = explain(Predictor(weights), image, target=args.target, method=args.method)
    if explanation is None:
        return _fail(f"nothing to explain: {args.image} is blank (no ink found)", EXIT_FAILED)
    if not all(math.isfinite(p) for p in explanation.probabilities):
        return _fail(f"{weights.name} gives non-finite outputs (NaN or infinite weights); it cannot be used",
                     EXIT_USAGE)
    pictures = _pictures(explanation, weights.model)
    report = _report(explanation, weights, args.image, [*pictures, "explain.json"])
    try:
        _write_all(out, pictures, report)
    except OSError as exc:
        return _fail(f"could not write to {out}: {exc}", EXIT_FAILED)
    print(f"{args.image}: {explanation.digit} ({_percent(max(explanation.probabilities))}); "
          f"wrote {len(pictures) + 1} files to {out}")
    return EXIT_OK
