"""Labelled fine-tuning corpora for upstream debiasing: sentences, each with the bias type it is about.

- HolisticBias (Smith et al. 2022; ../shared/data/holistic_bias): every descriptor x noun x template sentence of an
  axis; the axis is the bias type. Three named splits, sampled without replacement by ``corpus_seed``:
  ``3bias`` (gender, race, religion) and ``6bias`` (those plus sexual orientation, age, ability) follow the natural
  frequencies of the source: each axis gets n_sentences x (its sentence count / the split's total), so the bias
  types are unequal and RobustDebias' inverse-frequency weights differ from 1. ``6bias_high`` (the same six) is
  strongly imbalanced by fixed shares: 30% each for gender, race, religion and 4/3/3% for the three minority types.
  RobustDebias names 3-Bias, 6-Bias, 6-Bias-High splits without publishing them; these are our reconstruction.
- StereoSet intrasentence with the blank filled by the stereotype option (Bias Vector's "biased text").
- Any labelled text file: ``.jsonl`` (fields ``text`` and ``bias_type``) or ``.csv`` / ``.tsv`` with those columns.
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biasboard.harness import data as hdata
from biasboard.harness.errors import DataError

__all__ = ["LabelledCorpus", "SPLITS", "FIXED_SHARES", "allocate", "split_shares", "holistic_sentences",
           "holistic_split", "read_labelled_file", "stereoset_stereotypes", "load_corpus"]

HOLISTIC_VERSION = "v1.1"
SPLITS = {
    "3bias": ("gender_and_sex", "race_ethnicity", "religion"),
    "6bias": ("gender_and_sex", "race_ethnicity", "religion", "sexual_orientation", "age", "ability"),
    "6bias_high": ("gender_and_sex", "race_ethnicity", "religion", "sexual_orientation", "age", "ability"),
}
"""Split name -> its HolisticBias axes (the bias types), in corpus order."""
FIXED_SHARES = {
    "6bias_high": {"gender_and_sex": 0.30, "race_ethnicity": 0.30, "religion": 0.30, "sexual_orientation": 0.04,
                   "age": 0.03, "ability": 0.03},
}
"""Splits with set shares; every other split follows the source's natural axis frequencies (``split_shares``)."""


@dataclass(frozen=True)
class LabelledCorpus:
    """Sentences with a bias-type label each."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    """Bias type of each sentence."""
    name: str
    """Where it came from (split name or file), for lineage and logs."""

    def __post_init__(self):
        if len(self.texts) != len(self.labels):
            raise DataError(f"corpus {self.name}: {len(self.texts)} texts but {len(self.labels)} labels")
        if not self.texts:
            raise DataError(f"corpus {self.name}: no sentences")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def types(self) -> tuple[str, ...]:
        """Bias types in first-seen order (group ids follow this order)."""
        return tuple(dict.fromkeys(self.labels))

    def label_ids(self) -> list[int]:
        index = {t: i for i, t in enumerate(self.types)}
        return [index[b] for b in self.labels]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for b in self.labels:
            out[b] = out.get(b, 0) + 1
        return out

    def digest(self) -> str:
        return hashlib.sha256(json.dumps([self.texts, self.labels]).encode()).hexdigest()


def _holistic_file(name: str) -> Path:
    return hdata.find(f"holistic_bias/{HOLISTIC_VERSION}/{name}", task="holistic_bias")


def _descriptors(axis_entry: dict, path: Path, axis: str) -> list[dict]:
    out = []
    for bucket, items in axis_entry.items():
        for j, item in enumerate(items):
            if isinstance(item, str):
                item = {"descriptor": item}
            if not isinstance(item, dict) or not isinstance(item.get("descriptor"), str):
                raise DataError("expected a string or an object with 'descriptor'", path=path,
                                row=f"{axis}/{bucket}[{j}]", field="descriptor")
            if item.get("preference") == "dispreferred":
                continue  # HolisticBias marks these as slurs / dispreferred terms; we do not train on them
            out.append(item)
    return out


def _article(item: dict) -> str:
    if item.get("article"):
        return item["article"]
    return "an" if item["descriptor"][:1].lower() in "aeiou" else "a"


def holistic_sentences(axis: str) -> list[str]:
    """Every sentence of one HolisticBias axis: descriptor x noun x template, singular ("a/an DESC NOUN") or plural
    ("DESC NOUNS") as the template asks; gendered descriptors only go with nouns of their gender or neutral ones."""
    desc_path = _holistic_file("descriptors.json")
    descriptors = json.loads(desc_path.read_text())
    nouns = json.loads(_holistic_file("nouns.json").read_text())
    templates = json.loads(_holistic_file("sentence_templates.json").read_text())
    if axis not in descriptors:
        raise DataError(f"no HolisticBias axis {axis!r}; axes: {', '.join(descriptors)}", path=desc_path)
    out = []
    for item in _descriptors(descriptors[axis], desc_path, axis):
        desc = item["descriptor"]
        for gender, pairs in nouns.items():
            if item.get("gender") and gender not in (item["gender"], "neutral"):
                continue
            for singular, plural in pairs:
                for template in templates:
                    if "{plural_noun_phrase}" in template:
                        out.append(template.replace("{plural_noun_phrase}", f"{desc} {plural}"))
                    else:
                        out.append(template.replace("{noun_phrase}", f"{_article(item)} {desc} {singular}"))
    return out


def allocate(weights: dict[str, float], n: int) -> dict[str, int]:
    """``n`` split over the keys in proportion to ``weights`` by largest remainders (ties: first key first), so the
    counts sum to ``n`` exactly; every key gets at least one (taken from the largest) when ``n`` allows.

    >>> allocate({"a": 50024, "b": 25194, "c": 40768}, 3000)   # exact shares 1293.9, 651.6, 1054.5
    {'a': 1294, 'b': 652, 'c': 1054}
    """
    total = float(sum(weights.values()))
    exact = {k: n * w / total for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    by_remainder = sorted(exact, key=lambda k: -(exact[k] - counts[k]))  # stable: ties keep key order
    for k in by_remainder[: n - sum(counts.values())]:
        counts[k] += 1
    for k in weights:
        if counts[k] == 0 and n >= len(weights):
            counts[max(counts, key=counts.get)] -= 1
            counts[k] = 1
    return counts


def split_shares(split: str) -> dict[str, float]:
    """Axis -> share of a named split: the fixed shares of ``6bias_high``, else each axis' share of the source
    sentences of the split's axes (natural frequency, counted after dropping dispreferred descriptors)."""
    if split not in SPLITS:
        raise DataError(f"unknown corpus split {split!r}; splits: {', '.join(SPLITS)} (or a path to a labelled file)")
    if split in FIXED_SHARES:
        return dict(FIXED_SHARES[split])
    sizes = {axis: len(holistic_sentences(axis)) for axis in SPLITS[split]}
    total = sum(sizes.values())
    return {axis: size / total for axis, size in sizes.items()}


