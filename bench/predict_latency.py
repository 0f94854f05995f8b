"""Prediction latency: one 280x280 drawing through preprocess + forward, a 12 MP phone photo, and the predict CLI on 200
files, vs the tutorial's.

Run from the repository root:  python -m bench.predict_latency [--calls 1000] [--photo-calls 20] [--cli-repeats 3]
                                   [--baseline-gate PATH] [--json -]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from bench._common import REPO, child_env, emit, format_table, log, machine, machine_line, median, percentile, run_child
from core import pen_digits
from core.digit_gate import load_gate
from core.models import tutorial
from core.photo import Reading
from core.predict import Predictor
from core.preprocess import preprocess, preprocess_gray, to_gray

SIDE = 280  # the drawing pad's paper, as gui/drawing_pad.py hands it to the predictor

# The tutorial's inference script as written, looped over the files given on the command line (model loaded once).
TUTORIAL_SCRIPT = '''\
import sys
import torch
import torch.nn as nn
from torchvision import transforms
from PIL import Image

model = nn.Sequential(
    nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2,2),
    nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2,2),
    nn.Flatten(),
    nn.Linear(16*5*5, 10)
)
model.load_state_dict(torch.load(sys.argv[1], weights_only=True))  # the default since torch 2.6, made explicit
model.eval()
transform = transforms.Compose([
    transforms.Grayscale(num_output_channels=1),
    transforms.Resize((28,28)),
    transforms.ToTensor()
])
for path in sys.argv[2:]:
    img = Image.open(path)
    x = transform(img).unsqueeze(0)
    with torch.no_grad():
        logits = model(x)
        pred_class = torch.argmax(logits, dim=1).item()
    print("predicted digit:", pred_class)
'''


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=1000, help="timed calls per stage and thread setting")
    p.add_argument("--photo-calls", type=int, default=20, help="timed calls on 12 MP photos per thread setting")
    p.add_argument("--files", type=int, default=200, help="image files for the CLI comparison")
    p.add_argument("--cli-repeats", type=int, default=3, help="launches of each CLI command (median)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baseline-gate", help="also time predict with this digit gate file instead of the shipped one")
    p.add_argument("--json", help="write the results as JSON to this file; '-' prints JSON to stdout")
    return p.parse_args(argv)


def drawing(digit: int, rng: np.random.Generator) -> np.ndarray:
    """A mouse-drawn digit as the pad gives it: (280, 280) uint8, dark round-pen ink on white paper, off-centre."""
    variants = [v for v in pen_digits.VARIANTS if v.digit == digit and not v.heldout]
    polylines = pen_digits.jittered_polylines(variants[rng.integers(len(variants))], rng)
    ink = pen_digits.draw_polylines(polylines, pen=rng.uniform(0.07, 0.12), height=int(rng.integers(140, 210)))
    ink = ink[:SIDE - 10, :SIDE - 10]  # (h, w) in [0, 1]; a wide digit may not fit whole, as on the pad
    paper = np.ones((SIDE, SIDE), dtype=np.float32)
    top, left = (int(rng.integers(5, SIDE - n - 4)) for n in ink.shape)
    paper[top:top + ink.shape[0], left:left + ink.shape[1]] -= ink
    return np.round(paper * 255).astype(np.uint8)


def time_calls(fn: Callable[[np.ndarray], object], images: list[np.ndarray], n: int) -> list[tuple[float, float]]:
    """(wall ms, process CPU ms) of each of n calls, cycling through the images."""
    out = []
    for i in range(n):
        image = images[i % len(images)]
        wall, cpu = time.perf_counter(), time.process_time()
        fn(image)
        out.append(((time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3))
    return out


def in_process(args: argparse.Namespace, images: list[np.ndarray]) -> tuple[list[dict], dict]:
    """p50/p95 of each stage at torch's default threads and at 1 thread, in interleaved blocks of 100 calls."""
    predictor = Predictor.from_file(None)  # the shipped default weights
    norm = predictor.weights.normalization
    tensors = {id(img): preprocess(img, norm).tensor.unsqueeze(0) for img in images}  # (1, 1, 28, 28)
    base_model = tutorial().eval()  # latency does not depend on the weights' values
    from torchvision import transforms

    base_transform = transforms.Compose([transforms.Grayscale(num_output_channels=1), transforms.Resize((28, 28)),
                                         transforms.ToTensor()])

    @torch.no_grad()
    def tutorial_call(img: np.ndarray) -> int:
        return int(base_model(base_transform(Image.fromarray(img)).unsqueeze(0)).argmax(1))

    stages = {
        "ours: predict (preprocess + forward)": predictor.predict,
        **({f"ours: predict, gate {Path(args.baseline_gate).name}": Predictor(
            predictor.weights, gate=load_gate(args.baseline_gate)).predict} if args.baseline_gate else {}),
        "ours: preprocess only": lambda img: preprocess(img, norm),
        "ours: forward only (1, 1, 28, 28)": lambda img: predictor.probabilities(tensors[id(img)]),
        "tutorial: transform + forward (baseline)": tutorial_call,
    }
    default_threads = torch.get_num_threads()
    settings = sorted({default_threads, 1}, reverse=True)
    times = {(s, t): [] for s in stages for t in settings}
    for t in settings:  # warm-up: first calls pay one-time set-up (allocator, oneDNN primitives)
        torch.set_num_threads(t)
        for fn in stages.values():
            time_calls(fn, images, 20)
    blocks = max(1, args.calls // 100)
    for _ in range(blocks):
        for t in settings:
            torch.set_num_threads(t)
            for name, fn in stages.items():
                times[(name, t)] += time_calls(fn, images, args.calls // blocks)
    torch.set_num_threads(default_threads)
    rows = []
    for (name, t), pairs in times.items():
        wall, cpu = [w for w, _ in pairs], [c for _, c in pairs]
        rows.append({"stage": name, "threads": t, "calls": len(pairs), "p50_ms": percentile(wall, 50),
                     "p95_ms": percentile(wall, 95), "p99_ms": percentile(wall, 99), "mean_ms": float(np.mean(wall)),
                     "cpu_p50_ms": percentile(cpu, 50), "cpu_p95_ms": percentile(cpu, 95)})
    weights = {"name": predictor.weights.name, "arch": predictor.weights.arch, "arch_args": predictor.weights.arch_args}
    return rows, weights


def phone_photos(args: argparse.Namespace) -> list[dict]:
    """p50/p95 of predict on 12 MP (4000x3000 RGB) photos of a digit, at torch's default threads and at 1 thread,
    against today's drawing-only recipe on the same photos (preprocess(route="drawing") + forward)."""
    from bench.photo_sets import random_conditions, render, stroke_mask
    from dataclasses import replace

    rng = np.random.default_rng(args.seed)
    photos, labels = [], []
    for digit in (2, 5, 7):
        mask = stroke_mask(digit, rng, heldout=False)
        photos.append(render(mask, replace(random_conditions(rng), size=(4000, 3000), digit_share=0.3), rng))
        labels.append(digit)
    predictor = Predictor.from_file(None)
    norm = predictor.weights.normalization

    def read_three_ways(img: np.ndarray) -> None:
        """The worst case of predict: the usual reading not judged a digit, light ink decided, so both second
        readings run (core.predict.second_readings), one of them on the other polarity's page."""
        first = preprocess_gray(to_gray(img), norm)
        readings = [first, *(first.read_again(r) for r in (Reading(cores_only=True, light_ink=True),
                                                            Reading(light_ink=False)))]
        filled = [r for r in readings if not r.empty]
        predictor.probabilities(torch.stack([r.tensor for r in filled]))
        predictor.gate.scores(torch.stack([torch.from_numpy(r.image28) for r in filled]))

    stages = {
        "ours: predict a 12 MP photo (photo route)": predictor.predict,
        "ours, worst case: read three ways (usual reading flagged)": read_three_ways,
        "today's recipe on it (drawing route, baseline)":
            lambda img: predictor.probabilities(preprocess(img, norm, route="drawing").tensor[None]),
    }
    default_threads = torch.get_num_threads()
    rows = []
    for t in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(t)
        for name, fn in stages.items():
            time_calls(fn, photos, 2)  # warm-up (OpenCV's first call loads its kernels)
            pairs = time_calls(fn, photos, args.photo_calls)
            wall = [w for w, _ in pairs]
            rows.append({"stage": name, "threads": t, "calls": len(pairs), "p50_ms": percentile(wall, 50),
                         "p95_ms": percentile(wall, 95), "max_ms": max(wall)})
    torch.set_num_threads(default_threads)
    rows[0]["correct"] = sum(predictor.predict(img).digit == y for img, y in zip(photos, labels))
    rows[0]["photos"] = len(photos)
    return rows


def cli(args: argparse.Namespace, images: list[np.ndarray], labels: list[int], tmp: Path) -> list[dict]:
    """Wall time of `main.py predict` on all files and on one, interleaved with the tutorial's script on the same."""
    files = []
    for i, img in enumerate(images):
        path = tmp / f"digit_{i:03d}_{labels[i]}.png"
        Image.fromarray(img).save(path)
        files.append(str(path))
    state = tmp / "cnn_mnist.pth"
    torch.save(tutorial().state_dict(), state)  # untrained: the script's speed does not depend on the values
    script = tmp / "tutorial_predict.py"
    script.write_text(TUTORIAL_SCRIPT)
    commands = {
        f"ours: main.py predict --json, {len(files)} files": [sys.executable, "main.py", "predict", *files, "--json"],
        f"tutorial script loop, {len(files)} files (baseline)": [sys.executable, str(script), str(state), *files],
        "ours: main.py predict --json, 1 file": [sys.executable, "main.py", "predict", files[0], "--json"],
        "tutorial script, 1 file": [sys.executable, str(script), str(state), files[0]],
    }
    walls: dict[str, list[float]] = {name: [] for name in commands}
    correct = None
    for r in range(args.cli_repeats):
        for name, cmd in commands.items():
            run = run_child(cmd, env=child_env(), cwd=REPO)
            if run.returncode != 0:
                raise RuntimeError(f"{name} failed (exit {run.returncode}):\n{run.stderr[-2000:]}")
            walls[name].append(run.wall)
            if r == 0 and name.startswith("ours") and len(cmd) - 4 == len(files):  # sanity: our answers on the drawn digits
                answers = [json.loads(line)["digit"] for line in run.stdout.splitlines() if line.startswith("{")]
                correct = sum(a == y for a, y in zip(answers, labels))
    rows = []
    for name, cmd in commands.items():
        n = len(cmd) - 4 if name.startswith("ours") else len(cmd) - 3  # files on the command line
        rows.append({"command": name, "files": n, "wall_s": median(walls[name]), "walls": walls[name],
                     "per_image_ms": 1e3 * median(walls[name]) / n})
    for many, one in ((rows[0], rows[2]), (rows[1], rows[3])):  # the cost of each image after start-up
        many["marginal_ms"] = 1e3 * (many["wall_s"] - one["wall_s"]) / max(many["files"] - 1, 1)
    rows[0]["correct"] = correct
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    labels = [i % 10 for i in range(args.files)]
    images = [drawing(d, rng) for d in labels]
    log(f"in-process: {args.calls} calls per stage and thread setting ...")
    stage_rows, weights = in_process(args, images[:50])
    log(f"12 MP photos: {args.photo_calls} calls per route and thread setting ...")
    photo_rows = phone_photos(args)
    log(f"CLI: {args.files} files, {args.cli_repeats} launches of each command ...")
    with tempfile.TemporaryDirectory() as tmp:
        cli_rows = cli(args, images, labels, Path(tmp))
    info = machine()
    report = {"benchmark": "predict_latency", "machine": info, "weights": weights, "calls": args.calls,
              "seconds": round(time.perf_counter() - started, 1), "stages": stage_rows, "photos": photo_rows,
              "cli": cli_rows}
    main_p95 = {r["threads"]: r["p95_ms"] for r in stage_rows if r["stage"].startswith("ours: predict")}
    t1 = format_table(["stage", "threads", "calls", "p50 ms", "p95 ms", "p99 ms", "mean ms", "CPU p50 ms",
                       "CPU p95 ms"],
                      [[r["stage"], r["threads"], r["calls"], f"{r['p50_ms']:.2f}", f"{r['p95_ms']:.2f}",
                        f"{r['p99_ms']:.2f}", f"{r['mean_ms']:.2f}", f"{r['cpu_p50_ms']:.2f}",
                        f"{r['cpu_p95_ms']:.2f}"] for r in stage_rows])
    t2 = format_table(["command", "files", "wall s (median)", "per image ms", "per extra image ms"],
                      [[r["command"], r["files"], f"{r['wall_s']:.2f}", f"{r['per_image_ms']:.1f}",
                        f"{r['marginal_ms']:.1f}" if "marginal_ms" in r else "-"] for r in cli_rows])
    t3 = format_table(["stage", "threads", "calls", "p50 ms", "p95 ms", "max ms"],
                      [[r["stage"], r["threads"], r["calls"], f"{r['p50_ms']:.0f}", f"{r['p95_ms']:.0f}",
                        f"{r['max_ms']:.0f}"] for r in photo_rows])
    photo_p50 = {r["threads"]: r["p50_ms"] for r in photo_rows if r["stage"].startswith("ours: predict")}
    photo_verdict = ", ".join(f"{t} thread(s): p50 {v:.0f} ms {'<' if v < 300 else '>='} 300 ms"
                              for t, v in photo_p50.items())
    worst_p50 = {r["threads"]: r["p50_ms"] for r in photo_rows if r["stage"].startswith("ours, worst")}
    photo_verdict += "; read three ways (a photo not judged a digit at first): " + ", ".join(
        f"{t} thread(s): p50 {v:.0f} ms {'<' if v < 300 else '>='} 300 ms" for t, v in worst_p50.items())
    verdict = ", ".join(f"{t} thread(s): p95 {v:.2f} ms {'<=' if v <= 5 else '>'} 5 ms" for t, v in main_p95.items())
    text = (f"one 280x280 drawing, weights {weights['name']} ({weights['arch']} {weights['arch_args']})\n{t1}\n\n"
            f"target p95 <= 5 ms: {verdict}\n\n12 MP phone photos (4000x3000 RGB, in memory), "
            f"{photo_rows[0]['correct']}/{photo_rows[0]['photos']} read right\n{t3}\n\n"
            f"target 12 MP photo < 300 ms: {photo_verdict}\n\n{t2}\n\nour answers on the {args.files} drawn digits: "
            f"{cli_rows[0]['correct']}/{args.files} right; {machine_line(info)}")
    emit(report, text, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
