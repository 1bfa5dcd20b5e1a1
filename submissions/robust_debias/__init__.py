"""RobustDebias (Gandhi, Singh, Hegde; arXiv 2602.00405): TopK-AE DRO whose autoencoder reconstruction error of each
sentence is weighted by the inverse frequency of its bias type, w_b = N / (T * n_b) over the training corpus, so
that latent groups align with demographics and rare bias types are not drowned out.

Stated settings used as defaults: k = 6, autoencoder hidden size 128, autoencoder batch 64; beta (diversity weight)
swept in the paper over {0.05, 0.1, 0.2}: default 0.1; the reconstruction and diversity losses back-propagate into
the encoder as in the paper's figure (``detach_ae: true`` feeds the autoencoder detached states instead). ``alpha``
switches top-k to the alpha-percentile selection. Unspecified in the paper, chosen here and switchable: G = number of
bias types (``n_groups``), hard argmax assignment (``assignment``), frequencies counted over the whole corpus (not
the batch), reconstruction error averaged over dimensions. Fine-tuning splits 3bias / 6bias (natural HolisticBias
bias-type frequencies) and 6bias_high (fixed, strongly imbalanced shares) are our reconstruction
(``harness.training.corpora``); on a corpus with equally frequent bias types this method equals TopK-AE DRO.
"""
from biasboard.harness.training.lm import COMMON_PARAMS, LMFinetuneMethod
from biasboard.harness.registry import register_method
from biasboard.submissions.topk_ae_dro import AE_PARAMS, ae_objective


@register_method
class RobustDebias(LMFinetuneMethod):
    name = "robust_debias"
    version = "1.2"
    description = ("TopK-AE DRO with the autoencoder's reconstruction weighted by inverse bias-type frequency "
                   "(RobustDebias).")
    params = dict(COMMON_PARAMS, **AE_PARAMS)
    citation = "Gandhi, Singh, Hegde. RobustDebias. arXiv 2602.00405."

    def objective(self, params, dim, corpus):
        return ae_objective(params, dim, corpus, weighted=True)
