"""Reading SEAT / WEAT test files (W4ngatang/sent-bias format) and the WEFE transcription of the WEAT lists.

A sent-bias test file (named ``.jsonl`` but holding one JSON object) has four sets ``targ1, targ2, attr1, attr2``,
each ``{"category": str, "examples": [str, ...]}``. As in the original (which keys encodings by text), a
repeated example inside one set counts once.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from biasboard.harness.data import DataSource, declare
from biasboard.harness.errors import DataError

SETS = ("targ1", "targ2", "attr1", "attr2")

SENT_BIAS = "https://raw.githubusercontent.com/W4ngatang/sent-bias/e3559fb669ca4832743b42fee715994c15c7f1af/tests/"
BIAS_BENCH = "https://raw.githubusercontent.com/McGill-NLP/bias-bench/291426aab926f78ecfc7bd040b531429ee8123e0/data/seat/"
WEFE = ("https://raw.githubusercontent.com/dccuchile/wefe/1998132a3e809481a7456d952f7473d191990946/"
        "wefe/datasets/data/WEAT.json")


@dataclass(frozen=True)
class SeatTest:
    """One association test: targets X (targ1) and Y (targ2), attributes A (attr1) and B (attr2)."""

    name: str
    """Test name, the file name without extension (e.g. ``sent-weat6``)."""
    x: tuple[str, ...]
    y: tuple[str, ...]
    a: tuple[str, ...]
    b: tuple[str, ...]
    categories: tuple[str, str, str, str]
    """Category labels of X, Y, A, B (e.g. MaleNames, FemaleNames, Career, Family)."""


def load_test(path: str | Path, name: str | None = None) -> SeatTest:
    """Parse one sent-bias test file, naming file and field on any malformed input."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg}", path=path, row=exc.lineno) from None
    if not isinstance(data, dict):
        raise DataError("expected one JSON object with targ1, targ2, attr1, attr2", path=path)
    sets, cats = [], []
    for key in SETS:
        entry = data.get(key)
        if not isinstance(entry, dict) or not isinstance(entry.get("examples"), list):
            raise DataError("missing or not an object with an 'examples' list", path=path, field=key)
        examples = entry["examples"]
        for i, ex in enumerate(examples):
            if not isinstance(ex, str) or not ex.strip():
                raise DataError(f"example {i} is not a non-empty string: {ex!r}", path=path, field=f"{key}.examples")
        if not examples:
            raise DataError("empty 'examples' list", path=path, field=key)
        sets.append(tuple(dict.fromkeys(examples)))
        cats.append(str(entry.get("category", key)))
    return SeatTest(name or path.name.removesuffix(".jsonl"), *sets, categories=tuple(cats))


# The WEFE file names each list; these are the ten Caliskan et al. (2017) tests built from them.
WEFE_TESTS = {
    "weat1": ("flowers", "insects", "pleasant_5", "unpleasant_5a"),
    "weat2": ("instruments", "weapons", "pleasant_5", "unpleasant_5a"),
    "weat3": ("european_american_names_5", "african_american_names_5", "pleasant_5", "unpleasant_5b"),
    "weat4": ("european_american_names_7", "african_american_names_7", "pleasant_5", "unpleasant_5b"),
    "weat5": ("european_american_names_7", "african_american_names_7", "pleasant_9", "unpleasant_9"),
    "weat6": ("male_names", "female_names", "career", "family"),
    "weat7": ("math", "arts", "male_terms", "female_terms"),
    "weat8": ("science", "arts_2", "male_terms_2", "female_terms_2"),
    "weat9": ("mental_disease", "physical_disease", "temporary", "permanent"),
    "weat10": ("young_people_names", "old_people_names", "pleasant_9", "unpleasant_9"),
}


def load_wefe_tests(path: str | Path) -> list[SeatTest]:
    """The ten Caliskan WEAT tests from WEFE's ``WEAT.json`` (an independent transcription of the word lists)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg}", path=path, row=exc.lineno) from None
    tests = []
    for name, keys in WEFE_TESTS.items():
        sets = []
        for key in keys:
            words = data.get(key)
            if not isinstance(words, list) or not words or not all(isinstance(w, str) and w for w in words):
                raise DataError("missing or not a non-empty list of words", path=path, field=key)
            sets.append(tuple(dict.fromkeys(words)))
        tests.append(SeatTest(name, *sets, categories=keys))
    return tests


def declare_sources(task: str, relpaths_sha: dict[str, str]) -> None:
    """Declare the original URL of each test file (sent-bias, bias-bench religion tests, WEFE) for ``data fetch``."""
    for relpath, sha in relpaths_sha.items():
        name = relpath.rsplit("/", 1)[-1]
        if relpath.endswith("WEAT.json"):
            url, lic = WEFE, "MIT"
        elif "bias_bench_religion" in relpath:
            url, lic = BIAS_BENCH + name, "none stated"
        else:
            url, lic = SENT_BIAS + name, "CC BY-NC 4.0"
        declare(task, DataSource(relpath, url, sha, lic))
