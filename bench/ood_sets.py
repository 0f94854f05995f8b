"""Out-of-distribution digit sets made here, never from MNIST: font digits, pen-stroke digits, UCI optdigits; tune/held-out split."""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from core.pen_digits import VARIANTS, Variant, draw_polylines, jittered_polylines
from core.preprocess import preprocess

# Seed streams: the training helper draws from "train", the benchmark from "tune" and "heldout",
# so no benchmark image is ever a training image, whatever seeds either side uses.
STREAMS = {"train": 1, "tune": 2, "heldout": 3}
KINDS = {"strokes": 1, "fonts": 2, "optdigits": 3, "weak-spots": 4}  # ...and each kind its own draws (no shared layouts)
CANVAS_PX = (64, 400)          # canvas side range (log-uniform), as small thumbnails to large drawing pads
SIZE_SHARE = (0.3, 0.9)        # the digit's longer side as a share of the canvas's shorter side
MAX_ROTATION_DEG = 15.0        # fonts and strokes are turned by up to this much either way
TUNE_PEN = (0.04, 0.16)        # pen width as a share of digit height, tune/train split
HELDOUT_PEN = (0.025, 0.22)    # held-out strokes also come thinner and fatter than anything tuned on


@dataclass(frozen=True)
class Font:
    file: str                  # file name, looked up in the usual font folders
    package: str               # the Debian package that ships it
    heldout: bool = False      # True: only in the held-out set, never for training


FONTS = [
    # tune/train fonts: handwriting faces first, then a few ordinary ones
    Font("ComicNeue-Regular.otf", "fonts-comic-neue"), Font("ComicNeue-Bold.otf", "fonts-comic-neue"),
    Font("dkg.ttf", "fonts-dkg-handwriting"), Font("dkgBd.ttf", "fonts-dkg-handwriting"),
    Font("dkgIt.ttf", "fonts-dkg-handwriting"), Font("SteveHand.ttf", "fonts-sjfonts"),
    Font("DancingScript-Regular.otf", "fonts-dancingscript"),
    Font("BecauseWeBuild-Regular.otf", "fonts-bwht"), Font("BecauseWeConnect-Regular.otf", "fonts-bwht"),
    Font("BecauseWeCreate-Regular.otf", "fonts-bwht"),
    Font("DejaVuSans.ttf", "fonts-dejavu-core"), Font("FreeSerifItalic.ttf", "fonts-freefont-ttf"),
    Font("NimbusSans-Regular.otf", "fonts-urw-base35"), Font("C059-Italic.otf", "fonts-urw-base35"),
    # more hands for the gate's training side (each checked to draw real digits and letters, not empty boxes)
    Font("KaushanScript-Regular.otf", "fonts-kaushanscript"), Font("Purisa.otf", "fonts-tlwg-purisa-otf"),
    Font("Purisa-Oblique.otf", "fonts-tlwg-purisa-otf"), Font("kiloji.ttf", "fonts-kiloji"),
    Font("kiloji_b.ttf", "fonts-kiloji"), Font("KleeOne-Regular.ttf", "fonts-klee"),
    Font("LeckerliOne-Regular.ttf", "fonts-leckerli-one"), Font("Havana-Regular.otf", "fonts-havana"),
    Font("YuseiMagic-Regular.ttf", "fonts-yusei-magic"), Font("Breip.ttf", "fonts-breip"),
    Font("Kristi.ttf", "fonts-kristi"), Font("PenguinAttack.ttf", "fonts-dustin"),
    Font("Domestic_Manners.ttf", "fonts-dustin"), Font("Dustismo.ttf", "fonts-dustin"),
    Font("Junkyard.ttf", "fonts-dustin"), Font("lobster.otf", "fonts-lobster"),
    Font("OpenDyslexic-Regular.otf", "fonts-opendyslexic"),
    # held-out fonts: other hands and faces, never used for training
    Font("Z003-MediumItalic.otf", "fonts-urw-base35", True), Font("Humor-Sans.ttf", "fonts-humor-sans", True),
    Font("Delphine.ttf", "fonts-sjfonts", True), Font("Rufscript010.ttf", "fonts-rufscript", True),
    Font("BecauseWeLearn-Regular.otf", "fonts-bwht", True), Font("BecauseWeMentor-Regular.otf", "fonts-bwht", True),
    Font("BecauseWeOrganize-Regular.otf", "fonts-bwht", True), Font("Cabin-Italic.otf", "fonts-cabin", True),
    Font("URWBookman-LightItalic.otf", "fonts-urw-base35", True), Font("P052-Italic.otf", "fonts-urw-base35", True),
    Font("LiberationSerif-Italic.ttf", "fonts-liberation", True), Font("FreeSans.ttf", "fonts-freefont-ttf", True),
]
FONT_DIRS = ["/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts", "~/.local/share/fonts",
             "/Library/Fonts", "/System/Library/Fonts", "~/Library/Fonts", "C:/Windows/Fonts"]


