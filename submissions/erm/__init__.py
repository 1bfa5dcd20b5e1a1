"""ERM fine-tuning baseline: continue masked (mlm) or causal (clm) language modelling on a labelled corpus, the
plain mean of the per-sentence losses. RobustDebias (arXiv 2602.00405) reports that this amplifies social bias;
it is the baseline every robust objective is compared with, on the same corpus and budget.
"""
from biasboard.harness.training.lm import COMMON_PARAMS, LMFinetuneMethod
from biasboard.harness.registry import register_method
from biasboard.harness.training.objectives import ErmObjective


@register_method
class Erm(LMFinetuneMethod):
    name = "erm"
    version = "1.1"
    description = "Upstream LM fine-tuning on a bias-labelled corpus with the mean loss (ERM baseline)."
    params = dict(COMMON_PARAMS)
    citation = "Gandhi, Singh, Hegde. RobustDebias. arXiv 2602.00405 (ERM baseline)."

    def objective(self, params, dim, corpus):
        return ErmObjective()
