"""SentenceDebias (Liang et al., ACL 2020) as bias-bench runs it (Meade et al., ACL 2022).

A bias subspace is fitted on the model's own sentence representations: every sentence of a local corpus that
contains an attribute word of ``bias_attribute_words.json`` gives a counterfactual example (the sentence once per
group member, the word swapped; two-sided: male->female and female->male examples both count); the mean-pooled
final hidden states of an example's sentences are L2-normalised and centred on their mean, and the first principal
component of all of them is the bias direction (``harness.training.subspace``). Debiasing then removes, from every
token's final hidden state x, its component along the direction: x - (x.v) v / (v.v). The weights do not change:
the ``represent`` hook rewrites the final hidden states, so SEAT reads debiased sentence vectors and the MLM / causal
LM heads (CrowS-Pairs, StereoSet) read debiased states, as bias-bench's forward hook on the base encoder does.

Departures, each because of this machine: the corpus is a named local one (``corpus``; bias-bench uses a
Wikipedia dump that is not available here), sentences are split on end punctuation instead of NLTK's Punkt, and
examples longer than 128 tokens are left out instead of truncated (bias-bench also drops its last partial batch of
32; we keep every example). The corpus, its digest and the number of examples are in every result's flags.
"""
from __future__ import annotations

import numpy as np
import torch

from biasboard.harness.registry import register_method
from biasboard.harness.specs import Method
from biasboard.harness.training import bias_sentences as bs
from biasboard.harness.training.subspace import bias_subspace, cached_tensors, counterfactual_vectors


@register_method
class SentenceDebias(Method):
    name = "sentence_debias"
    version = "1.0"
    description = ("Remove a bias direction (PCA of counterfactual sentence-vector differences) from every "
                   "token's final hidden state.")
    citation = ("Liang, Li, Zheng, Lim, Salakhutdinov, Morency. Towards Debiasing Sentence Representations. ACL 2020; "
                "as in Meade, Poole-Dayan, Reddy. An Empirical Survey of the Effectiveness of Debiasing Techniques "
                "for Pre-trained Language Models. ACL 2022 (bias-bench).")
    families = ("mlm", "clm", "encoder")
    kind = "representation"
    params = {"bias_type": "gender", "corpus": "wikipedia_talk", "n_components": 1}

    def apply(self, handle, ctx):
        p = self.resolve_params(ctx.params)
        corpus = bs.load_corpus(p["corpus"])
        groups = bs.attribute_words(p["bias_type"])
        key = {"method": self.name, "version": self.version, "weights": handle.weights_sha256,
               "lineage": list(handle.lineage), "params": p, "corpus": corpus.sha256, "groups": groups}

        def fit():
            sentences = [s for line in corpus.lines for s in bs.split_sentences(line)]
            examples = bs.counterfactual_examples(sentences, groups)
            vectors = counterfactual_vectors(handle, examples, batch_size=ctx.batch_size)
            return {"direction": bias_subspace(vectors, int(p["n_components"])).astype(np.float32),
                    "examples": np.array([len(vectors)], dtype=np.int64)}

        fitted = cached_tensors(ctx.cache_dir, self.name, key, fit)
        self.direction = torch.from_numpy(fitted["direction"].copy())
        flags = {"sentence_debias": {"bias_type": p["bias_type"], "corpus": corpus.name,
                                     "corpus_file": bs.CORPORA[corpus.name], "corpus_sha256": corpus.sha256,
                                     "examples": int(fitted["examples"][0]), "n_components": int(p["n_components"])}}
        step = f"sentence_debias(bias_type={p['bias_type']},corpus={corpus.name},n_components={p['n_components']})"
        return handle.derive(step=step, result_flags={**handle.extras.get("result_flags", {}), **flags})

    def represent(self, hidden, ctx):
        v = self.direction.to(device=hidden.device)
        x = hidden.float()
        return x - (x @ v.T) @ v  # the rows of v are orthonormal: one component is bias-bench's x - (x.v)v/(v.v)
