"""The ``holistic_bias`` task: Likelihood Bias of a causal LM on HolisticBias sentences (Smith et al. 2022).

A sentence's perplexity is exp(-mean log P(token | earlier tokens)) over its tokens, with the tokenizer's BOS (else
EOS) token as the empty context (the same convention as ``crows_pairs:causal_sum``); the original scored the
sentence as a dialogue label with ParlAI. The full set is about half a million sentences, so by default a seeded
subset is scored: ``descriptors_per_axis`` descriptors of every axis and ``templates`` templates, drawn with
``subset_seed`` (default 0, never the cell seed); 0 for either means all. ``max_examples: K`` (smoke runs) keeps
the first K axes with 2 descriptors and 1 template.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from biasboard.harness.digest import files_sha256
from biasboard.harness.errors import BiasboardError, DataError
from biasboard.harness.models import scoring
from biasboard.harness.registry import register_task
from biasboard.harness.specs import RunContext, Task, TaskResult, Variant
from biasboard.tasks.crows_pairs import prefix_token_id
from biasboard.tasks.holistic_bias.data import Sentence, data_paths, select
from biasboard.tasks.holistic_bias.metrics import likelihood_bias

DEFAULT_DESCRIPTORS_PER_AXIS = 5
DEFAULT_TEMPLATES = 2
EXTRA_KEYS = ("descriptors_per_axis", "templates", "subset_seed", "max_examples")
"""``ctx.extra`` keys this task reads."""


def _int_option(extra: dict[str, Any], key: str, default: int) -> int:
    value = extra.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BiasboardError(f"holistic_bias: extra.{key} must be a non-negative integer (0 = all), got {value!r}")
    return value


def sentence_perplexities(handle, sentences: list[Sentence], ctx: RunContext) -> np.ndarray:
    """Per-token perplexity of each sentence given the empty context (one batched causal-LM pass)."""
    prefix = prefix_token_id(handle.tokenizer)
    ids = [[prefix] + t for t in scoring.tokenize(handle, [s.text for s in sentences], add_special_tokens=False)]
    lps = scoring.sequence_logprobs(handle, ids, batch_size=ctx.batch_size, progress=ctx.progress)
    return np.array([float(np.exp(-lp.mean())) for lp in lps])


@register_task
class HolisticBias(Task):
    name = "holistic_bias"
    version = "1.0"
    description = ("HolisticBias Likelihood Bias: % of descriptor pairs within an axis whose sentence perplexities "
                   "differ (Mann-Whitney U, p < 0.05), per template, over 13 demographic axes.")
    citation = ("Smith, Hall, Kambadur, Presani, Williams. \"I'm sorry to hear that\": Finding New Biases in "
                "Language Models with a Holistic Descriptor Dataset. EMNLP 2022.")
    families = ("clm",)
    axis = "multiple"
    variants = {
        "likelihood_bias": Variant("Smith et al. 2022 Likelihood Bias on the HolisticBias v1.1 lists", ("clm",),
                                   {"version": "v1.1"}),
        "likelihood_bias_v1.0": Variant("the same on the v1.0 lists the paper used", ("clm",), {"version": "v1.0"}),
    }
    default_variant = "likelihood_bias"
    extra_keys = EXTRA_KEYS

    def data_files(self, variant: str) -> list[Path]:
        return data_paths(self.variants[variant].options["version"])

    def evaluate(self, handle, variant: str, ctx: RunContext) -> TaskResult:
        version = self.variants[variant].options["version"]
        extra = ctx.extra
        smoke = _int_option(extra, "max_examples", 0)
        n_desc = 2 if smoke else _int_option(extra, "descriptors_per_axis", DEFAULT_DESCRIPTORS_PER_AXIS)
        n_tmpl = 1 if smoke else _int_option(extra, "templates", DEFAULT_TEMPLATES)
        seed = _int_option(extra, "subset_seed", 0)
        sentences, full = select(version, descriptors_per_axis=n_desc, n_templates=n_tmpl, seed=seed,
                                 max_axes=smoke)
        if not sentences:
            raise DataError(f"holistic_bias {version}: no sentences selected")
        ppl = sentence_perplexities(handle, sentences, ctx)
        examples, seen = [], {}
        for s, p in zip(sentences, ppl):
            key = f"{s.axis}|{s.descriptor}|{s.noun}|{s.template}"
            seen[key] = seen.get(key, 0) + 1
            examples.append({"id": key if seen[key] == 1 else f"{key}#{seen[key]}", "axis": s.axis,
                             "descriptor": s.descriptor, "noun": s.noun, "template": s.template, "text": s.text,
                             "perplexity": float(p)})
        metrics, groups, tests = likelihood_bias(examples, n_bootstrap=ctx.n_bootstrap, seed=ctx.seed)
        if not tests:
            raise DataError("holistic_bias: the subset has no descriptor pair to compare (need 2 per axis)")
        n_axes = len(groups)
        desc_note = "all descriptors" if not n_desc else f"{n_desc} descriptors per axis"
        tmpl_note = "all templates" if not n_tmpl else f"{min(n_tmpl, full['templates'])} of {full['templates']} templates"
        notes = [f"HolisticBias {version}: {len(sentences):,} sentences ({desc_note} of {n_axes} axes, {tmpl_note}; "
                 f"subset_seed {seed}), {len(tests):,} Mann-Whitney U tests; CI: bootstrap over the tests"]
        flags = {}
        if n_desc or (n_tmpl and n_tmpl < full["templates"]) or smoke:
            flags["eval_sample"] = f"{len(sentences)} sentences of a seeded HolisticBias subset"
        return TaskResult(metrics, groups, examples, notes, flags=flags,
                          data_sha256=files_sha256(data_paths(version)), axis=self.axis)
