"""Run records (core/runs.py): round trip, thinning, damaged files, deleting, and the records training writes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import paths
from core.run_recorder import RunRecorder, thin_curve, training_metrics
from core.runs import MAX_CURVE_POINTS, RunError, RunStore, runs_dir
from tests.conftest import requires_real_mnist


def recorded_run(status: str = "completed", batches: int = 10, weights: Path | None = None,
                 test_accuracy: float | None = 0.9745000004768372) -> RunRecorder:
    recorder = RunRecorder("train", "cli", "quick-fastnet", {"preset": "quick", "arch": "fastnet", "epochs": 2,
                                                              "lr": 1e-5}, "cpu", "fp32", 2)
    for b in range(batches):
        recorder.add_batch(64 * (b + 1), 2.3 / (b + 1), b / batches)
    recorder.finish(status, {"test_accuracy": test_accuracy, "per_class_accuracy": [0.5] * 10}, weights)
    return recorder


def test_a_record_round_trips_with_rounded_numbers_and_exact_settings():
    recorder = recorded_run()
    assert recorder.saved == runs_dir() / f"{recorder.id}.json" and recorder.save_error is None
    text = recorder.saved.read_text()
    assert "0.9745," in text and "0.9745000004768372" not in text  # jsonout's 4 places
    assert json.loads(text)["settings"]["lr"] == 1e-5  # settings are not rounded away
    record = RunStore().load(recorder.id)
    assert (record.kind, record.source, record.status, record.device, record.precision) == \
        ("train", "cli", "completed", "cpu", "fp32")
    assert record.curve["samples"] == [64 * (b + 1) for b in range(10)]
    assert record.curve["loss"][0] == 2.3 and record.test_accuracy == 0.9745
    assert record.started.startswith(recorder.started.strftime("%Y-%m-%dT%H:%M:%S"))


def test_a_long_run_is_thinned_to_the_limit_keeping_its_shape_and_last_batch():
    n = 10_007
    curve = {"samples": [32 * (i + 1) for i in range(n)], "batch": list(range(1, n + 1)),
             "loss": [1.0 + (i % 2) for i in range(n)], "accuracy": [i / n for i in range(n)]}
    thin = thin_curve(curve)
    assert len(thin["loss"]) == MAX_CURVE_POINTS and all(len(v) == MAX_CURVE_POINTS for v in thin.values())
    assert thin["samples"][-1] == 32 * n and thin["batch"][-1] == n  # the end of the run is the end of the curve
    assert all(1.3 < loss < 1.7 for loss in thin["loss"])  # the alternating loss averaged, not sampled
    assert thin["accuracy"] == sorted(thin["accuracy"])
    recorder = RunRecorder("train", "gui", "x", {}, "cpu", "fp32", 1)
    for i in range(n):
        recorder.add_batch(curve["samples"][i], curve["loss"][i], curve["accuracy"][i])
    recorder.finish("completed")
    assert recorder.saved.stat().st_size < 150_000  # a long run's record stays small


def test_listing_is_newest_first_and_skips_damaged_and_foreign_files_naming_them():
    first, second = recorded_run(), recorded_run()
    folder = runs_dir()
    (folder / "notes.json").write_text("[1, 2]")
    (folder / "20260101-000000-abcd.json").write_text('{"format": "digit-recognizer-run", "version": 1, "id": ')
    (folder / "readme.txt").write_text("not a record")  # not .json: not even looked at
    (folder / "20260101-000001-abcd.json").mkdir()
    listing = RunStore().list()
    assert [r.id for r in listing.runs] == [second.id, first.id]  # by start time, finer than the ids' seconds
    reasons = {p.name: why for p, why in listing.skipped}
    assert set(reasons) == {"notes.json", "20260101-000000-abcd.json", "20260101-000001-abcd.json"}
    assert "not a run record" in reasons["notes.json"] and "not valid JSON" in reasons["20260101-000000-abcd.json"]
    with pytest.raises(RunError, match="not valid JSON"):
        RunStore().load("20260101-000000-abcd")


def test_a_newer_record_from_a_later_run_sorts_first_even_within_one_second():
    runs = [recorded_run() for _ in range(3)]
    listed = RunStore().list().runs
    assert [r.started_unix for r in listed] == sorted((r.started_unix for r in listed), reverse=True)
    assert {r.id for r in listed} == {r.id for r in runs}


def test_the_summary_index_speeds_a_fresh_listing_but_never_overrules_a_record():
    from core.runs import INDEX_NAME

    runs = [recorded_run() for _ in range(3)]
    first = RunStore().list()
    index = runs_dir() / INDEX_NAME
    assert index.is_file() and [r.id for r in RunStore().list().runs] == [r.id for r in first.runs]
    changed = RunStore().load(runs[0].id)
    changed.status = "failed"  # a record rewritten (another process): its size and mtime change
    from core.runs import save_run

    save_run(changed)
    assert {r.id: r.status for r in RunStore().list().runs}[runs[0].id] == "failed"
    for garbage in ("{", '{"format": "digit-recognizer-run-index-1", "entries": {"../x.json": {}}}', "[]"):
        index.write_text(garbage)  # a damaged index is ignored and rebuilt
        assert sorted(r.id for r in RunStore().list().runs) == sorted(r.id for r in runs)
    assert json.loads(index.read_text())["format"] == "digit-recognizer-run-index-1"
    assert INDEX_NAME not in [p.name for p, _ in RunStore().list().skipped]  # hidden: not a record


def test_the_summary_says_what_the_table_shows_and_a_missing_weights_file():
    weights = paths.user_weights_dir() / "quick-fastnet-1.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"x" * 1234)
    recorder = recorded_run(weights=weights)
    summary = RunStore().list().runs[0]
    assert (summary.preset, summary.arch, summary.epochs_planned, summary.test_accuracy) == ("quick", "fastnet", 2,
                                                                                           0.9745)
    assert summary.weights == str(weights.resolve()) and summary.weights_bytes == 1234 and summary.weights_exists
    weights.unlink()
    assert not RunStore().list().runs[0].weights_exists
    assert RunStore().path_of(recorder.id[:-2]) == recorder.saved  # a unique prefix is enough


def test_ids_are_checked_before_they_become_paths():
    for bad in ("../../etc/passwd", "x.json", ""):
        with pytest.raises(RunError, match="not a run id"):
            RunStore().path_of(bad)
    with pytest.raises(RunError, match="no run"):
        RunStore().path_of("20000101")


def test_delete_removes_the_record_and_only_our_own_weights_when_asked(tmp_path):
    ours = paths.user_weights_dir() / "quick-fastnet-2.pt"
    ours.parent.mkdir(parents=True)
    ours.write_bytes(b"w")
    elsewhere = tmp_path / "elsewhere.pt"
    elsewhere.write_bytes(b"w")
    store = RunStore()
    kept = store.delete(recorded_run(weights=ours).id)  # not asked: the file stays
    assert not kept.record.exists() and ours.exists() and kept.weights_removed is None
    gone = store.delete(recorded_run(weights=ours).id, with_weights=True)
    assert gone.weights_removed == ours.resolve() and not ours.exists()
    outside = store.delete(recorded_run(weights=elsewhere).id, with_weights=True)
    assert elsewhere.exists() and "outside" in outside.weights_kept
    assert store.list().runs == []


def test_delete_never_removes_the_shipped_default_weights(monkeypatch, tmp_path):
    shipped = paths.user_weights_dir() / "default_weights.pt"  # even when it sits in the weights folder
    shipped.parent.mkdir(parents=True)
    shipped.write_bytes(b"w")
    monkeypatch.setattr(paths, "DEFAULT_WEIGHTS", shipped)
    deletion = RunStore().delete(recorded_run(weights=shipped).id, with_weights=True)
    assert shipped.exists() and "never deleted" in deletion.weights_kept


def test_a_record_that_cannot_be_written_does_not_break_the_run():
    runs_dir().parent.mkdir(parents=True, exist_ok=True)
    runs_dir().write_text("a file where the runs folder should be")
    recorder = recorded_run()
    assert recorder.saved is None and "could not be written" in recorder.save_error


def test_training_records_its_curve_epochs_and_test_numbers(tiny_settings):
    from core.training import train

    recorder = RunRecorder.for_training(tiny_settings, "cli")
    result = train(tiny_settings, on_batch=recorder.add_progress, on_epoch=recorder.add_epoch)
    recorder.ran_with(result)
    record = recorder.finish("completed", training_metrics(result))
    assert record.device == "cpu" and record.precision in ("fp32", "bf16 autocast") and record.threads >= 1
    assert len(record.curve["loss"]) == len(record.curve["batch"]) == 2 * 27  # every batch of both epochs
    assert record.curve["samples"][-1] == 2 * 540  # both epochs of the 540 training images
    assert [e["samples"] for e in record.epochs] == [540, 1080]
    assert record.test_accuracy == result.test.accuracy and len(record.metrics["per_class_accuracy"]) == 10
    assert RunStore().load(record.id).metrics["test_loss"] == pytest.approx(result.test.loss, abs=1e-4)


# ---------------------------------------------------------------- the command line
def run_cli(capsys, *argv):
    from core.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_run(synthetic_mnist, tmp_path, capsys):
    """`train` from the command line: its --json report and the record it wrote."""
    code, out, err = run_cli(capsys, "train", "--arch", "tutorial", "--epochs", "2", "--batch-size", "20",
                             "--data", synthetic_mnist, "--out", tmp_path / "cli.pt", "--json", "--quiet")
    assert code == 0, err
    return json.loads(out), RunStore().list().runs


def test_cli_train_writes_a_record_the_store_lists(cli_run, tmp_path):
    report, runs = cli_run
    assert len(runs) == 1
    run = runs[0]
    assert (run.kind, run.source, run.status, run.epochs_done, run.epochs_planned) == ("train", "cli", "completed", 2, 2)
    assert run.weights == str((tmp_path / "cli.pt").resolve()) and run.weights_exists
    assert run.test_accuracy == report["test_accuracy"]  # both rounded to 4 places from the same number
    record = RunStore().load(run.id)
    assert len(record.curve["loss"]) == 2 * 30 and len(record.epochs) == 2  # quick holds nothing out: 600 images


def test_runs_json_contract(cli_run, capsys):
    _, runs = cli_run
    (runs_dir() / "junk.json").write_text("{")
    code, out, _ = run_cli(capsys, "runs", "--json")
    report = json.loads(out)
    assert code == 0 and set(report) == {"runs", "skipped"}
    assert set(report["runs"][0]) == {"id", "kind", "source", "status", "name", "started", "started_unix", "seconds",
                                      "device", "precision", "preset", "arch", "epochs_done", "epochs_planned",
                                      "test_accuracy", "weights", "weights_bytes", "weights_exists", "path"}
    assert report["runs"][0]["id"] == runs[0].id and report["skipped"][0]["path"].endswith("junk.json")
    assert report["runs"][0]["seconds"] == round(report["runs"][0]["seconds"], 2)
    code, out, _ = run_cli(capsys, "runs", "show", runs[0].id, "--json")
    shown = json.loads(out)
    assert code == 0 and shown["id"] == runs[0].id and len(shown["curve"]["samples"]) == 2 * 30


def test_runs_list_show_and_delete_in_words(cli_run, tmp_path, capsys):
    _, runs = cli_run
    run_id = runs[0].id
    code, out, err = run_cli(capsys, "runs")
    assert code == 0 and run_id in out and "completed" in out and "cli.pt" in out and err == ""
    code, out, _ = run_cli(capsys, "runs", "show", run_id[:15])  # a unique start of the id is enough
    assert code == 0 and "epoch 2:" in out and "test accuracy" in out and "per digit" in out
    code, out, err = run_cli(capsys, "runs", "delete", run_id, "--with-weights")
    assert code == 0 and "deleted the record" in out
    assert (tmp_path / "cli.pt").exists() and "outside the app's weights folder" in err  # not ours to delete
    assert RunStore().list().runs == []


@pytest.mark.parametrize("argv, status, message", [
    (["runs", "show", "../x"], 2, "not a run id"),
    (["runs", "show", "20000101-000000-abcd"], 1, "no run"),
    (["runs", "delete", "20000101"], 1, "no run"),
])
def test_runs_errors_are_one_line(capsys, argv, status, message):
    code, _, err = run_cli(capsys, *argv)
    assert code == status and err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_ctrl_c_in_cli_training_records_a_stopped_run_without_weights(synthetic_mnist, capsys, monkeypatch):
    import core.training

    real_train = core.training.train

    def interrupted_train(settings, on_batch=None, on_epoch=None, should_stop=None, data=None):
        def on_batch_then_ctrl_c(progress):
            on_batch(progress)
            if progress.batches_done == 5:
                raise KeyboardInterrupt
        return real_train(settings, on_batch=on_batch_then_ctrl_c, on_epoch=on_epoch)

    monkeypatch.setattr(core.training, "train", interrupted_train)
    code, _, err = run_cli(capsys, "train", "--arch", "tutorial", "--epochs", "1", "--batch-size", "20",
                           "--data", synthetic_mnist, "--quiet")
    assert code == 130 and "interrupted" in err
    run = RunStore().list().runs[0]
    assert run.status == "stopped" and run.weights is None and run.test_accuracy is None
    assert len(RunStore().load(run.id).curve["loss"]) == 5


def test_cli_finetune_writes_a_record(synthetic_mnist, tmp_path, capsys, monkeypatch):
    import torch

    import core.finetune
    import core.training

    # "auto" as on a CPU with native bf16 (autocast runs anywhere): the record must say what ran, not "auto"
    bf16_when_auto = lambda precision, device: torch.bfloat16 if precision in ("auto", "bf16") else None  # noqa: E731
    monkeypatch.setattr(core.training, "autocast_dtype", bf16_when_auto)
    monkeypatch.setattr(core.finetune, "autocast_dtype", bf16_when_auto)
    from core.models import build_model
    from core.weights import save_weights
    from tests.test_samples import write_image_folder

    monkeypatch.setitem(core.finetune.ARCH_RECIPES, "tutorial", {"steps": 12, "lr": 3e-3})  # the recipe, shortened
    base_path = save_weights(tmp_path / "tiny.pt", build_model("tutorial"), "tutorial", {}, (0.0, 1.0), {"preset": "quick"},
                             {"test_accuracy": None})
    samples = write_image_folder(tmp_path / "mine", per_digit=3)
    code, out, err = run_cli(capsys, "finetune", samples, "--weights", base_path, "--data", synthetic_mnist, "--json")
    assert code == 0, err
    report = json.loads(out)
    run = RunStore().list().runs[0]
    assert (run.kind, run.source, run.status, run.preset, run.arch) == ("finetune", "cli", "completed", "fine-tuned",
                                                                        "tutorial")
    assert run.weights == str(Path(report["weights"]).resolve()) and run.name == "fine-tuned tiny.pt"
    record = RunStore().load(run.id)
    assert record.settings["steps"] == 12 and len(record.curve["loss"]) == 12
    assert record.curve["samples"][-1] == 12 * record.settings["batch_size"]
    assert record.metrics["test_accuracy"] == report["mnist_test"]["after"]
    assert record.precision == "bf16 autocast"  # what ran, not the "auto" that was asked for


@requires_real_mnist
def test_cli_train_on_real_mnist_records_the_test_accuracy_it_prints(real_mnist_dir, tmp_path, capsys):
    # the tutorial's net, one epoch in batches of 1024: 59 steps, a few seconds, still a real run over all 60k
    code, out, err = run_cli(capsys, "train", "--preset", "tutorial", "--batch-size", "1024", "--lr", "0.01",
                             "--data", real_mnist_dir, "--out", tmp_path / "real.pt", "--quiet", "--device", "cpu")
    assert code == 0, err
    printed = float(out.split("test accuracy ")[1].split("%")[0]) / 100  # "test accuracy 95.12% after ..."
    run = RunStore().list().runs[0]
    record = RunStore().load(run.id)
    assert run.test_accuracy == pytest.approx(printed, abs=5e-5) and run.test_accuracy > 0.9
    assert f"run {run.id} recorded" in out and run.status == "completed"
    assert record.curve["samples"][-1] == 60_000 and len(record.curve["loss"]) == 59
    assert sum(record.metrics["per_class_accuracy"]) / 10 == pytest.approx(run.test_accuracy, abs=0.02)


def test_the_record_says_which_precision_and_threads_training_settled_on(tiny_settings):
    from dataclasses import replace

    from core.training import train

    settings = replace(tiny_settings, precision="auto", threads=None, epochs=1)
    recorder = RunRecorder.for_training(settings, "cli")
    result = train(settings, on_batch=recorder.add_progress)
    recorder.ran_with(result)
    record = recorder.finish("completed", training_metrics(result))
    assert record.precision == ("bf16 autocast" if result.precision == "bf16" else "fp32")
    assert record.threads == result.threads
