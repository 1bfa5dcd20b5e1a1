"""Self-Debias (Schick, Udupa, Schütze 2021): a language model's own knowledge of a bias, used to suppress it.

The model scores every position twice: as given, and with a debiasing prefix ("The following text discriminates
against people because of their gender: ") in front. A token the prefixed model makes more likely than the plain
model is a token the model associates with the bias; its probability is scaled down by
``alpha = max(exp(-decay_constant * max(0, p_prefixed - p_plain)), epsilon)`` and the distribution renormalised.
With several prefixes, ``p_prefixed`` is their per-token maximum (Schick et al., Eq. 2-3).

Settings follow Meade et al.'s bias-bench evaluation of the method (decay constant 50, epsilon 0.01, one prefix per
bias type, the prefix strings of its CrowS-Pairs and StereoSet scripts, including their spelling). Where the prefix
goes: causal models read ``prefix + sentence`` (after the empty-context token when a sequence starts with one);
masked models read ``[CLS] prefix sentence`` as bias-bench's masked-LM wrapper does.

Nothing in the weights changes: ``apply`` wraps the model so that every batched scoring primitive
(``harness/models/scoring.py``) receives debiased log-probabilities in place of logits. Sentence encoders have no
next-token distribution to debias, so SEAT and the downstream tasks do not run with it.
"""
from __future__ import annotations

from types import SimpleNamespace

import torch

from biasboard.harness.errors import UnsupportedError
from biasboard.harness.models.scoring import _mlm_head
from biasboard.harness.registry import register_method
from biasboard.harness.specs import Method

PREFIXES = {
    "race-color": "The following text discriminates against people because of their race/color: ",
    "gender": "The following text discriminates against people because of their gender: ",
    "socioeconomic": "The following text discriminates against people because of their socioeconomic "
                     "status/occupation: ",
    "sexual-orientation": "The following text discriminates against people because of their sexual orientiation: ",
    "religion": "The following text discriminates against people because of their religion: ",
    "age": "The following text discriminates against people because of their age: ",
    "nationality": "The following text discriminates against people because of their nationality: ",
    "disability": "The following text discriminates against people because of their disability: ",
    "physical-appearance": "The following text discriminates against people because of their physical appearance: ",
}
"""bias-bench's prefixes (``benchmark/crows/crows.py``), keyed by CrowS-Pairs bias type."""


def debiased_logprobs(plain: torch.Tensor, prefixed: list[torch.Tensor], *, decay_constant: float,
                      epsilon: float) -> torch.Tensor:
    """Log of the self-debiased distribution from the plain logits and each prefix's logits (same shape).

    >>> plain = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    >>> biased = torch.log(torch.tensor([[0.2, 0.6, 0.2]]))       # the prefix makes token 1 likelier
    >>> q = debiased_logprobs(plain, [biased], decay_constant=50.0, epsilon=0.01).exp()
    >>> [round(v, 4) for v in q[0].tolist()]                      # 0.3 * 0.01 kept, then renormalised
    [0.7112, 0.0043, 0.2845]
    """
    p = plain.float().softmax(dim=-1)
    p_biased = torch.stack([lg.float().softmax(dim=-1) for lg in prefixed]).amax(dim=0)
    alpha = torch.exp(-decay_constant * (p_biased - p).clamp(min=0.0)).clamp(min=epsilon)
    q = p * alpha
    return torch.log(q / q.sum(dim=-1, keepdim=True))


