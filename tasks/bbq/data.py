"""BBQ data: the eleven category files at the pinned nyu-mll/BBQ commit, a strict reader, and the bias target.

The bias target of each example (``target_loc``) is derived as the authors' ``BBQ_results_metadata.R`` derives the
``additional_metadata.csv`` that ``BBQ_calculate_bias_score.R`` reads (that csv is not in our data folder): an
answer is the target when its group (``answer_info``) occurs in the example's stereotyped groups, with the
script's fixes for Age (exact old / nonOld), Nationality (the answer text), "African" vs "African American" and
trans; for non-negative questions the target is the *other* non-unknown answer; an example where more than one
answer matches, or none, has no target and is left out of every metric, as the script leaves it out.
The stereotyped groups come from the example's ``additional_metadata.stereotyped_groups`` (the script read the
same lists from the template files). Intersectional categories (Race_x_SES, Race_x_gender) need template columns
the jsonl does not carry, so their examples are left out with a note.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from biasboard.harness.data import DataSource, declare
from biasboard.harness.paths import data_dirs
from biasboard.harness.errors import DataError

COMMIT = "bea11bd97d79217245b5871acd247b9d6eb24598"
URL = f"https://raw.githubusercontent.com/nyu-mll/BBQ/{COMMIT}/data/"
LICENSE = "CC BY 4.0"
# category -> (sha256 when we had the file to hash, git blob id in the pinned commit's tree)
FILES = {
    "Age": ("46e805b3fc2d8cbd26eeb8e8430d98cf7b2dc9c83574ff3674e8ce4f0fca2a60",
            "5c5e7586163b869fe029e77e63716f2026e4ae08"),
    "Disability_status": ("375d40d9b71f056150264445ec189b13934998f3f49a1e311aa7578eb3b45e5f",
                          "9aedeccaf599299cdfa523531d625ae85ecb9131"),
    "Gender_identity": ("", "dc79ceaaa9e7126edc99a200d632899c50274b16"),
    "Nationality": ("a583e74666aec0341ded8aa3983e7cad694eb24de72c254d28b2df3035720090",
                    "cba9b63d34536cb51a6cbae76b189df3d2a945c0"),
    "Physical_appearance": ("e48d7e13508565f4801574e611043470c25c95a0a62af3699cb5ee7cb02608fb",
                            "8cbdf83265459083224e3a2d37809294ff12ad77"),
    "Race_ethnicity": ("", "68daf3d692b27a10596772b3b15742b26f0b110e"),
    "Race_x_SES": ("", "905cd8a5b8734e2063fe524e69a38f0a71c75907"),
    "Race_x_gender": ("", "dd09a905b284690445d36259d675243950fa0bd7"),
    "Religion": ("cb9555f9f3454a52cd2df85956b59bd7fcca5aa922c8527693b1164d08417616",
                 "44c1940ee22f00891ab4a5526a293691957aeacb"),
    "SES": ("", "78d11ffbdb70f501617345e5c697d00045d57c29"),
    "Sexual_orientation": ("2c71036b9e7584fe589c42aef32c1a42bc01b9a5e9b1b8704342630cdb08cefd",
                           "a06351f4dd67ba30632396eeb0c3677c67b7d387"),
}
CATEGORIES = tuple(FILES)
INTERSECTIONAL = ("Race_x_SES", "Race_x_gender")
declare("bbq", *(DataSource(f"bbq/data/{c}.jsonl", f"{URL}{c}.jsonl", sha, LICENSE, git_blob_sha1=blob)
                 for c, (sha, blob) in FILES.items()))

FIELDS = ("example_id", "question_index", "question_polarity", "context_condition", "category", "answer_info",
          "additional_metadata", "context", "question", "ans0", "ans1", "ans2", "label")


@dataclass(frozen=True)
class Example:
    """One BBQ question with the fields the metrics need."""

    id: str
    category: str
    example_id: int
    question_index: str
    polarity: str
    condition: str
    context: str
    question: str
    answers: tuple[str, str, str]
    answer_text: tuple[str, str, str]
    answer_info: tuple[str, str, str]
    stereotyped_groups: tuple[str, ...]
    label: int
    target_loc: int | None

    @property
    def label_type(self) -> str:
        """The script's rule for non-intersectional templates: question ids above 25 use proper names."""
        return "name" if int(self.question_index) > 25 else "label"

    @property
    def unknown_loc(self) -> int | None:
        """Index of the "unknown" answer (raw ``answer_info`` group, as the bias-score script filters on)."""
        return next((i for i, g in enumerate(self.answer_info) if g.lower() == "unknown"), None)


