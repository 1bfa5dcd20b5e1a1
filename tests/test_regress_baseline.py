"""Baseline files: written by `baseline update`, read strictly; malformed ones name the file, cell and field."""
from __future__ import annotations

import copy
import json

import pytest
from leaderboard_fixtures import crows_examples, crows_record, stereoset_record

from biasboard.harness.errors import DataError
from biasboard.harness.regress import SCHEMA_ID, load_baseline, make_baseline, parse_baseline


@pytest.fixture
def doc():
    ex = crows_examples(30, 0.6, seed=2)
    rec = crows_record("zoo:splade-tiny", "none", ex)
    ss = stereoset_record("zoo:splade-tiny", "none", 58.0, 83.0)
    return make_baseline([rec, ss], {rec["key"]: ex, ss["key"]: []}.get, tolerances={"ss": 2.0})


def test_make_baseline_snapshot(doc):
    assert doc["schema"] == SCHEMA_ID
    crows, ss = sorted(doc["cells"], key=lambda c: c["task"])
    per = crows["metrics"]["stereotype_score"]["per_example"]
    assert per["field"] == "more_is_higher" and per["scale"] == 100.0 and len(per["values"]) == 30
    assert crows["metrics"]["stereotype_score"]["tolerance"] == 1.0  # percent metric default
    assert ss["metrics"]["ss"]["tolerance"] == 2.0  # --tolerance ss=2
    assert ss["metrics"]["icat"]["tolerance"] == 0.05  # no unit: default 0.05
    assert "per_example" not in ss["metrics"]["ss"]
    baseline = parse_baseline(json.loads(json.dumps(doc)))
    assert len(baseline.cells) == 2


def test_metric_filter_and_empty_selection(doc):
    rec = stereoset_record("m", "none", 58.0, 83.0)
    only = make_baseline([rec], lambda k: [], metrics=["lms"])
    assert list(only["cells"][0]["metrics"]) == ["lms"]
    with pytest.raises(DataError, match="no finished cells"):
        make_baseline([], lambda k: [])


def _break(doc, path, value):
    d = copy.deepcopy(doc)
    target = d
    for part in path[:-1]:
        target = target[part]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return d


def _stereoset_index(doc):
    return next(i for i, c in enumerate(doc["cells"]) if c["task"] == "stereoset")


@pytest.mark.parametrize("mutate,row,field,message", [
    (lambda d: _break(d, ["schema"], "biasboard-baseline/0"), None, "schema", "expected 'biasboard-baseline/1'"),
    (lambda d: _break(d, ["cells"], []), None, "cells", "non-empty list"),
    (lambda d: _break(d, ["n_resamples"], 5), None, "n_resamples", "from 100"),
    (lambda d: _break(d, ["n_resamples"], 1_000_000_000), None, "n_resamples", "from 100 to 20,000"),
    (lambda d: _break(d, ["cells", 0, "model"], ""), "cells[0]", "model", "non-empty string"),
    (lambda d: _break(d, ["cells", 0, "seed"], "0"), "cells[0]", "seed", "integer"),
    (lambda d: _break(d, ["cells", 0, "metrics"], {}), "cells[0]", "metrics", "non-empty"),
    (lambda d: _break(d, ["cells", 1, "metrics", "ss", "tolerance"], KeyError), "cells[1]", "metrics.ss.tolerance",
     "number >= 0"),
    (lambda d: _break(d, ["cells", 1, "metrics", "ss", "tolerance"], -1), "cells[1]", "metrics.ss.tolerance",
     "number >= 0"),
    (lambda d: _break(d, ["cells", 1, "metrics", "ss", "value"], "57"), "cells[1]", "metrics.ss.value",
     "finite number"),
    (lambda d: _break(d, ["cells", 1, "metrics", "ss", "direction"], "higher"), "cells[1]", "metrics.ss.direction",
     "one of"),
    (lambda d: _break(d, ["cells", 1, "metrics", "ss", "ideal"], None), "cells[1]", "metrics.ss.ideal",
     "needs an ideal"),
    (lambda d: _break(d, ["cells", 0, "metrics", "stereotype_score", "per_example", "values", "crows-3"], "x"),
     "cells[0]", "metrics.stereotype_score.per_example.values", "crows-3"),
    (lambda d: _break(d, ["cells", 0, "metrics", "stereotype_score", "per_example", "scale"], 0), "cells[0]",
     "metrics.stereotype_score.per_example.scale", "non-zero"),
    (lambda d: {**d, "cells": d["cells"] + d["cells"][:1]}, "cells[2]", None, "duplicate cell"),
])
def test_malformed_baselines_name_file_row_and_field(doc, tmp_path, mutate, row, field, message):
    assert [c["task"] for c in doc["cells"]] == ["crows_pairs", "stereoset"]  # cells are sorted by label
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(mutate(doc)))
    with pytest.raises(DataError) as err:
        load_baseline(path)
    text = str(err.value)
    assert str(path) in text and message in text
    if row:
        assert f"row {row}" in text
    if field:
        assert f"field '{field}'" in text


@pytest.mark.parametrize("content,message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object at the top level"),
    (b"\xff\xfe\x00", "not a UTF-8 text file"),
])
def test_unreadable_baselines(tmp_path, content, message):
    path = tmp_path / "b.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match=message):
        load_baseline(path)


def test_missing_baseline_file(tmp_path):
    with pytest.raises(DataError, match="baseline file not found"):
        load_baseline(tmp_path / "nope.json")


def test_official_baseline_is_valid_and_matches_the_quick_matrix():
    from pathlib import Path

    from biasboard.harness.matrix import Matrix

    root = Path(__file__).resolve().parent.parent / "leaderboard"
    baseline = load_baseline(root / "baseline.json")
    quick = Matrix.load(root / "matrices" / "quick.yaml")
    models = {m.id for m in quick.models}
    methods = {(m.name, tuple(sorted(m.params))) for m in quick.methods}
    for cell in baseline.cells:
        assert cell.model in models and cell.task in {t.name for t in quick.tasks}
        assert (cell.method, tuple(sorted(cell.method_params.items()))) in methods
        assert cell.metrics["stereotype_score"].per_example is not None
