"""TopK-AE DRO fine-tuning: DRO over latent groups found by an autoencoder (the prior method RobustDebias builds on;
probably Broscheit et al., ACL 2022).

An autoencoder on the mean-pooled last hidden state (h -> ``ae_hidden`` -> G group logits -> ``ae_hidden`` -> h)
assigns each sentence to a latent group (argmax of the softmax; ``assignment: soft`` weights every sentence into
every group). Loss = max_g (mean of the top-k losses of group g, or with ``alpha`` those at or above the alpha-th
percentile of the batch) + reconstruction + beta * KL(mean assignment || uniform). Defaults follow the RobustDebias
paper (arXiv 2602.00405), which shares this objective: beta 0.1 (the middle of its sweep {0.05, 0.1, 0.2}), and the
reconstruction and diversity losses back-propagate into the encoder as in its figure (``detach_ae: true`` feeds the
autoencoder detached states, so it never pushes the LM). Choices where the papers are silent (documented in
docs/lm-methods.md): G = number of bias types in the corpus unless ``n_groups`` > 0; the autoencoder trains on a
FIFO of the last ``ae_batch`` states with its own learning rate 1e-3; reconstruction error is the mean over
dimensions.
"""
from biasboard.harness.training.lm import COMMON_PARAMS, LMFinetuneMethod
from biasboard.harness.registry import register_method
from biasboard.harness.training.robust import TopKAEObjective, inverse_frequency_weights

AE_PARAMS = dict(k=6, alpha=0.0, ae_hidden=128, ae_batch=64, beta=0.1, n_groups=0, assignment="hard", detach_ae=False)


def ae_objective(params, dim, corpus, *, weighted: bool) -> TopKAEObjective:
    """The objective shared by topk_ae_dro (uniform reconstruction) and robust_debias (inverse-frequency)."""
    n_types = len(corpus.types)
    alpha = float(params["alpha"]) or None  # 0 = off: top-k selection
    n_groups = int(params["n_groups"]) or n_types  # 0 = one latent group per bias type
    if params["assignment"] not in ("hard", "soft"):
        raise ValueError(f"assignment must be hard or soft, got {params['assignment']!r}")
    weights = inverse_frequency_weights(corpus.label_ids(), n_types) if weighted else None
    return TopKAEObjective(dim, n_groups=n_groups, k=int(params["k"]), alpha=alpha, hidden=int(params["ae_hidden"]),
                           ae_batch=int(params["ae_batch"]), beta=float(params["beta"]),
                           soft=params["assignment"] == "soft", type_weights=weights,
                           detach=bool(params["detach_ae"]))


@register_method
class TopKAEDro(LMFinetuneMethod):
    name = "topk_ae_dro"
    version = "1.2"
    description = "Upstream LM fine-tuning with DRO over autoencoder latent groups (worst group's top-k loss)."
    params = dict(COMMON_PARAMS, **AE_PARAMS)
    citation = ("Broscheit et al. Distributionally Robust Finetuning BERT for Covariate Drift in Spoken Language "
                "Understanding. ACL 2022 (as used by RobustDebias, arXiv 2602.00405).")

    def objective(self, params, dim, corpus):
        return ae_objective(params, dim, corpus, weighted=False)
