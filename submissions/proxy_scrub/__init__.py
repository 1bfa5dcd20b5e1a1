"""Proxy scrub: also remove the words that stand in for gender (Baksi, Singh, Joshi 2024).

A gender direction is the first principal component of the differences of gendered word-pair embeddings
(Bolukbasi et al. 2016): each pair (m, f) contributes +(f - m)/2 and -(f - m)/2, so the set is centred and the
component is the direction the differences share. The direction is oriented so that female words project
positively. Each word of the fine-tuning vocabulary (seen at least ``min_count`` times) is scored by the cosine of
its vector with the direction; the ``top_n`` words with the largest |score| are gender proxies and are deleted,
together with the explicit gender words when ``include_explicit`` is true. The paper leaves the embeddings open: we
use static GloVe vectors (``embeddings``, a wordvec model), independent of the model being fine-tuned.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from biasboard.harness.errors import UnsupportedError
from biasboard.harness.registry import register_method
from biasboard.harness.specs import Method
from biasboard.tasks.wordlists import GENDER_PAIRS, words_of

_VECTORS: dict[str, tuple[np.ndarray, dict[str, int]]] = {}


def gender_direction(vectors: np.ndarray, vocab: dict[str, int], pairs=GENDER_PAIRS) -> np.ndarray:
    """Unit vector: first principal component of the centred pair differences, female side positive."""
    from sklearn.decomposition import PCA

    diffs = np.array([vectors[vocab[f]] - vectors[vocab[m]] for m, f in pairs if m in vocab and f in vocab],
                     dtype=np.float64)
    if len(diffs) < 2:
        raise UnsupportedError("proxy_scrub: fewer than two gendered word pairs are in the embedding vocabulary")
    comp = PCA(n_components=1).fit(np.vstack([diffs / 2, -diffs / 2])).components_[0]
    comp /= np.linalg.norm(comp)
    return comp if diffs.mean(axis=0) @ comp > 0 else -comp


def proxy_scores(words, vectors: np.ndarray, vocab: dict[str, int], direction: np.ndarray) -> dict[str, float]:
    """Cosine of each in-vocabulary word's vector with the direction (positive = female-associated)."""
    out = {}
    for w in words:
        if w in vocab:
            v = vectors[vocab[w]].astype(np.float64)
            norm = np.linalg.norm(v)
            if norm > 0:
                out[w] = float(v @ direction / norm)
    return out


def top_proxies(scores: dict[str, float], n: int, exclude=()) -> list[str]:
    """The n words with the largest |score|, ties broken alphabetically.

    >>> top_proxies({"nurse": 0.3, "football": -0.4, "table": 0.01, "she": 0.9}, 2, exclude={"she"})
    ['football', 'nurse']
    """
    ranked = sorted((w for w in scores if w not in set(exclude)), key=lambda w: (-abs(scores[w]), w))
    return ranked[:n]


def _load(model_id: str):
    if model_id not in _VECTORS:
        from biasboard.harness.models import load_handle

        h = load_handle(model_id)
        if h.family != "wordvec":
            raise UnsupportedError(f"proxy_scrub: embeddings={model_id!r} is a {h.family} model; need wordvec")
        _VECTORS[model_id] = (h.extras["vectors"], h.extras["vocab"])
    return _VECTORS[model_id]


@register_method
class ProxyScrub(Method):
    name = "proxy_scrub"
    version = "1.0"
    description = "Scrub explicit gender words and the top-N gender-proxy words (projection on a gender direction)."
    families = ("encoder", "mlm", "clm")
    kind = "data"
    params = {"top_n": 50, "min_count": 2, "include_explicit": True, "embeddings": "zoo:glove-6b-50d"}
    citation = ("Baksi, Singh, Joshi. Downstream bias mitigation is all you need. arXiv 2408.00612 (2024); "
                "Bolukbasi et al. 2016 (gender direction).")

    def transform_data(self, dataset, ctx):
        from biasboard.submissions.scrub import WORD_LISTS, scrub_dataset

        if dataset.axis not in ("gender", ""):  # "" = no group axis (GLUE): measures the utility cost
            raise UnsupportedError(f"proxy_scrub defines a gender direction; the fine-tuning data are on the "
                                   f"{dataset.axis} axis")
        p = {**self.params, **ctx.params}
        vectors, vocab = _load(str(p["embeddings"]))
        direction = gender_direction(vectors, vocab)
        counts = Counter(w for t in dataset.texts for w in words_of(t))
        explicit = set(WORD_LISTS["gender"])
        scores = proxy_scores([w for w, c in counts.items() if c >= int(p["min_count"])], vectors, vocab, direction)
        proxies = top_proxies(scores, int(p["top_n"]), exclude=explicit)
        self.last_proxies = [(w, scores[w]) for w in proxies]
        return scrub_dataset(dataset, proxies + (sorted(explicit) if p["include_explicit"] else []))
