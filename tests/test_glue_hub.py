"""GLUE ``source=hub``: the real ``datasets.load_dataset`` path of ``read_hub``, run on a local copy of the hub
repository built in tmp_path from the real dev TSVs (README ``configs`` + ``<config>/<split>-*.parquet``, features as
on ``nyu-mll/glue``), and an end-to-end run that must not be flagged as the offline dev-split mode."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from biasboard.harness.errors import BiasboardError
from biasboard.harness.specs import RunContext
from biasboard.tasks.glue import TASKS, Glue, read_hub, read_local

DATA = Path(os.environ.get("BIASBOARD_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
CLASS_NAMES = {"cola": ["unacceptable", "acceptable"], "sst2": ["negative", "positive"],
               "mrpc": ["not_equivalent", "equivalent"], "rte": ["entailment", "not_entailment"]}
"""Label names of the hub configs (dataset card of nyu-mll/glue)."""
TEXT_COLUMNS = {"cola": ("sentence",), "sst2": ("sentence",), "mrpc": ("sentence1", "sentence2"),
                "rte": ("sentence1", "sentence2"), "stsb": ("sentence1", "sentence2")}


def _hub_rows(key: str) -> dict[str, dict[str, list]]:
    """The dev TSV's rows as hub columns, split 2/3 train and 1/3 validation; ``idx`` counts per split from 0."""
    dev = read_local(TASKS[key], DATA / TASKS[key].relpath)
    cut = 2 * len(dev) // 3
    out = {}
    for split, lo, hi in (("train", 0, cut), ("validation", cut, len(dev))):
        cols = {TEXT_COLUMNS[key][0]: list(dev.texts[lo:hi])}
        if len(TEXT_COLUMNS[key]) == 2:
            cols[TEXT_COLUMNS[key][1]] = list(dev.text_pairs[lo:hi])
        cols["label"] = list(dev.labels[lo:hi])
        cols["idx"] = list(range(hi - lo))
        out[split] = cols
    return out


def _features(key: str):
    import datasets

    label = datasets.Value("float32") if key == "stsb" else datasets.ClassLabel(names=CLASS_NAMES[key])
    return datasets.Features({**{c: datasets.Value("string") for c in TEXT_COLUMNS[key]}, "label": label,
                              "idx": datasets.Value("int32")})


@pytest.fixture(scope="module")
def hub_copy(tmp_path_factory) -> tuple[Path, dict]:
    """A folder laid out as the nyu-mll/glue repository for all five tasks, and the rows written into it."""
    import datasets

    root = tmp_path_factory.mktemp("glue-hub-copy")
    card, written = ["---", "configs:"], {}
    for key in TASKS:
        written[key] = _hub_rows(key)
        card += [f"- config_name: {key}", "  data_files:"]
        for split, cols in written[key].items():
            (root / key).mkdir(exist_ok=True)
            datasets.Dataset.from_dict(cols, features=_features(key)).to_parquet(
                root / key / f"{split}-00000-of-00001.parquet")
            card += [f"  - split: {split}", f"    path: {key}/{split}-*"]
    (root / "README.md").write_text("\n".join(card + ["---", "", "Local test copy of the GLUE hub layout.", ""]))
    return root, written


@pytest.mark.parametrize("key", ["sst2", "stsb", "mrpc", "rte", "cola"])
def test_read_hub_round_trips_a_local_copy(hub_copy, tmp_path, key):
    root, written = hub_copy
    spec = TASKS[key]
    for split, cols in written[key].items():
        d = read_hub(spec, split, root, cache_dir=tmp_path / "hf")
        assert d.texts == tuple(cols[TEXT_COLUMNS[key][0]])
        if spec.pair:
            assert d.text_pairs == tuple(cols[TEXT_COLUMNS[key][1]])
        else:
            assert d.text_pairs is None
        assert d.ids == tuple(f"{key}-{split}-{i}" for i in cols["idx"])
        if spec.regression:  # float32 on the hub: equal to single precision
            assert d.label_names == () and all(isinstance(v, float) for v in d.labels)
            assert d.labels == pytest.approx(cols["label"], rel=1e-6, abs=1e-6)
            assert 0 <= min(d.labels) and max(d.labels) <= 5
        else:
            assert d.labels == tuple(cols["label"]) and d.label_names == tuple(CLASS_NAMES[key])


def test_read_hub_unreachable_path_says_what_to_do(tmp_path):
    with pytest.raises(BiasboardError, match="hub_path=DIR, or use source=local"):
        read_hub(TASKS["sst2"], "train", tmp_path / "no-such-copy", cache_dir=tmp_path / "hf")


def test_hub_splits_are_not_offline_but_local_ones_are(hub_copy, tmp_path):
    root, written = hub_copy
    task = Glue()
    opts = {"source": "hub", "hub_path": str(root), "n_train": 10_000, "data_seed": 0}
    train, val, test, offline = task._splits(TASKS["stsb"], opts, tmp_path / "hf")
    assert offline is False
    n_train = len(written["stsb"]["train"]["label"])
    assert len(train) + len(val) == n_train and not set(train.ids) & set(val.ids)
    assert test.ids == tuple(f"stsb-validation-{i}" for i in written["stsb"]["validation"]["idx"])
    local = {"source": "local", "train_fraction": 0.5, "val_fraction": 0.15, "n_train": 10_000, "data_seed": 0}
    assert task._splits(TASKS["stsb"], local)[3] is True


@pytest.mark.slow
def test_source_hub_run_is_not_flagged_offline_dev_split(hub_copy, splade, tmp_path):
    """glue:sst2 fine-tuned end to end (zoo:splade-tiny, tiny sizes) on the local hub copy."""
    root, written = hub_copy
    ctx = RunContext(seed=0, cache_dir=tmp_path, n_bootstrap=50,
                     extra={"source": "hub", "hub_path": str(root), "max_examples": 40, "epochs": 1,
                            "max_length": 32})
    res = Glue().evaluate(splade, "sst2", ctx)
    assert "offline_dev_split" not in res.flags
    assert not any("OFFLINE" in n for n in res.notes)
    validation_ids = {f"sst2-validation-{i}" for i in written["sst2"]["validation"]["idx"]}
    assert len(res.examples) == 40 and {e["id"] for e in res.examples} <= validation_ids
    assert 0 <= res.metrics["accuracy"].value <= 100


@pytest.mark.slow
def test_a_model_trained_on_glue_text_is_flagged_as_leakage(splade, tmp_path):
    """CDA / Dropout continue training on the GLUE dev text by default: a GLUE score of such a model is flagged."""
    ctx = RunContext(seed=0, cache_dir=tmp_path, n_bootstrap=20,
                     extra={"max_examples": 24, "epochs": 1, "max_length": 24})
    trained = splade.derive(model=splade.model, step="cda(corpus=glue_text)", trained_on=["glue"])
    res = Glue().evaluate(trained, "sst2", ctx)
    assert res.flags["leakage"] is True and any(n.startswith("LEAKAGE") for n in res.notes)
