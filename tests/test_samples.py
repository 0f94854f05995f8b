"""The samples store: add, list, count, delete + undo, import (bad files named and skipped), export; load_samples."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core import paths
from core.samples import SamplesError, SampleSet, SampleStore, load_samples


def drawn_digit(digit: int, size: int = 200, seed: int = 0) -> Image.Image:
    """A dark digit-like stroke pattern on white paper, different for every digit, as the drawing pad saves it."""
    rng = np.random.default_rng([digit, seed])
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    points = [(float(x), float(y)) for x, y in rng.uniform(0.2 * size, 0.8 * size, (3 + digit % 4, 2))]
    draw.line(points, fill="black", width=size // 14)
    return img


def test_default_root_is_the_per_user_samples_folder(private_home):
    assert SampleStore().root == paths.samples_dir() == private_home / "samples"


def test_add_saves_the_original_as_png_in_its_digit_folder(tmp_path):
    store = SampleStore(tmp_path / "samples")
    original = drawn_digit(4, size=280)
    path = store.add(original, 4)
    assert path.parent == store.root / "4" and path.suffix == ".png"
    assert len(path.stem) == len("20240101-120000-000000") and path.stem[8] == "-"
    with Image.open(path) as saved:
        assert saved.size == (280, 280)
        assert np.array_equal(np.asarray(saved.convert("RGB")), np.asarray(original))
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file left


def test_add_accepts_arrays_and_gives_every_sample_its_own_name(tmp_path):
    store = SampleStore(tmp_path)
    gray = np.full((50, 60), 255, np.uint8)
    gray[10:40, 28:32] = 0
    rgba = np.zeros((30, 30, 4), np.uint8)
    rgba[5:25, 14:16] = (0, 0, 0, 255)
    paths_written = [store.add(gray, 1) for _ in range(20)] + [store.add(rgba, 1)]
    assert len(set(paths_written)) == 21
    assert [s.path for s in store.samples(1)] == sorted(paths_written)  # oldest first
    with Image.open(paths_written[0]) as saved:
        assert saved.mode == "L" and saved.size == (60, 50)


@pytest.mark.parametrize("digit", [-1, 10, 3.0, "3", True, None])
def test_add_refuses_a_label_that_is_not_a_digit(tmp_path, digit):
    with pytest.raises(SamplesError, match="0 to 9"):
        SampleStore(tmp_path).add(drawn_digit(3), digit)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 2), np.uint8), np.zeros((0, 5), np.uint8),
                                 np.full((5, 5), np.nan), "picture.png"])
def test_add_refuses_what_is_not_an_image(tmp_path, bad):
    with pytest.raises(SamplesError):
        SampleStore(tmp_path).add(bad, 3)
    assert not any(tmp_path.rglob("*.png"))


def test_samples_and_counts(tmp_path):
    store = SampleStore(tmp_path)
    assert store.counts() == [0] * 10 and store.samples() == []
    for digit, n in ((0, 2), (7, 3), (9, 1)):
        for i in range(n):
            store.add(drawn_digit(digit, seed=i), digit)
    (store.root / "7" / "notes.txt").write_text("not a sample")
    assert store.counts() == [2, 0, 0, 0, 0, 0, 0, 3, 0, 1]
    assert [s.digit for s in store.samples()] == [0, 0, 7, 7, 7, 9]
    assert all(s.digit == 7 for s in store.samples(7)) and len(store.samples(7)) == 3


def test_delete_then_restore_puts_the_same_files_back(tmp_path):
    store = SampleStore(tmp_path)
    for digit in (2, 2, 5):
        store.add(drawn_digit(digit), digit)
    before = {s.path: s.path.read_bytes() for s in store.samples()}
    deleted = store.delete(store.samples(2))
    assert len(deleted) == 2 and store.counts()[2] == 0 and store.counts()[5] == 1
    assert store.restore(deleted) == 2
    assert {s.path: s.path.read_bytes() for s in store.samples()} == before


def test_delete_refuses_files_outside_the_store(tmp_path):
    store = SampleStore(tmp_path / "samples")
    outsider = tmp_path / "precious.png"
    drawn_digit(1).save(outsider)
    from core.samples import Sample

    with pytest.raises(SamplesError):
        store.delete([Sample(outsider, 1)])
    assert outsider.is_file()


def write_image_folder(root: Path, per_digit: int = 2, digits=range(10)) -> Path:
    for digit in digits:
        (root / str(digit)).mkdir(parents=True, exist_ok=True)
        for i in range(per_digit):
            drawn_digit(digit, seed=i).save(root / str(digit) / f"{digit}_{i}.png")
    return root


def test_import_copies_readable_images_and_names_the_rest(tmp_path):
    source = write_image_folder(tmp_path / "mine", per_digit=2, digits=(1, 3))
    drawn_digit(3).convert("L").save(source / "3" / "photo.jpg")
    (source / "3" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (source / "1" / "readme.txt").write_text("hello")
    Image.new("L", (40, 40), 255).save(source / "1" / "blank.png")
    (source / "extra").mkdir()
    store = SampleStore(tmp_path / "store")
    report = store.import_folder(source)
    assert report.added == 5
    assert store.counts() == [0, 2, 0, 3, 0, 0, 0, 0, 0, 0]
    reasons = {p.name: why for p, why in report.skipped}
    assert set(reasons) == {"broken.png", "readme.txt", "blank.png", "extra"}
    assert "blank" in reasons["blank.png"] and "digit subfolder" in reasons["extra"]
    assert all(s.path.suffix == ".png" for s in store.samples())


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "nowhere", "does not exist"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "is empty"),
    (lambda p: (p / "flat").mkdir() or drawn_digit(1).save(p / "flat" / "1.png") or p / "flat", "no digit subfolders"),
    (lambda p: [(p / "bad" / "4").mkdir(parents=True), (p / "bad" / "4" / "x.png").write_text("no")] and p / "bad",
     "nothing was imported"),
])
def test_import_refuses_unusable_folders(tmp_path, make, message):
    store = SampleStore(tmp_path / "store")
    with pytest.raises(SamplesError, match=message):
        store.import_folder(make(tmp_path))
    assert store.counts() == [0] * 10


def test_export_writes_image_folder_layout_without_overwriting(tmp_path):
    store = SampleStore(tmp_path / "store")
    for digit in (0, 0, 6):
        store.add(drawn_digit(digit), digit)
    out = tmp_path / "export"
    assert store.export_folder(out) == 3
    exported = sorted(out.rglob("*.png"))
    assert [p.parent.name for p in exported] == ["0", "0", "6"]
    first = exported[0]
    first.write_bytes(b"the user's own file")
    assert store.export_folder(out) == 3  # again: new names beside the old files
    assert first.read_bytes() == b"the user's own file"
    assert len(list(out.rglob("*.png"))) == 6
    again = SampleStore(tmp_path / "copy")
    assert again.import_folder(out).added == 5 and again.counts()[6] == 2  # the overwritten one is not an image


def test_load_samples_preprocesses_every_usable_image(tmp_path):
    source = write_image_folder(tmp_path / "mine", per_digit=3, digits=(0, 8))
    (source / "8" / "junk.png").write_text("junk")
    os.mkfifo(source / "0" / "pipe.png")  # must be skipped, not opened (it would block)
    loaded = load_samples(source, normalization=(0.1307, 0.3081))
    assert isinstance(loaded, SampleSet) and len(loaded) == 6
    assert loaded.images.shape == (6, 28, 28) and loaded.images.dtype == np.uint8
    assert loaded.labels.dtype == np.int64 and loaded.counts() == [3, 0, 0, 0, 0, 0, 0, 0, 3, 0]
    assert loaded.images.max() == 255 and loaded.images[:, 0, :].max() == 0  # ink high, paper 0, MNIST framing
    assert {p.name for p, _ in loaded.skipped} == {"junk.png", "pipe.png"}
    inputs = loaded.inputs()
    assert tuple(inputs.shape) == (6, 1, 28, 28)
    assert float(inputs.min()) == pytest.approx(-0.1307 / 0.3081, abs=1e-5)


def test_load_samples_refuses_a_folder_with_nothing_usable(tmp_path):
    (tmp_path / "5").mkdir()
    Image.new("L", (30, 30), 255).save(tmp_path / "5" / "blank.png")
    with pytest.raises(SamplesError, match="no usable digit image"):
        load_samples(tmp_path)


def test_listing_and_saving_samples_does_not_load_torch(tmp_path):
    """The GUI counts and saves samples before torch is loaded (it takes seconds to import)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from core.samples import SampleStore; s = SampleStore(sys.argv[1]); "
            "s.add(np.zeros((20, 20), np.uint8), 3); assert s.counts()[3] == 1; print('torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=False,
                         cwd=Path(__file__).resolve().parent.parent)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"
