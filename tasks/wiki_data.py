"""Readers for the WIKI toxicity data: Dixon et al.'s evaluation sets and the Wikipedia Talk training release.

Evaluation (shipped under ``<data>/wiki_toxicity``): ``bias_madlibs_77k.csv`` (Text, Label BAD/NOT_BAD, Template)
and ``toxicity_{non,}fuzzed_testset.csv`` (rev_id, comment, toxic True/False). Training, for users who have it: the
Wikipedia Talk "Toxicity" release of Wulczyn et al. (2017) (``toxicity_annotated_comments.tsv`` + ``toxicity_annotations.tsv``
in ``<data>/wiki_toxicity/wikipedia_talk/``); a comment is toxic when the mean annotator ``toxicity`` exceeds 0.5,
as in Dixon et al. (2018).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from biasboard.harness.errors import DataError
from biasboard.harness.training import TextDataset
from biasboard.tasks.wordlists import word_pattern

EVAL_FILES = {"madlibs": "wiki_toxicity/bias_madlibs_77k.csv",
              "nonfuzzed": "wiki_toxicity/toxicity_nonfuzzed_testset.csv",
              "fuzzed": "wiki_toxicity/toxicity_fuzzed_testset.csv"}
TERMS_FILE = "wiki_toxicity/madlibs_word_lists/adjectives_people.txt"
TRAIN_DIR = "wiki_toxicity/wikipedia_talk"
_BOOL = {"true": 1, "false": 0, "1": 1, "0": 0, "bad": 1, "not_bad": 0}


def read_terms(path: Path) -> list[str]:
    terms = [line.strip().lower() for line in path.read_text(encoding="utf8").splitlines() if line.strip()]
    if not terms:
        raise DataError("no identity terms", path=path)
    return terms


def read_eval(path: Path) -> TextDataset:
    """A madlibs or Wikipedia test-set CSV -> TextDataset (label 1 = toxic); rows count from 1 after the header."""
    with open(path, encoding="utf8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        text_f = "Text" if "Text" in fields else "comment" if "comment" in fields else None
        label_f = "Label" if "Label" in fields else "toxic" if "toxic" in fields else None
        if text_f is None or label_f is None:
            raise DataError(f"expected columns Text,Label (madlibs) or comment,toxic (test set); got {fields}",
                            path=path, row=0)
        id_f = "rev_id" if "rev_id" in fields else None
        texts, labels, ids = [], [], []
        for row, rec in enumerate(reader, 1):
            text, raw = rec.get(text_f), (rec.get(label_f) or "").strip().lower()
            if text is None or not text.strip():
                raise DataError("empty text", path=path, row=row, field=text_f)
            if raw not in _BOOL:
                raise DataError(f"label {rec.get(label_f)!r} is not one of BAD/NOT_BAD/True/False",
                                path=path, row=row, field=label_f)
            texts.append(text.strip())
            labels.append(_BOOL[raw])
            ids.append(f"{path.stem}-{rec[id_f] if id_f else row}")
    if not texts:
        raise DataError("no rows", path=path)
    return TextDataset(texts=tuple(texts), labels=tuple(labels), ids=tuple(ids), axis="identity",
                       label_names=("non_toxic", "toxic"))


def mentions(texts, terms) -> np.ndarray:
    """Boolean [n, T]: does text i mention term j as a whole word (multi-word terms allowed; "african american"
    also counts as "african" and "american", as whole-word search does in Dixon et al.'s analysis)."""
    pats = [word_pattern([t]) for t in terms]
    return np.array([[p.search(text) is not None for p in pats] for text in texts], dtype=bool).reshape(len(texts), len(terms))


def with_identity_groups(data: TextDataset, terms) -> TextDataset:
    """Mark each example ``identity`` (mentions a term) or ``none``, for the data and loss hooks."""
    pat = word_pattern(terms)
    groups = tuple("identity" if pat.search(t) else "none" for t in data.texts)
    from dataclasses import replace

    return replace(data, groups=groups, axis="identity")


def read_wikipedia_talk(folder: Path) -> dict[str, TextDataset]:
    """The Wulczyn et al. release -> {"train", "dev"} datasets (label 1 when mean annotator toxicity > 0.5)."""
    import pandas as pd

    comments_file, ann_file = folder / "toxicity_annotated_comments.tsv", folder / "toxicity_annotations.tsv"
    for f in (comments_file, ann_file):
        if not f.exists():
            raise DataError("missing file of the Wikipedia Talk toxicity release (figshare, Wulczyn et al. 2017)", path=f)
    comments = pd.read_csv(comments_file, sep="\t", index_col=0, quoting=csv.QUOTE_NONE)
    ann = pd.read_csv(ann_file, sep="\t", quoting=csv.QUOTE_NONE)
    for col, frame, f in (("comment", comments, comments_file), ("split", comments, comments_file),
                          ("rev_id", ann, ann_file), ("toxicity", ann, ann_file)):
        if col not in frame.columns and not (col == "rev_id" and frame.index.name == "rev_id"):
            raise DataError(f"missing column {col!r}", path=f, row=0, field=col)
    toxic = ann.groupby("rev_id")["toxicity"].mean() > 0.5
    out = {}
    for split in ("train", "dev"):
        part = comments[comments["split"] == split]
        texts = part["comment"].astype(str).str.replace("NEWLINE_TOKEN", " ").str.replace("TAB_TOKEN", " ").str.strip()
        labels = [int(toxic.get(rid, False)) for rid in part.index]
        out[split] = TextDataset(texts=tuple(texts), labels=tuple(labels), ids=tuple(f"wt-{r}" for r in part.index),
                                 axis="identity", label_names=("non_toxic", "toxic"))
    return out
