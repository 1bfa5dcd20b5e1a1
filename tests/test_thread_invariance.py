"""Issue 16 item 2: the number of CPU threads is not in the cell key, so it must not change a result."""
from __future__ import annotations

import torch

from biasboard.harness.matrix import Matrix, plan
from biasboard.harness.runner import evaluate_cell


def _evaluate(cell, threads: int):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        record, examples = evaluate_cell(cell, progress=False)
    finally:
        torch.set_num_threads(before)
    data = record.to_json() if hasattr(record, "to_json") else record
    return {k: data[k] for k in ("metrics", "groups", "notes")}, examples


def test_thread_count_does_not_change_a_result(tiny_bert_dir):
    matrix = {"name": "threads", "models": [str(tiny_bert_dir)], "tasks": ["crows_pairs:ll_modified"],
              "options": {"n_bootstrap": 50, "extra": {"max_examples": 12}}}
    cell = plan(Matrix.from_dict(matrix))[0][0]
    one, ex_one = _evaluate(cell, 1)
    two, ex_two = _evaluate(cell, 2)
    assert one == two
    assert [e["id"] for e in ex_one] == [e["id"] for e in ex_two]
    for a, b in zip(ex_one, ex_two):
        for name in a:
            if isinstance(a[name], float):
                assert abs(a[name] - b[name]) < 1e-4, name
            else:
                assert a[name] == b[name], name
