"""Trains the shipped "is this one digit?" gate, reproducibly from seeds:

    python -m core.gate_training --data ../shared/data --out resources/digit_gate.safetensors [--seed 0]
                                 [--members 0:12,0:24,1:24]

The gate is three members trained on the same pages (made from --seed), each with its own seed and length; their
probabilities are averaged (core.digit_gate.DigitGate).

Digits: MNIST's training split (the default weights' validation part left out), pen digits of the training hands, and
font digits of the training fonts (bench/ood_sets.py's "train" stream), a share of them made low-resolution or
blurred; photos of such digits (bench/photo_sets.py's paper, light and lines). Non-digits: core.not_digits pages of
the "train" stream, letters only from the training fonts; pairs from MNIST training digits and training hands; photos
of letters and of blank paper. A share of every kind of page gets remnants of paper lines (what a photo's crop keeps
of ruled or grid paper), so that lines say nothing about digit or not. The benchmark (bench/not_digits.py) draws
from other streams, other fonts, other hands, optdigits and MNIST's test split. One torch thread by default: the
same numbers on any machine."""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from core import augment as augmentation
from core.digit_gate import DEFAULT_THRESHOLD, gate_net, save_gate
from core.not_digits import KINDS, frame, make_page, pen_digit_mask
from core.preprocess import preprocess

NON_DIGITS = {"letter": 16000, "scribble": 6000, "dot": 3000, "line": 4000, "pair": 8000, "blank": 3000}
PEN_DIGITS, FONT_DIGITS, MNIST_DIGITS = 6000, 6000, 30000
LOW_RES_SHARE = 0.2          # share of the digits (MNIST, pen, font alike) made low-resolution or blurred
LOW_RES_PX = (6, 14)         # the long side they are shrunk to, as in small scans, thumbnails and far-off photos
LINE_REMNANT_SHARE = 0.08   # share of every page, digit or not, given remnants of paper lines (class-neutral)
MEMBERS = "0:12,0:24,1:24"  # SEED:EPOCHS of each member: chosen on bench/not_digits.py's tune sets (bench/README.md)
PHOTOS = {"digit": 2500, "letter": 800, "blank": 400}  # photo-like pages (bench/photo_sets.py's paper and light)
PHOTO_MAX_PX = 800           # training photos are made at most this large: a 4000 px one takes 8x as long to make


def training_fonts() -> list[Path | str]:
    """The training split's fonts (bench/ood_sets.py), or Pillow's built-in font when none is installed."""
    from bench.ood_sets import find_fonts

    found, _missing = find_fonts(heldout=False)
    return [*found, ""]


