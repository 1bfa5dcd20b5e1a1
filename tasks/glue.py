"""GLUE (Wang et al. 2019): downstream utility after fine-tuning, with each task's official metric.

Why in a bias harness: mitigation that wrecks the model is not mitigation; the GLUE score is the utility side of the
trade-off (Bias Vector and 2408.00612 both report it). With ``extra source=hub`` the model is fine-tuned on the
official train split and tested on the official dev split, as GLUE papers do, read through ``datasets`` from the hub
or from a local copy of the hub repository (``hub_path=DIR``; see ``read_hub``). Without either, only the dev
sets exist (``<data>/glue``): the default ``source=local`` fine-tunes on part of dev and tests on the rest, and every
such result is flagged ``offline_dev_split`` and says so; it is not comparable with published GLUE numbers.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biasboard.harness import data as hdata
from biasboard.harness.digest import files_sha256, json_sha256
from biasboard.harness.errors import BiasboardError, DataError
from biasboard.harness.registry import register_task
from biasboard.harness.specs import Metric, Task, TaskResult, Variant
from biasboard.harness.stats import bootstrap_ci, resample_counts
from biasboard.harness.training import TextDataset, finetune, predict
from biasboard.harness.training.leakage import leakage
from biasboard.tasks.text_classifier_metrics import glue_scores, weighted_glue_scores
from biasboard.tasks.finetune_common import option_keys
from biasboard.tasks.finetune_common import capped, options, split, train_config, training_summary

FAMILIES = ("encoder", "mlm", "clm")


@dataclass(frozen=True)
class GlueTask:
    """How one GLUE task is read and scored."""

    relpath: str
    """Dev file under the data folder."""
    hub_config: str
    """Config name of ``nyu-mll/glue`` on the hub."""
    text: str
    pair: str | None
    label: str
    """Column names in the local file."""
    metrics: tuple[str, ...]
    """Official metrics, headline first."""
    header: bool = True
    columns: tuple[str, ...] = ()
    """Column names for a file without a header row (CoLA)."""
    regression: bool = False
    sha256: str = ""
    url: str = ""


TASKS = {
    "cola": GlueTask("glue/CoLA/dev.tsv", "cola", "sentence", None, "label", ("mcc", "accuracy"), header=False,
                     columns=("source", "label", "original_mark", "sentence"),
                     sha256="77176f6a03faa5a1c4f23c69971fc1bff565931112fb65af47b2d6e24b7f42f7",
                     url="https://raw.githubusercontent.com/nyu-mll/CoLA-baselines/dd095d3646ed05a315280aaa8ed4ec84ba435b3e"
                         "/acceptability_corpus/cola_public/raw/in_domain_dev.tsv"),
    "sst2": GlueTask("glue/SST-2/dev.tsv", "sst2", "text", None, "label", ("accuracy",),
                     sha256="46cc9126f5e3bf1634991d8eeed3a5e8dc81869622444af859729d720c58d815",
                     url="https://raw.githubusercontent.com/TaoCesc/binary_cls/6a73b09b39af0efe049622662211f3657c75a15e"
                         "/data/SST-2/dev.tsv"),
    "mrpc": GlueTask("glue/MRPC/dev.tsv", "mrpc", "#1 String", "#2 String", "Quality", ("f1", "accuracy"),
                     sha256="81c8a1a9e1dfe461dd2c1a4f98f43fe18bece44d2bf9e3d0b245b88e5aa5eaf7",
                     url="https://raw.githubusercontent.com/Nstats/my_bert/733d79335044b1b7eabb5b47a0eae0cd621dadc0"
                         "/data/MRPC/dev.tsv"),
    "rte": GlueTask("glue/RTE/dev.tsv", "rte", "sentence1", "sentence2", "label", ("accuracy",),
                    sha256="e7e42b7ee79c36ebd780ebbdba525b939017da4ef9624c9e78b9ac2e69e36c28",
                    url="https://raw.githubusercontent.com/Ji-Yishan/MIEC-FYP/250635701007f7f2dc00b63ce2cbc3dfe104b4e0"
                        "/RTE/dev.tsv"),
    "stsb": GlueTask("glue/STS-B/dev.tsv", "stsb", "sentence1", "sentence2", "score", ("pearson", "spearman"),
                     regression=True, sha256="fe7dc0632a5033562f3cadff991f6e8d9b9b6311861660e78c3c82eb7db67f59",
                     url="https://raw.githubusercontent.com/korjak/sts-dev/016124a06bbd2e7e02f37ffd4b754df219ee50cb"
                         "/data/STS-B/dev.tsv"),
}
hdata.declare("glue", *(hdata.DataSource(t.relpath, t.url, t.sha256) for t in TASKS.values()))
HUB_DATASET = "nyu-mll/glue"
"""The GLUE repository on the Hugging Face Hub (formerly plain ``glue``): one config per task (``cola``, ``sst2``,
``mrpc``, ``rte``, ``stsb``, ...), splits ``train`` / ``validation`` / ``test``, each row with an ``idx``."""
HUB_COLUMNS = {"cola": ("sentence", None), "sst2": ("sentence", None), "mrpc": ("sentence1", "sentence2"),
               "rte": ("sentence1", "sentence2"), "stsb": ("sentence1", "sentence2")}
"""Text columns of each hub config; ``label`` is a ClassLabel, or a float similarity score for ``stsb``."""
METRIC_TEXT = {"mcc": "Matthews correlation", "accuracy": "accuracy", "f1": "F1 of the positive class",
               "pearson": "Pearson r", "spearman": "Spearman rho"}
DEFAULTS = {"source": "local", "hub_path": HUB_DATASET, "train_fraction": 0.5, "val_fraction": 0.15, "n_train": 4000,
            "data_seed": 0, "epochs": 3, "lr": 5e-5, "batch_size": 32, "max_length": 64}


def read_local(spec: GlueTask, path: Path) -> TextDataset:
    """A GLUE dev TSV (read with quoting off, as the files need) -> TextDataset; rows count from 1 after a header."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    header = list(rows[0]) if spec.header else list(spec.columns)
    body = rows[1:] if spec.header else rows
    for col in (spec.text, spec.pair, spec.label):
        if col is not None and col not in header:
            raise DataError(f"missing column {col!r}; header is {header}", path=path, row=0, field=col)
    at = {c: header.index(c) for c in (spec.text, spec.pair, spec.label) if c}
    texts, pairs, labels, ids = [], [], [], []
    for row, rec in enumerate(body, 1):
        if len(rec) < len(header):
            raise DataError(f"{len(rec)} fields, expected {len(header)}", path=path, row=row)
        try:
            value = float(rec[at[spec.label]]) if spec.regression else int(rec[at[spec.label]])
        except ValueError:
            raise DataError(f"label {rec[at[spec.label]]!r} is not a number", path=path, row=row,
                            field=spec.label) from None
        texts.append(rec[at[spec.text]])
        if spec.pair:
            pairs.append(rec[at[spec.pair]])
        labels.append(value)
        ids.append(f"{spec.hub_config}-dev-{row}")
    names = () if spec.regression else tuple(str(v) for v in sorted(set(labels)))
    if not spec.regression and names and [int(n) for n in names] != list(range(len(names))):
        raise DataError(f"labels {names} are not 0..k-1", path=path, field=spec.label)
    return TextDataset(texts=tuple(texts), labels=tuple(labels), ids=tuple(ids),
                       text_pairs=tuple(pairs) if spec.pair else None, label_names=names)


