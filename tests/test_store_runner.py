"""Store and runner: cache hits, kill-and-resume with a real kill, concurrent writers, keys."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from biasboard.harness.matrix import Matrix, plan
from biasboard.harness.runner import run_local
from biasboard.harness.store import Store


def _matrix(model_dir, seeds, methods=None):
    return {"name": "t", "models": [str(model_dir)],
            "methods": methods or ["none", {"name": "perturb", "params": {"sigma": 0.05}}],
            "tasks": ["crows_pairs"], "seeds": seeds, "options": {"extra": {"max_examples": 25}, "n_bootstrap": 100}}


def test_finished_cells_are_never_recomputed(tiny_bert_dir, tmp_path, monkeypatch):
    cells, skipped = plan(Matrix.from_dict(_matrix(tiny_bert_dir, [0])))
    assert len(cells) == 4 and not skipped  # 2 methods x 2 MLM variants
    store = Store(tmp_path / "r.sqlite")
    first = run_local(cells, store, progress=False, extra={"max_examples": 25}, n_bootstrap=100)
    assert len(first.done) == 4 and not first.failed

    import biasboard.harness.runner as runner

    def boom(*a, **k):
        raise AssertionError("a cached cell was recomputed")

    monkeypatch.setattr(runner, "evaluate_cell", boom)
    second = run_local(cells, store, progress=False)
    assert len(second.cached) == 4 and not second.done
    rec = store.get(cells[0].key)
    assert rec.metrics["stereotype_score"].n == 25 and rec.provenance.weights_sha256
    assert len(store.examples(cells[0].key)) == 25


def test_key_changes_with_everything_that_determines_the_result(tiny_bert_dir):
    base = _matrix(tiny_bert_dir, [0], methods=[{"name": "perturb", "params": {"sigma": 0.05}}])
    keys = {c.key for c in plan(Matrix.from_dict(base))[0]}
    other_seed = {c.key for c in plan(Matrix.from_dict({**base, "seeds": [1]}))[0]}
    other_param = {c.key for c in plan(Matrix.from_dict(
        {**base, "methods": [{"name": "perturb", "params": {"sigma": 0.1}}]}))[0]}
    other_n = {c.key for c in plan(Matrix.from_dict({**base, "options": {"extra": {"max_examples": 5}}}))[0]}
    assert len(keys) == 2 and not (keys & other_seed) and not (keys & other_param) and not (keys & other_n)
    # default parameters are filled in: an explicit default gives the same key as none given
    implicit = {c.key for c in plan(Matrix.from_dict({**base, "methods": ["perturb"]}))[0]}
    explicit = {c.key for c in plan(Matrix.from_dict({**base, "methods": [{"name": "perturb",
                                                                           "params": {"sigma": 0.01}}]}))[0]}
    assert implicit == explicit


def test_failed_cell_is_recorded_and_the_rest_go_on(tiny_bert_dir, tmp_path, monkeypatch):
    cells, _ = plan(Matrix.from_dict(_matrix(tiny_bert_dir, [0])))
    import biasboard.harness.runner as runner

    real = runner.evaluate_cell

    def flaky(cell, **kw):
        if cell.variant == "ll_modified" and cell.method.name == "none":
            raise RuntimeError("injected")
        return real(cell, **kw)

    monkeypatch.setattr(runner, "evaluate_cell", flaky)
    store = Store(tmp_path / "r.sqlite")
    summary = run_local(cells, store, progress=False, extra={"max_examples": 25}, n_bootstrap=100)
    assert len(summary.failed) == 1 and len(summary.done) == 3
    failed = store.records(status="failed")
    assert len(failed) == 1 and "RuntimeError: injected" in failed[0].error


def _cli(args, env, **kw):
    return subprocess.Popen([sys.executable, "-m", "biasboard.harness.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_kill_and_resume_recomputes_only_unfinished_cells(tiny_bert_dir, tmp_path):
    matrix = tmp_path / "m.yaml"
    matrix.write_text(yaml.safe_dump(_matrix(tiny_bert_dir, list(range(6)))))  # 24 cells
    out = tmp_path / "out"
    env = {**os.environ, "BIASBOARD_OUT": str(out)}
    proc = _cli(["run", str(matrix), "--quiet", "--no-site"], env, start_new_session=True)
    db = out / "results.sqlite"
    deadline = time.time() + 300
    done_before = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                done_before = sqlite3.connect(db).execute("SELECT count(*) FROM cells WHERE status='done'").fetchone()[0]
            except sqlite3.OperationalError:
                done_before = 0
            if done_before >= 3:
                break
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed; make the matrix bigger"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    conn = sqlite3.connect(db)
    finished = dict(conn.execute("SELECT key, updated_at FROM cells WHERE status='done'").fetchall())
    assert 3 <= len(finished) < 24
    rerun = _cli(["run", str(matrix), "--quiet", "--no-site"], env)
    stdout, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stderr
    assert f"{24 - len(finished)} computed, {len(finished)} from cache, 0 failed" in stdout
    after = dict(sqlite3.connect(db).execute("SELECT key, updated_at FROM cells WHERE status='done'").fetchall())
    assert len(after) == 24 and all(after[k] == t for k, t in finished.items())


def test_concurrent_writers_do_not_corrupt_the_store(tmp_path):
    db = tmp_path / "shared.sqlite"
    script = textwrap.dedent(f"""
        import sys
        from biasboard.harness.store import Store
        s = Store({str(db)!r})
        tag = sys.argv[1]
        for i in range(150):
            rec = {{"model": "m", "method": tag, "task": "t", "variant": "v", "seed": i, "metrics": {{}}}}
            s.put(f"{{tag}}-{{i}}", rec, [{{"id": j, "x": j * i}} for j in range(50)])
            s.put("shared", rec, [])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, tag]) for tag in ("a", "b")]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = Store(db)
    assert len(store.records()) == 301
    assert store.examples("a-149")[49] == {"id": 49, "x": 49 * 149}
    assert json.loads(json.dumps(store.get("shared").to_json()))["task"] == "t"


