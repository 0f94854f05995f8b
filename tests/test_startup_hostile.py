"""Start-up against a hostile user: damaged remembered settings and weights, Ctrl+C at any moment, the log file."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings  # noqa: E402

from core import paths  # noqa: E402
from core.logs import log_path, logging_to_file  # noqa: E402
from gui.drawing_pad import DEFAULT_BRUSH  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from tests.gui_support import TIMEOUT, private_qsettings  # noqa: E402,F401 (a fixture, found by name)

ROOT = Path(__file__).resolve().parent.parent
needs_default_weights = pytest.mark.skipif(not paths.DEFAULT_WEIGHTS.is_file(), reason="needs the shipped weights")


# ---------------------------------------------------------------- helpers
def tutorial_weights_file(path: Path, **metadata) -> Path:
    """A valid tutorial-architecture weights file, with any metadata field replaced by `metadata`."""
    import torch

    from core.models import build_model
    from core.weights import save_weights

    save_weights(path, build_model("tutorial"), "tutorial", {}, (0.0, 1.0), {"preset": "tutorial"}, {})
    if metadata:
        payload = torch.load(path, weights_only=True)
        payload.update(metadata)
        torch.save(payload, path)
    return path


def settings_file(tmp_path: Path, text: str) -> QSettings:
    """QSettings read from an INI file written by hand, as a user or a broken disk might leave it."""
    path = tmp_path / "hostile.ini"
    path.write_text(text, encoding="utf-8")
    return QSettings(str(path), QSettings.Format.IniFormat)


def open_window(qtbot, settings: QSettings) -> MainWindow:
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(window.is_model_ready, timeout=TIMEOUT)
    return window


# ---------------------------------------------------------------- remembered settings
HOSTILE_SETTINGS = {
    "text where numbers belong": "[draw]\nbrush=abc\n[window]\ngeometry=not bytes\n[train]\ndata_dir=a, b\n",
    "numbers out of range": "[draw]\nbrush=1e9\n[window]\ngeometry=@ByteArray(xyz)\n[train]\ndata_dir=@ByteArray(x)\n",
    "negative and huge": "[draw]\nbrush=-3\n[train]\ndata_dir=" + "x" * 5000 + "\n[weights]\nlast=a, b\n",
    "Qt types and broken variants": ("[draw]\nbrush=@Rect(1 2 3 4)\n[window]\ngeometry=@Invalid()\n"
                                     "[train]\ndata_dir=@Variant(\\0\\0\\0\\x7f\\0\\0\\0\\vQBrokenType\\0)\n"),
    "overflowing integer": "[draw]\nbrush=99999999999999999999999999\n[weights]\nlast=@Size(3 4)\n",
    "a folder name too long to look up": "[train]\ndata_dir=/tmp/" + "x" * 300 + "\n",
}


@needs_default_weights
@pytest.mark.parametrize("case", list(HOSTILE_SETTINGS))
def test_bad_remembered_settings_fall_back_to_defaults(qtbot, tmp_path, case):
    window = open_window(qtbot, settings_file(tmp_path, HOSTILE_SETTINGS[case]))
    assert window.draw_tab.pad.brush_width() == DEFAULT_BRUSH
    assert window.train_tab.form.data_folder() == ""
    area = window.screen().availableGeometry()  # the first-run size (fitted to the screen), not a collapsed window
    assert (window.width(), window.height()) == (min(1100, area.width() - 16), min(720, area.height() - 40))
    assert window.current_weights().path.resolve() == paths.DEFAULT_WEIGHTS.resolve()


def test_good_remembered_settings_are_still_used(qtbot, tmp_path):
    weights = tutorial_weights_file(tmp_path / "mine.pt")
    window = open_window(qtbot, settings_file(tmp_path, f"[draw]\nbrush=30\n[train]\ndata_dir={tmp_path}\n"
                                                        f"[weights]\nlast={weights}\n"))
    assert window.draw_tab.pad.brush_width() == 30
    assert window.train_tab.form.data_folder() == str(tmp_path)
    assert window.current_weights().path == weights


@needs_default_weights
@pytest.mark.parametrize("metadata", [{"normalization": "abc"}, {"metrics": [1, 2]}, {"settings": "fast"},
                                      {"arch_args": {"width": "wide"}}, {"metrics": {"test_accuracy": "high"}}],
                         ids=["normalization", "metrics", "settings", "arch_args", "accuracy"])
def test_remembered_weights_with_malformed_metadata_fall_back_with_a_notice(qtbot, tmp_path, metadata):
    broken = tutorial_weights_file(tmp_path / "broken.pt", **metadata)
    window = open_window(qtbot, settings_file(tmp_path, f"[weights]\nlast={broken}\n"))
    assert window.current_weights().path.resolve() == paths.DEFAULT_WEIGHTS.resolve()
    assert "broken.pt" in window.last_message() and "default weights" in window.last_message()
    assert window.save_action.isEnabled()  # a model is in use, not "No model loaded"


@needs_default_weights
def test_any_loader_failure_falls_back_and_its_traceback_reaches_the_log(qtbot, tmp_path, monkeypatch):
    """Fault injection: a loader bug (not a WeightsError) must not leave the window without a model."""
    import core.weights

    remembered = tutorial_weights_file(tmp_path / "remembered.pt")
    real_load = core.weights.load_weights

    def buggy_load(path):
        if Path(path) == remembered:
            raise TypeError("'NoneType' object is not subscriptable")
        return real_load(path)

    monkeypatch.setattr(core.weights, "load_weights", buggy_load)
    with logging_to_file() as log_file:
        window = open_window(qtbot, settings_file(tmp_path, f"[weights]\nlast={remembered}\n"))
    assert window.current_weights().path.resolve() == paths.DEFAULT_WEIGHTS.resolve()
    assert "TypeError" in window.last_message() and "default weights" in window.last_message()
    logged = log_file.read_text(encoding="utf-8")
    assert "Traceback" in logged and "buggy_load" in logged  # the stack a bug report needs


def test_the_log_file_is_never_a_fifo_and_unwritable_records_are_dropped(tmp_path):
    import logging

    handlers = list(logging.getLogger().handlers)
    fifo = log_path()
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)  # opening it for writing would block the app at its first record
    with logging_to_file() as used:
        logging.getLogger("test").error("this must not block")
    assert used is None and fifo.exists()
    assert logging.getLogger().handlers == handlers  # nothing left installed


# ---------------------------------------------------------------- Ctrl+C (subprocesses, synchronised on their imports)
def _ctrl_c_as_at_a_terminal() -> None:
    """In the child before exec: SIGINT back to its default, as in a terminal. A suite started as a background
    job (`pytest &` in a script) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Program:
    """`python -X importtime main.py ...`: its stderr names each module as it is imported, so a test can send
    SIGINT at a known stage of start-up without sleeping."""

    def __init__(self, tmp_path: Path, *args: str):
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", DIGIT_RECOGNIZER_HOME=str(tmp_path / "home"),
                   XDG_CONFIG_HOME=str(tmp_path / "config"), PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen([sys.executable, "-X", "importtime", "main.py", *args], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        preexec_fn=_ctrl_c_as_at_a_terminal)
        self._lines: queue.Queue[str] = queue.Queue()
        self._stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self._stderr.append(line)
            self._lines.put(line)

    def wait_for_import(self, module: str, timeout: float = 60) -> None:
        while True:
            line = self._lines.get(timeout=timeout)  # queue.Empty (a test failure) if it never comes
            if line.startswith("import time:") and line.split("|")[-1].strip() == module:
                return

    def interrupt(self, number: int = signal.SIGINT, timeout: float = 60) -> tuple[int, str, str]:
        """SIGINT (Ctrl+C), then the exit status, stdout and stderr without the import-time lines."""
        self.process.send_signal(number)
        try:  # a program that ignores the signal fails the test after `timeout` instead of hanging the suite
            status = self.process.wait(timeout=timeout)
        finally:
            self.process.kill()
        stdout = self.process.stdout.read()  # small: a summary or nothing, well within the pipe's buffer
        self._reader.join(timeout)
        errors = "".join(line for line in list(self._stderr) if not line.startswith("import time:"))
        return status, stdout, errors