def read_hub(spec: GlueTask, split_name: str, path: str | Path = HUB_DATASET, *,
             cache_dir: str | Path | None = None) -> TextDataset:
    """One split of the hub's GLUE through ``datasets.load_dataset(path, config, split=split_name)``.

    ``path`` is the hub id (needs the hub) or a local copy of the hub repository: a folder laid out as the repo is,
    with its ``README.md`` (whose ``configs`` map each config to ``<config>/<split>-*.parquet``) and the parquet
    files, as ``huggingface-cli download nyu-mll/glue --repo-type dataset --local-dir DIR`` fetches it. Both go
    through the same call. Ids are ``<config>-<split>-<idx>``, from the hub's ``idx`` column (row number if absent).
    """
    try:
        import datasets

        ds = datasets.load_dataset(str(path), spec.hub_config, split=split_name,
                                   cache_dir=str(cache_dir) if cache_dir else None)
    except Exception as exc:  # offline, a missing copy or an unknown config: one message, no traceback
        raise BiasboardError(f"glue:{spec.hub_config}: could not load {path} with datasets ({type(exc).__name__}: "
                             f"{exc}); give a local copy of the hub repo with hub_path=DIR, or use source=local "
                             "for the offline dev-split mode") from exc
    text, pair = HUB_COLUMNS[spec.hub_config]
    missing = [c for c in (text, pair, "label") if c and c not in ds.column_names]
    if missing:
        raise DataError(f"split {split_name!r} of config {spec.hub_config!r} lacks columns {missing}; has "
                        f"{ds.column_names}", path=path, field=missing[0])
    labels = [float(v) if spec.regression else int(v) for v in ds["label"]]
    if spec.regression:
        names: tuple[str, ...] = ()
    elif isinstance(ds.features["label"], datasets.ClassLabel):
        names = tuple(ds.features["label"].names)
    else:
        names = tuple(str(v) for v in range(max(labels, default=-1) + 1))
    idx = ds["idx"] if "idx" in ds.column_names else range(len(labels))
    return TextDataset(texts=tuple(ds[text]), labels=tuple(labels),
                       ids=tuple(f"{spec.hub_config}-{split_name}-{i}" for i in idx),
                       text_pairs=tuple(ds[pair]) if pair else None, label_names=names)


