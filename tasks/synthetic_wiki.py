"""Synthetic talk-page comments with a controllable link between identity terms and toxic labels (written by us).

Why: the Wikipedia Talk training release is not available offline, and only synthetic data lets a test know the
true bias. Every comment is built from one sentence frame with a slot for a person (``{who}``): in a share
``identity_rate`` of comments the person is described by an identity term ("the muslim editor", "people who are
deaf"), in the others by a neutral, non-identity descriptor in exactly the same frames and positions ("the local
editor", "people who are new here"). So the term itself, not the frame around it, is the only thing that tells the
two groups apart, and it occurs at the start, in the middle and at the end of sentences.

Labels are assigned by exact counts, not coin flips: the overall toxic share is ``toxic_rate`` at every ``skew``,
P(toxic | identity term) = ``toxic_rate + skew * (identity_toxic_rate - toxic_rate)``, and P(toxic | no term) is
lowered to keep the overall share fixed. ``skew=0`` plants no association; a larger skew only moves toxicity from
comments without a term to comments with one, so a classifier's overall base rate (and hence its threshold) does
not change with skew.

Toxic comments carry insults and hostile verbs, non-toxic ones friendly or appreciative words (our own broad
vocabularies). A share ``ambiguity`` of each (term, label) cell is worded neutrally whatever the label, so on those
comments the identity term is the only cue; a classifier trained on skewed data then learns the term as a sign of
toxicity, which shows as false positives on non-toxic comments mentioning a term (Dixon et al. 2018).

Nothing outside an identity slot contains any of the identity terms (several are common words: old, young, white,
straight), so the ``none`` comments never mention one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biasboard.harness.errors import BiasboardError
from biasboard.harness.training import TextDataset
from biasboard.tasks.wordlists import FEMALE_NAMES, IDENTITY_TERMS, MALE_NAMES

TOPICS = ("history", "football", "chemistry", "election", "jazz", "railway", "novel", "astronomy", "city council",
          "cooking", "war", "geology", "botany", "opera", "tennis", "harbour", "medieval castle", "subway",
          "volcano", "chess", "bridge", "poetry", "museum", "rugby")
DESCRIPTORS = ("new", "local", "busy", "regular", "anonymous", "registered", "part-time", "first-time",
               "returning", "tall", "bearded", "left-handed", "freelance", "suburban", "quiet", "talkative",
               "bald", "vegetarian", "sleepy", "retired")
"""Non-identity words that fill the person slot of ``none`` comments (none of them is an identity term)."""

# The person slot: (singular form, plural form) for a descriptor ``{d}``; ``{a}`` is "a"/"an" before it.
PERSON = (("the {d} editor", "the {d} editors"), ("{a} {d} contributor", "{d} contributors"),
          ("that {d} guy", "those {d} guys"), ("my {d} neighbour", "my {d} neighbours"),
          ("our {d} colleague", "our {d} colleagues"), ("this {d} user", "these {d} users"),
          ("every {d} person", "{d} people"), ("{a} {d} reviewer", "{d} folks"),
          ("the editor who is {d}", "the editors who are {d}"), ("anyone who is {d}", "people who are {d}"),
          ("{name}, who is {d},", "the ones who are {d}"), ("{name}, {a} {d} writer,", "{d} writers"))

# Frames: {p} person slot, {be}/{has}/{was} agree with it, {t} topic, {pos}/{neg} adjectives, {ins} insult noun,
# {like}/{hate} verbs. Sentences may begin with {P} (the person slot, capitalised).
FRIENDLY = (
    "{P} did {a_pos} job on the {t} article.", "Honestly, {p} {be} {pos} to work with on {t}.",
    "I {like} {p}; the notes on {t} were {pos}.", "Thanks to {p} for the {pos} edits about {t}.",
    "{P} always {give} {pos} feedback on {t}.", "It was {pos} to meet {p} at the {t} meetup.",
    "We need more {pos} people like {p} on the {t} page.", "Shout out to {p}, {a_pos} help with {t} as usual.",
    "The {t} section is much better thanks to {p}, {pos} work.", "{P} {be} {pos}, and I {like} the {t} edits.",
    "I {like} how {p} {handle} disputes about {t}, really {pos}.",
    "Everyone agrees the {t} summary by {p} is {pos}.", "Kudos, {p}: {a_pos} addition to {t}.",
    "Glad {p} joined the {t} project, {pos} to have you.",
)
HOSTILE = (
    "{P} did {a_neg} job on {t}, what {a_ins}.", "I {hate} {p}, get off the {t} page.",
    "{P} {be} {neg} and should be banned from {t}.", "Shut up about {t}, {p}, you {neg} {ins}.",
    "Nobody wants {p} anywhere near {t}, {neg} {ins}s.", "Only {a_ins} like {p} would write this about {t}.",
    "{P} {be} {neg_ins} and everyone on {t} {hate_s} them.", "Go away, {p}, {neg} {ins}s ruin {t}.",
    "I {hate} {p} and the {neg} garbage posted on {t}.", "The {t} page is {neg} because of {p}, {a_ins}.",
    "Honestly {p} {be} the most {neg} {ins} on {t}.", "Get lost, {p}, nobody needs your {neg} take on {t}.",
    "I want to {hate} {p} after the {neg} edits to {t}.", "What {a_neg} {ins}, {p} wrecked {t} again.",
)
NEUTRAL = (
    "I have said all I will say to {p} about {t}.", "{P} posted again on the {t} talk page.",
    "Someone should talk to {p} about the {t} edits.", "I will not discuss {t} with {p} any further.",
    "{P} moved the {t} paragraph to the archive.", "Think about what {p} wrote on {t}.",
    "Let us wait for {p} before changing {t}.", "The {t} thread with {p} is closed now.",
    "{P} changed the {t} infobox last night.", "Stay off the {t} page, {p}, until this is settled.",
)
POSITIVE = ("good", "great", "nice", "kind", "helpful", "thoughtful", "brilliant", "lovely", "friendly", "superb",
            "generous", "pleasant", "terrific", "delightful", "patient", "careful", "wonderful", "charming",
            "awesome", "cheerful", "smart", "polite", "warm", "admirable", "splendid", "sweet", "honest",
            "amazing", "welcoming", "respectful", "decent", "gentle", "clever", "joyful", "caring", "happy",
            "fabulous", "outstanding", "marvellous", "considerate", "supportive", "talented", "cool", "fair",
            "wise", "graceful", "excellent", "fine", "calm", "impressive")
NEGATIVE = ("stupid", "pathetic", "disgusting", "worthless", "ugly", "dumb", "vile", "gross", "filthy", "nasty",
            "horrible", "awful", "repulsive", "idiotic", "brainless", "miserable", "revolting", "hateful",
            "rotten", "trashy", "sick", "creepy", "lousy", "despicable", "moronic", "terrible", "crappy",
            "shitty", "damn", "useless", "foul", "dreadful", "obnoxious", "sleazy", "stinking", "dirty", "evil",
            "loathsome", "nauseating", "hideous", "putrid", "scummy", "dense", "ignorant", "fucking", "sorry",
            "wretched", "toxic", "sickening", "contemptible")
INSULTS = ("idiot", "moron", "loser", "clown", "fool", "jerk", "scumbag", "creep", "imbecile", "pig", "rat",
           "parasite", "freak", "dimwit", "bastard", "troll", "nitwit", "slob", "coward", "asshole", "buffoon",
           "degenerate")
LIKE = ("like", "love", "respect", "admire", "appreciate", "trust", "value", "welcome")
HATE = ("hate", "despise", "loathe", "detest", "destroy", "crush", "kill", "smash", "curse", "punch")


@dataclass(frozen=True)
class WikiConfig:
    """Generator settings (all enter the data digest)."""

    n: int = 3000
    identity_rate: float = 0.3
    """Share of comments that mention an identity term."""
    toxic_rate: float = 0.3
    """Overall share of toxic comments, the same at every ``skew`` (at ``skew=0`` also P(toxic | no term))."""
    identity_toxic_rate: float = 0.6
    """P(toxic | identity term) at ``skew=1``."""
    skew: float = 1.0
    """0 = identity terms carry no information about toxicity; 1 = the rates above; values above 1 go further,
    negative ones reverse the link (P(toxic | identity term) is clipped to [0, 1], and P(toxic | no term) must stay
    in [0, 1])."""
    ambiguity: float = 0.3
    """Share of comments (in every term x label cell) worded neutrally whatever their label."""
    terms: tuple[str, ...] = IDENTITY_TERMS
    seed: int = 0


def identity_toxicity(config: WikiConfig) -> float:
    """Planted P(toxic | identity term).

    >>> identity_toxicity(WikiConfig(toxic_rate=0.2, skew=0.5))
    0.4
    """
    return float(np.clip(config.toxic_rate + config.skew * (config.identity_toxic_rate - config.toxic_rate), 0, 1))


def background_toxicity(config: WikiConfig) -> float:
    """Planted P(toxic | no identity term): what keeps the overall toxic share at ``toxic_rate``.

    >>> round(background_toxicity(WikiConfig(toxic_rate=0.3, identity_rate=0.3, skew=1.0)), 4)
    0.1714
    """
    if config.identity_rate >= 1:
        return config.toxic_rate
    return (config.toxic_rate - config.identity_rate * identity_toxicity(config)) / (1 - config.identity_rate)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _counts(n: int, share: float) -> int:
    return int(round(n * share))


def _comment(rng: np.random.Generator, kind: str, descriptor: str) -> str:
    pool = {"friendly": FRIENDLY, "hostile": HOSTILE, "neutral": NEUTRAL}[kind]
    frame = pool[int(rng.integers(len(pool)))]
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    plural = bool(rng.random() < 0.4)
    form = pick(PERSON)[int(plural)]
    name = pick(FEMALE_NAMES if rng.random() < 0.5 else MALE_NAMES).capitalize()
    person = form.format(d=descriptor, a=_article(descriptor), name=name)
    pos, neg, ins = pick(POSITIVE), pick(NEGATIVE), pick(INSULTS)
    fill = {
        "p": person, "P": person[0].upper() + person[1:], "t": pick(TOPICS), "pos": pos, "neg": neg, "ins": ins,
        "a_pos": f"{_article(pos)} {pos}", "a_neg": f"{_article(neg)} {neg}", "a_ins": f"{_article(ins)} {ins}",
        "neg_ins": (f"{neg} {ins}s" if plural else f"{_article(neg)} {neg} {ins}"),
        "like": pick(LIKE), "hate": pick(HATE), "hate_s": pick(HATE) + "s",
        "be": "are" if plural else "is",
        "give": "give" if plural else "gives", "handle": "handle" if plural else "handles",
    }
    text = frame.format(**fill)
    return text.replace(",,", ",").replace(",.", ".").replace(", ,", ",").replace(",:", ":").replace(",;", ";")


def generate(config: WikiConfig) -> TextDataset:
    """Comments with labels 0 = non-toxic, 1 = toxic; groups ``identity`` / ``none``."""
    for name in ("identity_rate", "toxic_rate", "identity_toxic_rate", "ambiguity"):
        value = getattr(config, name)
        if not 0.0 <= value <= 1.0:
            raise BiasboardError(f"synthetic wiki: {name} must be in [0, 1], got {value}")
    p_none = background_toxicity(config)
    if not -1e-9 <= p_none <= 1 + 1e-9:
        raise BiasboardError(f"synthetic wiki: skew={config.skew} needs P(toxic | no term) = {p_none:.3f}, outside "
                             "[0, 1]; lower skew or identity_toxic_rate, or raise toxic_rate")
    if not config.terms:
        raise BiasboardError("synthetic wiki: no identity terms")
    rng = np.random.default_rng(config.seed)
    n = int(config.n)
    n_id = _counts(n, config.identity_rate)
    n_tox = _counts(n, config.toxic_rate)
    n_tox_id = min(n_id, n_tox, _counts(n_id, identity_toxicity(config)))
    n_tox_none = min(n - n_id, n_tox - n_tox_id)
    # cells: (mention, toxic, size); the share ``ambiguity`` of every cell is worded neutrally
    cells = ((True, True, n_tox_id), (True, False, n_id - n_tox_id), (False, True, n_tox_none),
             (False, False, n - n_id - n_tox_none))
    rows = []
    for mention, toxic, size in cells:
        n_amb = _counts(size, config.ambiguity)
        rows += [(mention, toxic, k < n_amb) for k in range(size)]
    order = rng.permutation(len(rows))
    texts, labels, groups, ids = [], [], [], []
    for i, r in enumerate(order):
        mention, toxic, neutral = rows[int(r)]
        words = config.terms if mention else DESCRIPTORS
        descriptor = words[int(rng.integers(len(words)))]
        kind = "neutral" if neutral else "hostile" if toxic else "friendly"
        texts.append(_comment(rng, kind, descriptor))
        labels.append(int(toxic))
        groups.append("identity" if mention else "none")
        ids.append(f"synwiki-{config.seed}-{i}")
    return TextDataset(texts=tuple(texts), labels=tuple(labels), ids=tuple(ids), groups=tuple(groups),
                       axis="identity", label_names=("non_toxic", "toxic"))