@pytest.fixture
def start(tmp_path):
    """Starts main.py (see Program); any process a failed test left running is killed at teardown."""
    programs: list[Program] = []

    def start_program(*args: str) -> Program:
        programs.append(Program(tmp_path, *args))
        return programs[-1]

    yield start_program
    for program in programs:
        if program.process.poll() is None:
            program.process.kill()
            program.process.wait(timeout=60)


def test_ctrl_c_while_the_cli_imports_torch_is_one_line_and_status_130(start):
    program = start("summary")
    program.wait_for_import("torch._C")  # building the parser imports torch, before the command's own handler
    status, _, errors = program.interrupt()
    assert status == 130
    assert errors.strip() == "error: interrupted"


def test_ctrl_c_while_the_window_starts_up_exits_quietly(start):
    program = start()
    program.wait_for_import("PySide6.QtWidgets")  # then the GUI modules are imported and the window is built
    status, _, errors = program.interrupt()
    assert status == 130
    assert "Traceback" not in errors and "KeyboardInterrupt" not in errors


@needs_default_weights
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_in_the_running_app_with_damaged_settings_closes_it_and_keeps_the_settings(tmp_path, start, number):
    broken = tutorial_weights_file(tmp_path / "broken.pt", normalization="abc")
    config = tmp_path / "config" / "digit-recognizer" / "digit-recognizer.conf"
    config.parent.mkdir(parents=True)
    config.write_text(f"[draw]\nbrush=abc\n[window]\ngeometry=@ByteArray(xyz)\n[weights]\nlast={broken}\n")
    program = start()
    program.wait_for_import("core.predict")  # the model loader's thread: the event loop is running
    status, _, errors = program.interrupt(number)
    assert status == 128 + number  # the shell's convention: 130 for Ctrl+C, 143 for SIGTERM
    assert "Traceback" not in errors and "KeyboardInterrupt" not in errors
    saved = QSettings(str(config), QSettings.Format.IniFormat)  # closed as by File > Quit: settings written back
    assert saved.value("draw/brush") == str(DEFAULT_BRUSH)
    logged = (tmp_path / "home" / "log" / "digit-recognizer.log").read_text(encoding="utf-8")
    assert "draw/brush" in logged  # the log says which remembered value was ignored