def category_files() -> dict[str, Path]:
    """The category files found in the first data folder that has any (the loader takes what it finds)."""
    for root in data_dirs():
        found = {c: root / "bbq" / "data" / f"{c}.jsonl" for c in CATEGORIES}
        found = {c: p.resolve() for c, p in found.items() if p.exists()}
        if found:
            return found
    raise DataError(f"no BBQ category file found under bbq/data/ in {', '.join(map(str, data_dirs()))}; "
                    "run `biasboard data fetch bbq` or set BIASBOARD_DATA_DIR")


def _normal_group(g: str) -> str:
    """The script's normalisation of an answer's group: man/boy -> M, woman/girl -> F, "M-"/"F-" removed."""
    g = {"man": "M", "boy": "M", "woman": "F", "girl": "F"}.get(g, g)
    return g.replace("M-", "", 1).replace("F-", "", 1)


def _normal_groups(groups: tuple[str, ...]) -> str:
    """The stereotyped groups as the one string the script searches in, with its normalisations."""
    s = ", ".join(groups)
    low = s.lower()
    if low in ("man", "boy", "men"):
        return "M"
    if low in ("woman", "women", "girl", "girls"):
        return "F"
    if low in ("transgender women, transgender men", "transgender men", "transgender women",
               "transgender women, transgender men, trans"):
        return "trans"
    return {"low SES": "lowSES", "high SES": "highSES"}.get(s, s)


def target_location(category: str, polarity: str, texts: tuple[str, ...], infos: tuple[str, ...],
                    groups: tuple[str, ...]) -> int | None:
    """Index of the answer that is the bias target, or None (BBQ_results_metadata.R, non-intersectional part).

    >>> target_location("Age", "neg", ("grandfather", "grandson", "Unknown"), ("old", "nonOld", "unknown"), ("old",))
    0
    >>> target_location("Age", "nonneg", ("grandfather", "grandson", "Unknown"), ("old", "nonOld", "unknown"), ("old",))
    1
    """
    known = _normal_groups(groups)
    kl = known.lower()
    infos = tuple(_normal_group(g) for g in infos)
    texts = tuple(t.replace("{", "").replace("}", "") for t in texts)
    hit = [int(g.lower() in kl) for g in infos]
    if category == "Age":
        hit = [int((known == "nonOld" and g == "nonOld") or (known == "old" and g == "old")) for g in infos]
    if category == "Nationality":
        hit = [1 if t.lower() in kl else h for t, h in zip(texts, hit)]
    hit = [0 if t == "African" and "african american" in kl else h for t, h in zip(texts, hit)]
    hit = [1 if known == "trans" and g.startswith("trans") else h for g, h in zip(infos, hit)]
    if sum(hit) != 1:
        return None  # none, or more than one answer matched: the script's NA
    loc = hit.index(1)
    if polarity == "neg":
        return loc
    return next((i for i in range(3) if i != loc and infos[i] != "unknown"), None)


def load_category(path: Path) -> list[Example]:
    """Read one category file, failing on the first malformed row with file, row and field named."""
    out = []
    with open(path, encoding="utf8") as fh:
        for rowno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"not JSON ({exc.msg})", path=path, row=rowno) from None
            for fld in FIELDS:
                if fld not in row:
                    raise DataError("missing field", path=path, row=rowno, field=fld)
            if row["question_polarity"] not in ("neg", "nonneg"):
                raise DataError(f"{row['question_polarity']!r} is not neg/nonneg", path=path, row=rowno,
                                field="question_polarity")
            if row["context_condition"] not in ("ambig", "disambig"):
                raise DataError(f"{row['context_condition']!r} is not ambig/disambig", path=path, row=rowno,
                                field="context_condition")
            if row["label"] not in (0, 1, 2):
                raise DataError(f"{row['label']!r} is not 0, 1 or 2", path=path, row=rowno, field="label")
            info = row["answer_info"]
            try:
                pairs = [info[f"ans{i}"] for i in range(3)]
                texts, groups = tuple(str(p[0]) for p in pairs), tuple(str(p[1]) for p in pairs)
            except (KeyError, IndexError, TypeError):
                raise DataError("needs ans0..ans2, each [text, group]", path=path, row=rowno,
                                field="answer_info") from None
            stereo = row["additional_metadata"].get("stereotyped_groups")
            if not isinstance(stereo, list):
                raise DataError("not a list", path=path, row=rowno, field="additional_metadata.stereotyped_groups")
            stereo = tuple(str(s) for s in stereo)
            category = str(row["category"])
            target = None if category in INTERSECTIONAL else target_location(
                category, row["question_polarity"], texts, groups, stereo)
            out.append(Example(f"{category}-{row['example_id']}", category, int(row["example_id"]),
                               str(row["question_index"]), row["question_polarity"], row["context_condition"],
                               row["context"], row["question"], (row["ans0"], row["ans1"], row["ans2"]), texts,
                               groups, stereo, int(row["label"]), target))
    if not out:
        raise DataError("no rows", path=path)
    return out