def test_exclude_rules_drop_matching_cells(tiny_bert_dir):
    spec = _matrix(tiny_bert_dir, [0, 1])
    all_cells = plan(Matrix.from_dict(spec))[0]
    kept = plan(Matrix.from_dict({**spec, "exclude": [{"method": "perturb", "variant": "ll_modified"},
                                                      {"seed": 1, "method": "none"}]}))[0]
    labels = {(c.method.name, c.variant, c.seed) for c in kept}
    assert len(all_cells) == 8 and labels == {("none", "pll_unmodified", 0), ("none", "ll_modified", 0),
                                              ("perturb", "pll_unmodified", 0), ("perturb", "pll_unmodified", 1)}


def test_bad_exclude_rule_is_reported(tiny_bert_dir):
    from biasboard.harness.errors import DataError

    with pytest.raises(DataError, match="exclude"):
        Matrix.from_dict({**_matrix(tiny_bert_dir, [0]), "exclude": [{"modle": "x"}]})


def test_unsupported_at_run_time_is_skipped_not_failed(tiny_bert_dir, tmp_path, monkeypatch):
    from biasboard.harness.errors import UnsupportedError

    cells, _ = plan(Matrix.from_dict(_matrix(tiny_bert_dir, [0], methods=["none"])))
    import biasboard.harness.runner as runner

    def unsupported(cell, **kw):
        raise UnsupportedError("this data has no groups to re-balance")

    monkeypatch.setattr(runner, "evaluate_cell", unsupported)
    store = Store(tmp_path / "r.sqlite")
    summary = run_local(cells, store, progress=False)
    assert len(summary.skipped) == 2 and not summary.failed and not store.records(status=None)


def test_task_entry_extra_reaches_only_its_cells_and_their_keys():
    """``{task: ..., extra: {...}}`` sets options for that task's cells alone; they enter the cell key."""
    from biasboard.harness.matrix import Matrix, plan
    from biasboard.harness.runner import make_context

    base = {"models": ["zoo:glove-6b-50d"], "tasks": ["weat"], "options": {"extra": {"max_examples": 1}}}
    plain, _ = plan(Matrix.from_dict(base))
    tuned, _ = plan(Matrix.from_dict({**base, "tasks": [{"task": "weat", "extra": {"tests": ["weat1"],
                                                                                  "max_examples": 2}}]}))
    assert [c.variant for c in plain] == [c.variant for c in tuned]
    assert {c.key for c in plain}.isdisjoint(c.key for c in tuned)
    ctx = make_context(tuned[0], extra={"max_examples": 1, "permutation_samples": 3})
    assert ctx.extra == {"max_examples": 2, "permutation_samples": 3, "tests": ["weat1"]}
    assert make_context(plain[0], extra={"max_examples": 1}).extra == {"max_examples": 1}


