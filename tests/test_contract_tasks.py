"""Contract tests over EVERY registered task: declarations are complete, and a tiny smoke cell of each variant
(default variant only for tasks that fine-tune) returns metrics that honour the result contract, independent of
the batch size. Variants whose data file is truly absent (from every data folder) are skipped with the reason;
any other error fails, even when its message mentions data.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from biasboard.harness.paths import data_dirs
from biasboard.harness.errors import BiasboardError, DataError
from biasboard.harness.registry import FAMILIES, TASKS
from biasboard.harness.specs import DIRECTIONS
from biasboard.harness.submission_worker import contract_problems, fresh_cache, smoke_extra, smoke_run

TINY = {"mlm": "zoo:splade-tiny", "encoder": "zoo:minilm-l6", "clm": "zoo:smollm2-135m",
        "wordvec": "zoo:glove-6b-50d", "vision": "vision:small-cnn"}
"""The smallest model of each family (a family missing here is skipped with a stated reason)."""
ORDER = ("mlm", "vision", "encoder", "wordvec", "clm")
"""Cheapest first: the smoke cell uses the first family the variant supports."""


def absent_data_file(exc: BaseException) -> str | None:
    """The data file ``exc`` reports missing, when it is truly absent: a ``DataError`` from ``harness.data.find``
    (or one naming a path) whose file exists in no data folder. Anything else is a real failure."""
    if not isinstance(exc, DataError):
        return None
    if exc.path is not None:
        return None if Path(exc.path).exists() else str(exc.path)
    missing = re.match(r"data file '([^']+)' not found", str(exc))
    if missing and not any((root / missing.group(1)).exists() for root in data_dirs()):
        return missing.group(1)
    return None


def smoke_cases():
    cases = []
    for name in TASKS.names():
        cls = TASKS.get(name)
        variants = [cls.default_variant] if getattr(cls, "fine_tunes", False) else list(cls.variants)
        cases += [pytest.param(name, v, id=f"{name}:{v}") for v in variants]
    return cases


@pytest.mark.parametrize("name", TASKS.names())
def test_task_declarations_are_complete(name):
    cls = TASKS.get(name)
    assert cls.description and cls.version and cls.citation, f"{name}: description, version, citation"
    assert set(cls.families) <= set(FAMILIES)
    for vname, variant in cls.variants.items():
        assert variant.description, f"{name}:{vname} has no description"
        assert variant.families and set(variant.families) <= set(cls.families), f"{name}:{vname} families"


@pytest.mark.slow
@pytest.mark.parametrize("name,variant", smoke_cases())
def test_every_task_variant_runs_a_smoke_cell(name, variant, tmp_path, monkeypatch):
    cls = TASKS.get(name)
    family = next((f for f in ORDER if f in cls.variants[variant].families and f in TINY), None)
    if family is None:
        pytest.skip(f"no tiny model for the families {cls.variants[variant].families}")
    try:
        files = cls().data_files(variant)
    except BiasboardError as exc:
        if absent_data_file(exc) is None:
            raise
        pytest.skip(f"data not available: {exc}")
    if any(not Path(f).exists() for f in files):
        pytest.skip(f"data not available: {[str(f) for f in files if not Path(f).exists()]}")
    monkeypatch.setenv("BIASBOARD_CACHE", str(fresh_cache(tmp_path / "cache")))
    try:
        record, examples = smoke_run("none", TINY[family], f"{name}:{variant}", smoke_extra(name),
                                     tmp_path / "cache")
    except BiasboardError as exc:
        if absent_data_file(exc) is None:
            raise
        pytest.skip(f"data not available: {exc}")
    record = record.to_json()  # the stored form: what the board and the gate read
    problems, _ = contract_problems(record)
    assert not problems, problems
    for mname, m in record["metrics"].items():
        assert m["direction"] in DIRECTIONS
        assert m["direction"] != "target" or m.get("ideal") is not None, f"{mname}: target metric without ideal"
    for group, metrics in record["groups"].items():
        for mname, m in metrics.items():
            assert m.get("n") is not None, f"group {group} metric {mname} has no n"
    ids = [e["id"] for e in examples]
    assert ids and len(set(ids)) == len(ids), "per-example rows need unique ids"
    assert record["provenance"]["data_sha256"]

    if variant != cls.default_variant:
        return
    # the same cell with another batch size gives the same numbers (default variants: the scoring path is shared)
    other, _ = smoke_run("none", TINY[family], f"{name}:{variant}", smoke_extra(name), tmp_path / "cache",
                         batch_size=3)
    other = other.to_json()
    for mname, m in record["metrics"].items():
        a, b = m["value"], other["metrics"][mname]["value"]
        assert (a is None and b is None) or math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6), (mname, a, b)


def test_only_a_truly_absent_data_file_skips(tmp_path, monkeypatch):
    """A data error about a file that exists, or any other error mentioning data, is not a reason to skip."""
    monkeypatch.setenv("BIASBOARD_DATA_DIR", str(tmp_path))
    (tmp_path / "present.jsonl").write_text("{}\n")
    assert absent_data_file(DataError("data file 'gone.jsonl' not found (looked in: x); set ...")) == "gone.jsonl"
    assert absent_data_file(DataError("data file 'present.jsonl' not found (looked in: x)")) is None
    assert absent_data_file(DataError("bad field", path=tmp_path / "present.jsonl", row=3)) is None
    assert absent_data_file(DataError("unreadable", path=tmp_path / "gone.jsonl")) == str(tmp_path / "gone.jsonl")
    assert absent_data_file(BiasboardError("the data has no rows of this variant")) is None