@lru_cache(maxsize=1)
def _font_files() -> dict[str, Path]:
    """Every font file in the usual folders, by file name (first found wins)."""
    found: dict[str, Path] = {}
    for folder in FONT_DIRS:
        for root, _dirs, files in os.walk(Path(folder).expanduser()):
            for name in files:
                found.setdefault(name, Path(root) / name)
    return found


def find_fonts(heldout: bool) -> tuple[list[Path], list[Font]]:
    """(paths found, fonts missing) for one side of the split."""
    files = _font_files()
    chosen = [f for f in FONTS if f.heldout == heldout]
    return [files[f.file] for f in chosen if f.file in files], [f for f in chosen if f.file not in files]


def install_hint(missing: Sequence[Font]) -> str:
    """The apt command that installs the missing fonts (Debian/Ubuntu)."""
    return "apt-get install -y " + " ".join(sorted({f.package for f in missing}))


@dataclass
class DigitSet:
    """Raw images as a user would give them (any size, either polarity) with their labels."""

    name: str
    description: str
    images: list[np.ndarray] = field(default_factory=list)  # each (H, W) uint8
    labels: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)        # per image: font file, stroke variant or writer set


def _rng(stream: str, kind: str, seed: int, index: int) -> np.random.Generator:
    # one generator per image: image i is the same whatever n is
    return np.random.default_rng([STREAMS[stream], KINDS[kind], seed, index])


def place(mask: np.ndarray, rng: np.random.Generator, long_side: int, canvas: tuple[int, int]) -> np.ndarray:
    """Ink mask (h, w) in [0, 1] -> (H, W) uint8 page: resized so its longer side is `long_side`, anywhere, either polarity."""
    width, height = canvas
    h, w = mask.shape
    scale = long_side / max(h, w)
    tw, th = min(width, max(1, round(w * scale))), min(height, max(1, round(h * scale)))
    small = np.clip(np.asarray(Image.fromarray(mask.astype(np.float32), "F").resize((tw, th), Image.Resampling.LANCZOS)), 0, 1)
    ink = np.zeros((height, width), dtype=np.float32)
    top, left = rng.integers(0, height - th + 1), rng.integers(0, width - tw + 1)  # anywhere, edges included
    ink[top:top + th, left:left + tw] = small
    if rng.random() < 0.5:  # dark ink on light paper (pen and paper, drawing pads)
        paper, pen = rng.uniform(225, 255), rng.uniform(0, 50)
    else:                   # light ink on dark (chalkboard, MNIST itself)
        paper, pen = rng.uniform(0, 30), rng.uniform(205, 255)
    return np.round(paper + (pen - paper) * ink).astype(np.uint8)


def _layout(rng: np.random.Generator) -> tuple[tuple[int, int], int]:
    """A random canvas (width, height) and the digit's longer side in px."""
    side = math.exp(rng.uniform(math.log(CANVAS_PX[0]), math.log(CANVAS_PX[1])))
    aspect = rng.uniform(0.75, 1.33) if rng.random() < 0.3 else 1.0  # most pads are square
    canvas = (max(32, round(side * aspect)), max(32, round(side)))
    return canvas, max(8, round(rng.uniform(*SIZE_SHARE) * min(canvas)))


@lru_cache(maxsize=2048)
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


