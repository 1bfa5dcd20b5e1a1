"""Bias Vector (Shirafuji, Takenaka, Taguchi; arXiv 2412.11679): learn the direction of bias in weight space and
subtract it.

1. Continue language modelling (MLM with 15% masking for mlm models, CLM for clm models) of the pre-trained model on
   biased text, StereoSet intrasentence with the blank filled by the stereotype option (``bias_type`` one of
   gender, profession, race, religion, or all) -> theta_biased.
2. V = theta_biased - theta_pre over floating-point parameters, LayerNorm (and RMSNorm) parameters excluded.
3. theta_debiased = theta_pre - lambda * V.

V is stored as a safetensors file of deltas in the cache, keyed by the base weights, corpus and training config, so
lambda 1, 10 and 100 share one fine-tuning run. Paper settings: AdamW, lr 1e-4, weight decay 0.01, batch 128,
30 epochs, 10,000 warm-up steps; CPU defaults here are far smaller (``steps=0``: 200 for mlm, 16 for clm;
batch 32; warm-up 10% of the steps, which, unlike the paper's, lets the peak lr be reached). Because V is trained
on StereoSet, the handle records ``trained_on: [stereoset]`` and StereoSet results of the model are flagged as
leakage (the paper evaluates with SEAT and GLUE only).
"""
from __future__ import annotations

import torch

from biasboard.harness.registry import register_method
from biasboard.harness.training.cache import cache_key, cache_root
from biasboard.harness.training.corpora import stereoset_stereotypes
from biasboard.harness.training.lm import (LM_TRAINER_VERSION, UPSTREAM_STEPS, finetune_record, label,
                                           resolve_train_precision, train_config, train_lm)
from biasboard.harness.training.objectives import ErmObjective
from biasboard.harness.specs import Method

VECTOR_VERSION = "1"


def norm_parameter_names(model: torch.nn.Module) -> set[str]:
    """Names of parameters that belong to normalisation layers (LayerNorm, RMSNorm...), which V leaves out."""
    out = set()
    for mname, module in model.named_modules():
        if "norm" in type(module).__name__.lower():
            out.update(f"{mname}.{p}" if mname else p for p, _ in module.named_parameters(recurse=False))
    return out


def task_vector(pre: torch.nn.Module, tuned: torch.nn.Module) -> dict[str, torch.Tensor]:
    """V = tuned - pre over floating-point, non-normalisation parameters (tied weights appear once)."""
    skip = norm_parameter_names(pre)
    tuned_params = dict(tuned.named_parameters())
    return {name: (tuned_params[name].detach() - p.detach()).contiguous()
            for name, p in pre.named_parameters() if p.is_floating_point() and name not in skip}


def apply_vector(model: torch.nn.Module, vector: dict[str, torch.Tensor], scale: float) -> torch.nn.Module:
    """In place: theta <- theta + scale * V (Bias Vector uses scale = -lambda)."""
    params = dict(model.named_parameters())
    missing = set(vector) - set(params)
    if missing:
        raise ValueError(f"bias vector has parameters the model lacks: {sorted(missing)[:3]}")
    with torch.no_grad():
        for name, v in vector.items():
            params[name].add_(scale * v.to(params[name].dtype))
    return model


@register_method
class BiasVector(Method):
    name = "bias_vector"
    version = "1.1"
    description = "Subtract lambda times the weight difference learnt by fine-tuning on StereoSet stereotypes."
    families = ("mlm", "clm")
    kind = "finetune"
    params = {"lambda": 1.0, "bias_type": "all", "steps": 0, "batch_size": 32, "lr": 1e-4, "max_length": 0,
              "train_precision": "auto"}
    extra_keys = (UPSTREAM_STEPS,)
    citation = ("Shirafuji, Takenaka, Taguchi. Bias Vector: Mitigating Biases in Language Models with Task "
                "Arithmetic Approach. arXiv 2412.11679 (2024).")

    def resolve_params(self, given):
        return resolve_train_precision(super().resolve_params(given))

    def vector(self, handle, params, ctx) -> dict[str, torch.Tensor]:
        """The bias vector for this base model / corpus / config, from the cache or trained now."""
        from safetensors.torch import load_file, save_file

        corpus = stereoset_stereotypes(str(params["bias_type"]))
        config = train_config(params, handle.family, ctx.seed, ctx.extra)
        key = cache_key(vector=VECTOR_VERSION, trainer=LM_TRAINER_VERSION, model=handle.id,
                        weights=handle.weights_sha256, lineage=list(handle.lineage), config=config.key_fields(),
                        corpus=corpus.digest())
        path = cache_root(ctx.cache_dir) / "bias_vectors" / f"{key[:32]}.safetensors"
        if path.exists():
            return load_file(str(path))
        tuned = handle.clone_model()
        train_lm(tuned, handle.tokenizer, handle.family, corpus, config, ErmObjective(), progress=ctx.progress)
        vec = task_vector(handle.model, tuned)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{id(vec)}")
        save_file(vec, str(tmp), metadata={"corpus": corpus.name, "model": handle.id})
        tmp.replace(path)
        return vec

    def apply(self, handle, ctx):
        params = self.resolve_params(ctx.params)
        vec = self.vector(handle, params, ctx)
        model = apply_vector(handle.clone_model(), vec, -float(params["lambda"]))
        model.eval()
        trained = list(handle.extras.get("trained_on", ())) + ["stereoset"]
        return handle.derive(model=model, step=label(self.name, params, ctx.seed), trained_on=trained,
                             finetune=finetune_record(train_config(params, handle.family, ctx.seed, ctx.extra)))
