"""The `finetune` command: teach the weights in use the user's own handwriting from a samples folder (ImageFolder layout)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import jsonout, paths
from core.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, _fail, _percent



def _rounded(numbers: dict | None) -> dict | None:
    if numbers is None:
        return None
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in numbers.items()}


def cmd_finetune(args: argparse.Namespace) -> int:
    from core.finetune import FinetuneError, check_output, finetune, finetune_settings, save_finetuned
    from core.samples import SamplesError, load_samples
    from core.weights import WeightsError, check_save_target, load_default_weights, load_weights

    try:
        base = load_weights(args.weights) if args.weights else load_default_weights()
    except WeightsError as exc:
        return _fail(str(exc), EXIT_USAGE)
    out = Path(args.out).expanduser() if args.out else None
    if out is not None:
        try:
            check_output(out, base)  # before the work, so a refused --out costs nothing
            check_save_target(out)
        except (FinetuneError, WeightsError) as exc:
            return _fail(str(exc), EXIT_USAGE)
    folder = Path(args.samples).expanduser() if args.samples else paths.samples_dir()
    try:
        samples = load_samples(folder, base.normalization)
    except SamplesError as exc:
        return _fail(str(exc), EXIT_FAILED)
    for path, reason in samples.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)

    from core.run_recorder import RunRecorder, finetune_metrics

    settings = finetune_settings(base.arch, **({"seed": args.seed} if args.seed is not None else {}))
    recorder = RunRecorder.for_finetune(settings, base.name, base.arch, "cli")  # written once, when it ends
    bar = None

    def on_progress(p) -> None:
        nonlocal bar
        recorder.add_step(p)
        if bar is None:
            from core.cli_progress import ProgressBar

            bar = ProgressBar(p.total, "step", "steps", args.quiet)
        bar.update(p.step, loss=f"{p.loss:.4f}")

    if args.download:  # MNIST for the replay: a download shows its progress; offline, where the files come from
        from core.cli_download import locate_with_progress
        from core.data import DataError

        try:
            locate_with_progress(args.data, True, args.quiet)
        except DataError as exc:
            print(f"note: {exc}", file=sys.stderr)
    try:
        result = finetune(base, samples, settings, data_dir=args.data, download=False, on_progress=on_progress)
    except FinetuneError as exc:
        return _fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:  # Ctrl+C: the run is kept as stopped, without weights
        recorder.finish("stopped", message="interrupted (Ctrl+C); no weights were saved")
        return _fail("interrupted; no weights were saved", 130)
    finally:
        if bar is not None:
            bar.close()
    recorder.ran_with(result)  # "auto" became bf16 or fp32
    try:
        written = save_finetuned(result, base, out)
    except FinetuneError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except WeightsError as exc:
        recorder.finish("failed", finetune_metrics(result), message=f"fine-tuned, but {exc}")
        return _fail(f"fine-tuned, but {exc}", EXIT_FAILED)
    recorder.finish("completed", finetune_metrics(result), written, message="; ".join(result.notes) or None)
    status = EXIT_OK if out is None or written == out else EXIT_FAILED  # saved, but not where --out said

    for note in result.notes:
        print(f"{'error' if status and note.startswith('could not save') else 'note'}: {note}", file=sys.stderr)
    if args.json:
        print(jsonout.dumps({"weights": str(written), "base": base.name, "samples": result.samples,
                            "held_out": _rounded(result.held_out), "mnist_test": _rounded(result.mnist_test),
                            "seconds": round(result.seconds, 2)}))
        return status
    held = result.held_out
    print(f"fine-tuned {base.name} ({base.arch}) on {result.trained_on} of your {result.samples} samples "
          f"in {result.seconds:.1f} s")
    if held:
        print(f"your held-out samples ({held['n']}): {_percent(held['before'])} -> {_percent(held['after'])}")
    if result.mnist_test:
        print(f"MNIST test: {_percent(result.mnist_test['before'])} -> {_percent(result.mnist_test['after'])}")
    else:
        print("MNIST test: unknown (MNIST not found)")
    print(f"weights saved to {written}")
    return status


def add_finetune_parser(sub) -> None:
    """Register `finetune` on the main parser's subcommands."""
    from core.cli import MAX_SEED, whole_number

    f = sub.add_parser("finetune", help="teach the weights your own handwriting from a folder of your samples")
    f.add_argument("samples", nargs="?", metavar="SAMPLES_DIR",
                   help=f"ImageFolder layout, subfolders 0-9 (default: {paths.samples_dir()})")
    f.add_argument("--weights", metavar="BASE", help="weights to start from (default: the shipped default weights)")
    f.add_argument("--data", metavar="DIR", help=f"MNIST folder for replay and testing (default: {paths.mnist_dir()})")
    f.add_argument("--download", action="store_true", help="download MNIST (from torchvision's mirrors) if it is missing, for the replay that guards against forgetting")
    f.add_argument("--out", metavar="PATH",
                   help=f"weights file to write (default: a new file in {paths.user_weights_dir()})")
    f.add_argument("--seed", type=whole_number(0, MAX_SEED),
                   help="seeds the held-out split, batch order and augmentation (default 0)")
    f.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_finetune)