def font_mask(path: Path, digit: int, rng: np.random.Generator, long_side: int) -> np.ndarray:
    """One glyph as an ink mask (h, w) in [0, 1], sometimes thickened, slanted and turned."""
    size = int(np.clip(8 * round(long_side * 1.3 / 8), 16, 480))  # a glyph's digits are ~0.7 of the font size
    font = _font(path, size)
    thicken = round(rng.uniform(0, 0.035) * size) if rng.random() < 0.4 else 0  # bolder pens
    left, top, right, bottom = font.getbbox(str(digit), stroke_width=thicken)
    pad = size // 4
    glyph = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(glyph).text((pad - left, pad - top), str(digit), font=font, fill=255,
                               stroke_width=thicken, stroke_fill=255)
    shear = rng.uniform(-0.2, 0.2)
    glyph = glyph.transform(glyph.size, Image.Transform.AFFINE, (1, shear, -shear * glyph.size[1] / 2, 0, 1, 0),
                            resample=Image.Resampling.BICUBIC)
    glyph = glyph.rotate(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG), Image.Resampling.BICUBIC, expand=True)
    box = glyph.getbbox()
    if box is None:  # a font without this digit: an empty mask, caught by the caller
        return np.zeros((1, 1), dtype=np.float32)
    return np.asarray(glyph.crop(box), dtype=np.float32) / 255.0


def font_digits(name: str, fonts: Sequence[Path], n: int, stream: str, seed: int = 0,
                digits: Sequence[int] = tuple(range(10)), kind: str = "fonts") -> DigitSet:
    """n font digits, labels `digits` in turn, each in a random font from `fonts`, framed by `place`."""
    out = DigitSet(name, f"{len(fonts)} fonts: " + ", ".join(p.stem for p in fonts))
    for i in range(n):
        rng = _rng(stream, kind, seed, i)
        canvas, long_side = _layout(rng)
        path = fonts[rng.integers(len(fonts))]
        digit = digits[i % len(digits)]
        mask = font_mask(path, digit, rng, long_side)
        out.images.append(place(mask, rng, long_side, canvas))
        out.labels.append(digit)
        out.sources.append(path.name)
    return out


def stroke_digits(name: str, variants: Sequence[Variant], n: int, stream: str, seed: int = 0,
                  pen: tuple[float, float] = TUNE_PEN) -> DigitSet:
    """n pen-path digits, labels 0-9 in turn: a random variant of the digit, jittered, pen width from `pen`."""
    by_digit = [[v for v in variants if v.digit == d] for d in range(10)]
    names = sorted({f"{v.digit}:{v.name}" for v in variants})
    out = DigitSet(name, f"{len(names)} pen paths, pen {pen[0]:.3g}-{pen[1]:.3g} of height: " + ", ".join(names))
    for i in range(n):
        rng = _rng(stream, "strokes", seed, i)
        canvas, long_side = _layout(rng)
        variant = by_digit[i % 10][rng.integers(len(by_digit[i % 10]))]
        polylines = jittered_polylines(variant, rng, max_rotation_deg=MAX_ROTATION_DEG)
        mask = draw_polylines(polylines, rng.uniform(*pen), height=long_side)
        out.images.append(place(mask, rng, long_side, canvas))
        out.labels.append(i % 10)
        out.sources.append(f"{variant.digit}:{variant.name}")
    return out


