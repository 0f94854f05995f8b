"""Insight latency: explain() (feature maps + attribution) and its pictures per drawn digit, vs Predictor.predict.

Target: the Insight tab updates within 100 ms of a stroke ending, on 2 CPU cores, for every architecture; the GUI
computes on one torch thread. Run from the repository root:
    python -m bench.insight_latency [--runs 30] [--json PATH | --json -]
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from bench._common import emit, format_table, log, machine, machine_line, percentile
from bench.predict_latency import drawing
from core.insight import ATTRIBUTION_METHODS, IG_STEPS, explain, integrated_gradients
from core.insight_render import activation_rgb, attribution_rgb
from core.models import ARCHITECTURES, build_model
from core.predict import Predictor
from core.preprocess import preprocess
from core.weights import LoadedWeights, load_default_weights

TARGET_MS = 100.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=30, help="timed calls per stage, architecture and thread setting")
    p.add_argument("--images", type=int, default=30, help="distinct drawn digits to cycle through")
    p.add_argument("--sweep-images", type=int, default=10, help="digits for the IG step-count accuracy sweep (0: skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the results as JSON to this file; '-' prints JSON to stdout")
    return p.parse_args(argv)


def predictors() -> dict[str, Predictor]:
    """DigitNet with the shipped weights; FastNet and the tutorial freshly built (timing ignores the values)."""
    out = {}
    gen = torch.Generator().manual_seed(0)
    for arch in ARCHITECTURES:
        if arch == "digitnet":
            out[arch] = Predictor(load_default_weights())
            continue
        with torch.random.fork_rng():
            torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
            model = build_model(arch).eval()
        out[arch] = Predictor(LoadedWeights(model, arch, {}, ARCHITECTURES[arch].normalization))
    return out


def render(explanation) -> None:
    """What the Insight tab draws: every map of every layer on its layer's scale (one call per layer), and the
    attribution overlay."""
    for layer in explanation.layers:
        activation_rgb(layer.maps, float(layer.maps.max()))  # (C, H, W, 3)
    attribution_rgb(explanation.image28, explanation.attribution)


def stages(predictor: Predictor) -> dict[str, Callable[[np.ndarray], object]]:
    out: dict[str, Callable[[np.ndarray], object]] = {"predict (baseline)": predictor.predict}
    for method in ATTRIBUTION_METHODS:
        out[f"explain, {method}"] = lambda img, m=method: explain(predictor, img, method=m)
    out["explain, integrated_gradients + pictures (Insight update)"] = lambda img: render(explain(predictor, img))
    return out


def time_stages(predictor: Predictor, images: list[np.ndarray], runs: int) -> dict[str, list[float]]:
    """Wall ms per call; the stages take turns call by call, so machine noise hits them alike."""
    calls = stages(predictor)
    for fn in calls.values():  # warm-up: oneDNN primitives and allocator caches for each batch shape
        for img in images[:3]:
            fn(img)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for r in range(runs):
        image = images[r % len(images)]
        for name, fn in calls.items():
            started = time.perf_counter()
            fn(image)
            times[name].append((time.perf_counter() - started) * 1e3)
    return times


def ig_sweep(predictor: Predictor, images: list[np.ndarray], steps: tuple[int, ...] = (8, 16, 32, 64),
             reference: int = 512) -> list[dict]:
    """IG's error against a fine integral (relative L2) and time, by Gauss-Legendre point count (1 thread)."""
    mean, std = predictor.weights.normalization
    blank, model = -mean / std, predictor.model
    errors: dict[int, list[float]] = {s: [] for s in steps}
    times: dict[int, list[float]] = {s: [] for s in steps}
    cases = []
    for img in images:
        x = preprocess(img, (mean, std)).tensor.unsqueeze(0)
        target = int(predictor.probabilities(x).argmax())
        fine = torch.zeros(28, 28)
        for chunk in range(reference // 64):  # the reference in chunks: midpoints of `reference` equal segments
            fine += _midpoint_ig(model, x, target, blank, reference, range(chunk * 64, chunk * 64 + 64))
        cases.append((x, target, fine))
    for s in steps:
        integrated_gradients(model, cases[0][0], cases[0][1], blank, s)  # warm-up: first calls of a shape are slow
        for x, target, fine in cases:
            started = time.perf_counter()
            approx = integrated_gradients(model, x, target, blank, s)
            times[s].append((time.perf_counter() - started) * 1e3)
            errors[s].append(float((approx - fine).norm() / fine.norm()))
    return [{"steps": s, "median_ms": percentile(times[s], 50), "median_rel_l2_error": percentile(errors[s], 50),
             "max_rel_l2_error": max(errors[s])} for s in steps]


def faithfulness(predictor: Predictor, images: list[np.ndarray], share: float = 0.1, seed: int = 0) -> list[dict]:
    """Deletion check per method: the target's logit drop when the `share` of inked pixels a method ranks highest
    is erased, against erasing as many random inked pixels (larger = the map points at pixels that matter)."""
    mean, std = predictor.weights.normalization
    rng = np.random.default_rng(seed)
    rows = []
    for method in ATTRIBUTION_METHODS:
        marked, random = [], []
        for img in images:
            result = explain(predictor, img, method=method)
            for order, drops in ((np.argsort(-result.attribution.ravel()), marked), (rng.permutation(784), random)):
                inked = [i for i in order if result.image28.flat[i] > 0]
                erased = result.image28.copy().ravel()
                erased[inked[:max(1, int(share * len(inked)))]] = 0
                x = torch.from_numpy(np.stack([result.image28.ravel(), erased])).float()
                logits = predictor.model(x.div(255).sub(mean).div(std).view(2, 1, 28, 28))  # (2, 10)
                drops.append(float(logits[0, result.target] - logits[1, result.target]))
        rows.append({"method": method, "median_drop_marked": percentile(marked, 50),
                     "median_drop_random": percentile(random, 50)})
    return rows


def _midpoint_ig(model, x: torch.Tensor, target: int, blank: float, n: int, indices: range) -> torch.Tensor:
    alphas = ((torch.tensor(list(indices), dtype=torch.float32) + 0.5) / n).view(-1, 1, 1, 1)
    baseline = torch.full_like(x, blank)
    path = (baseline + alphas * (x - baseline)).requires_grad_(True)
    (grads,) = torch.autograd.grad(model(path)[:, target].sum(), path)
    return ((x - baseline) * grads.sum(0, keepdim=True) / n)[0, 0].detach()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    images = [drawing(i % 10, rng) for i in range(args.images)]  # (280, 280) uint8 pad drawings
    models = predictors()
    default_threads = torch.get_num_threads()
    rows = []
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        for arch, predictor in models.items():
            log(f"{arch}, {threads} thread(s): {args.runs} calls per stage ...")
            for stage, ms in time_stages(predictor, images, args.runs).items():
                rows.append({"arch": arch, "threads": threads, "stage": stage, "calls": len(ms),
                             "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "mean_ms": float(np.mean(ms))})
    sweep, faithful = [], []
    if args.sweep_images:
        torch.set_num_threads(1)
        log(f"IG step-count sweep and deletion check on {args.sweep_images} digits (digitnet, 1 thread) ...")
        sweep = ig_sweep(models["digitnet"], images[:args.sweep_images])
        with torch.no_grad():
            faithful = faithfulness(models["digitnet"], images[:args.sweep_images])
    torch.set_num_threads(default_threads)
    info = machine()
    update = [r for r in rows if r["stage"].endswith("(Insight update)")]
    met = {f"{r['arch']}, {r['threads']} thread(s)": r["p95_ms"] <= TARGET_MS for r in update}
    report = {"benchmark": "insight_latency", "machine": info, "runs": args.runs, "ig_steps": IG_STEPS,
              "target_ms": TARGET_MS, "seconds": round(time.perf_counter() - started, 1), "rows": rows,
              "ig_step_sweep": sweep, "faithfulness": faithful, "target_met": met}
    table = format_table(["architecture", "threads", "stage", "calls", "p50 ms", "p95 ms", "mean ms"],
                         [[r["arch"], r["threads"], r["stage"], r["calls"], f"{r['p50_ms']:.1f}",
                           f"{r['p95_ms']:.1f}", f"{r['mean_ms']:.1f}"] for r in rows], align="lrlrrrr")
    verdict = "\n".join(f"- {r['arch']}, {r['threads']} thread(s): p95 {r['p95_ms']:.1f} ms "
                        f"{'<=' if r['p95_ms'] <= TARGET_MS else '>'} {TARGET_MS:.0f} ms" for r in update)
    text = (f"one 280x280 drawing per call; digitnet = shipped weights, fastnet/tutorial freshly built; "
            f"IG with {IG_STEPS} Gauss-Legendre points in one batch\n{table}\n\n"
            f"target: Insight update (explain + pictures) p95 <= {TARGET_MS:.0f} ms\n{verdict}")
    if sweep:
        text += "\n\nIG step count (digitnet, 1 thread), error against a 512-point integral:\n" + format_table(
            ["steps", "median ms", "median rel. L2 error", "max rel. L2 error"],
            [[s["steps"], f"{s['median_ms']:.1f}", f"{s['median_rel_l2_error']:.3f}", f"{s['max_rel_l2_error']:.3f}"]
             for s in sweep])
    if faithful:
        text += ("\n\nDeletion check (digitnet): the target's logit drop when erasing the 10% of inked pixels a "
                 "method marks most, vs 10% random inked pixels (medians):\n" + format_table(
                     ["method", "marked pixels erased", "random pixels erased"],
                     [[f["method"], f"{f['median_drop_marked']:.2f}", f"{f['median_drop_random']:.2f}"]
                      for f in faithful]))
    emit(report, f"{text}\n\n{machine_line(info)}", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
