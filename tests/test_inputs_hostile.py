"""Hostile image and data files: FIFOs and devices, NaN/inf pixels, IDX bombs and sparse files, offline downloads."""
from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
import threading
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

import core.data
from core.data import DataError, load_mnist, locate, read_idx
from core.preprocess import ImageError, load_image, preprocess, to_gray
from tests.conftest import SYNTHETIC_COUNTS

ROOT = Path(__file__).resolve().parent.parent
SUBPROCESS_TIMEOUT = 120  # s; a hang is a failure, never a stuck suite

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs and /dev need a POSIX system")


def seven_png(path: Path) -> Path:
    """A dark 7 on light paper, as a phone photo of a note would be."""
    image = Image.new("L", (160, 200), 235)
    ImageDraw.Draw(image).line([(30, 30), (130, 30), (70, 180)], fill=20, width=14, joint="curve")
    image.save(path)
    return path


def float_tiff(path: Path, special: float) -> Path:
    """A mode F TIFF of a 7 whose paper holds one non-finite pixel (NaN, inf or -inf)."""
    pixels = np.full((64, 64), 240.0, dtype=np.float32)
    pixels[10:14, 10:54] = 10.0
    pixels[14:56, 30:34] = 10.0
    pixels[0, 0] = special
    Image.fromarray(pixels, mode="F").save(path)
    return path


@contextmanager
def fifo_that_cannot_hang(path: Path):
    """A FIFO whose writer connects and leaves at once, so a reader gets EOF instead of blocking for ever; if nobody
    opened it (the right outcome), a non-blocking reader releases the waiting writer at the end."""
    os.mkfifo(path)
    writer = threading.Thread(target=lambda: open(path, "wb").close(), daemon=True)
    writer.start()
    try:
        yield path
    finally:
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # held until the writer is gone: it may not have
        try:                                                 # reached its open() yet
            writer.join(timeout=SUBPROCESS_TIMEOUT)
        finally:
            os.close(reader)
        assert not writer.is_alive()


# ---------------------------------------------------------------- FIFOs and devices are not images
@needs_fifo
def test_predict_answers_for_a_fifo_and_a_device_and_goes_on_with_the_next_image(tmp_path):
    """Before: opening the FIFO blocked for ever and the later images never ran."""
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    good = seven_png(tmp_path / "seven.png")
    run = subprocess.run([sys.executable, "main.py", "predict", str(fifo), "/dev/null", str(good)], cwd=ROOT,
                         capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, check=False)
    lines = run.stdout.splitlines()
    assert run.returncode == 1, run.stderr
    assert len(lines) == 3 and "Traceback" not in run.stderr
    assert lines[0] == f"{fifo}: error: photo.png is not a regular file (a pipe, device or socket is never read as an image)"
    assert lines[1].startswith("/dev/null: error: null is not a regular file")
    assert lines[2].startswith(f"{good}: 7 (")


@needs_fifo
def test_load_image_refuses_special_files_without_opening_them(tmp_path):
    with fifo_that_cannot_hang(tmp_path / "pipe.png") as fifo, pytest.raises(ImageError, match="pipe.png is not a"):
        load_image(fifo)
    with pytest.raises(ImageError, match="null is not a regular file"):
        load_image("/dev/null")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "missing.png")


def test_a_symlink_to_an_image_is_still_read(tmp_path):
    link = tmp_path / "link.png"
    link.symlink_to(seven_png(tmp_path / "seven.png"))
    assert load_image(link).size == (160, 200)


# ---------------------------------------------------------------- NaN and inf pixels
@pytest.mark.parametrize("special", [float("nan"), float("inf"), float("-inf")])
def test_float_image_with_non_finite_pixels_is_refused_in_plain_words(tmp_path, special):
    path = float_tiff(tmp_path / "scan.tif", special)
    with pytest.raises(ImageError, match=r"scan.tif holds pixels that are not numbers \(NaN or infinite\)"):
        load_image(path)
    pixels = np.asarray(Image.open(path), dtype=np.float32)
    with pytest.raises(ImageError, match="not numbers"):  # arrays and pasted pictures meet the same check
        to_gray(pixels)
    with pytest.raises(ImageError, match="not numbers"):
        preprocess(Image.fromarray(pixels, mode="F"))


def test_float_image_with_finite_pixels_still_works(tmp_path):
    path = float_tiff(tmp_path / "scan.tif", 240.0)
    assert not preprocess(load_image(path)).empty


def test_predict_reports_nan_and_inf_images_and_runs_the_rest_with_valid_json(tmp_path):
    """Before: a ValueError traceback on the NaN image; the later images were skipped."""
    nan = float_tiff(tmp_path / "nan.tif", float("nan"))
    inf = float_tiff(tmp_path / "inf.tif", float("inf"))
    good = seven_png(tmp_path / "seven.png")
    run = subprocess.run([sys.executable, "main.py", "predict", "--json", str(nan), str(inf), str(good)], cwd=ROOT,
                         capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, check=False)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    records = [json.loads(line) for line in run.stdout.splitlines()]  # strict JSON: no bare NaN
    assert [r["path"] for r in records] == [str(nan), str(inf), str(good)]
    assert "not numbers" in records[0]["error"] and "not numbers" in records[1]["error"]
    assert records[2]["digit"] == 7 and records[2]["error"] is None


# ---------------------------------------------------------------- IDX files: header first, bounded reads
def idx_header(magic: int, *shape: int) -> bytes:
    return struct.pack(f">{len(shape) + 1}I", magic, *shape)


def replace_with_gzip(raw_folder: Path, name: str, content_chunks) -> None:
    (raw_folder / name).unlink()
    with gzip.open(raw_folder / f"{name}.gz", "wb", compresslevel=9) as f:
        for chunk in content_chunks:
            f.write(chunk)


