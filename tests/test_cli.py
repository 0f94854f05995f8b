"""The command line: train/predict/evaluate/export/summary, JSON output, exit codes, one-line errors."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from core.cli import main
from tests.test_preprocess import SEVEN, draw

ROOT = Path(__file__).resolve().parent.parent


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def trained(synthetic_mnist, tmp_path, capsys):
    out = tmp_path / "tiny.pt"
    code, stdout, _ = run_cli(capsys, "train", "--preset", "quick", "--arch", "tutorial", "--epochs", "1",
                              "--batch-size", "20", "--data", synthetic_mnist, "--out", out, "--json", "--quiet")
    assert code == 0
    return out, json.loads(stdout)


def test_train_json_reports_and_saves(trained):
    out, report = trained
    assert set(report) == {"weights", "arch", "preset", "epochs", "val_accuracy", "test_accuracy", "train_seconds"}
    assert report["weights"] == str(out) and out.is_file() and report["arch"] == "tutorial"
    assert 0 <= report["test_accuracy"] <= 1 and report["epochs"] == 1


def test_train_shows_a_progress_bar_and_the_test_accuracy(synthetic_mnist, tmp_path, capsys):
    code, out, err = run_cli(capsys, "train", "--arch", "tutorial", "--epochs", "1", "--data", synthetic_mnist,
                             "--out", tmp_path / "w.pt")
    assert code == 0 and "batch" in err and "epoch 1/1" in err and "test accuracy" in out


def test_train_shows_the_running_training_accuracy_beside_the_loss(synthetic_mnist, tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--arch", "tutorial", "--epochs", "2", "--batch-size", "20",
                           "--data", synthetic_mnist, "--out", tmp_path / "w.pt")
    epoch_lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert code == 0 and len(epoch_lines) == 2 and all("train accuracy" in line for line in epoch_lines)
    assert any("loss" in line and ", accuracy " in line for line in err.split("\r"))  # in the bar, next to the loss


def test_epoch_lines_name_validation_numbers_only_when_there_is_a_validation_share(synthetic_mnist, tmp_path, capsys):
    common = ["train", "--arch", "tutorial", "--epochs", "1", "--batch-size", "20", "--data", synthetic_mnist]
    code, out, err = run_cli(capsys, *common, "--val-share", "0", "--out", tmp_path / "a.pt")
    line = next(line for line in err.splitlines() if line.startswith("epoch "))
    assert code == 0 and "None" not in err and "validation" not in line and "n/a" not in out + line
    code, out, err = run_cli(capsys, *common, "--val-share", "20%", "--out", tmp_path / "b.pt")
    line = next(line for line in err.splitlines() if line.startswith("epoch "))
    assert code == 0 and "validation loss 0." in line and "validation accuracy" in line and "(validation " in out


def test_label_smoothing_is_explained_before_its_loss_is_shown(synthetic_mnist, tmp_path, capsys):
    common = ["--arch", "tutorial", "--epochs", "1", "--batch-size", "20", "--data", synthetic_mnist]
    code, _, err = run_cli(capsys, "train", "--preset", "quick", *common, "--out", tmp_path / "q.pt")
    assert code == 0 and "note: Label smoothing 0.1 is on" in err and "cannot fall below 0.50" in err
    assert err.index("Label smoothing") < err.index("epoch 1/1")
    code, _, err = run_cli(capsys, "train", "--preset", "tutorial", *common, "--out", tmp_path / "t.pt")
    assert code == 0 and "smoothing" not in err


def test_the_progress_bars_speed_and_eta_are_work_done_over_the_time_it_took():
    from core.cli_progress import ProgressBar

    from core.training import BatchProgress

    # training: the core's own clock and sample count (not tqdm's moving average of recent updates)
    bar = ProgressBar(10, "batch", "batches", quiet=True)
    for done, samples, elapsed, shown in [(2, 128, 1.0, "ETA 0:04, 128 samples/s, loss 0.5"),
                                          (9, 576, 2.0, "ETA 0:00, 288 samples/s")]:
        p = BatchProgress(0, done - 1, 10, 10, 0.5, 0.9, 0.9, samples, elapsed)
        assert bar.update(p.batches_done, p.samples_per_second, p.eta_seconds, loss="0.5").startswith(shown)
    # fine-tuning: steps since the first report over the time since it; no ETA before there is a rate
    now = [100.0]
    bar = ProgressBar(10, "step", "steps", quiet=True, clock=lambda: now[0])
    assert bar.update(1).startswith("ETA …, … steps/s")
    now[0] = 101.0
    assert bar.update(3).startswith("ETA 0:04, 2 steps/s")  # 7 steps left at 2 a second
    now[0] = 1000.0
    assert bar.update(4).startswith("ETA 30:00, 300.0 s/step")  # 3 steps in 900 s: 6 left take 1,800 s


def test_train_without_data_is_one_clear_line(tmp_path, capsys, monkeypatch):
    import core.data

    monkeypatch.setattr(core.data, "_download", lambda root, **_: (_ for _ in ()).throw(OSError("offline")))
    code, out, err = run_cli(capsys, "train", "--data", tmp_path / "nowhere", "--quiet")
    assert code == 1 and err.startswith("error: MNIST not found") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_predict_json_lines_with_a_bad_file_among_good_ones(trained, tmp_path, capsys):
    good, blank, bad = tmp_path / "seven.png", tmp_path / "blank.png", tmp_path / "bad.png"
    draw(SEVEN).save(good)
    Image.new("L", (50, 50), 255).save(blank)
    bad.write_text("not an image")
    code, out, _ = run_cli(capsys, "predict", good, blank, bad, "--weights", trained[0], "--json")
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and [r["path"] for r in records] == [str(good), str(blank), str(bad)]
    assert records[0]["digit"] in range(10) and abs(sum(records[0]["probabilities"]) - 1) < 1e-5
    assert records[0]["error"] is None
    assert records[1]["digit"] is None and records[1]["probabilities"] is None and records[1]["error"] is None
    assert records[2]["digit"] is None and "not an image" in records[2]["error"]


def test_predict_with_unusable_weights_exits_2(tmp_path, capsys):
    (tmp_path / "w.pt").write_text("garbage")
    draw(SEVEN).save(tmp_path / "seven.png")
    code, out, err = run_cli(capsys, "predict", tmp_path / "seven.png", "--weights", tmp_path / "w.pt")
    assert code == 2 and "not a PyTorch weights file" in err and out == ""


def test_evaluate_json(trained, synthetic_mnist, capsys):
    code, out, _ = run_cli(capsys, "evaluate", "--weights", trained[0], "--data", synthetic_mnist, "--json")
    report = json.loads(out)
    assert code == 0 and report["n"] == 200 and len(report["per_class_accuracy"]) == 10
    assert sum(map(sum, report["confusion"])) == 200
    assert abs(report["test_accuracy"] - trained[1]["test_accuracy"]) < 1e-6


def test_export_for_the_tutorial_script(trained, tmp_path, capsys):
    code, out, _ = run_cli(capsys, "export", "--weights", trained[0], "--format", "tutorial", "--out", tmp_path / "cnn_mnist.pth")
    state = torch.load(tmp_path / "cnn_mnist.pth", weights_only=True)
    assert code == 0 and sorted(state) == ["0.bias", "0.weight", "3.bias", "3.weight", "7.bias", "7.weight"]


def test_export_of_digitnet_is_refused(capsys, tmp_path):
    code, _, err = run_cli(capsys, "export", "--weights", ROOT / "resources" / "default_weights.pt",
                           "--format", "tutorial", "--out", tmp_path / "x.pth")
    assert code == 2 and "only the tutorial architecture" in err and not (tmp_path / "x.pth").exists()


def test_summary_prints_every_layer(capsys):
    code, out, _ = run_cli(capsys, "summary", "--arch", "tutorial")
    assert code == 0 and "(1, 16, 5, 5)" in out and "5,258" in out


def test_usage_errors_and_help_in_a_real_process():
    helped = subprocess.run([sys.executable, "main.py", "train", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert helped.returncode == 0 and "--preset" in helped.stdout and "--batch-size" in helped.stdout
    wrong = subprocess.run([sys.executable, "main.py", "train", "--epochs", "many"], cwd=ROOT, capture_output=True, text=True)
    assert wrong.returncode == 2 and "invalid int value" in wrong.stderr and "Traceback" not in wrong.stderr
    missing = subprocess.run([sys.executable, "main.py", "predict", "nope.png", "--json"], cwd=ROOT, capture_output=True, text=True)
    assert missing.returncode == 1 and json.loads(missing.stdout)["error"].endswith("does not exist")


def test_predict_json_says_digit_unsure_or_not_a_digit_and_keeps_the_top_guess(tmp_path, capsys):
    from PIL import ImageDraw, ImageFont

    seven, letter, blank = tmp_path / "seven.png", tmp_path / "letter.png", tmp_path / "blank.png"
    draw(SEVEN, size=(280, 280), box=(70, 40, 210, 240), width=18).save(seven)
    page = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(page).text((140, 140), "K", font=ImageFont.load_default(size=200), fill=0, anchor="mm")
    page.save(letter)
    Image.new("L", (50, 50), 255).save(blank)
    code, out, _ = run_cli(capsys, "predict", seven, letter, blank, "--json")
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert records[0]["digit"] == 7 and records[0]["verdict"] == "digit" and records[0]["candidates"] == [7]
    assert records[1]["verdict"] == "not_a_digit" and records[1]["digit"] in range(10)  # the top guess stays
    assert records[1]["looks_like"] and 0.5 <= records[1]["not_digit_probability"] <= 1
    assert records[2]["digit"] is None and records[2]["verdict"] is None  # nothing to recognize
    for record in records:
        assert {"verdict", "candidates", "looks_like", "not_digit_probability", "hints"} <= set(record)
    code, out, _ = run_cli(capsys, "predict", seven, letter)
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith(f"{seven}: 7 (")
    assert "probably not a single digit" in lines[1] and "closest digit" in lines[1]


def test_predict_json_says_where_the_digit_was_found_and_by_which_route(tmp_path, capsys):
    """A photo of a page with a 3 and, well apart, an 8: the region reported lies on the digit that was read; a
    pad-style drawing takes the drawing route with its ink's box."""
    import numpy as np

    from bench.photo_sets import Conditions, render, stroke_mask

    def cropped(mask: np.ndarray) -> np.ndarray:
        rows, cols = np.nonzero(mask > 0.05)
        return mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]

    rng = np.random.default_rng(0)
    three, eight = cropped(stroke_mask(3, rng, heldout=False)), cropped(stroke_mask(8, rng, heldout=False))
    h = max(three.shape[0], eight.shape[0])
    gap = np.zeros((h, 2 * three.shape[1]))
    both = np.concatenate([np.pad(m, ((0, h - m.shape[0]), (0, 0))) for m in (three, gap, eight)], axis=1)
    conditions = Conditions(size=(640, 320), lines="ruled", ink="blue", lighting="gradient", light_depth=0.3,
                            jpeg_quality=80)
    page = render(both, conditions, rng)  # (320, 640, 3): the 3 left of the centre, the 8 right of it
    photo, seven = tmp_path / "page.png", tmp_path / "seven.png"
    Image.fromarray(page).save(photo)
    draw(SEVEN, size=(280, 280), box=(70, 40, 210, 240), width=18).save(seven)
    code, out, _ = run_cli(capsys, "predict", photo, seven, "--json")
    read_photo, read_seven = (json.loads(line) for line in out.splitlines())
    assert code == 0 and read_photo["route"] == "photo" and read_seven["route"] == "drawing"
    x0, y0, x1, y1 = read_photo["region"]
    assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 320
    assert (read_photo["digit"], x1 <= 320) in ((3, True), (8, False)), (read_photo["digit"], read_photo["region"])
    assert x0 >= 320 or x1 <= 320  # one digit, not both
    sx0, sy0, sx1, sy1 = read_seven["region"]
    assert 50 <= sx0 < sx1 <= 230 and 20 <= sy0 < sy1 <= 260  # around the strokes drawn in (70, 40, 210, 240)


def test_train_init_from_a_missing_file_is_one_error_line(synthetic_mnist, tmp_path, capsys):
    code, out, err = run_cli(capsys, "train", "--arch", "tutorial", "--epochs", "1", "--data", synthetic_mnist,
                             "--init", tmp_path / "nope.pt", "--out", tmp_path / "w.pt", "--quiet")
    assert code == 1 and err.startswith("error: cannot start from") and "nope.pt" in err and "Traceback" not in err
    assert not (tmp_path / "w.pt").exists()


@pytest.mark.parametrize("text", ["30", "100%", "-0.1", "nan"])
def test_a_val_share_out_of_range_names_the_option_and_both_units_before_any_work(text, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--val-share", text, "--data", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--val-share" in err and f"{text} is out of range" in err
    assert "(0.3)" in err and "(30%)" in err and "MNIST" not in err and not (tmp_path / "nowhere").exists()