def _variant(key: str) -> Variant:
    spec = TASKS[key]
    return Variant(f"GLUE {key.upper()}: {', '.join(METRIC_TEXT[m] for m in spec.metrics)} (x100). Options: source "
                   "(local|hub), hub_path (hub id or a local copy of the hub repo), train_fraction, val_fraction, "
                   "n_train, data_seed.", FAMILIES, {"glue": key})


@register_task
class Glue(Task):
    name = "glue"
    version = "2"  # 2: accuracy in % with its `correct` rows; MCC / F1 recomputable from label/pred
    description = "GLUE utility after fine-tuning, with each task's official metric (Wang et al. 2019)."
    families = FAMILIES
    variants = {key: _variant(key) for key in TASKS}
    default_variant = "sst2"
    extra_keys = option_keys(DEFAULTS, variants)
    citation = "Wang et al. 2019, GLUE: A Multi-Task Benchmark and Analysis Platform for NLU, ICLR"
    axis = "utility"
    fine_tunes = True

    def data_files(self, variant: str) -> list[Path]:
        return [hdata.find(TASKS[self.variants[variant].options["glue"]].relpath, task=self.name)]

    def _splits(self, spec: GlueTask, opts: dict, cache_dir: Path | None = None
                ) -> tuple[TextDataset, TextDataset, TextDataset, bool]:
        seed = int(opts["data_seed"])
        if opts["source"] == "hub":
            train_full, test = (read_hub(spec, name, opts["hub_path"], cache_dir=cache_dir)
                                for name in ("train", "validation"))
            tr, va = split(len(train_full), (0.9, 0.1), seed=seed)
            return capped(train_full.select(tr), opts["n_train"], seed), train_full.select(va), test, False
        if opts["source"] != "local":
            raise BiasboardError(f"glue: option source={opts['source']!r}; expected 'local' or 'hub'")
        dev = read_local(spec, hdata.find(spec.relpath, task=self.name))
        strat = None if spec.regression else np.asarray(dev.labels, dtype=int)
        f_tr, f_va = float(opts["train_fraction"]), float(opts["val_fraction"])
        if not (0 < f_va < f_tr < 1):
            raise BiasboardError("glue: need 0 < val_fraction < train_fraction < 1")
        tr, va, te = split(len(dev), (f_tr - f_va, f_va, 1 - f_tr), seed=seed, stratify=strat)
        return capped(dev.select(tr), opts["n_train"], seed), dev.select(va), dev.select(te), True

    def evaluate(self, handle, variant, ctx):
        spec = TASKS[self.variants[variant].options["glue"]]
        opts = options(DEFAULTS, self.variants[variant].options, ctx.extra)
        hf_cache = Path(ctx.cache_dir) / "hf_datasets" if ctx.cache_dir else None
        train, val, test, offline = self._splits(spec, opts, hf_cache)
        test = capped(test, opts["max_examples"], int(opts["data_seed"]))
        n_labels = 1 if spec.regression else len(train.label_names)
        config = train_config(opts, num_labels=n_labels, seed=ctx.seed, handle=handle, extra=ctx.extra)
        ft = finetune(handle, train, val, config, ctx)
        out = predict(ft, test, batch_size=ctx.batch_size)
        pred = out[:, 0] if spec.regression else out.argmax(axis=1)
        result = score(spec, np.asarray(test.labels), pred, n_bootstrap=ctx.n_bootstrap, seed=ctx.seed)
        result.examples = example_rows(test.ids, test.labels, pred, regression=spec.regression)
        result.flags.update(training_summary(ft))
        leak_flags, leak_notes = leakage(handle, self.name)  # e.g. CDA / Dropout continued on this task's text
        result.flags.update(leak_flags)
        result.notes.extend(leak_notes)
        if offline:
            result.flags["offline_dev_split"] = True
            result.notes.append(f"OFFLINE DEV SPLIT: fine-tuned on {len(train) + len(val)} examples of the GLUE dev "
                                f"set and tested on the other {len(test)}; not comparable with published GLUE scores.")
            result.data_sha256 = files_sha256(self.data_files(variant))
        else:
            result.data_sha256 = json_sha256([train.digest(), test.digest()])
        return result


