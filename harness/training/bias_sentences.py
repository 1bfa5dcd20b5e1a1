"""Sentences about a bias attribute from a real local text corpus, for fitting SentenceDebias and INLP.

bias-bench (Meade et al. 2022) fits both on sentences of a Wikipedia dump (``wikipedia-2.5.txt``) that contain
a word of ``bias_attribute_words.json`` (gender: 57 [male, female] pairs; race and religion: 6 triples). No
Wikipedia dump is available here, so the corpus is a named local one (recorded with every result):

- ``wikipedia_talk``: the 1,492 Wikipedia Talk comments of ``wiki_toxicity/toxicity_nonfuzzed_testset.csv``
  (Dixon et al. 2018; real Wikipedia text, but selected for identity terms, so religion words are frequent and
  248 comments are toxic). It is also the evaluation set of the ``wiki_toxicity:nonfuzzed`` variant.
- ``sts_b``: the 3,000 sentences of the STS-B dev set (``glue/STS-B/dev.tsv``: news headlines, forums, captions).

Each corpus line (a comment, a sentence) is lower-cased and split into sentences after ``.``, ``!`` or ``?``
followed by white space (a plain stand-in for NLTK's Punkt, which bias-bench uses and which is not installed);
words are what ``split(" ")`` gives, exactly as bias-bench matches attribute words (so "he," is not "he").
"""
from __future__ import annotations

import csv
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from biasboard.harness import data as hdata
from biasboard.harness.digest import files_sha256
from biasboard.harness.errors import DataError

__all__ = ["BIAS_TYPES", "CORPORA", "Corpus", "attribute_words", "counterfactual_examples", "inlp_sentences",
           "load_corpus", "split_sentences"]

ATTRIBUTE_FILE = "bias_attribute_words/bias_attribute_words.json"
BIAS_TYPES = ("gender", "race", "religion")
CORPORA = {
    "wikipedia_talk": "wiki_toxicity/toxicity_nonfuzzed_testset.csv",
    "sts_b": "glue/STS-B/dev.tsv",
}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Corpus:
    """The lines (paragraphs) of a named corpus and the digest of the files they came from."""

    name: str
    lines: tuple[str, ...]
    sha256: str


def attribute_words(bias_type: str) -> list[tuple[str, ...]]:
    """bias-bench's attribute word groups of one bias type: (male, female) pairs or 3-tuples, lower case."""
    if bias_type not in BIAS_TYPES:
        raise DataError(f"unknown bias type {bias_type!r}; valid: {', '.join(BIAS_TYPES)}")
    path = hdata.find(ATTRIBUTE_FILE)
    groups = json.loads(path.read_text())[bias_type]
    return [tuple(w.lower() for w in g) for g in groups]


def _read_lines(name: str, path: Path) -> list[str]:
    if name == "wikipedia_talk":
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        return [r["comment"].replace("NEWLINE_TOKEN", " ").replace("TAB_TOKEN", " ").strip() for r in rows]
    with open(path, newline="", encoding="utf-8") as fh:  # GLUE TSVs: no quoting (SOURCES.md)
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [s for r in rows for s in (r["sentence1"], r["sentence2"])]


def load_corpus(name: str) -> Corpus:
    """One of ``CORPORA`` by name."""
    if name not in CORPORA:
        raise DataError(f"unknown corpus {name!r}; valid: {', '.join(CORPORA)}")
    path = hdata.find(CORPORA[name])
    lines = tuple(line for line in _read_lines(name, path) if line.strip())
    return Corpus(name, lines, files_sha256([path]))


def split_sentences(line: str) -> list[str]:
    """Lower-cased sentences of a line, stripped, empty ones dropped.

    >>> split_sentences("He left.  She stayed! Why?")
    ['he left.', 'she stayed!', 'why?']
    """
    return [s.strip() for s in _SENTENCE_END.split(line.lower()) if s.strip()]


def _swap(words: list[str], old: str, new: str) -> str:
    return " ".join(new if w == old else w for w in words)


def counterfactual_examples(sentences: list[str], groups: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """SentenceDebias' two-sided counterfactuals (Liang et al. 2020, as bias-bench builds them): for every sentence
    and every attribute word of a group that occurs in it, one example holding the sentence once per member of the
    group, that word replaced by the member's word (every occurrence). Position k of an example is group member k.

    >>> counterfactual_examples(["he is here"], [("he", "she"), ("man", "woman")])
    [('he is here', 'she is here')]
    >>> counterfactual_examples(["the jews and muslims"], [("jews", "christians", "muslims")])
    [('the jews and muslims', 'the christians and muslims', 'the muslims and muslims'), \
('the jews and jews', 'the jews and christians', 'the jews and muslims')]
    """
    out = []
    for sentence in sentences:
        words = sentence.split(" ")
        for group in groups:
            for word in group:
                if word in words:
                    out.append(tuple(sentence if other == word else _swap(words, word, other) for other in group))
    return out


def inlp_sentences(lines: list[str], groups: list[tuple[str, ...]], bias_type: str, *, n_per_class: int = 10000,
                   seed: int = 0) -> dict[str, list[str]]:
    """INLP's labelled sentences, by bias-bench's rules (after Liang et al.'s LM_bias): lines shuffled with ``seed``;
    sentences of five or more words; a sentence with attribute words of one class is clipped after a random word
    from its last-found attribute word on; a sentence with none is neutral and clipped after a random word from the
    fourth on; duplicates and sentences of both gender classes are dropped; at most ``n_per_class`` per class.

    Gender has classes ``male`` / ``female`` (first / second word of each pair) and ``neutral``; race and religion
    have ``bias`` (any attribute word) and ``neutral``.
    """
    rng = random.Random(seed)
    lines = list(lines)
    rng.shuffle(lines)
    if bias_type == "gender":
        classes = {"male": {g[0] for g in groups}, "female": {g[1] for g in groups}}
    else:
        classes = {"bias": {w for g in groups for w in g}}
    out: dict[str, list[str]] = {c: [] for c in (*classes, "neutral")}
    seen: dict[str, set[str]] = {c: set() for c in classes}
    for line in lines:
        for sentence in split_sentences(line):
            tokens = sentence.split(" ")
            if len(tokens) < 5:
                continue
            found, idx = set(), -1
            for token in tokens:
                hit = [c for c, words in classes.items() if token in words]
                if hit:
                    found.update(hit)
                    idx = tokens.index(token)
                if len(found) > 1:
                    break
            if not found:
                if len(out["neutral"]) < n_per_class:
                    out["neutral"].append(" ".join(tokens[:rng.randint(4, len(tokens))]))
                continue
            if len(found) > 1:
                continue
            (label,) = found
            if len(out[label]) < n_per_class and sentence not in seen[label]:
                seen[label].add(sentence)
                out[label].append(" ".join(tokens[:rng.randint(idx, len(tokens)) + 1]))
        if all(len(v) >= n_per_class for v in out.values()):
            break
    empty = [c for c, v in out.items() if not v]
    if empty:
        raise DataError(f"INLP {bias_type}: the corpus has no {', '.join(empty)} sentences")
    return out
