"""Ray executor on a real local Ray cluster (loopback only, 2 CPUs) started inside the test module.

The same small matrix (splade-tiny x CrowS-Pairs' two MLM variants x none/perturb x 2 seeds) runs on the local
executor and on Ray; the stored results must be identical. Also: Ctrl-C (simulated) then resume, a worker that
dies once (retried, then identical to the plain task), a worker that always dies (recorded as failed with its
error while the rest of the matrix finishes), and the CLI path with ``--executor ray``.
"""
from __future__ import annotations

import textwrap

import pytest

from ray_cluster import local_cluster  # first: sets the loopback-only environment before Ray is imported

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'biasboard[ray]'")

from biasboard.harness.matrix import Matrix, plan  # noqa: E402
from biasboard.harness.runner import run_local  # noqa: E402
from biasboard.harness.store import Store  # noqa: E402
import biasboard.harness.executors.ray as ray_executor  # noqa: E402

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 16
SETTINGS = {"batch_size": 16, "n_bootstrap": 200}


def small_matrix(tasks=("crows_pairs:pll_unmodified",), seeds=(0, 1),
                 methods=("none", {"name": "perturb", "params": {"sigma": 0.05}})):
    return Matrix.from_dict({"name": "ray-small", "models": ["zoo:splade-tiny"], "methods": list(methods),
                             "tasks": list(tasks), "seeds": list(seeds),
                             "options": {"extra": {"max_examples": MAX_EXAMPLES},
                                         "n_bootstrap": SETTINGS["n_bootstrap"]}})


def comparable(store: Store) -> dict:
    """Everything a result says except when it was computed and how long it took."""
    out = {}
    for rec in store.records(status=None):
        rec = rec.to_export()
        prov = dict(rec.pop("provenance", {}))
        prov.pop("seconds", None)
        prov.pop("finished_at", None)
        out[rec["key"]] = (rec, prov)
    return out


