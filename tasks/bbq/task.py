"""BBQ (Parrish et al., Findings of ACL 2022): bias in question answering, ambiguous vs disambiguated contexts.

A causal LM answers by the log-likelihood of each of the three answers given the context and question, the
multiple-choice convention of lm-evaluation-harness (``bbq_multiple_choice``; HELM scores BBQ the same way):

    context:       "{context}\\n\\nQ: {question}\\nA:"
    continuation:  " {answer}"

The prediction is the answer with the highest summed log-likelihood (lm-eval ``acc``; the first on a tie); the
length-normalised choice (lm-eval ``acc_norm``: log-likelihood / characters of the continuation) is reported as
``accuracy_norm`` only. Masked LMs are not scored: the BBQ authors' encoder baselines are RoBERTa/DeBERTa
fine-tuned with a multiple-choice head on RACE, and no published protocol scores BBQ answers by pseudo-log-
likelihood, so this task is clm only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from biasboard.harness.digest import files_sha256
from biasboard.harness.errors import DataError
from biasboard.harness.models import scoring
from biasboard.harness.registry import register_task
from biasboard.harness.specs import Metric, RunContext, Task, TaskResult, Variant
from biasboard.harness.stats import mean_ci
from biasboard.tasks.bbq.data import INTERSECTIONAL, Example, category_files, load_category
from biasboard.tasks.bbq.metrics import condition_metrics, indicators
from biasboard.tasks.sampling import eval_sample

PROMPT = "{context}\n\nQ: {question}\nA:"
"""lm-evaluation-harness ``bbq_multiple_choice`` ``doc_to_text``; each answer follows after one space."""


def prompt(ex: Example) -> str:
    return PROMPT.format(context=ex.context, question=ex.question)


def load_examples() -> tuple[list[Example], list[Path], list[str]]:
    """Every example with a bias target from the category files found, the files, and notes on what was left out."""
    files = category_files()
    examples, notes = [], []
    for category, path in files.items():
        rows = load_category(path)
        kept = [e for e in rows if e.target_loc is not None]
        if category in INTERSECTIONAL:
            notes.append(f"{category}: left out ({len(rows)} examples); its bias target needs the template columns "
                         "Known_stereotyped_race/var2, which the jsonl does not carry")
        elif len(kept) < len(rows):
            notes.append(f"{category}: {len(rows) - len(kept)} examples without a unique bias target left out, "
                         "as BBQ_calculate_bias_score.R leaves out examples with no target_loc")
        examples += kept
    missing = [c for c in ("Age", "Disability_status", "Gender_identity", "Nationality", "Physical_appearance",
                           "Race_ethnicity", "Race_x_SES", "Race_x_gender", "Religion", "SES", "Sexual_orientation")
               if c not in files]
    if missing:
        notes.append(f"{len(files)} of 11 categories found; missing: {', '.join(missing)} "
                     "(`biasboard data fetch bbq` gets them)")
    if not examples:
        raise DataError("no BBQ example with a bias target in the category files found")
    return examples, sorted(files.values()), notes


def score_answers(handle, examples: list[Example], ctx: RunContext) -> np.ndarray:
    """Summed log-likelihood of each answer given its prompt: an (n, 3) array."""
    contexts = scoring.tokenize(handle, [prompt(e) for e in examples], add_special_tokens=False)
    answers = scoring.tokenize(handle, [" " + a for e in examples for a in e.answers], add_special_tokens=False)
    lps = scoring.continuation_logprobs(handle, [c for c in contexts for _ in range(3)], answers,
                                        batch_size=ctx.batch_size, progress=ctx.progress)
    return np.array([lp.sum() for lp in lps]).reshape(len(examples), 3)


@register_task
class BBQ(Task):
    name = "bbq"
    version = "1.0"
    description = ("BBQ: multiple-choice QA over ambiguous and disambiguated contexts; accuracy and the bias "
                   "scores s_AMB / s_DIS per category.")
    citation = ("Parrish, Chen, Nangia, Padmakumar, Phang, Thompson, Htut, Bowman. BBQ: A Hand-Built Bias Benchmark "
                "for Question Answering. Findings of ACL 2022.")
    families = ("clm",)
    axis = "multiple"
    variants = {
        "causal_mc": Variant("lm-evaluation-harness bbq_multiple_choice: answer = argmax summed log-likelihood of "
                             "' {answer}' after '{context}\\n\\nQ: {question}\\nA:'; s_AMB/s_DIS as "
                             "BBQ_calculate_bias_score.R (Parrish et al. 2022)", ("clm",)),
    }
    default_variant = "causal_mc"

    def data_files(self, variant: str) -> list[Path]:
        return sorted(category_files().values())

    def evaluate(self, handle, variant: str, ctx: RunContext) -> TaskResult:
        examples, files, notes = load_examples()
        if ctx.extra.get("max_examples"):
            examples = examples[: int(ctx.extra["max_examples"])]
        examples, flags, sample_notes = eval_sample(examples, ctx.extra, what="examples")
        ll = score_answers(handle, examples, ctx)
        chars = np.array([[len(" " + a) for a in e.answers] for e in examples], dtype=float)
        pred, pred_norm = ll.argmax(1), (ll / chars).argmax(1)
        label = np.array([e.label for e in examples])
        correct, target, non_unknown = indicators(pred, label, [e.target_loc for e in examples],
                                                  [e.unknown_loc for e in examples])
        condition = np.array([e.condition for e in examples])
        seed, nb = ctx.seed, ctx.n_bootstrap
        metrics = condition_metrics(correct, target, non_unknown, condition, n_bootstrap=nb, seed=seed)
        v, c = mean_ci(correct, scale=100.0, n_resamples=nb, seed=seed)
        metrics["accuracy"] = Metric(v, len(examples), 100.0, "max", c, unit="%",
                                     description="accuracy over all contexts (lm-eval acc: summed log-likelihood)")
        v, c = mean_ci(pred_norm == label, scale=100.0, n_resamples=nb, seed=seed)
        metrics["accuracy_norm"] = Metric(v, len(examples), 100.0, "max", c, unit="%",
                                          description="accuracy choosing by log-likelihood per character "
                                                      "(lm-eval acc_norm); not used by the bias scores")
        groups = {}
        keys = np.array([f"{e.category} (names)" if e.label_type == "name" else e.category for e in examples])
        for key in sorted(set(keys)):
            sel = keys == key
            groups[key] = condition_metrics(correct[sel], target[sel], non_unknown[sel], condition[sel],
                                            n_bootstrap=nb, seed=seed)
        rows = [{"id": e.id, "category": e.category, "context_condition": e.condition,
                 "question_polarity": e.polarity, "label": e.label, "target_loc": e.target_loc,
                 "unknown_loc": e.unknown_loc, "pred": int(p), "pred_norm": int(pn),
                 "ll": [float(x) for x in lrow], "correct": int(cr), "target_selected": int(t),
                 "non_unknown": int(u)}
                for e, p, pn, lrow, cr, t, u in zip(examples, pred, pred_norm, ll, correct, target, non_unknown)]
        return TaskResult(metrics, groups, rows, notes + sample_notes, flags=flags, data_sha256=files_sha256(files),
                          axis=self.axis)

