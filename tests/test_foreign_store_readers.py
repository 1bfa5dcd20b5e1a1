"""Issue 16 item 3, for the commands that only read a store: another application's SQLite file given as
`--store` is refused in one line and left exactly as it was (no tables added, no switch to WAL, no -wal/-shm)."""
from __future__ import annotations

import hashlib
import os
import sqlite3

import pytest
from leaderboard_fixtures import stereoset_record, write_store
from test_bad_input import _foreign

from biasboard.harness.cli import main


@pytest.fixture
def baseline(tmp_path):
    """A real baseline file (made from a real store), so `regress` gets as far as opening the store."""
    store = tmp_path / "ours" / "results.sqlite"
    store.parent.mkdir()
    write_store(store, [stereoset_record("zoo:splade-tiny", "none", 58.0, 83.0)], {})
    out = tmp_path / "ours" / "baseline.json"
    assert main(["baseline", "update", "--store", str(store), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("command", ["regress", "baseline update", "leaderboard build", "analyze effects",
                                     "analyze transfer"])
def test_store_readers_refuse_a_foreign_sqlite_file_and_leave_it_unchanged(command, tmp_path, baseline, capsys):
    folder = tmp_path / "theirs"
    folder.mkdir()
    store = _foreign(folder / "invoices.sqlite")
    before, files = hashlib.sha256(store.read_bytes()).hexdigest(), sorted(os.listdir(folder))
    argv = command.split() + ["--store", str(store)]
    argv += {"regress": ["--baseline", str(baseline)], "baseline update": ["--out", str(tmp_path / "b.json")],
             "leaderboard build": ["--out", str(tmp_path / "site")]}.get(command, [])
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "another application (tables: invoices)" in err and "left unchanged" in err
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before and sorted(os.listdir(folder)) == files
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
