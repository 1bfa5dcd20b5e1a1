"""Just Train Twice (Liu et al. 2021): upweight the training examples an early-stopped ERM model gets wrong.

Stage 1 trains an identification model with ERM for ``id_epochs`` epochs (last epoch, no selection); its
training errors form the error set. Stage 2 trains a fresh model with ERM on the training set in which every
error-set example appears ``lambda_up`` times (upsampling, as in the authors' code). No group labels are used in
training; the task's model-selection rule (validation worst-group accuracy in the paper) picks the stage-2 epoch.

Settings per dataset (``dataset_settings``, applied by the worst_group task; ``id_epochs`` / ``lambda_up`` left at 0
take them, explicit values win): the authors' README commands for Waterbirds (T = 60, lambda_up 100, SGD lr 1e-5,
weight decay 1.0) and CelebA (T = 1, lambda_up 50, lr 1e-5, weight decay 0.1); small ones of ours (T = 2,
lambda_up 20, the task's optimiser) for the synthetic digits.
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
    version = "1.1"
    description = "Just Train Twice: ERM identification model, upsample its training errors lambda_up times, retrain."
    families = ("vision",)
    kind = "data"
    params = {"id_epochs": 0, "lambda_up": 0}
    """0 = the dataset's value in ``dataset_settings``."""
    dataset_settings = {
        "digits": {"params": {"id_epochs": 2, "lambda_up": 20}, "source": "ours, small synthetic set"},
        "waterbirds": {"params": {"id_epochs": 60, "lambda_up": 100}, "train": {"lr": 1e-5, "weight_decay": 1.0},
                       "source": "Liu et al. 2021, authors' README for CUB"},
        "celeba": {"params": {"id_epochs": 1, "lambda_up": 50}, "train": {"lr": 1e-5, "weight_decay": 0.1},
                   "source": "Liu et al. 2021, authors' README for CelebA"},
    }
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
        unset = sorted(k for k in ("id_epochs", "lambda_up") if not params[k])
        if unset:
            raise ValueError(f"jtt: {', '.join(unset)} = 0 means the dataset's setting, and none was resolved "
                             f"(known datasets: {sorted(self.dataset_settings)}); set a positive value")
        stage1 = trainer.fit(CrossEntropy(), epochs=int(params["id_epochs"]), selection="last", salt=1)
        train = trainer.data.splits["train"]
        indices = np.arange(len(train))
        errors = trainer.predict(stage1.model, "train") != train.y
        data = self.transform_data({"indices": indices, "errors": errors}, ctx)
        result = trainer.fit(CrossEntropy(), indices=data["indices"], salt=2)
        counts = np.bincount(trainer.train_groups[errors], minlength=trainer.data.n_groups)
        share = ", ".join(f"{n}={c}" for n, c in zip(trainer.data.group_names(), counts))
        return result, [f"JTT error set: {int(errors.sum())} of {len(errors)} training examples ({share})"]
