"""The results store keeps finished results: failures never replace them, concurrent runs claim cells instead of
computing one twice, and a run killed with SIGKILL loses nothing and blocks nothing for long."""
from __future__ import annotations

import collections
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from biasboard.harness.store import Lease, Store, new_owner_id

REC = {"model": "m", "method": "none", "task": "t", "variant": "v", "seed": 0, "metrics": {"x": {"value": 1.0}}}


def test_failure_never_replaces_a_finished_row(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    store.put("k", REC, [{"id": 1}])
    assert store.put_failure("k", REC, "ValueError: batch_size 0") is False
    row = store.get("k")
    assert row.status == "done" and row.to_json()["metrics"] == REC["metrics"] and store.examples("k") == [{"id": 1}]


def test_a_later_success_replaces_a_failure(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    assert store.put_failure("k", REC, "RuntimeError: flaky") is True
    assert store.get("k").status == "failed"
    assert store.put_failure("k", REC, "RuntimeError: again") is True  # a failure may replace a failure
    store.put("k", REC, [])
    assert store.get("k").status == "done" and not store.get("k").error


def _dead_owner() -> str:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = new_owner_id().split(":")[0]
    return f"{host}:{int(proc.stdout)}:dead"


def test_claims_exclude_a_live_owner_and_pass_on_from_a_dead_or_lapsed_one(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    me, other = new_owner_id(), new_owner_id()
    assert store.claim("a", me) == "claimed"
    assert store.claim("a", other) == "busy"  # same live process, another owner id: held
    assert store.claim("a", me) == "claimed"  # re-claiming one's own cell renews it
    store.release("a", me)
    assert store.claim("a", other) == "claimed"
    # a claim of a process that no longer exists is taken over at once, lease or not
    store.claim("b", _dead_owner(), lease=3600)
    assert store.claim("b", me) == "claimed"
    # a lapsed lease of an owner on another host is taken over; an unexpired one is not
    store.claim("c", "elsewhere.example:1:x", lease=3600)
    assert store.claim("c", me) == "busy"
    store.claim("d", "elsewhere.example:1:x", lease=-1)
    assert store.claim("d", me) == "claimed"
    store.put("e", REC, [])
    assert store.claim("e", me) == "done" and store.claim("e", me, force=True) == "claimed"


def test_lease_is_renewed_while_its_owner_works(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    with Lease(store.path, lease=0.6) as lease:
        store.claim("k", lease.owner, lease=0.6)
        first = store.claims()["k"][1]
        time.sleep(1.0)
        assert store.claims()["k"][1] > first + 0.3
        assert store.claim("k", "elsewhere.example:1:x") == "busy"


SLOW_TASK = '''
"""Test-only task: CrowS-Pairs on a few pairs, logging each computation (pid, cell seed) and taking a while."""
import os
import time
from pathlib import Path

from biasboard.harness.registry import register_task
from biasboard.tasks.crows_pairs import CrowsPairs

LOG = Path({log!r})


@register_task
class SlowCrows(CrowsPairs):
    name = "slow_crows"

    def evaluate(self, handle, variant, ctx):
        with open(LOG, "a") as fh:
            fh.write(f"{{os.getpid()}} {{variant}} {{ctx.seed}}\\n")
        time.sleep({delay})
        return super().evaluate(handle, variant, ctx)
'''


def _setup(tmp_path, model_dir, seeds: int, delay: float):
    plugin = tmp_path / "slow_task.py"
    log = tmp_path / "computed.log"
    plugin.write_text(textwrap.dedent(SLOW_TASK.format(log=str(log), delay=delay)))
    matrix = tmp_path / "m.yaml"
    matrix.write_text(yaml.safe_dump({"name": "slow", "models": [str(model_dir)], "tasks": ["slow_crows:ll_modified"],
                                      "seeds": list(range(seeds)), "options": {"extra": {"max_examples": 8},
                                                                               "n_bootstrap": 50}}))
    store = tmp_path / "r.sqlite"
    return plugin, log, matrix, store


def _run(plugin, matrix, store, **kw):
    return subprocess.Popen([sys.executable, "-m", "biasboard.harness.cli", "--include", str(plugin), "run",
                             str(matrix), "--store", str(store), "--quiet", "--no-site"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _done(store) -> int:
    try:
        return sqlite3.connect(store).execute("SELECT count(*) FROM cells WHERE status = 'done'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_two_concurrent_runs_compute_each_cell_once(tmp_path, tiny_bert_dir):
    plugin, log, matrix, store = _setup(tmp_path, tiny_bert_dir, seeds=10, delay=0.5)
    procs = [_run(plugin, matrix, store) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    computed = collections.Counter(line.split(" ", 1)[1] for line in log.read_text().splitlines())
    assert len(computed) == 10 and max(computed.values()) == 1, computed  # each cell computed exactly once
    pids = {line.split()[0] for line in log.read_text().splitlines()}
    assert len(pids) == 2  # both runs did part of the work
    assert _done(store) == 10 and not Store(store).claims()


@pytest.mark.slow
def test_kill_9_loses_no_finished_cell_and_blocks_none(tmp_path, tiny_bert_dir):
    """Kill a run with SIGKILL while it holds a claim, ``BIASBOARD_KILL_RUNS`` times (default 2); the rerun finds
    every finished cell, takes over the dead run's claim at once, and finishes the matrix."""
    kills = int(os.environ.get("BIASBOARD_KILL_RUNS", "2"))
    plugin, log, matrix, store = _setup(tmp_path, tiny_bert_dir, seeds=6 * kills + 6, delay=0.5)
    lost = 0
    for _ in range(kills):
        before = _done(store)
        proc = _run(plugin, matrix, store, start_new_session=True)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and _done(store) < before + 2:
            time.sleep(0.1)
        while proc.poll() is None and not Store(store).claims():  # kill it mid-cell, holding a claim
            time.sleep(0.05)
        finished = dict(sqlite3.connect(store).execute("SELECT key, updated_at FROM cells WHERE status = 'done'"))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        after = dict(sqlite3.connect(store).execute("SELECT key, updated_at FROM cells WHERE status = 'done'"))
        lost += sum(1 for k, t in finished.items() if after.get(k) != t)
    started = time.time()
    rerun = _run(plugin, matrix, store)
    stdout, stderr = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, stderr[-2000:]
    assert lost == 0 and _done(store) == 6 * kills + 6
    assert "still running elsewhere" not in stdout and time.time() - started < 600
