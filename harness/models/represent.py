"""Representation hooks: a method rewrites every token's final hidden state before anything downstream reads it.

Why: SentenceDebias (Liang et al. 2020) and INLP (Ravfogel et al. 2020), as bias-bench (Meade et al. 2022) runs
them, change what the encoder outputs, not the weights: a forward hook on the base encoder (BertModel, GPT2Model...)
replaces ``last_hidden_state``, so SEAT's sentence vectors and the LM head's inputs (CrowS-Pairs, StereoSet) both
see the debiased states. ``with_representation`` does that on a handle, so every batched primitive of
``harness.models.scoring`` (``encode``, ``masked_logprobs``, ``sequence_logprobs``...) sees it unchanged:

- the hook goes on a structural copy of the model whose parameters and buffers are the original tensors (no extra
  memory for weights), so the handle given, and every other handle sharing its model, stays as it was;
- it sits on the module that produces the final hidden states (``base_model``: BertModel inside BertForMaskedLM,
  GPT2Model / LlamaModel inside the causal LM, the encoder itself for sentence encoders);
- it replaces the first output (``last_hidden_state``) and, when hidden states are returned, their last entry when
  that is the same tensor (as in BERT, GPT-2 and Llama), so ``encode(layer=-1)`` sees the new states too.
"""
from __future__ import annotations

import copy
from functools import partial
from typing import Any, Callable

import torch

from biasboard.harness.errors import BiasboardError, UnsupportedError

__all__ = ["final_states_module", "install_method_representation", "shared_structure_copy", "with_representation"]


def shared_structure_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of the module tree (so hooks added to it stay on it) that shares every parameter and buffer tensor."""
    memo: dict[int, Any] = {id(t): t for t in model.parameters()}
    memo.update({id(t): t for t in model.buffers()})
    return copy.deepcopy(model, memo)


def final_states_module(model: torch.nn.Module) -> torch.nn.Module:
    """The module whose first output is the final hidden states: ``base_model`` (the model itself for encoders)."""
    base = getattr(model, "base_model", None)
    if not isinstance(base, torch.nn.Module):
        raise UnsupportedError(f"{type(model).__name__} has no base_model whose output is the final hidden states")
    return base


def _replace_final(output: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``output`` with its final hidden states (and the last entry of ``hidden_states`` when it is that tensor)
    replaced by ``fn`` of them."""
    last = output[0]
    new = fn(last)
    if not isinstance(new, torch.Tensor) or new.shape != last.shape:
        raise BiasboardError(f"represent(hidden, ctx) must return a tensor of shape {tuple(last.shape)}, got "
                             f"{getattr(new, 'shape', type(new).__name__)}")
    new = new.to(last.dtype)
    if isinstance(output, tuple):
        return (new,) + tuple(output[1:])
    hidden_states = output.get("hidden_states") if hasattr(output, "get") else None
    output["last_hidden_state"] = new
    if hidden_states is not None and hidden_states[-1] is last:
        output["hidden_states"] = tuple(hidden_states[:-1]) + (new,)
    return output


def with_representation(handle, fn: Callable[[torch.Tensor], torch.Tensor], step: str):
    """A new handle whose model passes its final hidden states (batch x tokens x dim) through ``fn``."""
    if handle.model is None or handle.family not in ("mlm", "clm", "encoder"):
        raise UnsupportedError(f"model {handle.id!r} ({handle.family}) has no token hidden states to rewrite")
    model = shared_structure_copy(handle.model)
    final_states_module(model).register_forward_hook(lambda _module, _args, output: _replace_final(output, fn))
    model.eval()
    return handle.derive(model=model, step=step)


def install_method_representation(handle, method, ctx):
    """``handle`` with ``method.represent(hidden, ctx)`` installed, when the method has that hook (else unchanged).

    ``ctx`` is the context of the cell that applied the method: state ``apply`` fitted on the method instance
    (a bias direction, a projection) is what ``represent`` uses for every later cell that reuses this handle."""
    represent = getattr(method, "represent", None)
    if not callable(represent):
        return handle
    return with_representation(handle, partial(represent, ctx=ctx), step=f"{method.name}.represent")
