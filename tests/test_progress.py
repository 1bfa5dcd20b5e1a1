"""The pre-run summary and the cost-weighted ETA, checked by hand (the CLI line is in tests/test_fetch.py)."""
from __future__ import annotations

import io
import json
import struct
from types import SimpleNamespace

import numpy as np
import pytest

from biasboard.harness.progress import (CostBar, Estimator, Plan, build_estimator, cell_units, data_megabytes,
                                        measured_seconds, model_parameters)


def test_eta_is_weighted_by_cost_and_calibrated_by_finished_cells():
    est = Estimator(order=["a", "b", "c"], units={"a": 1.0, "b": 2.0, "c": 3.0}, default_rate=1.0)
    assert est.eta() == 6.0  # 1 + 2 + 3 units at 1 s per unit
    est.finish("a", 2.0)  # a took 2 s for 1 unit: 2 s per unit
    assert est.rate == 2.0 and est.eta() == 10.0  # (2 + 3) x 2; "2 cells left x 2 s mean" would say 4
    assert est.eta(running_for=3.0) == 7.0  # b, expected 4 s, has run 3 s
    assert est.eta(running_for=9.0) == 6.0  # b overran: counts as nearly done, c's 6 s remain
    est.finish("b", 10.0)  # 12 s over 3 units: 4 s per unit
    assert est.rate == 4.0 and est.eta() == 12.0
    est.finish("c", 1.0)
    assert est.eta() == 0.0


def test_a_cell_takes_the_rate_of_its_own_task_once_one_finished():
    est = Estimator(order=["a", "b", "c"], units={"a": 1.0, "b": 2.0, "c": 3.0}, default_rate=1.0,
                    groups={"a": "seat", "b": "crows", "c": "seat"})
    est.finish("a", 2.0)  # seat: 2 s per unit; crows has no observation yet and takes the overall 2 s per unit
    assert est.eta() == 2 * 2.0 + 3 * 2.0
    est.finish("b", 2.0)  # crows: 1 s per unit; overall 4 s / 3 units
    assert est.rate == pytest.approx(4 / 3) and est.eta() == 3 * 2.0  # c is SEAT: 2 s per unit, not 4/3


def test_measured_seconds_of_a_similar_cell_are_used_as_is():
    est = Estimator(order=["a", "b", "c"], units={"a": 1.0, "b": 2.0, "c": 3.0}, measured={"c": 5.0},
                    default_rate=1.0)
    assert est.eta() == 8.0  # 1 + 2 from units, 5 measured
    est.finish("a", 2.0)
    assert est.eta() == 9.0  # b: 2 units x 2 s; c stays 5 s


def test_cached_cells_calibrate_the_first_rate():
    est = Estimator(order=["a"], units={"a": 3.0}, observed=[(4.0, 2.0), (6.0, 3.0)], default_rate=100.0)
    assert est.rate == 0.5 and est.eta() == 1.5


def test_summary_line_groups_skipped_pairings_by_method():
    skip = SimpleNamespace
    plan = Plan(cached=[1, 2], to_run=[3], skipped=[skip(model="m1", method="vision_group_dro", task="t1"),
                                                    skip(model="m2", method="vision_group_dro", task="t1"),
                                                    skip(model="m1", method="vision_group_dro", task="t2"),
                                                    skip(model="m2", method="perturb(sigma=0.01)", task="t1")])
    assert plan.line(75.0) == ("2 cached, 1 to run (about 01:15), 4 skipped (3 x vision_group_dro on m1, m2; "
                               "1 x perturb(sigma=0.01) on m2)")
    assert Plan([1], [], []).line(0.0) == "1 cached, 0 to run, 0 skipped"


def _safetensors(path, shapes):
    header = {f"t{i}": {"dtype": "F32", "shape": list(s), "data_offsets": [0, 0]} for i, s in enumerate(shapes)}
    header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob)


def test_model_size_from_headers_or_file_size(tmp_path):
    (tmp_path / "st").mkdir()
    _safetensors(tmp_path / "st" / "model.safetensors", [(1000, 500), (500,)])
    (tmp_path / "st" / "tokenizer.json").write_text("{}" * 10_000)  # not a weight file
    assert model_parameters(str(tmp_path / "st")) == pytest.approx(0.5005)  # million parameters
    np.save(tmp_path / "emb.npy", np.zeros((2000, 50), dtype=np.float32))
    assert model_parameters(str(tmp_path / "emb.npy")) == pytest.approx(0.1)
    (tmp_path / "m.gguf").write_bytes(b"\0" * 1_125_000)  # 4.5 bits per parameter
    assert model_parameters(str(tmp_path / "m.gguf")) == pytest.approx(2.0)


