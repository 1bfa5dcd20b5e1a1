"""Counterfactual data augmentation (CDA): swap bias attribute words in text, two-sided.

Definitions followed: Zmigrod et al. (ACL 2019) and Webster et al. (2020) augment a corpus with counterfactual copies
of its sentences; bias-bench (Meade et al., ACL 2022) trains on the sentences that contain an attribute word, each
kept and also added with its words swapped ("two-sided"), and drops the rest. Word lists:

- ``bias_bench``: bias-bench's ``bias_attribute_words.json`` (../shared/data/bias_attribute_words). Gender has 57
  (male, female) pairs; race and religion have 3-term tuples. A word in several tuples takes its partners from the
  last tuple that holds it, as bias-bench's loop over the list does (``her`` -> ``his``, ``lady`` -> ``lord``,
  ``girl`` -> ``guy``).
- ``winobias`` (gender only): WinoBias' ``generalized_swaps.txt`` (Zhao et al. 2018), directed word -> partner.

Swaps: a 2-term tuple maps each word to the other term. For n-term tuples (race, religion) bias-bench draws, once per
sentence, a target column for every source column among the other columns (with 3 terms, column 0 -> 1 or 2, ...;
two columns may map to the same target), so all words of one column change the same way within a sentence; here the
draw comes from a generator seeded by (seed, row), so augmentation is reproducible.

Matching differs from bias-bench on purpose: bias-bench splits decoded text on whitespace and compares tokens
exactly (lower case for uncased models, with one of ``. , ? ! ; :`` allowed after the word), so ``He`` in cased text
or ``(he`` are missed there. Here a word matches case-insensitively between non-word characters, the replacement
takes the original's casing (``He`` -> ``She``, ``HIS`` -> ``HER``) and every other character of the sentence is
kept as it was.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from biasboard.harness import data as hdata
from biasboard.harness.errors import DataError

BIAS_TYPES = ("gender", "race", "religion")
WORD_LISTS = ("bias_bench", "winobias")
ATTRIBUTE_FILE = "bias_attribute_words/bias_attribute_words.json"
WINOBIAS_SWAPS = "winobias/generalized_swaps.txt"


@dataclass(frozen=True)
class SwapTable:
    """Attribute words of one bias type: each word's tuple and its column in that tuple."""

    bias_type: str
    source: str
    entries: dict[str, tuple[tuple[str, ...], int]]
    """Lower-case word -> (the tuple whose terms it swaps with, the word's column in it)."""
    pattern: re.Pattern

    @property
    def width(self) -> int:
        """Terms per tuple (2 for gender, 3 for bias-bench's race and religion)."""
        return max(len(t) for t, _ in self.entries.values())


def _table(bias_type: str, source: str, tuples: list[tuple[str, ...]], *, directed: bool = False) -> SwapTable:
    """``directed``: only each tuple's first term is looked up (a word -> partner list)."""
    entries: dict[str, tuple[tuple[str, ...], int]] = {}
    for terms in tuples:
        for column, word in enumerate(terms[:1] if directed else terms):
            entries[word.lower()] = (terms, column)  # a later tuple replaces an earlier one (bias-bench's loop)
    words = sorted(entries, key=lambda w: (-len(w), w))
    pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.IGNORECASE)
    return SwapTable(bias_type, source, entries, pattern)


def _bias_bench_tuples(bias_type: str) -> list[tuple[str, ...]]:
    path = hdata.find(ATTRIBUTE_FILE)
    try:
        lists = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"not valid JSON: {exc}", path=path) from None
    if bias_type not in lists:
        raise DataError(f"no {bias_type!r} word list; lists: {', '.join(lists)}", path=path)
    out = []
    for i, terms in enumerate(lists[bias_type]):
        if not (isinstance(terms, list) and len(terms) >= 2 and all(isinstance(t, str) and t for t in terms)):
            raise DataError("expected a list of two or more words", path=path, row=f"{bias_type}[{i}]")
        out.append(tuple(terms))
    return out


def _winobias_tuples() -> list[tuple[str, ...]]:
    path = hdata.find(WINOBIAS_SWAPS)
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DataError("expected 'word<TAB>partner'", path=path, row=i)
        out.append((parts[0], parts[1]))  # directed: the word's partner is in column 1 of its own tuple
    return out


