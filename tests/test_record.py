"""The typed cell record: real and old stored records round-trip byte for byte; a malformed one names its field."""
from __future__ import annotations

import copy
import json
import sqlite3

import pytest

from biasboard.harness.record import CellRecord, RecordError, StoredMetric
from biasboard.harness.store import Store
from leaderboard_fixtures import quick_board


def _raw_rows(path) -> dict[str, str]:
    return dict(sqlite3.connect(path).execute("SELECT key, record FROM cells").fetchall())


def _insert_raw(path, key: str, text: str, status: str = "done", error: str | None = None) -> None:
    """A row as an older biasboard wrote it: the JSON text goes in untouched."""
    data = json.loads(text)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                     (key, data["model"], data["method"], data["task"], data["variant"], data["seed"], status, text,
                      error))


OLD_DONE = {  # written before provenance.precision existed; a p-value that was NaN (null) and one absent
    "model": "zoo:splade-tiny", "method": "perturb", "method_params": {"sigma": 0.01}, "task": "seat",
    "variant": "mean", "seed": 0,
    "metrics": {"mean_abs_effect_size": {"value": 0.73, "n": 17, "ci95": [0.62, 0.78], "ideal": 0.0,
                                         "direction": "min", "description": "mean |d| over tests", "scale": 1.0}},
    "groups": {"weat6": {"effect_size": {"value": 0.5, "n": 16, "p_value": None, "ideal": 0.0,
                                         "direction": "target"}},
               "weat7": {"effect_size": {"value": -0.25, "n": 16, "p_value": 0.0123, "ideal": 0.0,
                                         "direction": "target"}}},
    "notes": ["a note"], "flags": {"eval_sample": 300, "data_modified": True}, "family": "mlm",
    "method_kind": "weights", "axis": "gender", "task_version": "1.0", "method_version": "1.0",
    "provenance": {"harness": "0.1.0", "data_sha256": "d" * 64, "weights_sha256": "w" * 64, "lineage": ["perturb"],
                   "seconds": 1.25, "finished_at": "2026-11-23T12:00:00Z"}}
OLD_FAILED = {"model": "m", "method": "none", "method_params": {}, "task": "t", "variant": "v", "seed": 3,
              "family": "clm"}


def test_old_store_rows_round_trip_byte_for_byte(tmp_path):
    path = tmp_path / "old.sqlite"
    Store(path).close()
    records, _ = quick_board()  # metric keys in another order, integer values: kept as they are
    rows = {"done": json.dumps(OLD_DONE), "failed": json.dumps(OLD_FAILED)}
    rows.update({r["key"]: json.dumps({k: v for k, v in r.items() if k != "key"}) for r in records})
    for key, text in rows.items():
        _insert_raw(path, key, text, status="failed" if key == "failed" else "done",
                    error="RuntimeError: boom\nTraceback" if key == "failed" else None)
    with Store(path) as store:
        read = {r.key: r for r in store.records(status=None)}
        assert set(read) == set(rows)
        for key, text in rows.items():
            assert json.dumps(read[key].to_json()) == text
        failed = read["failed"]
        assert failed.status == "failed" and failed.error.startswith("RuntimeError") and not failed.metrics
        old = read["done"]
        assert old.provenance.precision is None and old.groups["weat6"]["effect_size"].p_value is None
        assert "p_value" in old.to_json()["groups"]["weat6"]["effect_size"]  # a null stays a null
        assert "p_value" not in old.to_json()["metrics"]["mean_abs_effect_size"]  # an absent key stays absent
        # written back by this version: the same bytes again
        copy_path = tmp_path / "copy.sqlite"
        with Store(copy_path) as again:
            for r in read.values():
                (again.put_failure if r.status == "failed" else again.put)(r.key, r, *(
                    [r.error] if r.status == "failed" else [[]]))
        assert _raw_rows(copy_path) == rows


