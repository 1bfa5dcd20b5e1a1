"""Worst-group accuracy under spurious correlations (Sagawa et al. 2020; WILDS conventions).

The task trains a classifier on a vision backbone with the cell's method deciding the training objective
(methods with a ``fit_vision(trainer, ctx)`` hook run their own schedule; other loss methods go through their
``training_loss`` hook; ``none`` trains with ERM), selects an epoch on the validation split by the stated rule,
and reports accuracy per (label, attribute) group on the test split. Headline: worst-group accuracy.
"""
from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from biasboard.harness.data import find
from biasboard.harness.errors import BiasboardError
from biasboard.harness.models.vision import build_backbone
from biasboard.harness.registry import register_task
from biasboard.harness.specs import Metric, RunContext, Task, TaskResult, Variant
from biasboard.harness.stats import mean_ci
from biasboard.harness.training.vision import SELECTION_RULES, CrossEntropy, LossHook, TrainConfig, Trainer
from biasboard.tasks import worst_group_metrics as gm
from biasboard.tasks import vision_data

DIGITS = {"source": "digits", "epochs": 12, "batch_size": 64, "lr": 1e-3, "weight_decay": 1e-4, "optimizer": "adam"}
# group_DRO's ERM settings for the real sets (Sagawa et al. 2020, appendix): SGD, batch 128.
WATERBIRDS = {"source": "waterbirds", "epochs": 300, "batch_size": 128, "lr": 1e-3, "weight_decay": 1e-4,
              "optimizer": "sgd", "image_size": 224}
CELEBA = {"source": "celeba", "epochs": 50, "batch_size": 128, "lr": 1e-4, "weight_decay": 1e-4, "optimizer": "sgd",
          "image_size": 224}
OVERRIDABLE = ("epochs", "batch_size", "lr", "weight_decay", "optimizer", "selection", "rho", "data_root")
TRAIN_KEYS = ("epochs", "batch_size", "lr", "weight_decay", "optimizer")
"""Training settings a method may set per dataset (its ``dataset_settings[source]["train"]``)."""


def default_selection(method) -> str:
    """The epoch-selection rule a cell uses unless ``extra`` sets ``selection``.

    group_DRO's train.py keeps the epoch with the best validation *average* accuracy for ERM and the best
    validation *worst-group* accuracy for robust / reweighted training; JTT and the unsupervised methods select
    by worst-group accuracy on the validation set. So ``none`` and methods declaring ``vision_selection =
    "val_average"`` (``vision_erm``) get ``val_average``, every other method ``val_worst_group``.
    """
    if method is None or getattr(method, "kind", "identity") == "identity":
        return "val_average"
    return getattr(method, "vision_selection", "val_worst_group")


def resolve_settings(variant_options: dict, extra: dict | None = None, method=None, params: dict | None = None
                     ) -> tuple[dict, dict, dict | None]:
    """(task options, method params, the method's dataset settings applied or None) for one cell.

    Order: the variant's defaults, the method's default selection rule, the method's per-dataset training settings
    (``method.dataset_settings[source]["train"]``), then ``extra`` (an explicit value always wins). A method
    param left at 0 takes the dataset's value from ``dataset_settings[source]["params"]`` (JTT's ``id_epochs``,
    ``lambda_up``); any other value is the cell's own.
    """
    opts = dict(variant_options)
    opts["selection"] = default_selection(method)
    preset = dict(getattr(method, "dataset_settings", {}) or {}).get(opts["source"])
    opts.update((preset or {}).get("train", {}))
    for key in OVERRIDABLE:
        if extra and key in extra:
            opts[key] = extra[key]
    if opts["selection"] not in SELECTION_RULES:
        raise BiasboardError(f"worst_group: selection must be one of {SELECTION_RULES}, got {opts['selection']!r}")
    params = dict(params or {})
    for key, value in (preset or {}).get("params", {}).items():
        if params.get(key, 0) == 0:
            params[key] = value
    return opts, params, preset


def _digits(rho: float) -> Variant:
    return Variant(f"Synthetic: sklearn digits (label: digit >= 5) on red/green backgrounds, P(colour = label) = "
                   f"{rho:g} in training, balanced val/test; small CNN or any vision backbone.", ("vision",),
                   {**DIGITS, "rho": rho})