def test_data_size_scales_to_the_sample_and_units_multiply(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_bytes(b"x" * 99 + b"\n" + (b"y" * 99 + b"\n") * 9)  # 10 lines, 1000 bytes
    assert data_megabytes([data], None) == pytest.approx(0.001)
    assert data_megabytes([data], 5) == pytest.approx(0.0005)
    assert data_megabytes([data], 50) == pytest.approx(0.001)  # a sample larger than the data is all of it
    np.save(tmp_path / "emb.npy", np.zeros((2000, 50), dtype=np.float32))  # 0.1 M parameters
    cell = SimpleNamespace(model=SimpleNamespace(path=tmp_path / "emb.npy"), extra=(("epochs", 2),))
    assert cell_units(cell, [data]) == pytest.approx(0.1 * 0.001)
    from biasboard.harness.progress import FINETUNE_FACTOR

    assert cell_units(cell, [data], fine_tunes=True) == pytest.approx(0.1 * 0.001 * 2 * FINETUNE_FACTOR)


def _cell(key, model="zoo:x", task="crows_pairs", variant="v", method="none", extra=(), path="m.npy"):
    return SimpleNamespace(key=key, model=SimpleNamespace(spec=SimpleNamespace(id=model, dtype=None), path=path),
                           task=task, variant=variant, method=SimpleNamespace(name=method), extra=extra)


def _record(key, seconds, *, method="none", flags=None, precision="float32"):
    return {"key": key, "model": "zoo:x", "task": "crows_pairs", "variant": "v", "method": method,
            "flags": flags or {}, "status": "done", "provenance": {"seconds": seconds, "precision": precision}}


def test_similar_cells_match_on_model_precision_task_method_and_sample(tmp_path):
    np.save(tmp_path / "m.npy", np.zeros((1000, 1000), dtype=np.float32))  # 1 M parameters
    data = tmp_path / "d.csv"
    data.write_bytes(b"z" * 9 + b"\n")
    path = str(tmp_path / "m.npy")
    records = [_record("old1", 30.0, flags={"eval_sample": "300 of 1508 pairs"}),
               _record("old2", 50.0, flags={"eval_sample": "300 of 1508 pairs"}),
               _record("old3", 7.0), _record("old4", 99.0, precision="bfloat16"),
               _record("done", 4.0, method="perturb")]
    assert measured_seconds(records)[("zoo:x", "float32", "crows_pairs", "v", "none", 300)] == 40.0
    sample = _cell("s", extra=(("eval_sample", 300),), path=path)
    full = _cell("f", path=path)
    other = _cell("o", method="scrub", path=path)
    cached = _cell("done", method="perturb", path=path)  # 1 M parameters x 1e-5 MB = 1e-5 units in 4 s
    est = build_estimator([sample, full, other], [cached], records, lambda c: ([data], False))
    assert est.measured == {"s": 40.0, "f": 7.0} and est.rate == pytest.approx(4.0 / 1e-5)
    assert est.eta() == pytest.approx(40.0 + 7.0 + 4.0)
    typed = [SimpleNamespace(**{**r, "provenance": SimpleNamespace(**r["provenance"])}) for r in records]
    assert measured_seconds(typed) == measured_seconds(records)  # typed records (attributes) read the same


def test_the_bar_shows_the_weighted_eta():
    est = Estimator(order=["a", "b"], units={"a": 1.0, "b": 599.5}, default_rate=1.0)
    out = io.StringIO()
    bar = CostBar(total=2, desc="cells", file=out, estimator=est, mininterval=0)
    assert "0/2 [00:00<10:00" in str(bar)
    bar.close()


def test_the_bar_counts_down_during_a_long_cell():
    import time

    est = Estimator(order=["a"], units={"a": 100.0}, default_rate=1.0)
    out = io.StringIO()
    bar = CostBar(total=1, desc="cells", file=out, estimator=est, tick=0.05)
    time.sleep(1.3)
    bar.close()
    assert "<01:39" in out.getvalue() and "<01:38" in out.getvalue()  # redrawn while no cell finished
