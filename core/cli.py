"""The headless command line: train, predict, evaluate, export, summary, explain, finetune, runs (`main.py CMD --help`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import jsonout, paths

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake in the command line or an unusable input; reported in one line with exit status 2."""


def _fail(message: str, status: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


def _percent(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


MAX_SEED = 2**63 - 1  # what every generator seeded from it accepts
MAX_THREADS = 1024


def whole_number(low: int, high: int):
    """An argparse type: a whole number in [low, high], else a usage error naming the range."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r:.40} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text:.40} is out of range; use {low} to {high:,}")
        return value
    return parse


def share(text: str) -> float:
    """An argparse type: a share as a fraction ("0.1") or a percentage ("10%"), the unit the window shows."""
    stripped = text.strip()
    percent = stripped.endswith("%")
    try:
        value = float(stripped[:-1] if percent else stripped)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r:.40} is not a share; write 0.1 or 10%") from None
    value = value / 100 if percent else value
    if not 0 <= value < 1:  # NaN too; said in both units, so "30" shows what was meant
        raise argparse.ArgumentTypeError(f"{text:.40} is out of range: a share from 0 up to, not including, 1 "
                                         f"(0.3), or a percentage below 100% (30%)")
    return value


def _load_weights_or_default(path: str | None):
    from core.weights import WeightsError, load_default_weights, load_weights

    try:
        return load_weights(path) if path else load_default_weights()
    except WeightsError as exc:
        raise UsageError(str(exc)) from exc


# ---------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> int:
    from core.cli_download import locate_with_progress
    from core.cli_progress import ProgressBar
    from core.data import DataError
    from core.settings import label_smoothing_note
    from core.training import TrainingError, preset, train
    from core.weights import WeightsError, check_save_target, save_training_result

    overrides = {k: v for k, v in {
        "arch": args.arch, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "optimizer": args.optimizer, "augment": args.augment, "seed": args.seed, "device": args.device,
        "precision": args.precision,
        "data_dir": args.data, "val_fraction": args.val_share, "threads": args.threads, "init_weights": args.init,
    }.items() if v is not None}
    settings = preset(args.preset, **overrides)  # another --arch drops the preset's arch_args; "custom" once changed
    out = Path(args.out).expanduser() if args.out else None
    if out is not None:
        try:
            check_save_target(out)  # before training, so a bad --out costs nothing
        except WeightsError as exc:
            return _fail(f"--out: {exc}", EXIT_USAGE)
    try:  # MNIST first: a download shows its own progress bar before training's
        locate_with_progress(settings.data_dir, settings.download, args.quiet)
    except DataError as exc:
        return _fail(f"{exc} (--data DIR)", EXIT_FAILED)

    from core.run_recorder import RunRecorder, training_metrics

    recorder = RunRecorder.for_training(settings, "cli")  # the run's record, written once when it ends
    bar = None
    note = label_smoothing_note(settings.label_smoothing)
    if note and not args.quiet:  # why quick's loss stays near 0.5: said before the numbers
        print(f"note: {note}", file=sys.stderr)

    def on_batch(p):
        nonlocal bar
        recorder.add_progress(p)
        if bar is None:
            bar = ProgressBar(p.total_batches, "batch", "batches", args.quiet)
        bar.update(p.batches_done, p.samples_per_second, p.eta_seconds, epoch=f"{p.epoch + 1}/{settings.epochs}",
                   loss=f"{p.loss:.4f}", accuracy=f"{100 * p.running_accuracy:.1f}%")

    def on_epoch(e):
        recorder.add_epoch(e)
        if not args.quiet:
            line = f"epoch {e.epoch + 1}/{settings.epochs}: train loss {e.train_loss:.4f}"
            if e.train_accuracy is not None:
                line += f", train accuracy {_percent(e.train_accuracy)}"
            if e.val_accuracy is not None:  # no validation share, no validation numbers (not "None")
                line += f", validation loss {e.val_loss:.4f}, validation accuracy {_percent(e.val_accuracy)}"
            if bar is not None:
                bar.write(line)
            else:
                print(line, file=sys.stderr)

    try:
        result = train(settings, on_batch=on_batch, on_epoch=on_epoch)
    except DataError as exc:
        return _fail(f"{exc} (--data DIR)", EXIT_FAILED)
    except TrainingError as exc:  # core messages name no flags: point at ours
        if recorder.samples_done:  # it had begun (e.g. the loss diverged): a failed run is kept with its curve
            recorder.finish("failed", {"epochs_completed": len(recorder.epochs)}, message=str(exc))
        return _fail(f"{exc} (--device)" if exc.setting == "device" else str(exc), EXIT_FAILED)
    except KeyboardInterrupt:  # Ctrl+C: the run is kept as stopped, without weights
        recorder.finish("stopped", {"epochs_completed": len(recorder.epochs)},
                        message="interrupted (Ctrl+C); no weights were saved")
        return _fail("interrupted; no weights were saved", 130)
    finally:
        if bar is not None:
            bar.close()
    recorder.ran_with(result)  # the precision and threads training settled on
    try:
        saved = save_training_result(result.model, settings.arch, result.arch_args, result.normalization,
                                     settings.to_dict(), result.metrics, out, f"{settings.preset}-{settings.arch}")
    except WeightsError as exc:
        recorder.finish("failed", training_metrics(result), message=f"trained, but {exc}")
        return _fail(f"trained, but {exc}", EXIT_FAILED)
    except KeyboardInterrupt:  # the save is atomic: the target is either whole or untouched
        return _fail("interrupted while saving; no weights were saved", 130)
    out = saved.path
    recorder.finish("completed", training_metrics(result), out)
    if saved.fell_back:  # the file asked for could not be written: the weights are kept, and the exit says so
        _fail(f"could not save to {saved.requested} ({saved.reason}); the weights were saved to {out} instead",
              EXIT_FAILED)
    summary = {"weights": str(out), "arch": settings.arch, "preset": settings.preset, "epochs": len(result.epochs),
               "val_accuracy": result.val_accuracy, "test_accuracy": result.test.accuracy,
               "train_seconds": round(result.seconds, 2)}
    if args.json:
        print(jsonout.dumps(summary))
    else:
        val = "" if result.val_accuracy is None else f" (validation {_percent(result.val_accuracy)})"
        print(f"test accuracy {_percent(result.test.accuracy)}{val} after {len(result.epochs)} epoch(s) in "
              f"{result.seconds:.1f} s; weights saved to {out}")
    if recorder.saved is not None and not args.json:
        print(f"run {recorder.id} recorded (python main.py runs show {recorder.id})")
    elif recorder.save_error:
        print(f"note: {recorder.save_error}", file=sys.stderr)
    return EXIT_FAILED if saved.fell_back else EXIT_OK


# ---------------------------------------------------------------- predict
def cmd_predict(args: argparse.Namespace) -> int:
    from core.predict import Predictor
    from core.preprocess import ImageError, load_image

    predictor = Predictor(_load_weights_or_default(args.weights))
    any_failed = False
    for path in args.images:
        record = {"path": path, "digit": None, "probabilities": None, "verdict": None, "candidates": None,
                  "looks_like": None, "not_digit_probability": None, "hints": [], "region": None, "route": None,
                  "error": None}
        verdict = None
        try:
            prediction = predictor.predict(load_image(path))
            record["digit"], record["probabilities"] = prediction.digit, prediction.probabilities
            record["region"] = None if prediction.region is None else list(prediction.region)  # [x0, y0, x1, y1]
            record["route"] = prediction.route
            verdict = prediction.verdict
            if verdict is not None:  # core/verdict.py: "digit", "unsure" or "not_a_digit"
                record.update(verdict=verdict.kind, candidates=verdict.candidates, looks_like=verdict.looks_like,
                              not_digit_probability=verdict.not_digit_probability, hints=verdict.hints)
        except ImageError as exc:
            record["error"], any_failed = str(exc), True
        if args.json:
            print(jsonout.dumps(record), flush=True)
        elif record["error"]:
            print(f"{path}: error: {record['error']}", flush=True)
        elif record["digit"] is None:
            print(f"{path}: nothing to recognize (blank image)", flush=True)
        else:
            sentence = (verdict.sentence(record["probabilities"]) if verdict is not None
                        else f"{record['digit']} ({_percent(max(record['probabilities']))})")
            print(f"{path}: {sentence}", flush=True)
    return EXIT_FAILED if any_failed else EXIT_OK


# ---------------------------------------------------------------- evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.cli_download import locate_with_progress
    from core.data import DataError
    from core.evaluation import evaluate_test_set

    weights = _load_weights_or_default(args.weights)
    try:
        locate_with_progress(args.data)  # a download shows a progress bar on stderr
        ev = evaluate_test_set(weights, args.data).evaluation  # the Evaluate tab's computation
    except DataError as exc:
        return _fail(f"{exc} (--data DIR)", EXIT_FAILED)
    if args.json:
        print(jsonout.dumps({"weights": str(weights.path), "test_accuracy": ev.accuracy,
                            "per_class_accuracy": ev.per_class_accuracy, "confusion": ev.confusion, "n": ev.n}))
        return EXIT_OK
    print(f"{weights.name} ({weights.arch}): test accuracy {_percent(ev.accuracy)} on {ev.n:,} MNIST test images")
    print("per digit: " + "  ".join(f"{d}:{100 * a:.1f}" for d, a in enumerate(ev.per_class_accuracy)))
    print("confusion (rows = true digit, columns = predicted):")
    print("     " + "".join(f"{d:>6}" for d in range(10)))
    for d, row in enumerate(ev.confusion):
        print(f"{d:>5}" + "".join(f"{c:>6}" for c in row))
    return EXIT_OK


# ---------------------------------------------------------------- export, summary
def cmd_export(args: argparse.Namespace) -> int:
    from core.export import FORMATS, ExportError, export_onnx, export_safetensors
    from core.weights import WeightsError, export_tutorial

    weights = _load_weights_or_default(args.weights)
    write = {"tutorial": export_tutorial, "onnx": export_onnx, "safetensors": export_safetensors}[args.format]
    try:
        out = write(weights, args.out)
    except WeightsError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except ExportError as exc:
        return _fail(str(exc), EXIT_FAILED)
    except OSError as exc:
        return _fail(f"could not write {args.out}: {exc.strerror or exc}", EXIT_FAILED)
    print(f"wrote {out}: {FORMATS[args.format]}")
    return EXIT_OK


def cmd_summary(args: argparse.Namespace) -> int:
    from core.models import build_model, format_summary

    if args.weights:
        weights = _load_weights_or_default(args.weights)
        model, title = weights.model, f"{weights.name} ({weights.arch} {weights.arch_args})"
    else:
        model, title = build_model(args.arch), args.arch
    print(title)
    print(format_summary(model))
    return EXIT_OK


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from core.cli_explain import add_explain_parser
    from core.cli_finetune import add_finetune_parser
    from core.cli_runs import add_runs_parser
    from core.models import ARCHITECTURES
    from core.training import DEVICES, OPTIMIZERS, PRECISIONS, PRESETS

    parser = argparse.ArgumentParser(prog="main.py", description="Handwritten-digit recognizer. "
                                     "Without a command, opens the desktop app.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a CNN on MNIST and save its weights")
    t.add_argument("--preset", choices=list(PRESETS), default="quick", help="starting settings (default: quick)")
    t.add_argument("--arch", choices=list(ARCHITECTURES), help="architecture (default: the preset's)")
    t.add_argument("--epochs", type=int, help="full passes over the training images; more take longer and usually "
                   "learn more (default: the preset's)")
    t.add_argument("--batch-size", type=int, help="images per optimizer step; larger is faster per image but takes "
                   "fewer steps per epoch (default: the preset's)")
    t.add_argument("--lr", type=float, help="(peak) learning rate: the size of each step; larger learns faster "
                   "until training becomes unstable (default: the preset's)")
    t.add_argument("--optimizer", choices=list(OPTIMIZERS),
                   help="how the weights are updated from the gradients; sgd uses Nesterov momentum 0.9 "
                        "(default: the preset's)")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random affine / thickness / blur augmentation")
    t.add_argument("--val-share", type=share, metavar="SHARE",
                   help="share of the 60k training images held out for validation, same share of every digit: "
                        "a share (0.1) or a percentage as the window shows it (10%%), from 0 up to, not including, 1 "
                        "(100%%) (the settings' val_fraction; default: the preset's)")
    t.add_argument("--seed", type=whole_number(0, MAX_SEED),
                   help="same seed and settings give the same run, number for number (default: 0)")
    t.add_argument("--init", metavar="PATH", help="start from this weights file instead of random weights, to "
                   "continue training it; it must hold the architecture being trained (default: random weights)")
    t.add_argument("--data", metavar="DIR", help=f"MNIST folder (default: {paths.mnist_dir()})")
    t.add_argument("--out", metavar="PATH", help=f"weights file to write (default: a new file in {paths.user_weights_dir()})")
    t.add_argument("--device", choices=list(DEVICES),
                   help="where training runs; auto = a GPU when there is one, else the CPU (default: auto)")
    t.add_argument("--precision", choices=list(PRECISIONS),
                   help="fp32, bf16 autocast, or auto = bf16 where the hardware has it and a quick timing shows it faster "
                   "for this model (default: the preset's)")
    t.add_argument("--threads", type=whole_number(1, MAX_THREADS),
                   help="torch intra-op threads (default: chosen while training by timing batches, fewer when "
                   "another program keeps a core busy; set it for bit-identical reruns)")
    t.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="recognize the digit in image files")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...): one digit each, "
                   "any size, dark on light or light on dark")
    p.add_argument("--weights", metavar="PATH", help="weights file (default: the shipped default weights)")
    p.add_argument("--json", action="store_true", help="one JSON object per image on stdout: digit (the top guess, "
                   "null only when there is nothing to recognize), probabilities, and verdict: digit, unsure (the "
                   "model hesitates between the candidates) or not_a_digit (looks_like says what it resembles)")
    p.set_defaults(func=cmd_predict)

    e = sub.add_parser("evaluate", help="accuracy, per-digit accuracy and confusion matrix on the MNIST test set")
    e.add_argument("--weights", metavar="PATH", help="weights file (default: the shipped default weights)")
    e.add_argument("--data", metavar="DIR", help=f"MNIST folder (default: {paths.mnist_dir()})")
    e.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    e.set_defaults(func=cmd_evaluate)

    x = sub.add_parser("export", help="write weights in another format")
    x.add_argument("--weights", metavar="PATH", required=True, help="the weights file to export")
    x.add_argument("--format", choices=["tutorial", "onnx", "safetensors"], required=True,
                   help="tutorial: a bare state_dict for the tutorial's own inference script (tutorial architecture "
                        "only); onnx: for onnxruntime and other runtimes, input (N, 1, 28, 28) preprocessed and "
                        "normalized, output logits (needs: pip install onnx onnxscript); safetensors: the weights "
                        "with their metadata, loadable like a .pt file")
    x.add_argument("--out", metavar="PATH", required=True, help="the file to write")
    x.set_defaults(func=cmd_export)

    s = sub.add_parser("summary", help="every layer's output shape and parameter count")
    s.add_argument("--arch", choices=list(ARCHITECTURES), default="digitnet",
                   help="the architecture to summarize, freshly built (default: digitnet)")
    s.add_argument("--weights", metavar="PATH", help="summarize the model in this weights file instead")
    s.set_defaults(func=cmd_summary)
    add_explain_parser(sub)   # core/cli_explain.py
    add_finetune_parser(sub)  # core/cli_finetune.py
    add_runs_parser(sub)      # core/cli_runs.py
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
