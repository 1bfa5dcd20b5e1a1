"""The synthetic talk-page generator plants exactly what its config says: the overall toxic share is fixed across
skew, P(toxic | identity term) follows skew, and only the identity slot differs between the two groups."""
from __future__ import annotations

import numpy as np
import pytest

from biasboard.harness.errors import BiasboardError
from biasboard.tasks import synthetic_wiki
from biasboard.tasks.synthetic_wiki import WikiConfig, background_toxicity, generate, identity_toxicity
from biasboard.tasks.wordlists import IDENTITY_TERMS, word_pattern


@pytest.mark.parametrize("skew", [0.0, 0.5, 1.0, 2.0])
def test_rates_match_the_config(skew):
    config = WikiConfig(n=4000, skew=skew, seed=3)
    data = generate(config)
    y = np.asarray(data.labels)
    ident = np.asarray(data.groups) == "identity"
    assert ident.mean() == pytest.approx(config.identity_rate, abs=1e-3)
    assert y.mean() == pytest.approx(config.toxic_rate, abs=1e-3)  # the same at every skew
    assert y[ident].mean() == pytest.approx(identity_toxicity(config), abs=1e-3)
    assert y[~ident].mean() == pytest.approx(background_toxicity(config), abs=1e-3)
    if skew == 0:
        assert y[ident].mean() == pytest.approx(y[~ident].mean(), abs=1e-3)


def test_identity_slot_is_the_only_difference():
    data = generate(WikiConfig(n=2000, skew=1.0, seed=1))
    pat = word_pattern(IDENTITY_TERMS)
    for text, group in zip(data.texts, data.groups):
        assert bool(pat.search(text)) == (group == "identity"), text
    mentioned = {m.group(0).lower() for t in data.texts for m in [pat.search(t)] if m}
    assert len(mentioned) > 40  # most of the 50 terms occur
    # the same frames serve both groups: the words around the slot do not give the group away
    starts = {g: {t.split()[0].lower() for t, gg in zip(data.texts, data.groups) if gg == g}
              for g in ("identity", "none")}
    assert len(starts["identity"] & starts["none"]) > 10


def test_toxic_and_friendly_vocabularies_are_disjoint_and_clean():
    for words in (synthetic_wiki.POSITIVE, synthetic_wiki.NEGATIVE, synthetic_wiki.INSULTS, synthetic_wiki.DESCRIPTORS,
                  synthetic_wiki.TOPICS):
        assert not set(words) & set(IDENTITY_TERMS)
    assert not set(synthetic_wiki.POSITIVE) & set(synthetic_wiki.NEGATIVE)
    data = generate(WikiConfig(n=600, skew=0.0, ambiguity=0.0, seed=2))
    hostile = synthetic_wiki.NEGATIVE + synthetic_wiki.INSULTS + synthetic_wiki.HATE
    neg = set(hostile) | {w + "s" for w in hostile}
    for text, label in zip(data.texts, data.labels):
        words = set(text.lower().replace(",", " ").replace(".", " ").replace(":", " ").replace(";", " ").split())
        assert bool(words & neg) == bool(label), text


def test_deterministic_and_validated():
    assert generate(WikiConfig(n=50, seed=4)) == generate(WikiConfig(n=50, seed=4))
    assert generate(WikiConfig(n=50, seed=4)).texts != generate(WikiConfig(n=50, seed=5)).texts
    with pytest.raises(BiasboardError, match="outside"):
        generate(WikiConfig(identity_rate=0.5, skew=2.0))  # P(toxic | no term) would be negative
    with pytest.raises(BiasboardError, match="ambiguity"):
        generate(WikiConfig(ambiguity=1.5))