def test_task_entry_can_be_restricted_to_some_models():
    from biasboard.harness.errors import DataError
    from biasboard.harness.matrix import Matrix, plan

    tasks = [{"task": "weat", "models": ["zoo:glove-6b-50d"]}, {"task": "crows_pairs:ll_modified",
                                                               "models": ["zoo:splade-tiny"]}]
    cells, _ = plan(Matrix.from_dict({"models": ["zoo:glove-6b-50d", "zoo:splade-tiny"], "tasks": tasks}))
    assert {(c.model.spec.id, c.task) for c in cells} == {("zoo:glove-6b-50d", "weat"),
                                                          ("zoo:splade-tiny", "crows_pairs")}
    with pytest.raises(DataError, match="row 1.*zoo:nope"):
        Matrix.from_dict({"models": ["zoo:glove-6b-50d"], "tasks": [{"task": "weat", "models": ["zoo:nope"]}]})


def test_bad_task_entry_names_the_row():
    from biasboard.harness.errors import DataError
    from biasboard.harness.matrix import Matrix

    with pytest.raises(DataError, match=r"row 2.*tasks.*extra must be a mapping|tasks.*row 2"):
        Matrix.from_dict({"models": ["zoo:glove-6b-50d"], "tasks": ["weat", {"task": "weat", "extra": [1]}]})


def test_handle_cache_reapplies_only_when_extras_the_method_reads_differ():
    """One applied model serves cells that agree on method, params, seed and the method's ``extra_keys``."""
    from biasboard.harness.matrix import Matrix, plan
    from biasboard.harness.runner import HandleCache, make_context

    class Counting:
        extra_keys = ("upstream_steps",)
        calls = 0

        def apply(self, handle, ctx):
            Counting.calls += 1
            return handle

    cell = plan(Matrix.from_dict({"models": ["zoo:glove-6b-50d"], "tasks": ["weat"]}))[0][0]
    cache = HandleCache()
    for extra in ({"upstream_steps": 2, "eval_sample": 5}, {"upstream_steps": 2, "eval_sample": 9},
                  {"upstream_steps": 3}, {"upstream_steps": 3, "tests": ["weat1"]}):
        ctx = make_context(cell, extra=extra)
        ctx.method = Counting()
        cache.handle_for(cell, ctx)
    assert Counting.calls == 2


@pytest.mark.parametrize("reader, same, different", [
    (lambda extra: extra.get("alpha"), {"alpha": 1, "other": 2}, {"alpha": 2}),
    (lambda extra: "alpha" in extra and extra["alpha"], {"alpha": 1, "other": 2}, {"other": 2}),
    (lambda extra: dict(extra), {"alpha": 1}, {"alpha": 1, "other": 2}),
    (lambda extra: {**extra}, {"alpha": 1}, {"alpha": 1, "other": 3}),
])
def test_handle_cache_reapplies_when_an_undeclared_extra_that_apply_read_differs(reader, same, different):
    """A submission's ``apply`` reading ``ctx.extra`` without declaring ``extra_keys`` still never gets a model
    applied for another value of what it read; options it did not read still share the applied model."""
    from biasboard.harness.matrix import Matrix, plan
    from biasboard.harness.runner import HandleCache, make_context

    class Reading:
        calls = 0

        def apply(self, handle, ctx):
            Reading.calls += 1
            reader(ctx.extra)
            return handle

    cell = plan(Matrix.from_dict({"models": ["zoo:glove-6b-50d"], "tasks": ["weat"]}))[0][0]
    cache = HandleCache()
    for extra in ({"alpha": 1}, same, different):
        ctx = make_context(cell, extra=extra)
        ctx.method = Reading()
        cache.handle_for(cell, ctx)
    assert Reading.calls == 2  # the first extra, then ``different``; ``same`` agrees on everything apply read