def mnist_mask_source(images: torch.Tensor, labels: torch.Tensor):
    """digit, rng -> an ink mask (h, w) in [0, 1] cropped from a random MNIST image (N, 28, 28) of that digit."""
    by_digit = {d: torch.nonzero(labels == d).flatten().tolist() for d in range(10)}

    def source(digit: int, rng: np.random.Generator) -> np.ndarray:
        pool = by_digit[digit]
        img = images[pool[rng.integers(len(pool))]].numpy().astype(np.float32) / 255.0
        rows, cols = np.nonzero(img > 0.1)
        return img[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    return source


def non_digit_images(seed: int, mnist_images: torch.Tensor, mnist_labels: torch.Tensor,
                     counts: dict[str, int] = NON_DIGITS) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (M, 28, 28) preprocessed non-digit pages of the train stream and their kind indices (M,)."""
    fonts = training_fonts()
    mnist_source = mnist_mask_source(mnist_images, mnist_labels)

    def pair_source(digit: int, rng: np.random.Generator) -> np.ndarray:
        return mnist_source(digit, rng) if rng.random() < 0.6 else pen_digit_mask(digit, rng, heldout=False)

    images, kinds = [], []
    for kind, count in counts.items():
        for i in range(count):
            page = make_page(kind, "train", seed, i, fonts=fonts, digit_source=pair_source)
            prepared = preprocess(page)
            if not prepared.empty:
                images.append(torch.from_numpy(prepared.image28))
                kinds.append(KINDS.index(kind))
    return torch.stack(images), torch.tensor(kinds)


def low_resolution(image28: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A preprocessed digit uint8 (28, 28) as a small or out-of-focus picture of it would come out of preprocessing:
    shrunk to LOW_RES_PX on its long side (area average) and enlarged again (half of these with firmer contrast), or
    blurred, on a page; the input when nothing is left."""
    import cv2

    rows, cols = np.nonzero(image28 > 20)
    if len(rows) == 0:
        return image28
    ink = Image.fromarray(image28[rows.min():rows.max() + 1, cols.min():cols.max() + 1].astype(np.float32) / 255, "F")
    w, h = ink.size
    big = int(rng.integers(40, 121))  # the page's drawing size, before framing
    size = (max(1, round(w * big / max(w, h))), max(1, round(h * big / max(w, h))))
    if rng.random() < 0.7:  # few pixels: shrink (area average), then enlarge smoothly
        small_side = int(rng.integers(LOW_RES_PX[0], LOW_RES_PX[1] + 1))
        small = (max(1, round(w * small_side / max(w, h))), max(1, round(h * small_side / max(w, h))))
        ink = ink.resize(small, Image.Resampling.BOX).resize(size, Image.Resampling.BICUBIC)
        if rng.random() < 0.5:  # a scanner's or camera's contrast: grey edges pushed to ink or paper, strokes firm
            low, width = rng.uniform(0.05, 0.35), rng.uniform(0.2, 0.6)
            ink = Image.fromarray(np.clip((np.asarray(ink) - low) / width, 0, 1).astype(np.float32), "F")
    else:                   # out of focus: blur of 3-8% of the digit's size
        sharp = np.asarray(ink.resize(size, Image.Resampling.BICUBIC))
        ink = cv2.GaussianBlur(np.pad(sharp, big // 8), (0, 0), rng.uniform(0.03, 0.08) * big)  # room to spread
    mask = np.clip(np.asarray(ink), 0, 1)  # (h, w) in [0, 1]
    prepared = preprocess(frame(mask / max(float(mask.max()), 1e-6), rng))
    return image28 if prepared.empty else prepared.image28


def _changed_share(images: torch.Tensor, share: float, key: list[int],
                   change: Callable[[np.ndarray, np.random.Generator], np.ndarray]) -> torch.Tensor:
    """A copy of uint8 (N, 28, 28) `images` with a share of them, picked by the seed list `key`, passed through
    `change` (image i with the generator of key + [i])."""
    out = images.clone()
    picked = np.random.default_rng(key).permutation(len(images))[:round(share * len(images))]
    for i in picked.tolist():
        out[i] = torch.from_numpy(change(images[i].numpy(), np.random.default_rng([*key, i])))
    return out


def with_low_resolution(images: torch.Tensor, seed: int, share: float = LOW_RES_SHARE) -> torch.Tensor:
    """uint8 (N, 28, 28) digits with a seeded `share` of them (every source alike) passed through low_resolution."""
    return _changed_share(images, share, [0x10E5, seed], low_resolution)


def line_remnants(image28: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A preprocessed page uint8 (28, 28) with 1-3 thin grey straight lines across it or in from an edge: what is
    left of ruled or grid paper in a photo's crop after the lines are taken out (blur widens a line's faint edge
    beyond the band removed). The writing stays on top."""
    out = image28.astype(np.float32)
    for _ in range(int(rng.integers(1, 4))):
        line = np.zeros((28, 28), np.float32)
        position = int(rng.integers(1, 27))
        start, end = (0, 28) if rng.random() < 0.6 else sorted(rng.integers(0, 29, 2).tolist())
        if end - start < 4:
            start, end = 0, 28
        level = rng.uniform(0.2, 0.7) * 255
        line[position, start:end] = level
        if rng.random() < 0.4:  # a wider, softer line: its faint edge comes through too
            line[min(position + 1, 27), start:end] = level * rng.uniform(0.3, 0.8)
        if rng.random() < 0.5:
            line = line.T
        out = np.maximum(out, line)
    return out.round().astype(np.uint8)


def with_line_remnants(images: torch.Tensor, seed: int, salt: int,
                       share: float = LINE_REMNANT_SHARE) -> torch.Tensor:
    """uint8 (N, 28, 28) pages with a seeded `share` of them given line_remnants; `salt` keeps the digits' and the
    non-digits' draws apart."""
    return _changed_share(images, share, [0x11E5, seed, salt], line_remnants)


def digit_images(seed: int, mnist_images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28): MNIST training digits, pen digits and font digits of the training split, LOW_RES_SHARE of
    them made low-resolution or blurred."""
    from bench.ood_sets import pen_and_font_training_digits

    generator = torch.Generator().manual_seed(seed)
    mnist = mnist_images[torch.randperm(len(mnist_images), generator=generator)[:MNIST_DIGITS]]
    pen = []
    for i in range(PEN_DIGITS):  # framed like a pad or a page, so the gate sees what preprocessing makes of them
        rng = np.random.default_rng([0x6A7E, seed, i])
        prepared = preprocess(frame(pen_digit_mask(i % 10, rng, heldout=False), rng))
        if not prepared.empty:
            pen.append(torch.from_numpy(prepared.image28))
    fonts, _ = pen_and_font_training_digits(FONT_DIGITS, seed, kinds=("fonts",))
    return with_low_resolution(torch.cat([mnist, torch.stack(pen), fonts]), seed)


def training_photos(seed: int, mnist_images: torch.Tensor, mnist_labels: torch.Tensor,
                    counts: dict[str, int] = PHOTOS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Photos of training shapes (MNIST training digits, training hands and fonts; letters of the training fonts; blank
    paper) under bench/photo_sets.py's conditions, after preprocessing (which finds what it takes for the digit, grid
    lines and all): digits uint8 (P, 28, 28), non-digits uint8 (Q, 28, 28) and their kind indices (Q,)."""
    import cv2
    from dataclasses import replace

    from bench.photo_sets import random_conditions, render
    from core.not_digits import LETTERS, glyph_mask

    fonts = training_fonts()
    mnist_source = mnist_mask_source(mnist_images, mnist_labels)
    made: dict[str, list[torch.Tensor]] = {kind: [] for kind in counts}
    for k, (kind, count) in enumerate(counts.items()):
        for i in range(count):
            rng = np.random.default_rng([0x9407, seed, k, i])
            if kind == "blank":
                mask = np.zeros((8, 8), np.float32)
            elif kind == "letter":
                mask = glyph_mask(fonts[rng.integers(len(fonts))], LETTERS[rng.integers(len(LETTERS))], rng)
            elif i % 3 == 0:  # an MNIST digit enlarged 6x with firm edges, as bench/photo_sets.py does
                small = mnist_source(i % 10, rng)
                big = cv2.resize(small, (6 * small.shape[1], 6 * small.shape[0]), interpolation=cv2.INTER_CUBIC)
                mask = np.clip((big - 0.2) / 0.5, 0, 1)
            elif i % 3 == 1:
                mask = pen_digit_mask(i % 10, rng, heldout=False)
            else:
                mask = glyph_mask(fonts[rng.integers(len(fonts))], str(i % 10), rng)
            conditions = random_conditions(rng)
            w, h = conditions.size
            shrink = min(1.0, PHOTO_MAX_PX / max(w, h))
            conditions = replace(conditions, size=(max(64, round(w * shrink)), max(64, round(h * shrink))),
                                 clutter=conditions.clutter and kind != "blank")
            prepared = preprocess(render(mask, conditions, rng))
            if not prepared.empty:
                made[kind].append(torch.from_numpy(prepared.image28))
    digits = torch.stack(made.pop("digit"))
    others = [(torch.stack(v), KINDS.index(kind)) for kind, v in made.items() if v]
    return (digits, torch.cat([images for images, _ in others]),
            torch.cat([torch.full((len(images),), kind) for images, kind in others]))


def train_gate(images: torch.Tensor, kinds: torch.Tensor, seed: int, epochs: int = 12, width: int = 16,
               batch_size: int = 128, lr: float = 2e-3, log=print) -> nn.Module:
    """Adam with a one-cycle schedule, cross-entropy over the kinds, the classifier's augmentation on every batch."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # the model's initial weights come from the seed; the caller's RNG is kept
        torch.manual_seed(seed)
        model = gate_net(width)
    steps = epochs * ((len(images) + batch_size - 1) // batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        total, correct, seen = 0.0, 0, 0
        for start in range(0, len(images), batch_size):
            idx = order[start:start + batch_size]
            x = augmentation.augment(images[idx].float().div(255.0).unsqueeze(1), 1.0, generator)  # (B, 1, 28, 28)
            logits = model(x)
            loss = loss_fn(logits, kinds[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(idx)
            correct += int(((logits.argmax(1) == 0) == (kinds[idx] == 0)).sum())
            seen += len(idx)
        log(f"epoch {epoch + 1}/{epochs}: loss {total / seen:.4f}, digit/not-digit accuracy {correct / seen:.4f}")
    return model.eval()


def parse_members(text: str) -> list[tuple[int, int]]:
    """"0:12,0:24" -> [(0, 12), (0, 24)]: each member's seed and epochs (argparse names the option on an error)."""
    try:
        members = [tuple(int(n) for n in part.split(":")) for part in text.split(",")]
    except ValueError:
        members = []
    if not members or any(len(m) != 2 or m[1] < 1 for m in members):
        raise argparse.ArgumentTypeError(f"expected SEED:EPOCHS[,SEED:EPOCHS...] with epochs >= 1, got {text!r}")
    return members


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="MNIST folder")
    p.add_argument("--out", required=True, help="the .safetensors file to write")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated pages (default 0)")
    p.add_argument("--members", type=parse_members, default=parse_members(MEMBERS),
                   help=f"the members as SEED:EPOCHS,... (default {MEMBERS}): each is trained on the same pages with "
                        "its own seed (initial weights, order, augmentation, which pages get line remnants) for its "
                        "number of passes, and the gate averages their answers")
    p.add_argument("--width", type=int, default=16, help="channels of the gate's first stage (default 16)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: the same numbers on any machine, and beside other work two threads "
                        "on small batches can be many times slower)")
    p.add_argument("--line-remnants", type=float, default=LINE_REMNANT_SHARE,
                   help=f"share of the pages, digits and non-digits alike, given paper-line remnants (default "
                        f"{LINE_REMNANT_SHARE})")
    p.add_argument("--cache", help="keep the generated images in this file and reuse them (same seed only)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"P(not one digit) from which a page is a non-digit ({DEFAULT_THRESHOLD:.2f}: chosen on "
                        "bench/not_digits.py's tune sets, see bench/README.md)")
    args = p.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, args.threads))
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace) -> int:
    from core.data import load_mnist

    started = time.perf_counter()
    cache = Path(args.cache) if args.cache else None
    if cache is not None and cache.is_file():  # the same seed's pages, made before
        positives, negatives, kinds = torch.load(cache, weights_only=True)
    else:
        data = load_mnist(args.data, val_fraction=0.1, seed=0, download=False)  # the default weights' own split
        negatives, kinds = non_digit_images(args.seed, data.train_images, data.train_labels)
        positives = digit_images(args.seed, data.train_images)
        photo_digits, photo_others, photo_kinds = training_photos(args.seed, data.train_images, data.train_labels)
        positives, negatives = torch.cat([positives, photo_digits]), torch.cat([negatives, photo_others])
        kinds = torch.cat([kinds, photo_kinds])
        if cache is not None:
            torch.save((positives, negatives, kinds), cache)
    print(f"{len(positives)} digits, {len(negatives)} non-digits in {time.perf_counter() - started:.0f} s")
    labels = torch.cat([torch.zeros(len(positives), dtype=torch.long), kinds])
    members = []
    for number, (seed, epochs) in enumerate(args.members, 1):
        print(f"member {number}/{len(args.members)}: seed {seed}, {epochs} epochs")
        # paper-line remnants on digits and non-digits alike: the lines say nothing about what is written
        images = torch.cat([with_line_remnants(positives, seed, 0, args.line_remnants),
                            with_line_remnants(negatives, seed, 1, args.line_remnants)])
        members.append(train_gate(images, labels, seed, epochs, args.width))
    seconds = time.perf_counter() - started
    save_gate(args.out, members, args.width, args.threshold,
              {"seed": args.seed, "members": [{"seed": s, "epochs": e} for s, e in args.members],
               "digits": len(positives), "non_digits": len(negatives), "line_remnants": args.line_remnants,
               "threads": torch.get_num_threads(), "train_seconds": round(seconds, 1),
               "trained_by": "python -m core.gate_training"})
    print(f"wrote {args.out} after {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