@lru_cache(maxsize=None)
def swap_table(bias_type: str = "gender", source: str = "bias_bench") -> SwapTable:
    """The attribute words of ``bias_type`` from the named word list (see the module docstring)."""
    if bias_type not in BIAS_TYPES:
        raise DataError(f"CDA bias_type {bias_type!r}; valid: {', '.join(BIAS_TYPES)}")
    if source not in WORD_LISTS:
        raise DataError(f"CDA word list {source!r}; valid: {', '.join(WORD_LISTS)}")
    if source == "winobias":
        if bias_type != "gender":
            raise DataError("the winobias word list has gender swaps only; use word_list bias_bench for "
                            f"{bias_type}")
        return _table(bias_type, source, _winobias_tuples(), directed=True)
    return _table(bias_type, source, _bias_bench_tuples(bias_type))


def draw_targets(width: int, rng: np.random.Generator) -> list[int]:
    """For each column, the column its words become: uniformly one of the others (one draw per sentence).

    >>> draw_targets(2, np.random.default_rng(0))
    [1, 0]
    """
    out = []
    for column in range(width):
        others = [c for c in range(width) if c != column]
        out.append(others[int(rng.integers(len(others)))] if len(others) > 1 else others[0])
    return out


def match_case(original: str, word: str) -> str:
    """``word`` written in the casing of ``original``: all capitals, capitalised, or as listed.

    >>> match_case("HE", "she"), match_case("Mr.", "mrs."), match_case("his", "her")
    ('SHE', 'Mrs.', 'her')
    """
    letters = [c for c in original if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return word.upper()
    if letters and letters[0].isupper():
        return word[:1].upper() + word[1:]
    return word


def counterfactual(text: str, table: SwapTable, rng: np.random.Generator | None = None) -> str | None:
    """``text`` with every attribute word swapped, or None when it has none. ``rng`` draws the n-way targets
    (needed only when the table has tuples of more than two terms).

    >>> t = swap_table("gender")
    >>> counterfactual("He thanked his mother.", t)
    'She thanked her father.'
    >>> counterfactual("The weather is fine.", t) is None
    True
    """
    targets: dict[int, list[int]] = {}
    changed = False

    def swap(m: re.Match) -> str:
        nonlocal changed
        terms, column = table.entries[m.group(0).lower()]
        if len(terms) == 2:
            target = 1 - column
        else:
            if rng is None:
                raise ValueError("n-way swaps need a random generator")
            if len(terms) not in targets:
                targets[len(terms)] = draw_targets(len(terms), rng)
            target = targets[len(terms)][column]
        changed = True
        return match_case(m.group(0), terms[target])

    out = table.pattern.sub(swap, text)
    return out if changed else None


@dataclass(frozen=True)
class Augmented:
    """A two-sided CDA corpus and its counts."""

    texts: tuple[str, ...]
    kinds: tuple[str, ...]
    """``original``, ``counterfactual`` or ``unmatched`` (kept only with ``keep_unmatched``), per text."""
    matched: int
    """Source sentences that held an attribute word."""
    source_size: int


def augment(texts, table: SwapTable, *, seed: int = 0, keep_unmatched: bool = False) -> Augmented:
    """Two-sided CDA: each sentence with an attribute word is kept and its counterfactual is added after it;
    sentences without one are dropped (bias-bench) unless ``keep_unmatched``.

    >>> a = augment(["she left.", "it rained."], swap_table("gender"))
    >>> a.texts, a.kinds, a.matched
    (('she left.', 'he left.'), ('original', 'counterfactual'), 1)
    """
    out, kinds, matched = [], [], 0
    texts = list(texts)
    for row, text in enumerate(texts):
        flipped = counterfactual(text, table, np.random.default_rng([seed, row]))
        if flipped is None:
            if keep_unmatched:
                out.append(text)
                kinds.append("unmatched")
            continue
        matched += 1
        out += [text, flipped]
        kinds += ["original", "counterfactual"]
    return Augmented(tuple(out), tuple(kinds), matched, len(texts))