def optdigits(seed: int = 0, n: int | None = None) -> DigitSet | str:
    """UCI optdigits via scikit-learn (43 writers, 8x8, 17 grey levels), upsampled and framed; or why it is absent."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return "scikit-learn is not installed (pip install scikit-learn)"
    data = load_digits()  # ships inside scikit-learn, no download
    count = len(data.target) if n is None else min(n, len(data.target))
    out = DigitSet("optdigits", f"UCI optdigits (scikit-learn load_digits), {count} of {len(data.target)} images: "
                                "real handwriting by 43 non-MNIST writers, 32x32 bitmaps averaged to 8x8")
    for i in range(count):
        rng = _rng("heldout", "optdigits", seed, i)
        canvas, long_side = _layout(rng)
        cells = np.pad(data.images[i] / 16.0, 1)  # (10, 10): a paper margin so the upsampling has an edge
        # bicubic through the 8x8 cell averages: smooth strokes, not 4-px blocks
        big = Image.fromarray(cells.astype(np.float32), "F").resize((10 * 16, 10 * 16), Image.Resampling.BICUBIC)
        mask = np.clip((np.asarray(big) - 0.15) / 0.5, 0, 1)  # firmer edges: strokes, not fog; faint cells stay paper
        rows, cols = np.nonzero(mask > 0.05)
        mask = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        out.images.append(place(mask, rng, long_side, canvas))
        out.labels.append(int(data.target[i]))
        out.sources.append("optdigits")
    return out


def benchmark_sets(sizes: dict[str, int] | None = None, seed: int = 0) -> tuple[list[DigitSet], list[str]]:
    """The benchmark's sets (tune ones first, then held-out) and notes on what was skipped and why."""
    sizes = {"fonts-tune": 1000, "strokes-tune": 1000, "fonts-heldout": 1500, "strokes-heldout": 1500,
             "optdigits": 1797, **(sizes or {})}
    sets, notes = [], []
    for heldout, stream in ((False, "tune"), (True, "heldout")):
        name = f"fonts-{stream}"
        fonts, missing = find_fonts(heldout)
        if missing:
            notes.append(f"{name}: {len(missing)} font(s) missing ({', '.join(f.file for f in missing)}); "
                         f"install them with: {install_hint(missing)}")
        if fonts:
            sets.append(font_digits(name, fonts, sizes[name], stream, seed))
        else:
            notes.append(f"{name}: skipped, no font of this split is installed")
        variants = [v for v in VARIANTS if v.heldout == heldout]
        pen = HELDOUT_PEN if heldout else TUNE_PEN
        sets.append(stroke_digits(f"strokes-{stream}", variants, sizes[f"strokes-{stream}"], stream, seed, pen))
    real = optdigits(seed, sizes["optdigits"])
    if isinstance(real, str):
        notes.append(f"optdigits: skipped, {real}")
    else:
        sets.append(real)
    return sets, notes


def preprocess_many(images: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[int]]:
    """Our preprocessing for each image: uint8 (M, 28, 28) ink high, and the indices of the M non-empty ones."""
    kept, index = [], []
    for i, img in enumerate(images):
        p = preprocess(img)
        if not p.empty:
            kept.append(torch.from_numpy(p.image28))
            index.append(i)
    return (torch.stack(kept) if kept else torch.zeros(0, 28, 28, dtype=torch.uint8)), index


def pen_and_font_training_digits(n: int, seed: int = 0, kinds: Sequence[str] = ("strokes", "fonts")
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """n tune-split digits for training, after our preprocessing: images uint8 (n, 28, 28) ink high, labels int64 (n,).

    Blocks of ten digits 0-9 alternate between the kinds (labels balanced); only tune fonts and tune stroke variants are
    used, from the "train" seed stream, so the benchmark's tune and held-out images never appear. Without any tune
    font installed, all n are stroke digits (with a warning).
    """
    fonts, missing = find_fonts(heldout=False)
    if "fonts" in kinds and not fonts:
        warnings.warn(f"no tune font installed ({install_hint(missing)}): synthetic digits are strokes only", stacklevel=2)
    kinds = [k for k in kinds if k != "fonts" or fonts]
    if not kinds:
        raise ValueError("no kind of synthetic digit is available: no tune font is installed and strokes were not asked for")
    variants = [v for v in VARIANTS if not v.heldout]
    which = [(j // 10) % len(kinds) for j in range(n)]  # blocks of ten (digits 0-9), the kinds taking turns
    made = [font_digits("train", fonts, which.count(k), "train", seed) if kind == "fonts"
            else stroke_digits("train", variants, which.count(k), "train", seed) for k, kind in enumerate(kinds)]
    streams = [iter(zip(s.images, s.labels)) for s in made]
    images, labels = zip(*[next(streams[k]) for k in which]) if n else ((), ())
    tensor, kept = preprocess_many(images)
    return tensor, torch.tensor([labels[i] for i in kept], dtype=torch.long)
