"""WinoBias files (uclanlp/corefBias at a pinned commit) read as pro/anti minimal pairs.

Line i of ``pro_stereotyped_typeT.txt.S`` and line i of ``anti_stereotyped_typeT.txt.S`` are the same sentence
with the pronoun(s) of the other gender. A pair is kept when, brackets removed, both sentences have the same
words except gendered pronouns (he/she, him/her, his/her, himself/herself, hers/his); pairs whose sentences also
differ elsewhere (typos, different endings in the originals) are counted and left out, since a likelihood
difference would then not be about the pronoun.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from biasboard.harness.data import DataSource, declare, find
from biasboard.harness.errors import DataError

URL = "https://raw.githubusercontent.com/uclanlp/corefBias/0bce984dd081bbc10b0622f326727a024c607895/WinoBias/wino/data/"
SHA256 = {
    "anti_stereotyped_type1.txt.dev": "a4e0ebae344e78b56f657a42e8ae684b9db7747d177c5e7149c0907ebb7f3bf6",
    "anti_stereotyped_type1.txt.test": "331db5bd74bfefebf146a60b67645152a4a1991570d2a56f57154103ac361dd2",
    "anti_stereotyped_type2.txt.dev": "763ad829ad724f9a85ead689ba8ca69072020cb1238def6210f0fc6a47b97e59",
    "anti_stereotyped_type2.txt.test": "336571ac1ea8c06cd2aba8e5dd2bd98e00acc0c48da3e4ec5ec7e54eb2633a8f",
    "pro_stereotyped_type1.txt.dev": "dd55a0d220fe4c0ceb63dd4648223fb4fe1a58d5ad95c116a002ad24b0e292a5",
    "pro_stereotyped_type1.txt.test": "db7838907238a758eeb5779e48f38c013b892910d6fe864456c59f04245c6689",
    "pro_stereotyped_type2.txt.dev": "8f0250de723cea9328e3eaf7169e07936f01aa5909ce7aa580db66eb803f4e86",
    "pro_stereotyped_type2.txt.test": "ea1c1fd94fa612e3cc44d7fa3cc4cb76021bb63fdf94f9826f430051e9052438",
}
declare("winobias", *(DataSource(f"winobias/{name}", URL + name, sha, "MIT") for name, sha in SHA256.items()))

SPLITS = ("dev", "test")
TYPES = (1, 2)
MALE = {"he": "M", "him": "M", "his": "M", "himself": "M"}
FEMALE = {"she": "F", "her": "F", "hers": "F", "herself": "F"}
PRONOUNS = MALE | FEMALE
LINE = re.compile(r"^(\d+)\s+(.*\S)\s*$")


@dataclass(frozen=True)
class Pair:
    """A pro-stereotypical sentence and its anti-stereotypical twin."""

    id: str
    type: int
    split: str
    pro: str
    anti: str
    pro_gender: str
    """Gender of the pro sentence's pronoun(s): ``M`` or ``F``."""
    referent: str
    """The bracketed occupation the pronoun refers to."""


def relpath(stance: str, wtype: int, split: str) -> str:
    return f"winobias/{stance}_stereotyped_type{wtype}.txt.{split}"


def files(splits=SPLITS) -> list[Path]:
    return [find(relpath(s, t, sp), task="winobias") for sp in splits for t in TYPES for s in ("pro", "anti")]


def _read(path: Path) -> list[tuple[str, str, str]]:
    """(line number as written, sentence without brackets, first bracketed non-pronoun mention) per line."""
    out = []
    for rowno, line in enumerate(path.read_text(encoding="utf8").splitlines(), start=1):
        if not line.strip():
            continue
        m = LINE.match(line)
        if not m:
            raise DataError("expected '<number> <sentence>'", path=path, row=rowno)
        mentions = [x.strip() for x in re.findall(r"\[([^\]]*)\]", m.group(2))]
        referent = next((x for x in mentions if x.lower() not in PRONOUNS), "")
        if not referent:
            raise DataError("no bracketed occupation mention", path=path, row=rowno)
        text = " ".join(m.group(2).replace("[", " ").replace("]", " ").split())
        out.append((m.group(1), text, referent))
    return out


def minimal_difference(pro: str, anti: str) -> str | None:
    """Gender of the pro sentence's pronouns when the two differ only in opposite-gender pronouns, else None.

    >>> minimal_difference("the nurse said she was late", "the nurse said he was late")
    'F'
    >>> minimal_difference("he was careless .", "she was rude .") is None
    True
    """
    a, b = pro.split(), anti.split()
    if len(a) != len(b):
        return None
    genders = set()
    for x, y in zip(a, b):
        if x == y:
            continue
        gx, gy = PRONOUNS.get(x.lower().strip(".,")), PRONOUNS.get(y.lower().strip(".,"))
        if gx is None or gy is None or gx == gy:
            return None
        genders.add(gx)
    return genders.pop() if len(genders) == 1 else None


def load_pairs(splits=SPLITS) -> tuple[list[Pair], int]:
    """(minimal pairs of the given splits, number of line pairs left out as not minimal)."""
    pairs, dropped = [], 0
    for split in splits:
        for wtype in TYPES:
            pro_path = find(relpath("pro", wtype, split), task="winobias")
            anti_path = find(relpath("anti", wtype, split), task="winobias")
            pro, anti = _read(pro_path), _read(anti_path)
            if len(pro) != len(anti):
                raise DataError(f"{len(pro)} lines but {anti_path.name} has {len(anti)}", path=pro_path)
            for row, ((num, p, ref), (num2, a, _)) in enumerate(zip(pro, anti), start=1):
                if num != num2:
                    raise DataError(f"line number {num} pairs with {num2} in {anti_path.name}", path=pro_path,
                                    row=row)
                gender = minimal_difference(p, a)
                if gender is None:
                    dropped += 1
                    continue
                pairs.append(Pair(f"type{wtype}-{split}-{num}", wtype, split, p, a, gender, ref))
    return pairs, dropped
