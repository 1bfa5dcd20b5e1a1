"""Word lists written for biasboard: explicit gender words, first names, and identity terms.

They serve two jobs that must agree: the synthetic generators put these cues into text, and the ``scrub`` and
``proxy_scrub`` methods take them out. All lower case; matching is on whole words, case-insensitive.
"""
from __future__ import annotations

import re

GENDER_PAIRS: tuple[tuple[str, str], ...] = (
    ("he", "she"), ("him", "her"), ("his", "hers"), ("himself", "herself"), ("man", "woman"), ("men", "women"),
    ("boy", "girl"), ("boys", "girls"), ("male", "female"), ("males", "females"), ("father", "mother"),
    ("fathers", "mothers"), ("son", "daughter"), ("sons", "daughters"), ("brother", "sister"),
    ("brothers", "sisters"), ("husband", "wife"), ("husbands", "wives"), ("uncle", "aunt"), ("nephew", "niece"),
    ("king", "queen"), ("prince", "princess"), ("gentleman", "lady"), ("gentlemen", "ladies"), ("mr", "mrs"),
    ("mr", "ms"), ("sir", "madam"), ("dad", "mom"), ("grandfather", "grandmother"), ("grandson", "granddaughter"),
    ("boyfriend", "girlfriend"), ("groom", "bride"), ("actor", "actress"), ("waiter", "waitress"),
    ("spokesman", "spokeswoman"), ("chairman", "chairwoman"), ("businessman", "businesswoman"),
    ("fraternity", "sorority"), ("masculine", "feminine"), ("manhood", "womanhood"),
)
"""(male, female) word pairs: pronouns, kinship and role nouns, titles. Used for scrubbing and the gender direction."""

GENDER_WORDS: frozenset[str] = frozenset(w for pair in GENDER_PAIRS for w in pair) | {"mx", "miss"}

FEMALE_NAMES: tuple[str, ...] = (
    "mary", "patricia", "jennifer", "linda", "elizabeth", "barbara", "susan", "jessica", "sarah", "karen", "lisa",
    "nancy", "sandra", "ashley", "emily", "donna", "michelle", "carol", "amanda", "melissa", "deborah", "laura",
    "rebecca", "sharon", "cynthia", "kathleen", "amy", "angela", "anna", "brenda", "emma", "olivia", "sophia",
    "maria", "julia", "grace", "chloe", "hannah", "rachel", "natalie",
)
MALE_NAMES: tuple[str, ...] = (
    "james", "robert", "john", "michael", "david", "william", "richard", "joseph", "thomas", "charles",
    "christopher", "daniel", "matthew", "anthony", "mark", "donald", "steven", "paul", "andrew", "joshua",
    "kenneth", "kevin", "brian", "george", "timothy", "ronald", "jason", "edward", "jeffrey", "ryan", "jacob",
    "gary", "nicholas", "eric", "jonathan", "stephen", "larry", "justin", "scott", "brandon",
)
"""Common US first names by the gender most often given them; the synthetic bios draw names from these lists."""

SURNAMES: tuple[str, ...] = (
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez", "martinez",
    "hernandez", "lopez", "gonzalez", "wilson", "anderson", "taylor", "moore", "jackson", "martin", "lee",
    "thompson", "white", "harris", "clark", "lewis", "robinson", "walker", "young", "allen", "king", "wright",
    "scott", "torres", "nguyen", "hill", "flores", "green", "adams", "nelson", "baker",
)

IDENTITY_TERMS: tuple[str, ...] = (
    "lesbian", "gay", "bisexual", "transgender", "trans", "queer", "lgbt", "lgbtq", "homosexual", "straight",
    "heterosexual", "male", "female", "nonbinary", "african", "african american", "black", "white", "european",
    "hispanic", "latino", "latina", "latinx", "mexican", "canadian", "american", "asian", "indian",
    "middle eastern", "chinese", "japanese", "christian", "muslim", "jewish", "buddhist", "catholic", "protestant",
    "sikh", "taoist", "old", "older", "young", "younger", "teenage", "millenial", "middle aged", "elderly", "blind",
    "deaf", "paralyzed",
)
"""Identity terms as used by Dixon et al. (2018) for their bias madlibs (the same 50 terms, typed here)."""


def word_pattern(words) -> re.Pattern:
    """One regex matching any of ``words`` as whole words (multi-word terms allowed), longest first."""
    alts = sorted({w.lower() for w in words}, key=len, reverse=True)
    return re.compile(r"(?<![\w'])(?:" + "|".join(r"\s+".join(map(re.escape, a.split())) for a in alts)
                      + r")(?![\w'])", re.IGNORECASE)


def remove_words(text: str, pattern: re.Pattern) -> str:
    """Delete matches of ``pattern`` (and any trailing period of a title such as "Ms.") and tidy the spaces.

    >>> remove_words("Ms. Lee says she is a nurse.", word_pattern(["ms", "she"]))
    'Lee says is a nurse.'
    """
    out = pattern.sub(" ", text)
    out = re.sub(r"(^|\s)\.(?=\s)", r"\1", out)
    out = re.sub(r"\s+([.,;:!?])", r"\1", out)
    return re.sub(r"\s{2,}", " ", out).strip()


WORD_RE = re.compile(r"[a-z][a-z'\-]*[a-z]|[a-z]")


def words_of(text: str) -> list[str]:
    """Lower-case word tokens (what proxy scoring and vocabulary counts use)."""
    return WORD_RE.findall(text.lower())