def holistic_split(split: str, *, n_sentences: int = 3000, seed: int = 0) -> LabelledCorpus:
    """A named HolisticBias split of ``n_sentences`` sentences, shuffled; the same seed gives the same corpus.
    Per-axis counts: ``allocate(split_shares(split), n_sentences)``."""
    counts = allocate(split_shares(split), n_sentences)
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for axis, n in counts.items():
        pool = holistic_sentences(axis)
        if n > len(pool):
            raise DataError(f"split {split}: axis {axis} has {len(pool)} sentences, {n} requested")
        pick = rng.choice(len(pool), size=n, replace=False)
        texts += [pool[i] for i in sorted(pick)]
        labels += [axis] * n
    order = rng.permutation(len(texts))
    return LabelledCorpus(tuple(texts[i] for i in order), tuple(labels[i] for i in order),
                          f"holistic_bias:{split}(n={n_sentences},seed={seed})")


def read_labelled_file(path: str | Path) -> LabelledCorpus:
    """A user corpus: JSON lines with ``text`` and ``bias_type``, or CSV/TSV with those columns."""
    path = Path(path)
    if not path.exists():
        raise DataError("no such corpus file", path=path)
    rows = []
    if path.suffix == ".jsonl":
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append((i, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", path=path, row=i) from None
    elif path.suffix in (".csv", ".tsv"):
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if path.suffix == ".tsv" else ",")
            rows = [(i, r) for i, r in enumerate(reader, start=2)]
    else:
        raise DataError("corpus files must be .jsonl, .csv or .tsv", path=path)
    texts, labels = [], []
    for i, row in rows:
        for name in ("text", "bias_type"):
            value = row.get(name) if isinstance(row, dict) else None
            if not isinstance(value, str) or not value.strip():
                raise DataError("missing or empty", path=path, row=i, field=name)
        texts.append(row["text"].strip())
        labels.append(row["bias_type"].strip())
    if not texts:
        raise DataError("no rows", path=path)
    return LabelledCorpus(tuple(texts), tuple(labels), str(path.name))


def stereoset_stereotypes(bias_type: str = "all") -> LabelledCorpus:
    """StereoSet intrasentence sentences with the stereotype option filled in (Bias Vector's training text)."""
    from biasboard.harness.registry import TASKS

    texts, labels, source = TASKS.get("stereoset").stereotype_sentences(bias_type)
    return LabelledCorpus(texts, labels, source)


def load_corpus(spec: str, *, n_sentences: int = 3000, seed: int = 0) -> LabelledCorpus:
    """A split name (``3bias``, ``6bias``, ``6bias_high``), ``stereoset[:bias_type]``, or a labelled file path."""
    if spec in SPLITS:
        return holistic_split(spec, n_sentences=n_sentences, seed=seed)
    if spec == "stereoset" or spec.startswith("stereoset:"):
        return stereoset_stereotypes(spec.partition(":")[2] or "all")
    if Path(spec).suffix in (".jsonl", ".csv", ".tsv"):
        return read_labelled_file(spec)
    raise DataError(f"corpus {spec!r}: not a split ({', '.join(SPLITS)}), not 'stereoset[:type]', and not a "
                    ".jsonl/.csv/.tsv file")
