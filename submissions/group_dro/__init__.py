"""Group DRO fine-tuning (Sagawa et al. 2020) over the corpus' known bias types.

Online group weights q <- q * exp(eta * (L_g + C / sqrt(n_g))), loss = sum_g q_g L_g. ``adjustment`` is C
(0 = off); n_g is the bias type's share of the training corpus in sentences. The adjustment steers q only; it is
never added to the minimised or reported loss (the public group_DRO code leaks it into both). Groups absent from a
batch keep their weight. eta 0.01 as in the group_DRO code.
"""
from biasboard.harness.training.lm import COMMON_PARAMS, LMFinetuneMethod
from biasboard.harness.registry import register_method
from biasboard.harness.training.robust import GroupDroObjective, group_sizes


@register_method
class GroupDro(LMFinetuneMethod):
    name = "group_dro"
    version = "1.1"
    description = "Upstream LM fine-tuning with online Group DRO weights over the corpus' bias types."
    params = dict(COMMON_PARAMS, eta=0.01, adjustment=0.0)
    citation = ("Sagawa, Koh, Hashimoto, Liang. Distributionally Robust Neural Networks for Group Shifts. "
                "ICLR 2020.")

    def objective(self, params, dim, corpus):
        n = len(corpus.types)
        return GroupDroObjective(n, eta=float(params["eta"]), adjustment=float(params["adjustment"]),
                                 group_counts=group_sizes(corpus.label_ids(), n))