def peak_python_memory(fn):
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_gzip_bomb_is_refused_after_reading_only_what_its_header_promises(synthetic_mnist):
    """A ~60 KB gzip expanding to 64 MB: at most the header's size + 1 byte is ever decompressed."""
    raw = synthetic_mnist / "MNIST" / "raw"
    n = SYNTHETIC_COUNTS[False]
    zeros = bytes(1 << 20)
    replace_with_gzip(raw, "t10k-images-idx3-ubyte", [idx_header(2051, n, 28, 28)] + [zeros] * 64)
    assert (raw / "t10k-images-idx3-ubyte.gz").stat().st_size < 200_000
    errors = []

    def load():
        with pytest.raises(DataError) as err:
            load_mnist(synthetic_mnist, download=False)
        errors.append(str(err.value))

    peak = peak_python_memory(load)
    assert "t10k-images-idx3-ubyte.gz holds more than its header promises" in errors[0]
    assert peak < 8 << 20, f"read {peak / 2**20:.0f} MiB of a bomb"


def test_gzip_with_a_huge_declared_count_is_refused_by_its_header(synthetic_mnist):
    raw = synthetic_mnist / "MNIST" / "raw"
    replace_with_gzip(raw, "t10k-labels-idx1-ubyte", [idx_header(2049, 2**32 - 1), bytes(1 << 20)])
    with pytest.raises(DataError, match="holds 4294967295 items, MNIST has 200"):
        load_mnist(synthetic_mnist, download=False)


def test_sparse_idx_file_is_refused_by_size_before_its_body_is_read(synthetic_mnist):
    """A 1 GiB sparse file (no disk used) whose header is a valid MNIST header: nothing of its body is read."""
    path = synthetic_mnist / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    with open(path, "r+b") as f:
        f.truncate(1 << 30)
    errors = []

    def load():
        with pytest.raises(DataError) as err:
            load_mnist(synthetic_mnist, download=False)
        errors.append(str(err.value))

    peak = peak_python_memory(load)
    promised = 16 + SYNTHETIC_COUNTS[False] * 784
    assert f"is {1 << 30:,} bytes, its header promises {promised:,}" in errors[0]
    assert peak < 8 << 20, f"read {peak / 2**20:.0f} MiB of a sparse file"


def test_idx_header_with_an_absurd_count_is_refused_without_an_expected_count(tmp_path):
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(idx_header(2051, 2**31, 28, 28) + bytes(784))
    with pytest.raises(DataError, match="its header claims 2,147,483,648 images"):
        read_idx(path, 2051, None)


def test_truncated_gzip_is_an_error_not_a_smaller_dataset(synthetic_mnist):
    raw = synthetic_mnist / "MNIST" / "raw"
    body = (raw / "t10k-labels-idx1-ubyte").read_bytes()
    replace_with_gzip(raw, "t10k-labels-idx1-ubyte", [body[:-10]])
    with pytest.raises(DataError, match="truncated"):
        load_mnist(synthetic_mnist, download=False)


def test_damaged_gzip_stream_is_a_data_error(synthetic_mnist):
    raw = synthetic_mnist / "MNIST" / "raw"
    body = (raw / "t10k-labels-idx1-ubyte").read_bytes()
    replace_with_gzip(raw, "t10k-labels-idx1-ubyte", [body])
    damaged = bytearray((raw / "t10k-labels-idx1-ubyte.gz").read_bytes())
    damaged[-8] ^= 0xFF  # the CRC
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(damaged))
    with pytest.raises(DataError, match="cannot read .*t10k-labels-idx1-ubyte.gz"):
        load_mnist(synthetic_mnist, download=False)


# ---------------------------------------------------------------- offline downloads
@pytest.fixture
def refusing_mirror(monkeypatch):
    """torchvision's real download, pointed at a local port where nothing listens: a real, instant network failure."""
    from torchvision import datasets

    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])


def test_offline_download_names_its_real_cause_and_leaves_no_empty_folders(tmp_path, refusing_mirror):
    """Before: 'RuntimeError: Error downloading train-images-idx3-ubyte.gz:' (the cause dropped), and the folders
    a/b/MNIST/raw stayed behind."""
    root = tmp_path / "a" / "b"
    with pytest.raises(DataError) as err:
        locate(root)
    message = str(err.value)
    assert "download failed: Connection refused" in message
    assert "\n" not in message
    assert sorted(tmp_path.iterdir()) == []


def test_failed_download_keeps_folders_that_existed_before(tmp_path, refusing_mirror):
    root = tmp_path / "data"
    (root / "MNIST").mkdir(parents=True)  # the user's own (empty) folder
    with pytest.raises(DataError, match="Connection refused"):
        locate(root)
    assert (root / "MNIST").is_dir() and not (root / "MNIST" / "raw").exists()


def test_download_failure_keeps_the_chained_cause(tmp_path, monkeypatch):
    def offline(root, **_):
        try:
            raise OSError("[Errno -2] Name or service not known")
        except OSError as exc:
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:") from exc

    monkeypatch.setattr(core.data, "_download", offline)
    with pytest.raises(DataError, match=r"download failed: Name or service not known"):
        locate(tmp_path / "data")


@needs_fifo
def test_a_fifo_where_an_idx_file_belongs_is_named_before_any_download(synthetic_mnist, refusing_mirror):
    """Before: the FIFO counted as missing, and an online download would have extracted onto it (blocking)."""
    path = synthetic_mnist / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(DataError) as err:
        load_mnist(synthetic_mnist)
    assert str(err.value) == (f"{path} is not a regular file (a folder, pipe or device); "
                              "MNIST's files must be ordinary files")
