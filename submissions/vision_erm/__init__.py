"""ERM for vision: minimise the mean cross-entropy; the baseline every worst-group method is compared to."""
from biasboard.harness.registry import register_method
from biasboard.harness.specs import Method
from biasboard.harness.training.vision import LossHook


@register_method
class VisionERM(Method):
    name = "vision_erm"
    version = "1.1"
    description = "Empirical risk minimisation: mean cross-entropy over the training set (no group labels)."
    vision_selection = "val_average"
    """worst_group keeps the epoch with the best validation average accuracy, as group_DRO's code does for ERM
    (``selection: val_worst_group`` in ``extra`` selects by worst-group accuracy instead)."""
    families = ("vision",)
    kind = "loss"
    params = {}
    citation = "Vapnik (1992), Principles of risk minimization for learning theory"

    def training_loss(self, losses, batch, ctx):
        """Mean of the per-example losses (weighted when the batch carries ``weight``)."""
        weight = batch.get("weight") if isinstance(batch, dict) else None
        if weight is None:
            return losses.mean()
        return (losses * weight).sum() / weight.sum()

    def fit_vision(self, trainer, ctx):
        """One fit with the mean cross-entropy; returns (FitResult, notes)."""
        return trainer.fit(LossHook(self, ctx)), []