def score(spec: GlueTask, y_true: np.ndarray, y_pred: np.ndarray, *, n_bootstrap: int = 1000, seed: int = 0
          ) -> TaskResult:
    """The task's official metrics (x100, as the GLUE leaderboard shows them) with bootstrap CIs."""
    metrics = {}
    for name in spec.metrics:
        fn = lambda idx, axis=-1, name=name: _on_rows(name, y_true, y_pred, idx)  # noqa: E731
        value = glue_scores(name, y_true, y_pred) * 100
        ci = bootstrap_ci(fn, np.arange(len(y_true), dtype=float), n_resamples=n_bootstrap, seed=seed)
        metrics[name] = Metric(value, n=len(y_true), ideal=100.0, direction="max", ci95=ci, **_declaration(name),
                               description=f"GLUE {spec.hub_config.upper()} {METRIC_TEXT[name]} x100 (utility).")
    return TaskResult(metrics=metrics, axis="utility")


def _declaration(name: str) -> dict[str, str]:
    """How a metric follows from the example rows (``examples``), so comparisons can pair cells on the same
    examples: accuracy is the mean of ``correct`` (in %), MCC and F1 are recomputed from ``label``/``pred``; the
    STS-B correlations declare nothing yet, so they stay unpaired."""
    if name == "accuracy":
        return {"per_example": "correct", "unit": "%"}
    if name in ("mcc", "f1"):
        return {"recompute": f"{weighted_glue_scores.__module__}:weighted_glue_scores(label,pred)[{name}]"}
    return {}


def example_rows(ids, labels, pred, *, regression: bool) -> list[dict]:
    """One row per test example: its label and prediction, and (classification) whether they agree."""
    rows = [{"id": i, "label": t, "pred": float(p)} for i, t, p in zip(ids, labels, pred)]
    if not regression:
        for r in rows:
            r["correct"] = int(int(r["label"]) == int(r["pred"]))
    return rows


def _on_rows(name: str, y_true: np.ndarray, y_pred: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The metric on resampled rows; ``idx`` is one index vector or a stack of them (bootstrap resamples)."""
    idx = np.asarray(idx, dtype=int)
    rows = idx.reshape(-1, idx.shape[-1])
    if name in ("mcc", "f1"):  # all resamples at once, from their example counts (the declared recomputation)
        counts = resample_counts(rows, len(y_true))
        one_class = np.ptp(y_true[rows], axis=1) == 0
        vals = np.where(one_class, np.nan, weighted_glue_scores(counts, y_true, y_pred)[name])
    else:
        vals = np.array([glue_scores(name, y_true[r], y_pred[r]) * 100 if len(set(y_true[r].tolist())) > 1
                         else np.nan for r in rows])
    return vals.reshape(idx.shape[:-1]) if idx.ndim > 1 else vals[0]