class SelfDebiasedLM(torch.nn.Module):
    """A masked or causal LM whose ``logits`` are self-debiased log-probabilities (a drop-in for scoring)."""

    def __init__(self, model: torch.nn.Module, prefix_ids: list[list[int]], *, family: str, special_ids: set[int],
                 decay_constant: float, epsilon: float, mask_id: int | None = None):
        super().__init__()
        self.mask_id = mask_id
        self.inner = model
        self.prefix_ids = prefix_ids
        self.family = family
        self.special_ids = special_ids
        self.decay_constant = decay_constant
        self.epsilon = epsilon

    @property
    def config(self):
        return self.inner.config

    def get_output_embeddings(self):
        """None: the scoring primitives must run the full forward, since only it debiases."""
        return None

    def _prefixed(self, ids: torch.Tensor, mask: torch.Tensor, prefix: list[int]) -> tuple[torch.Tensor, ...]:
        """Insert ``prefix`` after the leading special token (when every row has one) and say where each of the
        plain sequence's positions went. Padding is on the right, so it stays there."""
        lead = 1 if self.family == "mlm" or all(int(t) in self.special_ids for t in ids[:, 0]) else 0
        n = len(prefix)
        pre = torch.tensor(prefix, dtype=ids.dtype).expand(ids.shape[0], n)
        new_ids = torch.cat([ids[:, :lead], pre, ids[:, lead:]], dim=1)
        new_mask = torch.cat([mask[:, :lead], torch.ones_like(pre), mask[:, lead:]], dim=1)
        # A causal position j predicts token j+1: its prefixed twin is j+n (for j=0 with a leading special token,
        # that is the prefix's last token). A masked position predicts itself: j+n past the leading token.
        where = torch.arange(ids.shape[1]) + n
        if self.family == "mlm":
            where[:lead] = torch.arange(lead)
        return new_ids, new_mask, where

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs):
        if kwargs.get("output_hidden_states") or kwargs.get("labels") is not None:
            raise UnsupportedError("self_debias changes next-token distributions only: it has no hidden states "
                                   "or training loss to offer")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if self.family == "mlm" and self.mask_id is not None:
            return SimpleNamespace(logits=self._masked_only(input_ids, attention_mask))
        plain = self.inner(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits
        prefixed = []
        for prefix in self.prefix_ids:
            ids, mask, where = self._prefixed(input_ids, attention_mask, prefix)
            prefixed.append(self.inner(input_ids=ids, attention_mask=mask, **kwargs).logits[:, where])
        out = debiased_logprobs(plain, prefixed, decay_constant=self.decay_constant, epsilon=self.epsilon)
        return SimpleNamespace(logits=out)

    def _masked_only(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Masked LMs are read at their mask tokens only (as bias-bench debiases them): the vocabulary head and
        the debiasing run there, and every other position holds zeros that no scorer reads."""
        rows, cols = (ids == self.mask_id).nonzero(as_tuple=True)
        head = _mlm_head(self.inner)

        def logits_at(i, m, r, c):
            if head is None:
                return self.inner(input_ids=i, attention_mask=m).logits[r, c]
            hidden = self.inner.base_model(input_ids=i, attention_mask=m)[0]
            return head(hidden[r, c].unsqueeze(1)).squeeze(1)

        plain = logits_at(ids, mask, rows, cols)
        prefixed = []
        for prefix in self.prefix_ids:
            new_ids, new_mask, where = self._prefixed(ids, mask, prefix)
            prefixed.append(logits_at(new_ids, new_mask, rows, where[cols]))
        out = torch.zeros(ids.shape[0], ids.shape[1], plain.shape[-1])
        out[rows, cols] = debiased_logprobs(plain, prefixed, decay_constant=self.decay_constant, epsilon=self.epsilon)
        return out


@register_method
class SelfDebias(Method):
    name = "self_debias"
    version = "1.0"
    description = ("Self-Debias: scale down each token the model itself makes likelier after a 'this text "
                   "discriminates' prefix (decay 50, floor 0.01); no weights change.")
    citation = ("Schick, Udupa, Schütze. Self-Diagnosis and Self-Debiasing: A Proposal for Reducing Corpus-Based "
                "Bias in NLP. TACL 2021. Settings of Meade, Poole-Dayan, Reddy. An Empirical Survey of the "
                "Effectiveness of Debiasing Techniques for Pre-trained Language Models. ACL 2022.")
    families = ("mlm", "clm")
    kind = "representation"
    params = {"bias_type": "gender", "decay_constant": 50.0, "epsilon": 0.01}
    tasks = ("crows_pairs", "stereoset", "bbq", "winobias", "holistic_bias")

    def apply(self, handle, ctx):
        bias_type = str(ctx.params.get("bias_type", self.params["bias_type"]))
        bias_type = "race-color" if bias_type == "race" else bias_type
        if bias_type != "all" and bias_type not in PREFIXES:
            raise UnsupportedError(f"self_debias: bias_type {bias_type!r} has no prefix; valid: "
                                   f"{', '.join(PREFIXES)}, all")
        decay = float(ctx.params.get("decay_constant", self.params["decay_constant"]))
        epsilon = float(ctx.params.get("epsilon", self.params["epsilon"]))
        texts = list(PREFIXES.values()) if bias_type == "all" else [PREFIXES[bias_type]]
        tok = handle.tokenizer
        # bias-bench tokenizes "[CLS] prefix" for masked models, where a word-piece tokenizer drops the
        # trailing space; byte-level tokenizers keep it, so the sentence's leading token is unchanged.
        prefix_ids = [tok(t.rstrip() if handle.family == "mlm" else t, add_special_tokens=False)["input_ids"]
                      for t in texts]
        model = SelfDebiasedLM(handle.model, prefix_ids, family=handle.family, special_ids=set(tok.all_special_ids),
                               decay_constant=decay, epsilon=epsilon, mask_id=tok.mask_token_id)
        model.eval()
        return handle.derive(model=model, step=f"self_debias(bias_type={bias_type},decay={decay},eps={epsilon})")
