"""Dropout debiasing (Webster et al. 2020, "Measuring and Reducing Gendered Correlations in Pre-trained Models",
arXiv 2010.06032; as run by bias-bench, Meade et al., ACL 2022): continue language-model training with increased
dropout, then evaluate with the model's own dropout settings (off in eval mode).

Dropout rates (``hidden_dropout`` / ``attention_dropout`` -1 = these defaults), by the config keys a model has:
- ``hidden_dropout_prob`` / ``attention_probs_dropout_prob`` (BERT-style): 0.20 / 0.15 for BERT and RoBERTa, 0.05 /
  0.05 for every other model type (ALBERT), as bias-bench's run_mlm.py sets them;
- ``resid_pdrop``, ``embd_pdrop`` / ``attn_pdrop`` (GPT-2-style): 0.15 each, as bias-bench's run_clm.py;
- otherwise ``dropout`` or ``hidden_dropout`` / ``attention_dropout`` (DistilBERT, OPT, llama...): our mapping, the
  BERT values (0.20 / 0.15) for masked LMs and GPT-2's (0.15 / 0.15) for causal LMs. A llama-style config (SmolLM2)
  has attention dropout only; its hidden rate has no key and is recorded as ``missing``. A config with no dropout key
  is refused.
The rates are set on the model's config and on every dropout module and attribute the architecture builds from it
(found by building the same architecture from the changed config on the meta device), for training only; the
returned model has the original values again. Corpus and training settings: ``harness.training.continued``.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from biasboard.harness.errors import UnsupportedError
from biasboard.harness.registry import register_method
from biasboard.harness.training.continued import TEXT_PARAMS, ContinuedLMMethod

HIDDEN_KEYS = ("hidden_dropout_prob", "resid_pdrop", "embd_pdrop", "dropout", "hidden_dropout")
ATTENTION_KEYS = ("attention_probs_dropout_prob", "attn_pdrop", "attention_dropout")


def default_rates(config, family: str) -> tuple[float, float]:
    """(hidden, attention) dropout of bias-bench for this architecture, or our mapping (module docstring)."""
    if hasattr(config, "hidden_dropout_prob") and hasattr(config, "attention_probs_dropout_prob"):
        return (0.20, 0.15) if config.model_type in ("bert", "roberta") else (0.05, 0.05)
    if hasattr(config, "attn_pdrop"):
        return 0.15, 0.15
    return (0.20, 0.15) if family == "mlm" else (0.15, 0.15)


def dropout_settings(config, family: str, hidden: float = -1.0, attention: float = -1.0
                     ) -> tuple[dict[str, float], list[str]]:
    """(config key -> rate for training, the kinds of dropout this config has no key for)."""
    default_hidden, default_attention = default_rates(config, family)
    hidden = default_hidden if hidden < 0 else hidden
    attention = default_attention if attention < 0 else attention
    keys = config.to_dict()
    out = {k: float(hidden) for k in HIDDEN_KEYS if k in keys}
    out.update({k: float(attention) for k in ATTENTION_KEYS if k in keys})
    if not out:
        raise UnsupportedError(f"dropout: {type(config).__name__} has none of the dropout keys "
                               f"{', '.join(HIDDEN_KEYS + ATTENTION_KEYS)}")
    missing = [kind for kind, names in (("hidden", HIDDEN_KEYS), ("attention", ATTENTION_KEYS))
               if not any(k in keys for k in names)]
    return out, missing


def set_dropout(model: nn.Module, values: dict[str, float]) -> dict[str, float]:
    """In place: the config keys to ``values`` and every dropout rate the architecture derives from them; returns
    the previous values (pass them back to restore)."""
    old = {k: getattr(model.config, k) for k in values}
    config = copy.deepcopy(model.config)
    for k, v in values.items():
        setattr(config, k, v)
    with torch.device("meta"):  # the same architecture built from the changed config, without weights
        skeleton = type(model)(config)
    modules = dict(model.named_modules())
    for name, built in skeleton.named_modules():
        target = modules.get(name)
        if target is None or type(target) is not type(built):
            raise UnsupportedError(f"dropout: module {name!r} of {type(model).__name__} differs when rebuilt")
        if isinstance(built, nn.modules.dropout._DropoutNd):
            target.p = built.p
        for attr, value in vars(built).items():  # functional dropout rates (attention kernels)
            if "drop" in attr.lower() and isinstance(value, float):
                setattr(target, attr, value)
    for k, v in values.items():
        setattr(model.config, k, v)
    return old


@register_method
class Dropout(ContinuedLMMethod):
    name = "dropout"
    version = "1.0"
    description = "Continue LM training with increased dropout (Webster et al. 2020; bias-bench's Dropout)."
    params = {**TEXT_PARAMS, "hidden_dropout": -1.0, "attention_dropout": -1.0}
    citation = ("Webster, Wang, Tenney, Beutel, Pitler, Pavlick, Chen, Chi, Petrov. Measuring and Reducing Gendered "
                "Correlations in Pre-trained Models. arXiv 2010.06032 (2020); Meade, Poole-Dayan, Reddy. An "
                "Empirical Survey of the Effectiveness of Debiasing Techniques for Pre-trained Language Models. "
                "ACL 2022.")

    def training_model(self, handle, params: dict[str, Any]):
        values, missing = dropout_settings(handle.model.config, handle.family, float(params["hidden_dropout"]),
                                           float(params["attention_dropout"]))
        model = handle.clone_model()
        set_dropout(model, values)
        return model, {"dropout": values, **({"dropout_missing": missing} if missing else {})}

    def evaluation_model(self, trained, handle, params):
        set_dropout(trained, {k: getattr(handle.model.config, k) for k in
                              dropout_settings(handle.model.config, handle.family)[0]})
        trained.eval()
        return trained
