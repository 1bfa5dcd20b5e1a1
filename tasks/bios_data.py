"""Readers for the real Bias in Bios data (De-Arteaga et al. 2019) in its public formats.

- Hugging Face ``LabHC/bias_in_bios`` (Ravfogel et al. 2020 split): ``hard_text``, ``profession`` (int 0-27,
  alphabetical), ``gender`` (int; 0 = male, 1 = female), as parquet / jsonl / csv files ``train``, ``dev``, ``test``.
  Both codings are those of the dataset card (README.md of huggingface.co/datasets/LabHC/bias_in_bios, revisions
  7dedfa2 and 052f01d: its tables "Classification labels" and "Sensitive attributes").
- The original release and its pickled copies: records with ``bio`` / ``raw`` / ``hard_text`` / ``text``, a
  ``title`` or ``p`` (profession name) and ``gender`` / ``g`` (``F``/``M``, ``f``/``m``).
Only unpickle files you trust: a pickle can run code.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np

from biasboard.harness.errors import DataError
from biasboard.harness.training import TextDataset

PROFESSIONS = ("accountant", "architect", "attorney", "chiropractor", "comedian", "composer", "dentist", "dietitian",
               "dj", "filmmaker", "interior_designer", "journalist", "model", "nurse", "painter", "paralegal",
               "pastor", "personal_trainer", "photographer", "physician", "poet", "professor", "psychologist",
               "rapper", "software_engineer", "surgeon", "teacher", "yoga_teacher")
"""The 28 occupations, in the index order of ``LabHC/bias_in_bios`` (its dataset card: 0 accountant ... 27
yoga_teacher)."""
HF_GENDER = {0: "male", 1: "female"}
"""``gender`` codes of ``LabHC/bias_in_bios`` (its dataset card: male 0, about 54%; female 1, about 46%)."""
TEXT_FIELDS = ("hard_text", "bio", "hard_text_untokenized", "text", "raw")
LABEL_FIELDS = ("profession", "p", "title")
GENDER_FIELDS = ("gender", "g")
SUFFIXES = (".parquet", ".jsonl", ".json", ".csv", ".pkl", ".pickle")


def _records(path: Path) -> list[dict]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet" or suffix == ".csv":
            import pandas as pd

            frame = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
            return frame.to_dict("records")
        if suffix == ".jsonl":
            rows = []
            with open(path, encoding="utf8") as fh:
                for lineno, line in enumerate(fh, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise DataError(f"not valid JSON ({exc.msg})", path=path, row=lineno) from None
            return rows
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf8"))
            return data if isinstance(data, list) else data.get("data", [])
        if suffix in (".pkl", ".pickle"):
            with open(path, "rb") as fh:
                data = pickle.load(fh)
            if hasattr(data, "to_dict"):
                return data.to_dict("records")
            return list(data)
    except DataError:
        raise
    except Exception as exc:  # unreadable file: say which and why
        raise DataError(f"cannot read ({type(exc).__name__}: {exc})", path=path) from exc
    raise DataError(f"unknown format {suffix!r}; expected one of {SUFFIXES}", path=path)


def _field(rec: dict, names: tuple[str, ...], path: Path, row: int, what: str):
    for name in names:
        if name in rec and rec[name] is not None and not (isinstance(rec[name], float) and np.isnan(rec[name])):
            return name, rec[name]
    raise DataError(f"missing {what} (expected one of {list(names)})", path=path, row=row, field=names[0])


def _profession(value, path: Path, row: int, field: str) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if 0 <= int(value) < len(PROFESSIONS):
            return int(value)
    elif isinstance(value, str):
        name = value.strip().lower().replace(" ", "_").replace("-", "_")
        if name in PROFESSIONS:
            return PROFESSIONS.index(name)
    raise DataError(f"unknown profession {value!r}; expected 0-27 or one of {list(PROFESSIONS)}",
                    path=path, row=row, field=field)


def _gender(value, path: Path, row: int, field: str) -> str:
    if isinstance(value, (int, np.integer)) and int(value) in HF_GENDER:
        return HF_GENDER[int(value)]
    if isinstance(value, str) and value.strip().lower() in ("f", "female", "m", "male"):
        return "female" if value.strip().lower().startswith("f") else "male"
    raise DataError(f"unknown gender {value!r}; expected 0/1 (1 = female), F/M or female/male",
                    path=path, row=row, field=field)


def read_bios(path: str | Path) -> TextDataset:
    """One file of bios -> TextDataset (labels index ``PROFESSIONS``, groups female/male). Rows count from 1."""
    path = Path(path)
    texts, labels, groups, ids = [], [], [], []
    for row, rec in enumerate(_records(path), 1):
        if not isinstance(rec, dict):
            raise DataError(f"expected a record, got {type(rec).__name__}", path=path, row=row)
        tf, text = _field(rec, TEXT_FIELDS, path, row, "biography text")
        if not isinstance(text, str) or not text.strip():
            raise DataError("empty or non-text biography", path=path, row=row, field=tf)
        lf, label = _field(rec, LABEL_FIELDS, path, row, "profession")
        gf, gender = _field(rec, GENDER_FIELDS, path, row, "gender")
        texts.append(text)
        labels.append(_profession(label, path, row, lf))
        groups.append(_gender(gender, path, row, gf))
        ids.append(f"{path.stem}-{row}")
    if not texts:
        raise DataError("no biographies", path=path)
    return TextDataset(texts=tuple(texts), labels=tuple(labels), ids=tuple(ids), groups=tuple(groups),
                       axis="gender", label_names=PROFESSIONS)


def find_split_files(folder: Path) -> dict[str, Path]:
    """``{"train": ..., "dev": ..., "test": ...}`` (HF split files) or ``{"all": ...}`` (one original file)."""
    found = {}
    for split in ("train", "dev", "test"):
        for suffix in SUFFIXES:
            hits = sorted(folder.glob(f"*{split}*{suffix}"))
            if hits:
                found[split] = hits[0]
                break
    if len(found) == 3:
        return found
    singles = [p for s in SUFFIXES for p in sorted(folder.glob(f"*{s}"))]
    if len(singles) == 1:
        return {"all": singles[0]}
    raise DataError(f"expected train/dev/test files or a single BIOS file (one of {SUFFIXES}), found "
                    f"{[p.name for p in singles] or 'nothing'}", path=folder)
