"""my_method: remove a gender direction from the input word embeddings (a starting point to edit).

What it does: the direction is the first principal component of the differences between the input embeddings of
gendered word pairs (he/she, man/woman, ...), as in Bolukbasi et al. (2016) for word vectors; every row of the
input embedding matrix then loses ``strength`` times its projection on that direction. It is deterministic (no
sampling), so the same seed gives the same result, and it caches the direction as safetensors, never a pickle.

To make it yours: rename (``biasboard new-method NAME`` does it), change ``apply``, keep the class attributes and
manifest.yaml in step, then run ``biasboard validate submissions/NAME``.
"""
from __future__ import annotations

import hashlib

import torch

from biasboard.harness.errors import UnsupportedError
from biasboard.harness.registry import register_method
from biasboard.harness.specs import Method

PAIRS = (("he", "she"), ("man", "woman"), ("his", "her"), ("him", "her"), ("boy", "girl"), ("father", "mother"),
         ("son", "daughter"), ("brother", "sister"), ("king", "queen"), ("male", "female"))


def single_token_ids(tokenizer, word: str) -> list[int]:
    """Vocabulary ids of ``word`` that are one token (with and without a leading space, for BPE vocabularies)."""
    ids = []
    for form in (word, " " + word):
        enc = tokenizer(form, add_special_tokens=False)["input_ids"]
        if len(enc) == 1 and enc[0] not in ids:
            ids.append(enc[0])
    return ids


def gender_direction(embeddings: torch.Tensor, tokenizer) -> torch.Tensor:
    """Unit vector: first principal component of the (centred) pair differences of the gendered words."""
    diffs = []
    for a, b in PAIRS:
        ia, ib = single_token_ids(tokenizer, a), single_token_ids(tokenizer, b)
        for x, y in zip(ia, ib):
            diffs.append(embeddings[x] - embeddings[y])
    if len(diffs) < 2:
        raise UnsupportedError("my_method: fewer than two gendered word pairs are single tokens in this vocabulary")
    d = torch.stack(diffs).double()
    _, _, vt = torch.linalg.svd(d - d.mean(0, keepdim=True), full_matrices=False)
    return vt[0].to(embeddings.dtype)


def project_out(embeddings: torch.Tensor, direction: torch.Tensor, strength: float) -> torch.Tensor:
    """Rows minus ``strength`` times their projection on the unit ``direction``."""
    return embeddings - strength * torch.outer(embeddings @ direction, direction)


@register_method
class MyMethod(Method):
    name = "my_method"
    version = "0.1"
    description = "Remove a gender direction (PCA of gendered pair differences) from the input word embeddings."
    citation = ("Bolukbasi, Chang, Zou, Saligrama, Kalai (2016), Man is to Computer Programmer as Woman is to "
                "Homemaker? Debiasing Word Embeddings, NeurIPS")
    families = ("mlm", "clm", "encoder")
    kind = "weights"
    params = {"strength": 1.0}

    def apply(self, handle, ctx):
        strength = float(self.resolve_params(ctx.params)["strength"])
        model = handle.clone_model()  # never change the handle you were given
        weight = model.get_input_embeddings().weight
        with torch.no_grad():
            direction = self._direction(weight.detach(), handle, ctx)
            weight.copy_(project_out(weight.detach(), direction, strength))
        model.eval()
        return handle.derive(model=model, step=f"my_method(strength={strength})")

    def _direction(self, weight: torch.Tensor, handle, ctx) -> torch.Tensor:
        """The direction, cached by the weights it came from. Cache with safetensors only: a pickle can run code."""
        from safetensors.torch import load_file, save_file

        if ctx.cache_dir is None:
            return gender_direction(weight, handle.tokenizer)
        key = hashlib.sha256(f"{handle.weights_sha256}|{handle.lineage}|{self.version}".encode()).hexdigest()[:16]
        path = ctx.cache_dir / "my_method" / f"{key}.safetensors"
        if path.exists():
            return load_file(str(path))["direction"]
        direction = gender_direction(weight, handle.tokenizer)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"direction": direction.contiguous()}, str(path))
        return direction
