"""The MNIST download against a real local HTTP mirror: progress to 100%, MD5, cancel, a hanging server, offline."""
from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import threading
import time
from pathlib import Path

import pytest

import core.data
import core.mnist_download
from core.data import ALL_FILE_NAMES, DataError, load_mnist, locate
from tests.conftest import SYNTHETIC_COUNTS, square_pattern_digits, write_idx


class LocalMirror:
    """A real HTTP server on 127.0.0.1 serving synthetic MNIST .gz files; `mode` makes it misbehave."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.mode = "ok"  # "ok", "corrupt" (wrong bytes for the MD5), "hang" (headers, then silence), "slow"
        self.requests: list[str] = []
        self.release = threading.Event()  # ends a hanging answer at teardown
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                mirror.requests.append(self.path)
                body = mirror.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                if mirror.mode == "corrupt":
                    body = body[:-10] + bytes(10)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mirror.mode == "hang":
                    self.wfile.write(body[:100])
                    self.wfile.flush()
                    mirror.release.wait(30)
                    return
                step = 16 * 1024 if mirror.mode == "slow" else len(body)
                for start in range(0, len(body), step):  # "slow": 16 KB every 20 ms, so a Cancel lands mid-file
                    self.wfile.write(body[start:start + step])
                    if mirror.mode == "slow" and not mirror.release.wait(0.02):
                        self.wfile.flush()

            def log_message(self, *args):  # quiet test output
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def synthetic_gz_files(tmp_path: Path) -> dict[str, bytes]:
    """The four files as torchvision's mirrors name them (.gz), holding the tiny synthetic digits."""
    folder = tmp_path / "source"
    folder.mkdir()
    files = {}
    for train, prefix in ((True, "train"), (False, "t10k")):
        images, labels = square_pattern_digits(SYNTHETIC_COUNTS[train], seed=7 if train else 8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            path = folder / f"{prefix}-{kind}-ubyte"
            write_idx(path, array)
            files[f"{path.name}.gz"] = gzip.compress(path.read_bytes(), mtime=0)
    return files


@pytest.fixture
def local_mirror(tmp_path, monkeypatch):
    """core.mnist_download pointed at a LocalMirror (mirror URL and MD5s at the module boundary)."""
    files = synthetic_gz_files(tmp_path)
    mirror = LocalMirror(files)
    resources = [(f"{name}.gz", hashlib.md5(files[f"{name}.gz"]).hexdigest()) for name in ALL_FILE_NAMES]
    monkeypatch.setattr(core.mnist_download, "mnist_sources", lambda: ([mirror.url], list(resources)))
    monkeypatch.setattr(core.data, "mnist_sources", lambda: ([mirror.url], list(resources)))
    monkeypatch.setattr(core.data, "EXPECTED_COUNTS", dict(SYNTHETIC_COUNTS))
    yield mirror
    mirror.close()


def refused_url() -> str:
    """A local port where nothing listens: connecting is refused at once, as offline machines often answer."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def everything_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*")) if folder.exists() else []


def test_sources_are_torchvisions_own():
    from torchvision.datasets import MNIST

    mirrors, resources = core.mnist_download.mnist_sources()
    assert mirrors == list(MNIST.mirrors) and [n for n, _ in resources] == [f"{n}.gz" for n in ALL_FILE_NAMES]


def test_download_reports_progress_to_100_percent_then_loads(local_mirror, tmp_path):
    reports: list[tuple[int, int, str]] = []
    root = tmp_path / "fresh" / "data"
    files = locate(root, progress=lambda done, total, name: reports.append((done, total, name)))
    assert sorted(p.name for p in files.values()) == sorted(f"{n}.gz" for n in ALL_FILE_NAMES)
    assert all(p.parent == root / "MNIST" / "raw" for p in files.values())
    for name, body in local_mirror.files.items():
        mine = [(done, total) for done, total, n in reports if n == name]
        assert mine[-1] == (len(body), len(body))  # 100% of every file, with the size known from the start
        assert [d for d, _ in mine] == sorted(d for d, _ in mine) and mine[0][0] == 0
    assert len([r for r in reports if r[2].startswith("train-images")]) > 3  # several chunks, not one jump
    data = load_mnist(root, download=False)
    assert len(data.test_images) == SYNTHETIC_COUNTS[False]
    assert not [p for p in everything_under(root) if p.name.endswith(".tmp")]


def test_only_the_missing_files_are_fetched(local_mirror, tmp_path):
    root = tmp_path / "data"
    locate(root)
    (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").unlink()
    local_mirror.requests.clear()
    locate(root)
    assert local_mirror.requests == ["/t10k-labels-idx1-ubyte.gz"]


def test_a_checksum_mismatch_keeps_nothing_and_says_so(local_mirror, tmp_path):
    local_mirror.mode = "corrupt"
    root = tmp_path / "a" / "data"
    with pytest.raises(DataError, match=r"checksum \(MD5\) does not match") as err:
        locate(root)
    assert "\n" not in str(err.value)
    assert everything_under(tmp_path / "a") == []  # no partial file, no empty folders


def test_cancel_stops_between_chunks_and_leaves_nothing(local_mirror, tmp_path):
    seen: list[int] = []
    root = tmp_path / "data"
    with pytest.raises(DataError, match="cancelled"):
        locate(root, progress=lambda done, total, name: seen.append(done), should_stop=lambda: len(seen) > 2)
    assert 0 < max(seen) < len(local_mirror.files["train-images-idx3-ubyte.gz"])
    assert not root.exists()


def test_a_server_that_stops_answering_times_out(local_mirror, tmp_path):
    local_mirror.mode = "hang"
    root = tmp_path / "data"
    started = time.monotonic()
    with pytest.raises(DataError, match="timed out") as err:
        locate(root, timeout=0.5)
    assert time.monotonic() - started < 10
    assert "\n" not in str(err.value) and not root.exists()


def test_offline_is_one_line_naming_the_files_their_source_and_their_place(local_mirror, tmp_path, monkeypatch):
    url = refused_url()
    monkeypatch.setattr(core.mnist_download, "mnist_sources", lambda: ([url], [(f"{n}.gz", "0" * 32)
                                                                              for n in ALL_FILE_NAMES]))
    monkeypatch.setattr(core.data, "mnist_sources", core.mnist_download.mnist_sources)
    root = tmp_path / "x" / "data"
    with pytest.raises(DataError) as err:
        locate(root)
    message = str(err.value)
    assert "\n" not in message and "Connection refused" in message
    assert all(f"{n}.gz" in message for n in ALL_FILE_NAMES)
    assert url in message and str(root / "MNIST" / "raw") in message
    assert everything_under(tmp_path / "x") == []


def test_a_second_mirror_is_tried_when_the_first_fails(local_mirror, tmp_path, monkeypatch):
    first_failing = [refused_url(), local_mirror.url]
    resources = core.mnist_download.mnist_sources()[1]
    monkeypatch.setattr(core.mnist_download, "mnist_sources", lambda: (first_failing, resources))
    assert len(locate(tmp_path / "data")) == 4


# ---------------------------------------------------------------- command line
def test_cli_train_downloads_with_a_progress_bar_then_trains(local_mirror, tmp_path, capsys):
    from core.cli import main

    root = tmp_path / "data"
    code = main(["train", "--arch", "tutorial", "--epochs", "1", "--batch-size", "50", "--data", str(root),
                 "--out", str(tmp_path / "w.pt")])
    _, err = capsys.readouterr()
    assert code == 0 and (tmp_path / "w.pt").is_file()
    bar = err.index("downloading train-images-idx3-ubyte.gz")
    assert "100%" in err[bar:err.index("downloading train-labels")]  # the bar reached the end
    assert bar < err.index("epoch 1/1")  # before training began
    assert (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").is_file()


def test_cli_quiet_hides_the_download_bar(local_mirror, tmp_path, capsys):
    from core.cli import main

    code = main(["evaluate", "--data", str(tmp_path / "data"), "--json"])
    assert code == 0 and "downloading t10k-images-idx3-ubyte.gz" in capsys.readouterr().err
    local_mirror.requests.clear()
    code = main(["train", "--arch", "tutorial", "--epochs", "1", "--data", str(tmp_path / "other"), "--quiet",
                 "--out", str(tmp_path / "w.pt")])
    assert code == 0 and len(local_mirror.requests) == 4 and "downloading" not in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_cli_offline_is_one_line_once(command, tmp_path, capsys, monkeypatch):
    from core.cli import main

    url = refused_url()
    monkeypatch.setattr(core.mnist_download, "mnist_sources", lambda: ([url], [(f"{n}.gz", "0" * 32)
                                                                              for n in ALL_FILE_NAMES]))
    root = tmp_path / "data"
    code = main([command, "--data", str(root)])
    out, err = capsys.readouterr()
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and err.count("MNIST not found") == 1
    assert err.startswith("error: MNIST not found") and "Connection refused" in err and "Traceback" not in err
    assert not root.exists()


def _finetune_inputs(tmp_path: Path) -> tuple[Path, Path]:
    """A small trained base and a samples folder (3 per digit) for `finetune`."""
    from core.weights import save_weights
    from tests.test_finetune import base_weights
    from tests.test_samples import write_image_folder

    base = base_weights("tutorial")
    weights = save_weights(tmp_path / "tiny.pt", base.model, "tutorial", {}, (0.0, 1.0), {"preset": "quick"},
                           {"test_accuracy": None})
    return weights, write_image_folder(tmp_path / "mine", per_digit=3)


def test_cli_finetune_download_shows_progress_then_replays_mnist(local_mirror, tmp_path, capsys):
    from core.cli import main

    weights, samples = _finetune_inputs(tmp_path)
    root = tmp_path / "data"
    code = main(["finetune", str(samples), "--weights", str(weights), "--data", str(root), "--download",
                 "--out", str(tmp_path / "new.pt")])
    out, err = capsys.readouterr()
    assert code == 0, err
    bar = err.index("downloading train-images-idx3-ubyte.gz")
    assert "100%" in err[bar:err.index("downloading train-labels")]  # the bar reached the end, before the steps
    assert bar < err.index("steps [") and "MNIST test: unknown" not in out and "MNIST test: " in out


def test_cli_finetune_download_offline_says_where_the_files_come_from_once(tmp_path, capsys, monkeypatch):
    from core.cli import main

    url = refused_url()
    monkeypatch.setattr(core.mnist_download, "mnist_sources", lambda: ([url], [(f"{n}.gz", "0" * 32)
                                                                              for n in ALL_FILE_NAMES]))
    weights, samples = _finetune_inputs(tmp_path)
    root = tmp_path / "data"
    code = main(["finetune", str(samples), "--weights", str(weights), "--data", str(root), "--download",
                 "--out", str(tmp_path / "new.pt"), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0 and (tmp_path / "new.pt").is_file()  # it still fine-tunes, without the replay
    assert err.count("Get the four files") == 1 and "t10k-labels-idx1-ubyte.gz" in err and str(root) in err
    assert "MNIST test: unknown" in out and "Traceback" not in err and not root.exists()
