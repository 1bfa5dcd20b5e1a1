"""Counterfactual data augmentation (CDA; Zmigrod et al., ACL 2019; Webster et al. 2020; as run by bias-bench, Meade
et al., ACL 2022): continue masked (mlm) or causal (clm) language modelling on a two-sided counterfactually augmented
corpus: every sentence that holds an attribute word of ``bias_type`` is kept and also added with the words swapped
(gender: each word to its partner; race and religion: n-way, each column to another column drawn per sentence).

Like bias-bench, sentences without an attribute word are dropped (``keep_unmatched: true`` keeps them). Word lists
(``word_list``): bias-bench's ``bias_attribute_words.json`` or, for gender, WinoBias' ``generalized_swaps.txt``.
Swap rules, casing and matching: ``harness.training.counterfactual``; corpus and training settings (bias-bench's
lr 5e-5, no weight decay, no warm-up; CPU-sized budget): ``harness.training.continued``. The augmentation counts are
recorded with each cell (``provenance.finetune``).
"""
from __future__ import annotations

from typing import Any

from biasboard.harness.registry import register_method
from biasboard.harness.training.continued import TEXT_PARAMS, ContinuedLMMethod
from biasboard.harness.training.corpora import LabelledCorpus
from biasboard.harness.errors import DataError
from biasboard.harness.training.counterfactual import augment, swap_table


@register_method
class Cda(ContinuedLMMethod):
    name = "cda"
    version = "1.0"
    description = "Continue LM training on a two-sided counterfactually augmented corpus (bias-bench's CDA)."
    params = {**TEXT_PARAMS, "bias_type": "gender", "word_list": "bias_bench", "keep_unmatched": False}
    citation = ("Zmigrod, Mielke, Wallach, Cotterell. Counterfactual Data Augmentation for Mitigating Gender "
                "Stereotypes in Languages with Rich Morphology. ACL 2019; Webster et al. Measuring and Reducing "
                "Gendered Correlations in Pre-trained Models. arXiv 2010.06032 (2020); Meade, Poole-Dayan, Reddy. An "
                "Empirical Survey of the Effectiveness of Debiasing Techniques for Pre-trained Language Models. "
                "ACL 2022.")

    def training_corpus(self, params: dict[str, Any], texts: list[str], name: str):
        bias_type, word_list = str(params["bias_type"]), str(params["word_list"])
        table = swap_table(bias_type, word_list)
        # the swaps are data: drawn from corpus_seed, not the cell seed, so every seed trains on the same corpus
        aug = augment(texts, table, seed=int(params["corpus_seed"]), keep_unmatched=bool(params["keep_unmatched"]))
        if not aug.matched:
            raise DataError(f"cda: no sentence of corpus {name!r} holds a {bias_type} attribute word "
                            f"({word_list} list)")
        corpus = LabelledCorpus(aug.texts, aug.kinds, f"cda:{bias_type}:{word_list}({name})")
        return corpus, {"cda": {"bias_type": bias_type, "word_list": word_list, "matched": aug.matched,
                                "keep_unmatched": bool(params["keep_unmatched"])}}