def test_export_adds_store_fields_after_the_result():
    rec = CellRecord.from_json(OLD_DONE, key="k1", status="done")
    out = rec.to_export()
    assert list(out)[-2:] == ["key", "status"] and out["key"] == "k1"
    assert CellRecord.of({**out, "examples": []}) == rec  # an eval --json --examples export reads back


@pytest.mark.parametrize("change, field", [
    (lambda d: d.pop("model"), "'model'"),
    (lambda d: d.update(seed="0"), "'seed'"),
    (lambda d: d["metrics"]["mean_abs_effect_size"].update(value="high"), "'metrics.mean_abs_effect_size.value'"),
    (lambda d: d["metrics"]["mean_abs_effect_size"].update(ci95=[0.1]), "'metrics.mean_abs_effect_size.ci95'"),
    (lambda d: d["groups"]["weat6"].update(effect_size=3), "'groups.weat6.effect_size'"),
    (lambda d: d["provenance"].update(seconds="slow"), "'provenance.seconds'"),
    (lambda d: d.update(colour="red"), "colour"),
    (lambda d: d.update(notes="one note"), "'notes'"),
])
def test_malformed_record_names_the_cell_and_the_field(change, field):
    data = copy.deepcopy(OLD_DONE)
    change(data)
    with pytest.raises(RecordError, match="result record k9") as err:
        CellRecord.from_json(data, key="k9")
    assert field in str(err.value)


def test_a_malformed_stored_row_is_an_error_when_read(tmp_path):
    path = tmp_path / "bad.sqlite"
    Store(path).close()
    bad = copy.deepcopy(OLD_DONE)
    bad["metrics"]["mean_abs_effect_size"]["n"] = "seventeen"
    _insert_raw(path, "badkey", json.dumps(bad))
    with Store(path) as store, pytest.raises(RecordError,
                                             match=r"result record badkey: field 'metrics.mean_abs_effect_size.n'"):
        store.records()


def test_metric_from_a_task_metric():
    from biasboard.harness.specs import Metric

    m = Metric(value=57.5, n=40, ideal=50.0, ci95=(42.5, 70.0625), p_value=float("nan"), unit="%",
               per_example="more_is_higher")
    stored = StoredMetric.from_metric(m)
    assert stored.to_json() == m.to_json() and stored.p_value is None and stored.per_example["scale"] == 100.0


@pytest.mark.slow
def test_a_real_cell_round_trips_through_the_store(tmp_path):
    """A CrowS-Pairs cell on zoo:splade-tiny (12 pairs): the runner's record, the stored bytes and the record read
    back agree; the stored JSON keeps the contract's key order."""
    from biasboard.harness.matrix import Matrix, plan
    from biasboard.harness.runner import evaluate_cell

    cells, _ = plan(Matrix.from_dict({"name": "t", "models": ["zoo:splade-tiny"], "methods": ["none"],
                                      "tasks": ["crows_pairs:pll_unmodified"],
                                      "options": {"extra": {"max_examples": 12}, "n_bootstrap": 50}}))
    record, examples = evaluate_cell(cells[0], extra={"max_examples": 12})
    assert isinstance(record, CellRecord) and record.key == cells[0].key
    with Store(tmp_path / "r.sqlite") as store:
        store.put(record.key, record, examples)
        raw = _raw_rows(tmp_path / "r.sqlite")[record.key]
        back = store.get(record.key)
    assert raw == json.dumps(record.to_json())
    assert list(json.loads(raw)) == list(CellRecord.ORDER)
    assert json.dumps(back.to_json()) == raw and back == record
    metric = back.metrics["stereotype_score"]
    assert metric.n == 12 and metric.ideal == 50.0 and metric.per_example["field"] == "more_is_higher"
    assert back.provenance.weights_sha256 and back.provenance.precision == "float32"
    assert back.headline[0] == "stereotype_score" and back.method_label == "none"
