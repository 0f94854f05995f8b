"""`python main.py finetune`: the JSON contract, the default folders and weights, each bad input, never over the defaults."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import paths
from core.cli import main
from core.samples import SampleStore
from core.weights import load_weights
from tests.conftest import requires_real_mnist
from tests.test_samples import drawn_digit, write_image_folder


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    """A tutorial net trained on the synthetic digits, saved once for the module."""
    from core.weights import save_weights
    from tests.test_finetune import base_weights

    base = base_weights("tutorial")
    return save_weights(tmp_path_factory.mktemp("weights") / "tiny.pt", base.model, "tutorial", {}, (0.0, 1.0),
                        {"preset": "quick"}, {"test_accuracy": None})


@pytest.fixture
def tiny_base(tiny_weights, tmp_path) -> Path:
    """A private copy, so a test that wrongly wrote over its base could not hide it from the others."""
    copy = tmp_path / "tiny.pt"
    copy.write_bytes(tiny_weights.read_bytes())
    return copy


def weights_written() -> list[Path]:
    folder = paths.user_weights_dir()
    return sorted(folder.glob("*.pt")) if folder.exists() else []


def test_json_contract_names_skipped_files_and_writes_new_weights(tiny_base, synthetic_mnist, tmp_path, capsys):
    samples = write_image_folder(tmp_path / "mine", per_digit=3)
    (samples / "4" / "broken.png").write_text("not an image")
    code, out, err = run_cli(capsys, "finetune", samples, "--weights", tiny_base, "--data", synthetic_mnist, "--json")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1
    report = json.loads(out)
    assert set(report) == {"weights", "base", "samples", "held_out", "mnist_test", "seconds"}
    assert report["base"] == "tiny.pt" and report["samples"] == 30
    assert set(report["held_out"]) == {"n", "before", "after"} and report["held_out"]["n"] == 10
    assert set(report["mnist_test"]) == {"before", "after"}
    for value in (report["held_out"]["before"], report["held_out"]["after"], *report["mnist_test"].values()):
        assert 0 <= value <= 1 and round(value, 4) == value
    assert "broken.png" in err and "skipped" in err and "Traceback" not in err
    written = Path(report["weights"])
    assert [written] == weights_written() and load_weights(written).settings["finetuned_from"] == "tiny.pt"


def test_defaults_the_samples_folder_and_the_shipped_weights_offline(tiny_base, tmp_path, capsys, monkeypatch):
    store = SampleStore()  # the per-user folder (DIGIT_RECOGNIZER_HOME is private to this test)
    for digit in range(10):
        store.add(drawn_digit(digit), digit)
    monkeypatch.setattr(paths, "DEFAULT_WEIGHTS", tiny_base)  # stands for the shipped weights: same loading path
    code, out, err = run_cli(capsys, "finetune", "--data", tmp_path / "no-mnist", "--out", tmp_path / "new.pt")
    assert code == 0, err
    assert "could not guard against forgetting" in err and "MNIST test: unknown" in out
    assert "tiny.pt" in out and "none held out" in err and (tmp_path / "new.pt").is_file()


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "nowhere", "does not exist"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "is empty"),
    (lambda p: (p / "flat").mkdir() or drawn_digit(1).save(p / "flat" / "1.png") or p / "flat", "no digit subfolders"),
    (lambda p: [(p / "bad" / "4").mkdir(parents=True), (p / "bad" / "4" / "x.png").write_text("no"),
                Image.new("L", (40, 40), 255).save(p / "bad" / "4" / "blank.png")] and p / "bad", "no usable digit image"),
])
def test_bad_samples_folders_are_one_line_and_write_nothing(tiny_base, synthetic_mnist, tmp_path, capsys, make, message):
    out_file = tmp_path / "out.pt"
    code, out, err = run_cli(capsys, "finetune", make(tmp_path), "--weights", tiny_base, "--data", synthetic_mnist,
                             "--out", out_file)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not out_file.exists() and weights_written() == []


def test_never_overwrites_the_shipped_defaults_or_the_base(tiny_base, synthetic_mnist, tmp_path, capsys):
    samples = write_image_folder(tmp_path / "mine", per_digit=1)
    defaults, base = digest(paths.DEFAULT_WEIGHTS), digest(tiny_base)
    for target, message in ((paths.DEFAULT_WEIGHTS, "shipped default weights"), (tiny_base, "being fine-tuned")):
        code, out, err = run_cli(capsys, "finetune", samples, "--weights", tiny_base, "--data", synthetic_mnist,
                                 "--out", target)
        assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1
    # without --weights the base is the shipped file itself: still refused
    code, _, err = run_cli(capsys, "finetune", samples, "--data", synthetic_mnist, "--out", paths.DEFAULT_WEIGHTS)
    assert code == 2 and "never overwritten" in err
    assert digest(paths.DEFAULT_WEIGHTS) == defaults and digest(tiny_base) == base


def test_unusable_base_weights_are_one_line(tmp_path, capsys):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"junk")
    code, _, err = run_cli(capsys, "finetune", write_image_folder(tmp_path / "mine", 1), "--weights", broken)
    assert code == 2 and err.startswith("error: broken.pt") and len(err.strip().splitlines()) == 1


@requires_real_mnist
def test_real_writer_is_learned_without_forgetting_mnist(real_mnist_dir, tmp_path, capsys):
    """The shipped weights misread a child's reversed 3, 4, 6, 7 and 9; ten samples of each digit teach it."""
    from bench.writer_sets import WRITERS, writer_samples
    from bench.writer_sets import write_image_folder as save_folder
    from core.predict import Predictor

    writer = WRITERS["mirror"]
    save_folder(*writer_samples(writer, 10, "tune"), tmp_path / "child")
    unseen, labels = writer_samples(writer, 10, "heldout")
    before = np.mean([p.digit == y for p, y in zip(Predictor.from_file().predict_many(unseen), labels)])
    code, out, err = run_cli(capsys, "finetune", tmp_path / "child", "--data", real_mnist_dir, "--json", "--quiet")
    assert code == 0, err
    report = json.loads(out)
    after = np.mean([p.digit == y for p, y in zip(Predictor.from_file(report["weights"]).predict_many(unseen), labels)])
    assert before < 0.7 and after >= 0.95
    assert report["mnist_test"]["after"] >= 0.993 and report["held_out"]["after"] >= 0.9