@register_task
class WorstGroup(Task):
    name = "worst_group"
    version = "1.2"
    """1.2: ``none`` / ``vision_erm`` select by validation average accuracy (group_DRO's ERM rule); JTT and
    Debiasify use their papers' settings on Waterbirds / CelebA."""
    description = ("Worst-group accuracy of an image classifier trained under a spurious label-attribute "
                   "correlation; the method decides the training objective.")
    families = ("vision",)
    axis = "spurious"
    fine_tunes = True
    citation = ("Sagawa, Koh, Hashimoto, Liang (2020), Distributionally Robust Neural Networks for Group Shifts, "
                "ICLR; Koh et al. (2021), WILDS, ICML")
    variants = {
        "digits_rho50": _digits(0.5),
        "digits_rho90": _digits(0.9),
        "digits_rho98": _digits(0.98),
        "waterbirds": Variant("Waterbirds (Sagawa et al. 2020): landbird/waterbird x land/water background; "
                              "metadata.csv in the WILDS / group_DRO layout under <data>/waterbirds/.", ("vision",),
                              WATERBIRDS),
        "celeba_blond_male": Variant("CelebA Blond_Hair x Male (Sagawa et al. 2020); list_attr_celeba and "
                                     "list_eval_partition under <data>/celeba/.", ("vision",),
                                     {**CELEBA, "target": "Blond_Hair", "attribute": "Male"}),
        "celeba_wavy_male": Variant("CelebA Wavy_Hair x Male (the Debiasify headline split).", ("vision",),
                                    {**CELEBA, "target": "Wavy_Hair", "attribute": "Male"}),
    }
    default_variant = "digits_rho90"
    extra_keys = (*OVERRIDABLE, "max_examples")
    """``ctx.extra`` keys the task reads."""

    def options(self, variant: str, extra: dict | None = None, method=None, params: dict | None = None) -> dict:
        """The cell's task options (``resolve_settings``)."""
        return resolve_settings(self.variants[variant].options, extra, method, params)[0]

    def _root(self, opts: dict) -> Path:
        if opts.get("data_root"):
            return Path(opts["data_root"])
        marker = "waterbirds/metadata.csv" if opts["source"] == "waterbirds" else "celeba/list_eval_partition.csv"
        try:
            return find(marker, task=self.name).parent
        except BiasboardError:
            if opts["source"] == "celeba":
                return find("celeba/list_eval_partition.txt", task=self.name).parent
            raise

    def data_files(self, variant: str) -> list[Path]:
        opts = self.options(variant)
        if opts["source"] == "digits":
            return [vision_data.digits_file()]
        root = self._root(opts)
        if opts["source"] == "waterbirds":
            return [root / "metadata.csv"]
        return sorted(p for p in root.iterdir() if p.name.startswith(("list_attr_celeba", "list_eval_partition")))

    def load(self, variant: str, extra: dict | None = None) -> vision_data.GroupDataset:
        opts = self.options(variant, extra)
        if opts["source"] == "digits":
            return vision_data.make_colored_digits(rho=float(opts["rho"]))
        if opts["source"] == "waterbirds":
            return vision_data.load_waterbirds(self._root(opts), image_size=opts["image_size"])
        return vision_data.load_celeba(self._root(opts), target=opts["target"], attribute=opts["attribute"],
                                       image_size=opts["image_size"])

    def evaluate(self, handle, variant: str, ctx: RunContext) -> TaskResult:
        opts, params, preset = resolve_settings(self.variants[variant].options, ctx.extra, ctx.method, ctx.params)
        data = self.load(variant, ctx.extra)
        if ctx.extra.get("max_examples"):
            data = vision_data.subsample(data, int(ctx.extra["max_examples"]))
        config = TrainConfig("vision", epochs=int(opts["epochs"]), batch_size=int(opts["batch_size"]),
                             lr=float(opts["lr"]), weight_decay=float(opts["weight_decay"]),
                             optimizer=opts["optimizer"], selection=opts["selection"],
                             eval_batch_size=max(1, ctx.batch_size), seed=ctx.seed)
        ex = handle.extras
        trainer = Trainer(backbone=handle.model, stage_dims=ex["stage_dims"], data=data, config=config,
                          normalize=(ex["mean"], ex["std"]), shallow_stage=ex["shallow_stage"],
                          min_input=ex.get("min_input", 0),
                          init=None if ex["pretrained"] else partial(build_backbone, ex["arch"]),
                          progress=ctx.progress)
        fit, method_notes = train_with_method(trainer, replace(ctx, params=params))
        pred = trainer.predict(fit.model, "test")
        result = score(data, pred, fit=fit, selection=opts["selection"], n_bootstrap=ctx.n_bootstrap, seed=ctx.seed,
                       notes=data.notes + method_notes, synthetic=opts["source"] == "digits",
                       max_examples=ctx.extra.get("max_examples"))
        result.flags["training"] = {k: opts[k] for k in TRAIN_KEYS}
        if preset is not None:
            used = {**{k: params[k] for k in preset.get("params", {})}, **{k: opts[k] for k in preset.get("train", {})}}
            result.flags["method_settings"] = {"dataset": opts["source"], **used}
            result.notes.append(f"{ctx.method.name} settings for {opts['source']} ({preset.get('source', 'ours')}): "
                                + ", ".join(f"{k}={v}" for k, v in used.items()))
        return result


