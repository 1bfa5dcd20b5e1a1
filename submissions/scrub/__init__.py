"""Scrub: delete explicit group words from the downstream fine-tuning data (Baksi, Singh, Joshi 2024; De-Arteaga
et al. 2019 scrubbed names and pronouns from bios).

Gender data (bios) loses pronouns, kinship and role nouns, titles and common first names; identity data (wiki
toxicity) loses Dixon et al.'s 50 identity terms. The lists are ours (``tasks.wordlists``). Only the training split
changes: the test data keep their words, which is what the paper measures (scrubbing helps a model that was not
pre-trained, whose embeddings of the scrubbed words stay untrained).
"""
from __future__ import annotations

from biasboard.harness.errors import UnsupportedError
from biasboard.harness.registry import register_method
from biasboard.harness.specs import Method
from biasboard.tasks.wordlists import FEMALE_NAMES, GENDER_WORDS, IDENTITY_TERMS, MALE_NAMES, remove_words, word_pattern

WORD_LISTS = {"gender": tuple(GENDER_WORDS) + FEMALE_NAMES + MALE_NAMES, "identity": IDENTITY_TERMS}


def scrub_dataset(dataset, words):
    """The dataset with every whole-word match of ``words`` removed from its texts (and text pairs)."""
    pat = word_pattern(words)
    texts = [remove_words(t, pat) for t in dataset.texts]
    pairs = None if dataset.text_pairs is None else [remove_words(t, pat) for t in dataset.text_pairs]
    return dataset.with_texts(texts, pairs)


def word_list(name: str, axis: str):
    """``auto`` picks the list for the dataset's axis (gender or identity); data without a group axis (GLUE) get
    the gender list, which measures what scrubbing costs in utility."""
    key = (axis or "gender") if name == "auto" else name
    if key not in WORD_LISTS:
        raise UnsupportedError(f"scrub: no word list for {key!r} (dataset axis {axis!r}); choose words= one of "
                               f"{sorted(WORD_LISTS)}")
    return WORD_LISTS[key]


@register_method
class Scrub(Method):
    name = "scrub"
    version = "1.0"
    description = "Remove explicit gender words / identity terms from the downstream fine-tuning data."
    families = ("encoder", "mlm", "clm")
    kind = "data"
    params = {"words": "auto"}
    citation = ("Baksi, Singh, Joshi. Downstream bias mitigation is all you need. arXiv 2408.00612 (2024); "
                "De-Arteaga et al. Bias in Bios (2019).")

    def transform_data(self, dataset, ctx):
        return scrub_dataset(dataset, word_list(str(ctx.params.get("words", "auto")), dataset.axis))
