"""Log-probability of one target token per row under a vocabulary projection, block by block.

Scoring needs ``log_softmax(features @ W.T + b)[target]`` for each row, never the whole distribution. Computing
the full ``rows x vocab`` logits first writes and re-reads a matrix far larger than the cache (64 rows x 30,522
words is 7.8 MB; a causal batch of 1,000 scored positions x 49,152 words is 200 MB), so the projection runs
memory-bound. Here the vocabulary is cut into blocks whose logits stay in cache: each block's log-sum-exp is
kept, the target's logit is read from the block that holds it, and the blocks' log-sum-exps are combined at the
end. The target logit is the matrix product's own value, so only the order of the normaliser's sum differs from
``log_softmax`` (about 1e-6 nats in float32; tested).
"""
from __future__ import annotations

import torch
from torch import nn

ROW_BLOCK = 512
VOCAB_BLOCK = 2048
# Measured on a 2-core AVX2 CPU, 1,024 rows x 30,522 words x 128: 232 ms as one matrix and log-softmax (or in
# batches of 64 rows), 100 ms in blocks of 512 x 2,048 computed into one reused buffer.


def target_logprobs(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                    targets: torch.Tensor) -> torch.Tensor:
    """``log_softmax(features @ weight.T + bias, -1)[i, targets[i]]`` per row, as float32.

    The products run in the features' dtype (or under whatever autocast is active, as ``nn.Linear`` would); the
    log-sum-exp is taken in float32, as ``log_softmax(logits.float())`` does: each block's row maximum and sum of
    shifted exponentials are kept, then combined."""
    n_vocab = weight.shape[0]
    starts = range(0, n_vocab, VOCAB_BLOCK)
    out = torch.empty(len(features), dtype=torch.float32)
    for r0 in range(0, len(features), ROW_BLOCK):
        rows, tgt = features[r0:r0 + ROW_BLOCK], targets[r0:r0 + ROW_BLOCK]
        n = len(rows)
        own = torch.empty(n, dtype=torch.float32)
        peak, total = torch.empty(n, len(starts)), torch.empty(n, len(starts))
        for j, v0 in enumerate(starts):
            v1 = min(v0 + VOCAB_BLOCK, n_vocab)
            w = weight[v0:v1].t()
            block = (torch.mm(rows, w) if bias is None else torch.addmm(bias[v0:v1], rows, w)).float()
            here = (tgt >= v0) & (tgt < v1)
            if here.any():
                own[here] = block[here, tgt[here] - v0]
            peak[:, j] = block.amax(dim=1).clamp_(min=torch.finfo(torch.float32).min)  # a block all -inf adds 0
            total[:, j] = block.sub_(peak[:, j:j + 1]).exp_().sum(dim=1)
        top = peak.amax(dim=1, keepdim=True)
        out[r0:r0 + n] = own - (top.squeeze(1) + (total * (peak - top).exp()).sum(dim=1).log())
    return out


def hooked(*modules: nn.Module) -> bool:
    """Whether a forward hook watches any of these modules (or every module): a shortcut that skips or splits
    their forward would hide their real output from it, so callers take the plain forward instead (a method's
    representation hook sits on the base model, ``harness.models.represent``)."""
    from torch.nn.modules import module as torch_module
    if getattr(torch_module, "_global_forward_hooks", None) or getattr(torch_module, "_global_forward_pre_hooks", None):
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in modules)


def split_head(head: nn.Module, projection: nn.Module) -> tuple[nn.Module, nn.Linear] | None:
    """``(transform, projection)`` such that ``head(x) == projection(transform(x))``, for heads whose last step is
    the vocabulary projection (BERT's ``cls``, RoBERTa's ``lm_head``): ``transform`` runs the head with the
    projection replaced by an identity. None when the projection is not a plain linear layer inside the head."""
    if not isinstance(projection, nn.Linear) or hooked(head, projection):
        return None
    if head is projection:
        return nn.Identity(), projection
    for name, module in head.named_modules():
        if module is projection:
            parent_name, _, attr = name.rpartition(".")
            return _WithoutProjection(head, head.get_submodule(parent_name) if parent_name else head, attr), projection
    return None


class _WithoutProjection(nn.Module):
    """The head's forward with its projection child swapped for an identity for the call's duration."""

    def __init__(self, head: nn.Module, parent: nn.Module, attr: str):
        super().__init__()
        self._parts = (head, parent, attr)  # a tuple, so they are not registered as submodules

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head, parent, attr = self._parts
        projection = getattr(parent, attr)
        setattr(parent, attr, nn.Identity())
        try:
            return head(x)
        finally:
            setattr(parent, attr, projection)
