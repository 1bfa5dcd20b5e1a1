"""HolisticBias sentences for the likelihood-bias evaluation (Smith et al. 2022, ResponsibleNLP ``holistic_bias``).

Which sentences the original bias calculation scores (``run_bias_calculation.py`` filtering the output of
``HolisticBiasSentenceGenerator``): every sentence template x noun x descriptor whose noun phrase holds both a noun
and a descriptor, i.e. "a/an DESCRIPTOR NOUN" (``descriptor_noun``) and the standalone phrases with a ``{noun}`` slot
such as "a NOUN with a disability" (``noun_descriptor``), without gendered descriptors ("Latina"), which would pair
with fewer nouns than the rest. Dispreferred terms stay in, as in the original. No stylistic variants (the original
teacher scores the sentences as generated).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biasboard.harness.data import DataSource, declare, find
from biasboard.harness.errors import DataError

VERSIONS = ("v1.1", "v1.0")
FILES = ("descriptors.json", "nouns.json", "sentence_templates.json", "standalone_noun_phrases.json")
_URL = "https://raw.githubusercontent.com/facebookresearch/ResponsibleNLP/{commit}/holistic_bias/dataset/{rel}"
_COMMIT = "0ec714eb084217f44cd9ac466d9e988c795302f9"
SHA256 = {
    "v1.0/descriptors.json": "355ba8039d83f4b387b6f069ea9cb2374c1c5d2abceb2e99a41e9cab664a90ec",
    "v1.0/nouns.json": "ebd3e490fee3ac391fc2421d61be27ffce5912f476c389fe98aca9be8e660966",
    "v1.0/sentence_templates.json": "8b1cf8fc3c9a10b12cf77902e8c2ff3d80e3fcfff2f177a00256925acb4f53a5",
    "v1.0/standalone_noun_phrases.json": "46d99a89eb36007e32033c1ebca4df36b08ac0f4f1d0ebce2a7242aaa592f06e",
    "v1.1/descriptors.json": "c1328f0edfdeefb76302d360a01878df3db55f18026f4ea1956b4a0f52daf943",
    "v1.1/nouns.json": "9bbe15bf01ea8827fd5d68a81ee2b05e04bd5f79478d9027efec0b4dbd232ee6",
    "v1.1/sentence_templates.json": "8b1cf8fc3c9a10b12cf77902e8c2ff3d80e3fcfff2f177a00256925acb4f53a5",
    "v1.1/standalone_noun_phrases.json": "bac592574f81df55e8c8d8e3919a866d43cbd8df5ae9376a68d95e7b83dbebac",
}
declare("holistic_bias", *(DataSource(f"holistic_bias/{rel}", _URL.format(commit=_COMMIT, rel=rel), digest,
                                      "CC BY-SA 4.0") for rel, digest in SHA256.items()))


@dataclass(frozen=True)
class Sentence:
    """One scored HolisticBias sentence and the cells it belongs to."""

    axis: str
    descriptor: str
    noun: str
    template: str
    text: str


def data_paths(version: str) -> list[Path]:
    """The four dataset files of one version (a DataError naming the missing file otherwise)."""
    return [find(f"holistic_bias/{version}/{name}", task="holistic_bias") for name in FILES]


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _load(path: Path, kind: type):
    try:
        data = json.loads(path.read_text(encoding="utf8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg}", path=path, row=exc.lineno) from None
    if not isinstance(data, kind):
        raise DataError(f"expected a JSON {kind.__name__}", path=path)
    return data


def noun_phrases(version: str) -> dict[str, dict[str, list[tuple[str, str, str]]]]:
    """axis -> descriptor -> [(noun, singular phrase, plural phrase), ...] for every noun the descriptor takes."""
    desc_path, noun_path, _, standalone_path = data_paths(version)
    descriptors, standalone = _load(desc_path, dict), _load(standalone_path, dict)
    nouns = [(str(s), str(p)) for pairs in _load(noun_path, dict).values() for s, p in pairs]
    out: dict[str, dict[str, list[tuple[str, str, str]]]] = {}
    for axis, buckets in descriptors.items():
        if not isinstance(buckets, dict):
            raise DataError("expected {bucket: [descriptor, ...]}", path=desc_path, field=axis)
        for bucket, items in buckets.items():
            for j, item in enumerate(items):
                item = {"descriptor": item} if isinstance(item, str) else item
                if not isinstance(item, dict) or not isinstance(item.get("descriptor"), str):
                    raise DataError("expected a string or an object with 'descriptor'", path=desc_path,
                                    row=f"{axis}/{bucket}[{j}]", field="descriptor")
                if item.get("gender"):
                    continue
                desc, art = item["descriptor"], item.get("article") or _article(item["descriptor"])
                out.setdefault(axis, {}).setdefault(desc, []).extend(
                    (n, f"{art} {desc} {n}", f"{desc} {p}") for n, p in nouns)
    for axis, items in standalone.items():
        for j, item in enumerate(items):
            item = {"noun_phrase": item} if isinstance(item, str) else item
            phrase = item.get("noun_phrase") if isinstance(item, dict) else None
            if not isinstance(phrase, str):
                raise DataError("expected a string or an object with 'noun_phrase'", path=standalone_path,
                                row=f"{axis}[{j}]", field="noun_phrase")
            if "{noun}" not in phrase:
                continue  # fixed phrases without a noun are not in the original comparison
            plural = item.get("plural_noun_phrase", phrase)
            desc = phrase.format(article="", noun="").strip()
            out.setdefault(axis, {}).setdefault(desc, []).extend(
                (n, phrase.format(article=_article(n), noun=n), plural.format(article="", noun=p).strip())
                for n, p in nouns)
    return out


def templates(version: str) -> list[str]:
    path = data_paths(version)[2]
    names = list(_load(path, dict))
    for t in names:
        if "{noun_phrase}" not in t and "{plural_noun_phrase}" not in t:
            raise DataError("template has neither {noun_phrase} nor {plural_noun_phrase}", path=path, field=t)
    return names


def fill(template: str, singular: str, plural: str) -> str:
    """The template with its noun phrase slot filled.

    >>> fill("What do you think about {plural_noun_phrase}?", "a deaf dad", "deaf dads")
    'What do you think about deaf dads?'
    """
    if "{plural_noun_phrase}" in template:
        return template.replace("{plural_noun_phrase}", plural)
    return template.replace("{noun_phrase}", singular)


def select(version: str, *, descriptors_per_axis: int, n_templates: int, seed: int,
           max_axes: int = 0) -> tuple[list[Sentence], dict[str, int]]:
    """The sentences of a seeded subset (0 = all descriptors / templates) and the full counts it was drawn from.

    Descriptors are drawn per axis from the axis's sorted descriptors, templates from the file's order, all with one
    generator seeded by ``seed`` (not the cell seed), so every cell of a matrix scores the same sentences.
    """
    phrases, tmpl = noun_phrases(version), templates(version)
    rng = np.random.default_rng(seed)
    axes = sorted(phrases)[: max_axes or None]
    picked_t = tmpl if not n_templates or n_templates >= len(tmpl) else \
        [tmpl[i] for i in np.sort(rng.choice(len(tmpl), n_templates, replace=False))]
    out: list[Sentence] = []
    full = {"templates": len(tmpl), "descriptors": 0}
    for axis in axes:
        names = sorted(phrases[axis])
        full["descriptors"] += len(names)
        if descriptors_per_axis and descriptors_per_axis < len(names):
            names = [names[i] for i in np.sort(rng.choice(len(names), descriptors_per_axis, replace=False))]
        for desc in names:
            for noun, singular, plural in phrases[axis][desc]:
                for t in picked_t:
                    out.append(Sentence(axis, desc, noun, t, fill(t, singular, plural)))
    return out, full
