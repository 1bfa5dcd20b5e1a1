"""Random init: the same architecture with no pre-training (Baksi, Singh, Joshi 2024; Steed et al. 2022).

The model is rebuilt from its config with freshly initialised weights (the architecture's own init, seeded by the
cell seed); the tokenizer stays. A from-scratch model needs a larger fine-tuning learning rate than a pre-trained
one, so the handle carries ``finetune_lr`` (default 5e-4), which the downstream tasks use unless the run sets ``lr``.
"""
from __future__ import annotations

import torch

from biasboard.harness.registry import register_method
from biasboard.harness.specs import Method


@register_method
class RandomInit(Method):
    name = "random_init"
    version = "1.0"
    description = "Same architecture, freshly initialised weights (no pre-training)."
    families = ("encoder", "mlm", "clm")
    kind = "weights"
    params = {"finetune_lr": 5e-4}
    citation = "Baksi, Singh, Joshi. Downstream bias mitigation is all you need. arXiv 2408.00612 (2024)."

    def apply(self, handle, ctx):
        config = handle.model.config
        torch.manual_seed(ctx.seed)
        model = type(handle.model)(config)
        model.eval()
        lr = float(ctx.params.get("finetune_lr", self.params["finetune_lr"]))
        return handle.derive(model=model, step=f"random_init(seed={ctx.seed})", finetune_lr=lr)
