"""Just Train Twice (Liu et al. 2021): upweight the training examples an early-stopped ERM model gets wrong.

Stage 1 trains an identification model with ERM for ``id_epochs`` epochs (last epoch, no selection); its
training errors form the error set. Stage 2 trains a fresh model with ERM on the training set in which every
error-set example appears ``lambda_up`` times (upsampling, as in the authors' code). No group labels are used in
training; the task's model-selection rule (validation worst-group accuracy in the paper) picks the stage-2 epoch.
"""
from __future__ import annotations

import numpy as np

from biasboard.harness.registry import register_method
from biasboard.harness.specs import Method
from biasboard.harness.training.vision import CrossEntropy


def upsample_errors(indices: np.ndarray, errors: np.ndarray, lambda_up: int) -> np.ndarray:
    """Training rows with each error repeated so it appears ``lambda_up`` times in total.

    >>> upsample_errors(np.array([10, 11, 12]), np.array([False, True, False]), 3).tolist()
    [10, 11, 12, 11, 11]
    """
    if lambda_up < 1 or int(lambda_up) != lambda_up:
        raise ValueError(f"lambda_up must be a positive integer, got {lambda_up}")
    extra = np.repeat(np.asarray(indices)[np.asarray(errors, bool)], int(lambda_up) - 1)
    return np.concatenate([np.asarray(indices), extra])


@register_method
class JTT(Method):
    name = "jtt"
    version = "1.0"
    description = "Just Train Twice: ERM identification model, upsample its training errors lambda_up times, retrain."
    families = ("vision",)
    kind = "data"
    params = {"id_epochs": 2, "lambda_up": 20}
    citation = ("Liu, Haghgoo, Chen, Raghunathan, Koh, Sagawa, Liang, Finn (2021), Just Train Twice: Improving "
                "Group Robustness without Training Group Information, ICML")

    def transform_data(self, dataset, ctx):
        """``dataset`` = {"indices", "errors"} from the identification model -> the same with upsampled indices."""
        params = self.resolve_params(ctx.params)
        out = dict(dataset)
        out["indices"] = upsample_errors(dataset["indices"], dataset["errors"], params["lambda_up"])
        return out

    def fit_vision(self, trainer, ctx):
        params = self.resolve_params(ctx.params)
        stage1 = trainer.fit(CrossEntropy(), epochs=int(params["id_epochs"]), selection="last", salt=1)
        train = trainer.data.splits["train"]
        indices = np.arange(len(train))
        errors = trainer.predict(stage1.model, "train") != train.y
        data = self.transform_data({"indices": indices, "errors": errors}, ctx)
        result = trainer.fit(CrossEntropy(), indices=data["indices"], salt=2)
        counts = np.bincount(trainer.train_groups[errors], minlength=trainer.data.n_groups)
        share = ", ".join(f"{n}={c}" for n, c in zip(trainer.data.group_names(), counts))
        return result, [f"JTT error set: {int(errors.sum())} of {len(errors)} training examples ({share})"]