def train_with_method(trainer: Trainer, ctx: RunContext):
    """Run the method's own schedule, its loss hook, or ERM; returns (FitResult, notes)."""
    method = ctx.method
    if method is not None and hasattr(method, "fit_vision"):
        return method.fit_vision(trainer, ctx)
    if method is not None and getattr(method, "kind", "") == "loss" and hasattr(method, "training_loss"):
        return trainer.fit(LossHook(method, ctx)), []
    if method is not None and getattr(method, "kind", "identity") != "identity":
        raise BiasboardError(f"method {method.name!r} has no vision training hook (fit_vision or training_loss)")
    return trainer.fit(CrossEntropy()), ["no mitigation: ERM training"]


def score(data: vision_data.GroupDataset, pred: np.ndarray, *, fit, selection: str, n_bootstrap: int, seed: int,
          notes: list[str], synthetic: bool, max_examples: int | None = None) -> TaskResult:
    """Metrics, per-group breakdown and per-example rows of test predictions."""
    test = data.splits["test"]
    groups = data.groups("test")
    correct = (pred == test.y).astype(float)
    train_counts = np.bincount(data.groups("train"), minlength=data.n_groups).astype(float)
    names = data.group_names()
    pct = dict(ideal=100.0, direction="max", unit="%")
    n = len(test)
    ci = dict(n_resamples=n_bootstrap, seed=seed)
    metrics = {
        "worst_group_accuracy": Metric(gm.worst_group_accuracy(test.y, pred, groups), n,
                                       ci95=gm.group_ci("worst", correct, groups, data.n_groups, **ci),
                                       description="minimum accuracy over (label, attribute) groups", **pct),
        "mean_group_accuracy": Metric(gm.mean_group_accuracy(test.y, pred, groups), n,
                                      ci95=gm.group_ci("mean", correct, groups, data.n_groups, **ci),
                                      description="unweighted mean of the group accuracies", **pct),
        "average_accuracy": Metric(gm.average_accuracy(test.y, pred), n, ci95=mean_ci(correct, scale=100.0, **ci)[1],
                                   per_example="correct",
                                   description="accuracy over all test examples", **pct),
        "weighted_accuracy": Metric(gm.weighted_accuracy(test.y, pred, groups, dict(enumerate(train_counts))), n,
                                    ci95=gm.group_ci("weighted", correct, groups, data.n_groups,
                                                     weights=train_counts, **ci),
                                    description="group accuracies weighted by training group frequencies (WILDS "
                                                "'average accuracy' on Waterbirds)", **pct),
    }
    by_group = {}
    for g, acc in gm.group_accuracies(test.y, pred, groups).items():
        members = correct[groups == g]
        by_group[names[g]] = {"accuracy": Metric(acc, len(members), ci95=mean_ci(members, scale=100.0, **ci)[1],
                                                 description=f"{int(train_counts[g])} training examples", **pct)}
    examples = [{"id": test.ids[i], "y": int(test.y[i]), "a": int(test.a[i]), "group": names[groups[i]],
                 "pred": int(pred[i]), "correct": bool(correct[i])} for i in range(n)]
    notes = list(notes) + [f"model selection: {selection} (epoch {fit.epoch} of {len(fit.history)})",
                           "training groups: " + ", ".join(f"{nm}={int(c)}" for nm, c in zip(names, train_counts))]
    flags = {"model_selection": selection, "selected_epoch": fit.epoch, "synthetic_data": synthetic,
             "val_uses_group_labels": selection == "val_worst_group"}
    if max_examples:
        flags["max_examples"] = int(max_examples)
        notes.append(f"smoke run: at most {int(max_examples)} examples per split")
    return TaskResult(metrics=metrics, groups=by_group, examples=examples, notes=notes, flags=flags,
                      axis="spurious")
