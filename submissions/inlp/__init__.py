"""INLP, iterative nullspace projection (Ravfogel et al., ACL 2020), as bias-bench runs it (Meade et al., ACL 2022).

Sentences of a local corpus are labelled by the attribute words they contain (gender: male / female / neutral;
race and religion: bias / neutral, bias-bench's rules in ``harness.training.bias_sentences.inlp_sentences``) and
encoded as the mean of the model's final hidden states. ``n_classifiers`` rounds (bias-bench: 80) each train a
linear SVM to predict the label from the vectors projected onto the nullspace of every earlier classifier; the
projection P onto the intersection of all those nullspaces is the debiasing map
(``harness.training.subspace.inlp_projection``). Debiasing replaces every token's final hidden state x by P x
through the ``represent`` hook, so SEAT, the MLM head and the causal LM head all read projected states, as
bias-bench's forward hook on the base encoder does. The weights do not change.

Departures, each because of this machine: the corpus is a named local one (``corpus``; bias-bench draws 10,000
sentences per class from a Wikipedia dump that is not available here, so the classes are smaller and unequal:
their sizes are in every result's flags), sentences are split on end punctuation instead of NLTK's Punkt, and P
has the model's width (bias-bench's code fixes 768, BERT-base's). A model narrower than what the rounds remove
(gender: up to 3 directions a round, 240 for 80 rounds; zoo:splade-tiny is 128 wide) would have every state set
to zero: that cell is refused with a message instead.
"""
from __future__ import annotations

import numpy as np
import torch

from biasboard.harness.errors import UnsupportedError
from biasboard.harness.models import scoring
from biasboard.harness.registry import register_method
from biasboard.harness.specs import Method
from biasboard.harness.training import bias_sentences as bs
from biasboard.harness.training.subspace import cached_tensors, inlp_projection, split_like_bias_bench

LABELS = {"male": 1, "female": 0, "bias": 1, "neutral": -1}
"""Class ids as bias-bench numbers them (gender: male 1, female 0, neutral -1; binary: bias 1, neutral 0)."""


def inlp_data(handle, sentences: dict[str, list[str]], *, batch_size: int = 32):
    """(vectors, labels) in bias-bench's order: the classes one after another, gendered first, neutral last."""
    binary = "bias" in sentences
    texts, labels = [], []
    for label, group in sentences.items():
        texts += group
        labels += [0 if binary and label == "neutral" else LABELS[label]] * len(group)
    # truncated to what the model takes, as bias-bench's tokenizer(..., truncation=True): Wikipedia Talk has comments
    # of over 1,000 tokens, which a 512-position encoder cannot read. Unpadded batches: bias-bench encodes one
    # sentence at a time, and padding's float32 round-off (1e-6) grows through 80 rounds to 0.03 in SEAT
    vectors = scoring.encode(handle, texts, pooling="mean", batch_size=batch_size, truncate=True,
                             unpadded=True).astype(np.float64)
    return vectors, np.asarray(labels)


@register_method
class INLP(Method):
    name = "inlp"
    version = "1.2"  # 1.2: bias-bench's projection order and unpadded feature batches
    description = ("Project every token's final hidden state onto the nullspace of linear classifiers trained, "
                   "round after round, to predict the attribute group of a sentence.")
    citation = ("Ravfogel, Elazar, Gonen, Twiton, Goldberg. Null It Out: Guarding Protected Attributes by Iterative "
                "Nullspace Projection. ACL 2020; as in Meade, Poole-Dayan, Reddy. An Empirical Survey of the "
                "Effectiveness of Debiasing Techniques for Pre-trained Language Models. ACL 2022 (bias-bench).")
    families = ("mlm", "clm", "encoder")
    kind = "representation"
    params = {"bias_type": "gender", "corpus": "wikipedia_talk", "n_classifiers": 80, "n_per_class": 10000}

    def apply(self, handle, ctx):
        p = self.resolve_params(ctx.params)
        corpus = bs.load_corpus(p["corpus"])
        groups = bs.attribute_words(p["bias_type"])
        sentences = bs.inlp_sentences(list(corpus.lines), groups, p["bias_type"], n_per_class=int(p["n_per_class"]),
                                      seed=ctx.seed)
        key = {"method": self.name, "version": self.version, "weights": handle.weights_sha256,
               "lineage": list(handle.lineage), "params": p, "corpus": corpus.sha256, "groups": groups,
               "seed": ctx.seed}

        def fit():
            x, y = inlp_data(handle, sentences, batch_size=ctx.batch_size)
            x_train, x_dev, y_train, y_dev = split_like_bias_bench(x, y)
            proj, accuracies = inlp_projection(x_train, y_train, x_dev, y_dev, n_classifiers=int(p["n_classifiers"]))
            return {"projection": proj.astype(np.float32), "dev_accuracy": np.asarray(accuracies)}

        fitted = cached_tensors(ctx.cache_dir, self.name, key, fit)
        self.projection = torch.from_numpy(fitted["projection"].copy())
        if float(np.trace(fitted["projection"])) < 0.5:  # every dimension removed: all states would be zero
            width = fitted["projection"].shape[0]
            raise UnsupportedError(f"inlp: {p['n_classifiers']} rounds removed all {width} dimensions of "
                                   f"{handle.id} (each round removes up to one per class, "
                                   f"{len(sentences) if len(sentences) > 2 else 1}); set a smaller n_classifiers")
        acc = fitted["dev_accuracy"]
        flags = {"inlp": {"bias_type": p["bias_type"], "corpus": corpus.name, "corpus_file": bs.CORPORA[corpus.name],
                          "corpus_sha256": corpus.sha256, "sentences": {k: len(v) for k, v in sentences.items()},
                          "n_classifiers": int(p["n_classifiers"]),
                          "rank": int(round(float(np.trace(fitted["projection"])))),
                          "dev_accuracy_first": round(float(acc[0]), 4), "dev_accuracy_last": round(float(acc[-1]), 4)}}
        step = f"inlp(bias_type={p['bias_type']},corpus={corpus.name},n_classifiers={p['n_classifiers']})"
        return handle.derive(step=step, result_flags={**handle.extras.get("result_flags", {}), **flags})

    def represent(self, hidden, ctx):
        return hidden.float() @ self.projection.to(device=hidden.device).T
