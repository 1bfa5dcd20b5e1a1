"""TopK DRO fine-tuning: minimise the mean of the k largest per-sentence losses of each batch (no group labels).

``alpha`` (a percentile in (0, 100]) switches to the mean of the losses at or above that percentile of the batch;
0 (the default) keeps top-k.
"""
from biasboard.harness.training.lm import COMMON_PARAMS, LMFinetuneMethod
from biasboard.harness.registry import register_method
from biasboard.harness.training.robust import TopKObjective


@register_method
class TopKDro(LMFinetuneMethod):
    name = "topk_dro"
    version = "1.1"
    description = "Upstream LM fine-tuning on the mean of the k largest per-sentence losses of each batch."
    params = dict(COMMON_PARAMS, k=6, alpha=0.0)
    citation = "Gandhi, Singh, Hegde. RobustDebias. arXiv 2602.00405 (TopK DRO baseline)."

    def objective(self, params, dim, corpus):
        alpha = float(params["alpha"]) or None
        return TopKObjective(k=int(params["k"]), alpha=alpha)
