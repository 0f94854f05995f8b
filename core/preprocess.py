"""The one MNIST-style preprocessing for every input (pad, files, CLI): any image -> centred 28x28, ink high."""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from core import photo
from core.photo import Region

BOX = 20                 # MNIST: the digit's longer side fits a 20x20 box
SIZE = 28                # ...centred by centre of mass in 28x28
MIN_CONTRAST = 32.0      # ink must differ from the paper by this much (0-255) to count as ink
NOISE_FLOOR = 0.2        # below this share of the darkest ink, a pixel is paper (shadows, sensor noise)
# Mean stroke width (px at 28x28) above which strokes are thinned: ~MNIST's 90th percentile (its median is 2.0).
# Fat markers, blurry photos and upsampled low-resolution scans otherwise read as other digits (bench/README.md).
STROKE_WIDTH_LIMIT = 2.8
NOT_FINITE = "holds pixels that are not numbers (NaN or infinite); save it as an ordinary image (PNG, JPEG)"


class ImageError(Exception):
    """An image file could not be read; the message says why in plain words."""


@dataclass
class Preprocessed:
    """What the model sees: `image28` (28, 28) uint8 with ink high, `tensor` (1, 28, 28) normalized; None when empty.
    `region` is where the digit was found, (x0, y0, x1, y1) in the source image's pixels; `route` is "drawing" (flat
    paper: the plain MNIST recipe) or "photo" (background, lines and clutter removed first, core/photo.py). For a
    photo, `reading` is how it was read and `read_again(reading)` reads the same photo another way (core.photo.Reading),
    reusing the work both ways share; both None for drawings."""

    image28: np.ndarray | None
    tensor: torch.Tensor | None
    region: Region | None = None
    route: str = "drawing"
    reading: photo.Reading | None = None
    read_again: Callable[[photo.Reading], Preprocessed] | None = field(default=None, repr=False)

    @property
    def empty(self) -> bool:
        return self.image28 is None


def load_image(path: Path | str) -> Image.Image:
    """Open an image file fully (first frame, EXIF orientation applied); ImageError with the reason otherwise."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path} does not exist")
    if path.is_dir():
        raise ImageError(f"{path} is a folder, not an image")
    if not path.is_file():  # opening a FIFO blocks until someone writes; a device never ends
        raise ImageError(f"{path.name} is not a regular file (a pipe, device or socket is never read as an image)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                frame = next(ImageSequence.Iterator(img))  # first frame of animations
                frame = ImageOps.exif_transpose(frame) or frame
                frame.load()
                frame = frame.copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path.name} is too large to open safely ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{path.name} is not an image Pillow can read") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"{path.name} could not be read: {exc}") from exc
    if frame.mode == "F" and not np.isfinite(np.asarray(frame)).all():
        raise ImageError(f"{path.name} {NOT_FINITE}")
    return frame


def check_image_size(width: int, height: int, name: str) -> None:
    """ImageError when a picture from anywhere (file, paste, drop) has more pixels than Pillow opens safely."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        raise ImageError(f"the {name} is too large to open safely ({width}x{height} = {width * height:,} pixels; "
                         f"the limit is {limit:,})")


