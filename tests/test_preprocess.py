"""The shared MNIST-style preprocessing on every kind of image people give it, and image-file errors."""
import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.preprocess import STROKE_WIDTH_LIMIT, ImageError, load_image, preprocess, stroke_width

SEVEN = [(0.2, 0.15), (0.8, 0.15), (0.45, 0.9)]  # a 7 as one pen path in a unit box


def draw(points, size=(200, 160), box=(40, 20, 110, 140), width=12, ink=0, paper=255, mode="L"):
    """Dark-on-light (or any colours) drawing of a polyline scaled into `box` (left, top, right, bottom)."""
    img = Image.new(mode, size, paper)
    l, t, r, b = box
    pts = [(l + x * (r - l), t + y * (b - t)) for x, y in points]
    ImageDraw.Draw(img).line(pts, fill=ink, width=width, joint="curve")
    return img


def assert_mnist_framed(image28):
    ys, xs = np.nonzero(image28 > 0)
    height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    assert max(height, width) in (20, 21)                       # longer side fits the 20 px box
    weights = image28.astype(float)
    com = (np.arange(28) @ weights.sum(1) / weights.sum(), np.arange(28) @ weights.sum(0) / weights.sum())
    assert abs(com[0] - 13.5) <= 1.0 and abs(com[1] - 13.5) <= 1.0  # centre of mass at the centre
    assert image28.max() == 255 and image28[0].max() == 0            # ink high, paper 0


def test_dark_ink_on_light_paper_becomes_an_mnist_style_digit():
    result = preprocess(draw(SEVEN))
    assert not result.empty and result.image28.shape == (28, 28) and result.image28.dtype == np.uint8
    assert_mnist_framed(result.image28)
    assert result.tensor.shape == (1, 28, 28)


def test_polarity_position_and_canvas_size_do_not_matter():
    reference = preprocess(draw(SEVEN)).image28.astype(int)
    variants = [
        draw(SEVEN, ink=255, paper=0),                                   # white on black
        draw(SEVEN, size=(400, 300), box=(300, 180, 370, 300)),         # near the corner of a bigger page
        draw(SEVEN, size=(1000, 800), box=(200, 100, 550, 700), width=60),  # large canvas, fat pen
    ]
    for img in variants:
        out = preprocess(img).image28.astype(int)
        assert_mnist_framed(out.astype(np.uint8))
        assert np.abs(out - reference).mean() < 20                       # essentially the same picture


def test_fat_strokes_are_thinned_toward_mnist_and_normal_ones_are_left_alone(monkeypatch):
    normal, fat = draw(SEVEN, width=12), draw(SEVEN, width=34)  # a pen (~2 px at 28x28, like MNIST) and a marker
    kept, thinned = preprocess(normal).image28, preprocess(fat).image28
    monkeypatch.setattr("core.preprocess.STROKE_WIDTH_LIMIT", 1e9)  # the same recipe without thinning
    assert np.array_equal(preprocess(normal).image28, kept)      # normal strokes are untouched
    unthinned = preprocess(fat).image28
    assert stroke_width(unthinned / 255) > STROKE_WIDTH_LIMIT + 1  # the marker is far fatter than MNIST...
    assert stroke_width(thinned / 255) <= STROKE_WIDTH_LIMIT + 0.5  # ...and comes out near MNIST's range
    assert_mnist_framed(thinned)                                   # still an MNIST-framed digit


@pytest.mark.parametrize("convert", [
    lambda im: im.convert("RGB"), lambda im: im.convert("P"), lambda im: im.convert("CMYK"),
    lambda im: im.convert("1"), lambda im: Image.fromarray(np.asarray(im, np.uint16) * 257),  # 16-bit
])
def test_every_image_mode_gives_the_same_digit(convert):
    img = draw(SEVEN)
    reference = preprocess(img).image28.astype(int)
    assert np.abs(preprocess(convert(img)).image28.astype(int) - reference).mean() < 20


@pytest.mark.parametrize("ink", [(0, 0, 0, 255), (255, 255, 255, 255)])
def test_ink_on_a_transparent_sheet(ink):
    img = draw(SEVEN, ink=ink, paper=(0, 0, 0, 0), mode="RGBA")
    reference = preprocess(draw(SEVEN)).image28.astype(int)
    assert np.abs(preprocess(img).image28.astype(int) - reference).mean() < 20


@pytest.mark.parametrize("image", [
    Image.new("L", (100, 100), 255), Image.new("L", (100, 100), 0), Image.new("RGBA", (64, 64), (0, 0, 0, 0)),
    Image.fromarray(np.random.default_rng(0).integers(240, 256, (80, 80)).astype(np.uint8)),  # paper grain only
    np.zeros((0, 0), np.uint8),
])
def test_no_ink_is_nothing_to_recognize(image):
    result = preprocess(image)
    assert result.empty and result.tensor is None


def test_normalization_is_applied_to_the_tensor_only():
    plain, normalized = preprocess(draw(SEVEN)), preprocess(draw(SEVEN), (0.1307, 0.3081))
    assert np.array_equal(plain.image28, normalized.image28)
    assert abs(float(normalized.tensor.min()) - (0 - 0.1307) / 0.3081) < 1e-5


def test_load_image_applies_exif_orientation_and_takes_the_first_frame(tmp_path):
    upright = draw(SEVEN)
    stored = upright.rotate(180)
    exif = Image.Exif()
    exif[0x0112] = 3  # orientation: rotate 180 to display
    stored.save(tmp_path / "photo.jpg", exif=exif, quality=95)
    loaded = load_image(tmp_path / "photo.jpg")
    assert np.abs(preprocess(loaded).image28.astype(int) - preprocess(upright).image28.astype(int)).mean() < 20

    blank = Image.new("L", upright.size, 255)
    upright.save(tmp_path / "anim.gif", save_all=True, append_images=[blank])
    assert not preprocess(load_image(tmp_path / "anim.gif")).empty


def test_unreadable_files_raise_plain_errors(tmp_path, monkeypatch):
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ImageError, match="not an image"):
        load_image(tmp_path / "notes.png")
    draw(SEVEN).save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="could not be read"):
        load_image(tmp_path / "cut.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    draw(SEVEN).save(tmp_path / "huge.png")
    with pytest.raises(ImageError, match="too large"):
        load_image(tmp_path / "huge.png")
