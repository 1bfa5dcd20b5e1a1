"""The cell key holds every setting that changes a stored number and none that cannot (audit of issue 16 item 2)."""
from __future__ import annotations

import dataclasses

import pytest

from biasboard.harness.errors import BiasboardError
from biasboard.harness.matrix import OPTION_KEYS, Matrix, plan
from biasboard.harness.runner import evaluate_cell, run_local
from biasboard.harness.specs import RunContext
from biasboard.harness.store import Store

IN_KEY = {"seed", "params", "method", "n_bootstrap", "extra"}
"""RunContext fields that change numbers: seed, method + params, bootstrap size, task options."""
NOT_IN_KEY = {"batch_size", "progress", "cache_dir"}
"""RunContext fields that cannot change a number (batch invariance is tested in test_batch_invariance and below)."""


def test_every_run_setting_is_classified():
    """A new RunContext field or matrix option must be put on one side of the audit (and tested) before use."""
    assert {f.name for f in dataclasses.fields(RunContext)} == IN_KEY | NOT_IN_KEY
    assert set(OPTION_KEYS) == {"batch_size", "n_bootstrap", "extra"}


def _matrix(model_dir, **options):
    return {"name": "k", "models": [str(model_dir)], "tasks": ["crows_pairs:ll_modified"],
            "options": {"extra": {"max_examples": 12}, **options}}


def _keys(model_dir, **options):
    return [c.key for c in plan(Matrix.from_dict(_matrix(model_dir, **options)))[0]]


def test_n_bootstrap_is_in_the_key(tiny_bert_dir):
    k20, k50 = _keys(tiny_bert_dir, n_bootstrap=20), _keys(tiny_bert_dir, n_bootstrap=50)
    assert k20 != k50
    # the default is the key of a matrix that does not say: keys of earlier default runs stay valid
    assert _keys(tiny_bert_dir, n_bootstrap=1000) == _keys(tiny_bert_dir)


@pytest.mark.parametrize("extra", [{"eval_sample": 5}, {"eval_sample": 5, "eval_sample_seed": 1},
                                   {"max_examples": 11}])
def test_task_options_are_in_the_key(tiny_bert_dir, extra):
    base = _keys(tiny_bert_dir)
    assert _keys(tiny_bert_dir, extra={"max_examples": 12, **extra}) != base


def test_batch_size_is_not_in_the_key(tiny_bert_dir):
    assert _keys(tiny_bert_dir, batch_size=1) == _keys(tiny_bert_dir, batch_size=7) == _keys(tiny_bert_dir)


def _numbers(record):
    return {k: record.to_json()[k] for k in ("metrics", "groups", "notes", "flags")}


def test_batch_size_does_not_change_a_result(tiny_bert_dir):
    cell = plan(Matrix.from_dict(_matrix(tiny_bert_dir, n_bootstrap=50)))[0][0]
    one, ex_one = evaluate_cell(cell, batch_size=1)
    seven, ex_seven = evaluate_cell(cell, batch_size=7)
    assert _numbers(one) == _numbers(seven)
    assert [e["id"] for e in ex_one] == [e["id"] for e in ex_seven]
    for a, b in zip(ex_one, ex_seven):
        assert a.keys() == b.keys()
        for name in a:
            if isinstance(a[name], float):
                assert abs(a[name] - b[name]) < 1e-4, name
            else:
                assert a[name] == b[name], name


def test_progress_bars_do_not_change_a_result(tiny_bert_dir):
    """``--quiet`` only turns progress off."""
    cell = plan(Matrix.from_dict(_matrix(tiny_bert_dir, n_bootstrap=50)))[0][0]
    shown, ex_shown = evaluate_cell(cell, progress=True)
    hidden, ex_hidden = evaluate_cell(cell, progress=False)
    assert _numbers(shown) == _numbers(hidden) and ex_shown == ex_hidden


def test_cells_carry_their_bootstrap_size_and_a_run_may_not_store_another(tiny_bert_dir, tmp_path):
    cells = plan(Matrix.from_dict(_matrix(tiny_bert_dir, n_bootstrap=20)))[0]
    assert {c.n_bootstrap for c in cells} == {20}
    with pytest.raises(BiasboardError, match="n_bootstrap 5000 differs"):
        run_local(cells, Store(tmp_path / "r.sqlite"), n_bootstrap=5000, progress=False)
