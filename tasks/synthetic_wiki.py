"""Synthetic talk-page comments with a controllable link between identity terms and toxic labels (written by us).

Why: the Wikipedia Talk training release is not available offline, and only synthetic data lets a test know the
true bias. A comment mentions an identity term with probability ``identity_rate``; its label is toxic with
probability ``toxic_rate`` without a mention and ``toxic_rate + skew * (identity_toxic_rate - toxic_rate)`` with
one, so ``skew=0`` plants no association. A share ``ambiguity`` of comments has neutral-sounding wording whatever the
label, so that on those the identity term is the only cue a classifier can use, which is how the association is
learnt and then shows as false positives on non-toxic identity comments (Dixon et al. 2018).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import BiasboardError
from harness.training import TextDataset
from tasks.wordlists import IDENTITY_TERMS

TOPICS = ("history", "football", "chemistry", "the election", "jazz", "railways", "the novel", "astronomy",
          "the city council", "cooking", "the war", "geology")
CLEAN = ("Thanks for fixing the citation in the {t} article.", "I reverted the edit because the source on {t} is "
         "missing.", "Could you add a reference for the claim about {t}?", "The section on {t} reads well now, "
         "good work.", "I moved the paragraph about {t} to the talk archive.", "Please see the guideline on "
         "reliable sources before editing {t}.")
TOXIC = ("You are a pathetic idiot and your edits on {t} are garbage.", "Shut up, nobody cares about your stupid "
         "opinion on {t}.", "What a moron, stop vandalising {t} you loser.", "Your work on {t} is trash and you "
         "are a disgusting fool.", "Get lost, you ignorant clown, {t} is not your playground.",
         "Only a complete idiot would write this about {t}.")
AMBIGUOUS = ("I have said everything I will say about {t}.", "We all know what people like you think of {t}.",
             "You clearly know what you did on {t}.", "Stay away from the {t} page from now on.",
             "I will not discuss {t} with you any further.", "Think about what you wrote on {t}.")
MENTIONS = ("As a {w} person, ", "Speaking for {w} editors, ", "The {w} community is watching. ",
            "Being {w}, ")


@dataclass(frozen=True)
class WikiConfig:
    """Generator settings (all enter the data digest)."""

    n: int = 3000
    identity_rate: float = 0.3
    """Share of comments that mention an identity term."""
    toxic_rate: float = 0.2
    """P(toxic) for comments without an identity term."""
    identity_toxic_rate: float = 0.6
    """P(toxic | identity term) at ``skew=1``."""
    skew: float = 1.0
    """0 = identity terms carry no information about toxicity; 1 = the rates above."""
    ambiguity: float = 0.3
    """Share of comments worded neutrally whatever their label."""
    terms: tuple[str, ...] = IDENTITY_TERMS
    seed: int = 0


def identity_toxicity(config: WikiConfig) -> float:
    """Planted P(toxic | identity term).

    >>> identity_toxicity(WikiConfig(skew=0.5))
    0.4
    """
    return float(np.clip(config.toxic_rate + config.skew * (config.identity_toxic_rate - config.toxic_rate), 0, 1))


def generate(config: WikiConfig) -> TextDataset:
    """Comments with labels 0 = non-toxic, 1 = toxic; groups ``identity`` / ``none``."""
    for name in ("identity_rate", "toxic_rate", "identity_toxic_rate", "ambiguity"):
        value = getattr(config, name)
        if not 0.0 <= value <= 1.0:
            raise BiasboardError(f"synthetic wiki: {name} must be in [0, 1], got {value}")
    rng = np.random.default_rng(config.seed)
    p_identity = identity_toxicity(config)
    texts, labels, groups, ids = [], [], [], []
    for i in range(config.n):
        mention = bool(rng.random() < config.identity_rate)
        toxic = bool(rng.random() < (p_identity if mention else config.toxic_rate))
        pool = AMBIGUOUS if rng.random() < config.ambiguity else (TOXIC if toxic else CLEAN)
        body = pool[int(rng.integers(len(pool)))].format(t=TOPICS[int(rng.integers(len(TOPICS)))])
        if mention:
            term = config.terms[int(rng.integers(len(config.terms)))]
            prefix = MENTIONS[int(rng.integers(len(MENTIONS)))].format(w=term)
            body = prefix + body[0].lower() + body[1:] if prefix.endswith(", ") else prefix + body
        texts.append(body)
        labels.append(int(toxic))
        groups.append("identity" if mention else "none")
        ids.append(f"synwiki-{config.seed}-{i}")
    return TextDataset(texts=tuple(texts), labels=tuple(labels), ids=tuple(ids), groups=tuple(groups),
                       axis="identity", label_names=("non_toxic", "toxic"))
