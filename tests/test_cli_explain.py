"""`main.py explain`: the PNGs and explain.json it writes, agreement with `predict`, and every bad input."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from core.cli import main
from core.models import build_model, summary
from core.weights import save_weights
from tests.conftest import requires_real_mnist
from tests.test_preprocess import SEVEN, draw

CONV_AND_POOL_FILES = ["maps_01_conv1.png", "maps_02_conv2.png", "maps_03_maxpool1.png", "maps_04_conv3.png",
                       "maps_05_conv4.png", "maps_06_maxpool2.png", "maps_07_conv5.png",
                       "maps_08_globalaveragepool.png"]  # DigitNet, the shipped weights


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def seven(tmp_path):
    path = tmp_path / "seven.png"
    draw(SEVEN).save(path)
    return path


def assert_one_error_line(err: str, *words: str):
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for word in words:
        assert word in err


def test_writes_every_picture_and_the_json_that_predict_agrees_with(seven, tmp_path, capsys):
    out = tmp_path / "slides" / "seven"  # missing folders are created
    code, stdout, err = run_cli(capsys, "explain", seven, "--out", out)
    assert code == 0 and err == "" and str(out) in stdout
    expected = ["attribution_7_integrated_gradients.png", "explain.json", "filters_conv1.png", "input28.png",
                *CONV_AND_POOL_FILES]
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)  # and no temp files left behind
    for name in expected[:1] + expected[2:]:
        with Image.open(out / name) as png:
            png.verify()
            assert png.format == "PNG" and min(png.size) >= 28
    with Image.open(out / "input28.png") as png:
        assert png.size == (280, 280)

    report = json.loads((out / "explain.json").read_text())
    code, stdout, _ = run_cli(capsys, "predict", seven, "--json")
    predicted = json.loads(stdout)
    assert report["digit"] == predicted["digit"] == 7 and report["target"] == 7
    assert report["method"] == "integrated_gradients" and sorted(report["files"]) == sorted(expected)
    assert len(report["probabilities"]) == 10
    for ours, theirs in zip(report["probabilities"], predicted["probabilities"]):
        assert ours == round(ours, 6) and abs(ours - theirs) <= 5e-7  # rounded to 6 places, nothing else
    rows = summary(build_model("digitnet"))
    assert report["layers"] == [{"name": r.name, "type": r.kind, "shape": list(r.output_shape[1:]),
                                 "parameters": r.parameters} for r in rows]
    assert report["parameters"] == sum(r["parameters"] for r in report["layers"])


def test_target_and_method_choose_the_attribution(seven, tmp_path, capsys):
    code, _, _ = run_cli(capsys, "explain", seven, "--out", tmp_path / "o", "--target", 1, "--method", "occlusion")
    report = json.loads((tmp_path / "o" / "explain.json").read_text())
    assert code == 0 and report["digit"] == 7 and report["target"] == 1 and report["method"] == "occlusion"
    assert (tmp_path / "o" / "attribution_1_occlusion.png").is_file()
    with pytest.raises(SystemExit) as usage:  # argparse's own usage error, as for every command
        main(["explain", str(seven), "--out", str(tmp_path / "p"), "--target", "12"])
    assert usage.value.code == 2 and "invalid choice" in capsys.readouterr().err and not (tmp_path / "p").exists()


def test_tutorial_weights_give_its_four_layer_grids(seven, tmp_path, capsys):
    weights = save_weights(tmp_path / "tutorial.pt", build_model("tutorial"), "tutorial", {}, (0.0, 1.0))
    code, _, _ = run_cli(capsys, "explain", seven, "--weights", weights, "--out", tmp_path / "o")
    report = json.loads((tmp_path / "o" / "explain.json").read_text())
    assert code == 0 and report["arch"] == "tutorial" and len(report["layers"]) == 8
    assert sorted(p.name for p in (tmp_path / "o").glob("maps_*")) == [
        "maps_01_conv1.png", "maps_02_maxpool1.png", "maps_03_conv2.png", "maps_04_maxpool2.png"]
    with Image.open(tmp_path / "o" / "filters_conv1.png") as a, Image.open(tmp_path / "o" / "maps_03_conv2.png") as b:
        assert a.size != b.size  # 8 filters, 16 maps


def test_an_unreadable_image_exits_1_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    for image, words in ((bad, ("bad.png", "not an image")), (tmp_path / "missing.png", ("does not exist",))):
        code, stdout, err = run_cli(capsys, "explain", image, "--out", tmp_path / "o")
        assert code == 1 and stdout == "" and not (tmp_path / "o").exists()
        assert_one_error_line(err, *words)


def test_unusable_weights_exit_2_and_write_nothing(seven, tmp_path, capsys):
    garbage = tmp_path / "w.pt"
    garbage.write_text("garbage")
    code, stdout, err = run_cli(capsys, "explain", seven, "--weights", garbage, "--out", tmp_path / "o")
    assert code == 2 and stdout == "" and not (tmp_path / "o").exists()
    assert_one_error_line(err, "not a PyTorch weights file")


def test_a_blank_image_has_nothing_to_explain(tmp_path, capsys):
    Image.new("L", (80, 80), 255).save(tmp_path / "blank.png")
    code, stdout, err = run_cli(capsys, "explain", tmp_path / "blank.png", "--out", tmp_path / "o")
    assert code == 1 and stdout == "" and not (tmp_path / "o").exists()
    assert_one_error_line(err, "nothing to explain")


def test_out_must_be_a_folder(seven, tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    code, _, err = run_cli(capsys, "explain", seven, "--out", target)
    assert code == 2 and target.read_text() == "keep me"
    assert_one_error_line(err, "not a folder")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_file_that_cannot_be_replaced_stops_the_run_before_anything_is_written(seven, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    os.mkfifo(out / "explain.json")  # opening it would block; replacing it would destroy someone's pipe
    code, _, err = run_cli(capsys, "explain", seven, "--out", out)
    assert code == 1 and [p.name for p in out.iterdir()] == ["explain.json"] and (out / "explain.json").is_fifo()
    assert_one_error_line(err, "could not write", "not a regular file")


@requires_real_mnist
def test_real_mnist_digits_are_explained_as_their_labels(real_mnist_dir, tmp_path, capsys):
    from core.data import load_split, locate

    images, labels = load_split(locate(real_mnist_dir, download=False), train=False)
    for i in (0, 1, 2):
        Image.fromarray(images[i].numpy().astype(np.uint8)).save(tmp_path / f"{i}.png")
        code, _, _ = run_cli(capsys, "explain", tmp_path / f"{i}.png", "--out", tmp_path / str(i))
        report = json.loads((tmp_path / str(i) / "explain.json").read_text())
        assert code == 0 and report["digit"] == int(labels[i])