def to_gray(image: Image.Image | np.ndarray) -> np.ndarray:
    """Any PIL mode or array -> float32 (H, W) in [0, 255]; transparency is flattened onto a contrasting paper."""
    if isinstance(image, np.ndarray):
        if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
            # a photo's RGB: luminance by OpenCV (Pillow's weights, ~10x faster on 12 MP than a round trip through it)
            return photo.rgb_to_gray(image)
        arr = image.astype(np.float32)
        if not np.isfinite(arr).all():  # NaN would pass every comparison below and reach the model
            raise ImageError(f"the image {NOT_FINITE}")
        if arr.ndim == 3:
            image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        else:
            return arr * (255.0 if arr.max(initial=0) <= 1.0 and image.dtype.kind == "f" else 1.0)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode in ("P", "L", "RGB") and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3] / 255.0
        luminance = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        opaque = alpha > 0.5
        # ink drawn on a transparent sheet: paper is whatever contrasts with the opaque pixels
        paper = 0.0 if opaque.any() and luminance[opaque].mean() > 127 else 255.0
        return luminance * alpha + paper * (1.0 - alpha)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(image, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ImageError(f"the image {NOT_FINITE}")
        top = 65535.0 if image.mode.startswith("I;16") else max(float(arr.max(initial=0)), 255.0)
        return np.clip(arr, 0, None) * (255.0 / top)
    return np.asarray(image.convert("L"), dtype=np.float32)


def _border(gray: np.ndarray) -> np.ndarray:
    ring = max(1, min(gray.shape) // 40)
    return np.concatenate([gray[:ring].ravel(), gray[-ring:].ravel(), gray[:, :ring].ravel(), gray[:, -ring:].ravel()])


def stroke_width(image: np.ndarray) -> float:
    """Mean stroke width in px of an ink-high image in [0, 1]: 2 x area / perimeter of its ink (> 0.5) mask."""
    ink = image > 0.5
    perimeter = int((ink[1:] != ink[:-1]).sum() + (ink[:, 1:] != ink[:, :-1]).sum())
    return 2.0 * float(ink.sum()) / max(perimeter, 1)


def thin_fat_strokes(image: np.ndarray) -> np.ndarray:
    """Erode strokes wider than STROKE_WIDTH_LIMIT toward it (a partial 3x3 grey erosion); others are untouched."""
    excess = (stroke_width(image) - STROKE_WIDTH_LIMIT) / 2  # a full 3x3 erosion takes ~2 px off the width
    if excess <= 0:
        return image
    h, w = image.shape
    padded = np.pad(image, 1, mode="edge")
    eroded = np.min([padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=0)
    thinned = image + min(excess, 1.0) * (eroded - image)
    return thinned / max(float(thinned.max()), 1e-6)  # the darkest ink stays at full strength, as in MNIST


def drawing_ink(gray: np.ndarray) -> np.ndarray | None:
    """A clean drawing's ink (H, W) in [0, 1]: polarity from the border, paper 0, faint noise dropped; None if blank."""
    paper = float(np.median(_border(gray)))
    if paper > 127:                       # dark ink on light paper: invert so ink is high, as in MNIST
        gray, paper = 255.0 - gray, 255.0 - paper
    ink = np.clip(gray - paper, 0, None)
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        return None                       # nothing to recognize: never guess on a blank page
    ink[ink < NOISE_FLOOR * peak] = 0.0
    return ink / peak


def preprocess(image: Image.Image | np.ndarray, normalization: tuple[float, float] = (0.0, 1.0), *,
               region: Region | None = None, erase: np.ndarray | None = None, route: str | None = None
               ) -> Preprocessed:
    """MNIST recipe: gray, ink high (polarity from the border), crop to ink, longer side 20 px, centre of mass at
    centre; then strokes far fatter than MNIST's are thinned. Photos first lose their background, paper lines and
    clutter (core/photo.py). `region` (x0, y0, x1, y1) limits the search to that box and `erase` (H, W) bool paints
    pixels over with the paper around them, both in the source image's pixels. `route` "drawing" or "photo" forces
    that path (None: `photo.looks_like_photo` decides)."""
    return preprocess_gray(to_gray(image), normalization, region=region, erase=erase, route=route)


def preprocess_gray(gray: np.ndarray, normalization: tuple[float, float] = (0.0, 1.0), *,
                    region: Region | None = None, erase: np.ndarray | None = None, route: str | None = None,
                    reading: photo.Reading = photo.Reading()) -> Preprocessed:
    """`preprocess` of an image already made gray by `to_gray` (float32 (H, W), 0-255); a photo is read as
    `reading` says (core.photo.Reading)."""
    if region is not None or erase is not None:
        gray, (left, top) = photo.erase_and_crop(gray, region, erase)
    else:
        left = top = 0
    if gray.size == 0:
        return Preprocessed(None, None)
    if route == "photo" or (route is None and photo.looks_like_photo(gray)):
        reader = photo.PhotoReader(gray)

        def read_photo(how: photo.Reading) -> Preprocessed:
            found = reader.read(how)
            if found is None:
                return Preprocessed(None, None, route="photo", reading=how, read_again=read_photo)
            x0, y0, x1, y1 = found.region
            return _framed(found.ink, normalization, (x0 + left, y0 + top, x1 + left, y1 + top), "photo",
                           found.reading, read_photo)

        return read_photo(reading)
    ink = drawing_ink(gray)
    if ink is None:
        return Preprocessed(None, None)
    rows, cols = np.nonzero(ink)
    x0, y0, x1, y1 = int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1
    return _framed(ink, normalization, (x0 + left, y0 + top, x1 + left, y1 + top), "drawing")


def _framed(ink: np.ndarray, normalization: tuple[float, float], region: Region, route: str,
            reading: photo.Reading | None = None, read_again: Callable | None = None) -> Preprocessed:
    """Ink (h, w) in [0, 1] framed as MNIST (`frame`) and normalized: what the model sees."""
    image28 = frame(ink)
    mean, std = normalization
    tensor = (torch.from_numpy(image28).float().div(255.0).sub(mean).div(std)).unsqueeze(0)  # (1, 28, 28)
    return Preprocessed(image28, tensor, region, route, reading, read_again)


def frame(ink: np.ndarray) -> np.ndarray:
    """Ink (H, W) in [0, 1], paper 0 -> (28, 28) uint8: cropped, longer side 20 px, centre of mass at the centre."""
    rows, cols = np.nonzero(ink)
    crop = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    small = np.asarray(Image.fromarray(crop, mode="F").resize((new_w, new_h), Image.Resampling.LANCZOS))
    small = np.clip(small, 0, None)
    small /= max(float(small.max()), 1e-6)  # thin strokes in big images stay visible after downscaling
    canvas = np.zeros((SIZE, SIZE), dtype=np.float32)
    total = float(small.sum())
    com_y = float((small.sum(1) * np.arange(new_h)).sum()) / total
    com_x = float((small.sum(0) * np.arange(new_w)).sum()) / total
    top = int(np.clip(round((SIZE - 1) / 2 - com_y), 0, SIZE - new_h))
    left = int(np.clip(round((SIZE - 1) / 2 - com_x), 0, SIZE - new_w))
    canvas[top:top + new_h, left:left + new_w] = small
    canvas = thin_fat_strokes(canvas)
    return np.round(canvas * 255).astype(np.uint8)