def test_ctrl_c_right_after_a_save_leaves_the_file_and_no_traceback(tmp_path, start):
    import torch

    source = tutorial_weights_file(tmp_path / "source.pt")
    for attempt in range(2):  # the signal lands during the command's last line or the interpreter's clean-up
        out = tmp_path / f"exported-{attempt}.pth"
        program = start("export", "--weights", str(source), "--format", "tutorial", "--out", str(out))
        line = program.process.stdout.readline()
        assert line.startswith("wrote")
        status, _, errors = program.interrupt()
        assert status in (0, 130)
        assert "Traceback" not in errors and "KeyboardInterrupt" not in errors
        assert set(torch.load(out, weights_only=True)) == {"0.weight", "0.bias", "3.weight", "3.bias", "7.weight",
                                                           "7.bias"}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary files


CTRL_C_IN_A_CLEAN_UP_CALLBACK = """
import sys, weakref
sys.path.insert(0, sys.argv[1])
import main

def command():
    class Thing:
        pass

    def clean_up(_ref):
        raise KeyboardInterrupt  # as when Ctrl+C lands while a weakref's callback runs
    thing = Thing()
    ref = weakref.ref(thing, clean_up)
    del thing  # the callback runs: its KeyboardInterrupt cannot be raised here
    return 0  # the command goes on to its end

main.main = command
sys.exit(main._main_then_ignore_ctrl_c())
"""


def test_ctrl_c_in_a_clean_up_callback_is_status_130_without_a_traceback():
    """Python prints a Ctrl+C it cannot raise (in a weakref callback or __del__) as "Exception ignored ...
    KeyboardInterrupt" with a traceback, goes on and exits 0; main.py remembers it: no traceback, status 130."""
    done = subprocess.run([sys.executable, "-c", CTRL_C_IN_A_CLEAN_UP_CALLBACK, str(ROOT)], capture_output=True,
                          text=True, timeout=60, preexec_fn=_ctrl_c_as_at_a_terminal)
    assert done.returncode == 130
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr


# ---------------------------------------------------------------- unexpected errors: one line for the user, the stack in the log
def test_an_unforeseen_error_in_a_command_is_one_line_and_its_stack_is_logged(tmp_path):
    too_long = str(tmp_path / ("x" * 300))  # a folder name no file system takes: looking it up raises OSError
    env = dict(os.environ, DIGIT_RECOGNIZER_HOME=str(tmp_path / "home"))
    done = subprocess.run([sys.executable, "main.py", "evaluate", "--data", too_long], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode in (1, 2)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    if "unexpected" in lines[0]:  # not foreseen by the command: the details a bug report needs are in the log
        logged = (tmp_path / "home" / "log" / "digit-recognizer.log").read_text(encoding="utf-8")
        assert "Traceback" in logged and "OSError" in logged and str(tmp_path / "home" / "log") in lines[0]


def test_an_exception_no_slot_caught_is_logged_and_shown_as_one_sentence(qtbot, tmp_path, capsys):
    from gui.app import _errors_logged

    window = open_window(qtbot, settings_file(tmp_path, ""))
    with logging_to_file() as log_file, _errors_logged(str(log_file)) as windows:
        windows.append(window)
        try:
            {}["missing"]
        except KeyError:
            sys.excepthook(*sys.exc_info())  # what PySide6 calls for an exception that escapes a slot
    assert "Unexpected error: KeyError" in window.last_message() and str(log_file) in window.last_message()
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {window.last_message().split(' What')[0]}"]
    logged = log_file.read_text(encoding="utf-8")
    assert "Traceback" in logged and "KeyError" in logged


def test_a_background_task_failure_reaches_the_log_file_with_its_stack(qtbot):
    from gui.background import BackgroundTask

    def broken_work(control):
        return [][1]

    task = BackgroundTask("test")
    with logging_to_file() as log_file:
        with qtbot.waitSignal(task.failed, timeout=TIMEOUT) as failed:
            task.start(broken_work)
        qtbot.waitUntil(lambda: not task.is_running(), timeout=TIMEOUT)
    assert failed.args[0].startswith("Unexpected error: IndexError")  # the user's sentence stays short
    logged = log_file.read_text(encoding="utf-8")
    assert "Traceback" in logged and "broken_work" in logged