def assert_same_examples(a: list[dict], b: list[dict]) -> None:
    """Per-example rows equal; log-probabilities to float32 round-off: torch's reductions may add in another
    order with another thread count (Ray gives each 1-CPU worker one thread), about 1e-8 relative."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], float):
                assert y[k] == pytest.approx(x[k], rel=1e-6, abs=1e-6), (x["id"], k)
            else:
                assert x[k] == y[k], (x["id"], k)


@pytest.fixture(scope="module")
def cluster():
    yield from local_cluster(ray)


def test_cluster_listens_on_loopback_only(cluster):
    nodes = cluster.nodes()
    assert [n["NodeManagerAddress"] for n in nodes] == ["127.0.0.1"]
    assert cluster.cluster_resources()["CPU"] == 2


def test_ray_results_identical_to_local_and_resume_after_interrupt(cluster, tmp_path, monkeypatch):
    cells, _ = plan(small_matrix())
    assert len(cells) == 4  # 2 methods x 2 seeds
    local = Store(tmp_path / "local.sqlite")
    summary = run_local(cells, local, progress=False, extra={"max_examples": MAX_EXAMPLES}, **SETTINGS)
    assert len(summary.done) == 4 and not summary.failed

    remote = Store(tmp_path / "ray.sqlite")
    seen = []

    def interrupt_after_first(cell, status):
        seen.append((cell.key, status))
        raise KeyboardInterrupt  # what Ctrl-C raises in the driver

    first = ray_executor.run(cells, remote, progress=False, extra={"max_examples": MAX_EXAMPLES},
                             on_cell=interrupt_after_first, **SETTINGS)
    assert first.interrupted and len(first.done) == 1 and not first.failed
    assert remote.done_keys() == {seen[0][0]}  # stored before the interrupt; the cell in flight is lost

    # The rerun continues; watch the workers: two 1-CPU actors, each loading the model once for its cells.
    spawned, stats = [], []
    real_spawn, real_retire = ray_executor._Scheduler._spawn, ray_executor._Scheduler._retire

    def spawn(self, group):
        spawned.append(real_spawn(self, group))
        return spawned[-1]

    def retire(self, actor):
        stats.append(ray.get(actor.handle.stats.remote()))
        real_retire(self, actor)

    monkeypatch.setattr(ray_executor._Scheduler, "_spawn", spawn)
    monkeypatch.setattr(ray_executor._Scheduler, "_retire", retire)
    second = ray_executor.run(cells, remote, progress=False, extra={"max_examples": MAX_EXAMPLES}, **SETTINGS)
    assert not second.interrupted and len(second.cached) == 1 and len(second.done) == 3 and not second.failed
    assert len(spawned) == 2 and [s["model_loads"] for s in stats] == [1, 1]
    assert sum(s["cells"] for s in stats) == 3 and len({s["pid"] for s in stats}) == 2

    got, want = comparable(remote), comparable(local)
    assert got == want  # metrics, CIs, groups, notes, provenance digests and lineage: exactly equal
    for key in want:
        assert_same_examples(remote.examples(key), local.examples(key))


CRASH_PLUGIN = '''
"""Test-only tasks whose worker process dies: once (then behaves as CrowS-Pairs), or every time."""
import os
from pathlib import Path

from biasboard.harness.registry import register_task
from biasboard.tasks.crows_pairs import CrowsPairs

MARKER = Path({marker!r})


@register_task
class RayCrashOnce(CrowsPairs):
    name = "ray_crash_once"

    def evaluate(self, handle, variant, ctx):
        if not MARKER.exists():
            MARKER.write_text("crashed")
            os._exit(17)  # a hard worker death, as an OOM kill or a segfault would be
        return super().evaluate(handle, variant, ctx)


@register_task
class RayCrashAlways(CrowsPairs):
    name = "ray_crash_always"

    def evaluate(self, handle, variant, ctx):
        os._exit(17)


@register_task
class RayRaises(CrowsPairs):
    name = "ray_raises"

    def evaluate(self, handle, variant, ctx):
        with open(MARKER.with_name("raises-attempts"), "a") as fh:
            fh.write("x")
        raise ValueError("a deterministic bug in the task")
'''
CRASH_TASKS = ("ray_crash_once", "ray_crash_always", "ray_raises")


@pytest.fixture
def crash_plugin(tmp_path):
    """Register the crashing tasks (as ``--include`` does) and unregister them afterwards, so contract tests
    that walk every registered task never meet them."""
    import sys

    from biasboard.harness.registry import TASKS, include_path

    plugin = tmp_path / "crash_tasks.py"
    plugin.write_text(textwrap.dedent(CRASH_PLUGIN.format(marker=str(tmp_path / "crashed-once"))))
    include_path(plugin)
    yield plugin
    for name in CRASH_TASKS:
        TASKS._entries.pop(name, None)
    sys.modules.pop("biasboard_include_crash_tasks", None)


def test_worker_failure_retried_then_recorded(cluster, tmp_path, crash_plugin):
    assert str(crash_plugin.resolve()) in ray_executor.included_paths()  # passed on to the workers
    matrix = small_matrix(tasks=["crows_pairs:pll_unmodified"] + [f"{t}:pll_unmodified" for t in CRASH_TASKS],
                          seeds=(0,), methods=("none",))
    cells, _ = plan(matrix)
    store = Store(tmp_path / "s.sqlite")
    summary = ray_executor.run(cells, store, progress=False, extra={"max_examples": MAX_EXAMPLES}, max_retries=1,
                               **SETTINGS)
    by_task = {r.task: r for r in store.records(status=None)}
    assert by_task["crows_pairs"].status == "done"
    # died once, retried on a fresh worker, then the same numbers as the plain task
    assert by_task["ray_crash_once"].status == "done" and (tmp_path / "crashed-once").exists()
    assert by_task["ray_crash_once"].metrics == by_task["crows_pairs"].metrics
    # died on every try: first try + max_retries=1, then recorded with the error, the rest went on
    assert by_task["ray_crash_always"].status == "failed"
    assert "worker died 2 time(s)" in by_task["ray_crash_always"].error
    # a Python exception is deterministic: recorded at once, never retried (as the local executor does)
    assert by_task["ray_raises"].status == "failed"
    assert "ValueError: a deterministic bug in the task" in by_task["ray_raises"].error
    assert (tmp_path / "raises-attempts").read_text() == "x"
    assert len(summary.done) == 2
    assert sorted(k for k, _ in summary.failed) == sorted(by_task[t].key for t in CRASH_TASKS[1:])


def test_cli_run_with_ray_executor(cluster, tmp_path, capsys):
    from biasboard.harness.cli import main

    matrix = tmp_path / "m.yaml"
    matrix.write_text(textwrap.dedent(f"""
        name: cli-ray
        models: [zoo:splade-tiny]
        methods: [none]
        tasks: [crows_pairs:pll_unmodified]
        seeds: [0]
        options: {{batch_size: 16, n_bootstrap: 200, extra: {{max_examples: {MAX_EXAMPLES}}}}}
    """))
    args = [str(matrix), "--out", str(tmp_path / "out"), "--executor", "ray", "--quiet", "--no-site"]
    assert main(["run", *args]) == 0
    assert "1 computed, 0 from cache, 0 failed" in capsys.readouterr().out
    assert main(["run", *args]) == 0  # nothing pending: Ray is not even contacted
    assert "0 computed, 1 from cache, 0 failed" in capsys.readouterr().out
