"""A fresh machine: `biasboard run` downloads the pinned originals of missing data files (sha256-checked, through
pooch) from a local HTTP server on 127.0.0.1 standing in for the original hosts (``BIASBOARD_DATA_MIRROR``);
a wrong digest is refused and not kept; with no server it stops with the missing-file message, exit 2, and
leaves nothing behind."""
from __future__ import annotations

import functools
import hashlib
import shutil
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from biasboard.harness.cli import main

from conftest import DATA_DIR


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


class Mirror:
    """A folder served over HTTP on 127.0.0.1, recording every path requested."""

    def __init__(self, root: Path):
        self.root, self.requests = root, []
        mirror = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):
                mirror.requests.append(self.path.lstrip("/"))
                super().do_GET()

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def add(self, relpath: str, source: Path | None = None) -> Path:
        dest = self.root / relpath
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source or DATA_DIR / relpath, dest)
        return dest

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    m = Mirror(tmp_path / "mirror")
    monkeypatch.setenv("BIASBOARD_DATA_MIRROR", m.url)
    yield m
    m.close()


@pytest.fixture
def empty_data(tmp_path, monkeypatch) -> Path:
    """A fresh machine: an empty, writable data folder and an empty cache."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("BIASBOARD_DATA_DIR", str(data))
    monkeypatch.setenv("BIASBOARD_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("BIASBOARD_OFFLINE", raising=False)
    return data


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def quick_matrix_data_files() -> list[str]:
    """The data files planning the default matrix reads, relative to the data folder."""
    from biasboard.harness.matrix import Matrix, plan
    from biasboard.harness.plugins import packaged_matrix
    from biasboard.harness.registry import TASKS

    cells, _ = plan(Matrix.load(packaged_matrix("quick")))
    out = set()
    for task, variant in {(c.task, c.variant) for c in cells}:
        for path in TASKS.get(task)().data_files(variant):
            if Path(path).resolve().is_relative_to(DATA_DIR.resolve()):
                out.add(str(Path(path).resolve().relative_to(DATA_DIR.resolve())))
    return sorted(out)


def test_planning_the_default_matrix_fetches_every_missing_file_once(monkeypatch, tmp_path, mirror):
    from biasboard.harness.fetch import auto_fetch
    from biasboard.harness.matrix import Matrix, plan
    from biasboard.harness.plugins import packaged_matrix

    needed = quick_matrix_data_files()  # with the shared data folder
    assert "crows_pairs/crows_pairs_anonymized.csv" in needed and len(needed) > 20
    keys = [c.key for c in plan(Matrix.load(packaged_matrix("quick")))[0]]
    for rel in needed:
        mirror.add(rel)
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("BIASBOARD_DATA_DIR", str(data))
    with auto_fetch(progress=False):
        fetched_keys = [c.key for c in plan(Matrix.load(packaged_matrix("quick")))[0]]
    assert sorted(mirror.requests) == needed  # each file once
    assert all(sha256(data / rel) == sha256(DATA_DIR / rel) for rel in needed)
    assert fetched_keys == keys  # same data digests, so the same cells as with the shared copies
    with auto_fetch(progress=False):
        plan(Matrix.load(packaged_matrix("quick")))
    assert len(mirror.requests) == len(needed)  # the second plan downloads nothing


TINY = """name: tiny
models: [zoo:glove-6b-50d]
methods: [none, {name: perturb, params: {sigma: 0.01}}]
tasks: ["weat:caliskan_wefe"]
seeds: [0]
"""
WEFE = "seat/weat_caliskan_wefe/WEAT.json"


def test_run_fetches_then_reads_the_cache_and_says_what_it_will_do(capsys, tmp_path, empty_data, mirror):
    matrix = tmp_path / "tiny.yaml"
    matrix.write_text(TINY)
    mirror.add(WEFE)
    code, out, err = run_cli(capsys, "run", str(matrix), "--out", str(tmp_path / "out"), "--no-site", "--quiet")
    assert code == 0, err
    assert f"fetching {WEFE} from {mirror.url}/{WEFE}" in err
    assert sha256(empty_data / WEFE) == sha256(DATA_DIR / WEFE)
    assert "matrix tiny: 1 cells: 0 cached, 1 to run (about " in err
    assert "1 skipped (1 x perturb(sigma=0.01) on zoo:glove-6b-50d)" in err
    code, out, err = run_cli(capsys, "run", str(matrix), "--out", str(tmp_path / "out"), "--no-site", "--quiet")
    assert code == 0 and "fetching" not in err and mirror.requests == [WEFE]
    assert "matrix tiny: 1 cells: 1 cached, 0 to run, 1 skipped" in err


def test_wrong_digest_names_file_and_digests_and_keeps_nothing(capsys, tmp_path, empty_data, mirror):
    matrix = tmp_path / "tiny.yaml"
    matrix.write_text(TINY)
    bad = tmp_path / "WEAT.json"
    bad.write_bytes((DATA_DIR / WEFE).read_bytes() + b"\n")
    mirror.add(WEFE, bad)
    code, _, err = run_cli(capsys, "run", str(matrix), "--out", str(tmp_path / "out"), "--no-site", "--quiet")
    assert code == 2 and "Traceback" not in err
    assert f"data file {WEFE}" in err and sha256(bad) in err and sha256(DATA_DIR / WEFE) in err
    assert "not kept" in err
    assert files_under(empty_data) == [] and not (tmp_path / "out").exists()


def test_no_server_stops_with_the_missing_file_message(capsys, monkeypatch, tmp_path, empty_data):
    monkeypatch.setenv("BIASBOARD_DATA_MIRROR", f"http://127.0.0.1:{closed_port()}")
    matrix = tmp_path / "tiny.yaml"
    matrix.write_text(TINY)
    code, _, err = run_cli(capsys, "run", str(matrix), "--out", str(tmp_path / "out"), "--no-site", "--quiet")
    assert code == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"biasboard: error: data file '{WEFE}' not found (looked in: {empty_data})")
    assert "run `biasboard data fetch weat`" in line and "downloading it failed: Connection refused" in line
    assert files_under(empty_data) == [] and not (tmp_path / "out").exists()
    assert not (tmp_path / "cache" / "data").exists()


def test_offline_switch_and_library_calls_never_download(monkeypatch, empty_data, mirror):
    from biasboard.harness.data import find
    from biasboard.harness.errors import DataError
    from biasboard.harness.fetch import auto_fetch

    mirror.add(WEFE)
    with pytest.raises(DataError, match="not found"):  # outside a command: no download
        find(WEFE, task="weat")
    monkeypatch.setenv("BIASBOARD_OFFLINE", "1")
    with auto_fetch(progress=False), pytest.raises(DataError, match="set BIASBOARD_DATA_DIR to a folder that has it$"):
        find(WEFE, task="weat")
    assert mirror.requests == [] and files_under(empty_data) == []


def test_a_read_only_data_folder_gets_its_downloads_in_the_cache(monkeypatch, tmp_path, mirror):
    from biasboard.harness.data import find
    from biasboard.harness.fetch import auto_fetch
    from biasboard.harness.paths import data_dirs

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    monkeypatch.setenv("BIASBOARD_DATA_DIR", str(ro))
    monkeypatch.setenv("BIASBOARD_CACHE", str(tmp_path / "cache"))
    from biasboard.harness.registry import TASKS

    TASKS.get("weat")
    mirror.add(WEFE)
    with auto_fetch(progress=False):
        path = find(WEFE, task="weat")
    assert path == (tmp_path / "cache" / "data" / WEFE).resolve() and files_under(ro) == []
    assert data_dirs() == [ro, tmp_path / "cache" / "data"]
    assert find(WEFE, task="weat") == path and mirror.requests == [WEFE]  # found there without a download


def test_data_fetch_uses_the_mirror_and_the_same_checks(capsys, empty_data, mirror):
    from biasboard.harness.data import SOURCES
    from biasboard.harness.registry import TASKS

    TASKS.get("weat")  # the task declares its sources when imported
    files = sorted(s.relpath for s in SOURCES["weat"])
    for rel in files:
        mirror.add(rel)
    code, out, _ = run_cli(capsys, "data", "fetch", "weat")
    assert code == 0 and out.count("fetched  ") == len(files) and sorted(mirror.requests) == files
    assert all(sha256(empty_data / rel) == sha256(DATA_DIR / rel) for rel in files)
    code, out, _ = run_cli(capsys, "data", "fetch", "weat")
    assert code == 0 and out.count("(cached)") == len(files) and len(mirror.requests) == len(files)


def test_without_a_data_folder_downloads_go_to_the_cache(monkeypatch, tmp_path, mirror):
    """The README's first command on a fresh machine: no BIASBOARD_DATA_DIR and no ../shared/data."""
    from biasboard.harness.data import find
    from biasboard.harness.fetch import auto_fetch

    from biasboard.harness.registry import TASKS

    TASKS.get("weat")  # declares its sources, as planning does
    work = tmp_path / "a" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.delenv("BIASBOARD_DATA_DIR")
    monkeypatch.setenv("BIASBOARD_CACHE", str(tmp_path / "cache"))
    mirror.add(WEFE)
    with auto_fetch(progress=False):
        assert find(WEFE, task="weat") == (tmp_path / "cache" / "data" / WEFE).resolve()
    assert find(WEFE, task="weat") == (tmp_path / "cache" / "data" / WEFE).resolve() and mirror.requests == [WEFE]
