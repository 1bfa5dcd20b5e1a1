"""WinoBias: pairing of the pro/anti files, a hand-worked causal LM, bad files, one SmolLM2 cell."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from biasboard.harness.errors import BiasboardError, DataError
from biasboard.harness.models.handles import ModelHandle
from biasboard.harness.specs import RunContext
from biasboard.tasks.winobias.data import load_pairs, minimal_difference
from biasboard.tasks.winobias.task import WinoBias, pair_metrics

VOCAB = ["<pad>", "<s>", "the", "nurse", "doctor", "said", "he", "she", "was", "late", "his", "her", "bag", "."]
P = np.full(len(VOCAB), 0.05)
P[VOCAB.index("she")], P[VOCAB.index("he")] = 0.2, 0.1
P[VOCAB.index("her")], P[VOCAB.index("his")] = 0.05, 0.05
P /= P.sum()


class WordTokenizer:
    pad_token_id, bos_token_id, eos_token_id, mask_token_id = 0, 1, 1, None

    def __call__(self, texts, add_special_tokens=True):
        return {"input_ids": [([1] if add_special_tokens else []) + [VOCAB.index(w) for w in t.lower().split()]
                              for t in texts]}


class UnigramLM(torch.nn.Module):
    """Every position predicts the same distribution P: a sentence's log-likelihood is the sum of log P(word)."""

    def forward(self, input_ids, attention_mask=None):
        return SimpleNamespace(logits=torch.log(torch.tensor(P, dtype=torch.float32)).expand(*input_ids.shape,
                                                                                             len(P)))


def write_files(root, pro_lines, anti_lines):
    d = root / "winobias"
    d.mkdir(exist_ok=True)
    for split in ("dev", "test"):
        for t in (1, 2):
            (d / f"pro_stereotyped_type{t}.txt.{split}").write_text("\n".join(pro_lines) + "\n")
            (d / f"anti_stereotyped_type{t}.txt.{split}").write_text("\n".join(anti_lines) + "\n")


def test_minimal_difference():
    assert minimal_difference("the nurse said she was late", "the nurse said he was late") == "F"
    assert minimal_difference("he said his bag", "she said her bag") == "M"
    assert minimal_difference("he was careless .", "she was rude .") is None
    assert minimal_difference("he was late", "she was late today") is None
    assert minimal_difference("he was late", "he was late") is None


def test_hand_worked_unigram(tmp_path, monkeypatch):
    write_files(tmp_path, ["1 [The nurse] said [she] was late .", "2 [The doctor] said [he] was late .",
                           "3 [The doctor] said [his] bag was late ."],
                ["1 [The nurse] said [he] was late .", "2 [The doctor] said [she] was late .",
                 "3 [The doctor] said [her] bag was late ."])
    monkeypatch.setenv("BIASBOARD_DATA_DIR", str(tmp_path))
    handle = ModelHandle("unigram", "clm", UnigramLM(), WordTokenizer(), "0" * 64)
    res = WinoBias().evaluate(handle, "causal_pair", RunContext(seed=0, batch_size=2, n_bootstrap=200))
    # P(she) > P(he): pair 1 prefers pro (she), pair 2 prefers anti (she); pair 3 his/her tie.
    # test split, two types -> 6 pairs: pro 2/6, anti 2/6, gap 0
    m = res.metrics
    assert m["pro_accuracy"].value == pytest.approx(100 * 2 / 6) and m["anti_accuracy"].value == pytest.approx(100 * 2 / 6)
    assert m["gap"].value == pytest.approx(0.0) and m["gap"].n == 6
    rows = {r["id"]: r for r in res.examples}
    r1 = rows["type1-test-1"]
    assert r1["pro_ll"] - r1["anti_ll"] == pytest.approx(math.log(0.2 / 0.1), abs=1e-5)
    assert r1["pro_preferred"] == 1 and rows["type1-test-2"]["anti_preferred"] == 1
    assert rows["type1-test-3"]["pro_preferred"] == rows["type1-test-3"]["anti_preferred"] == 0
    assert res.groups["pro_female"]["pro_accuracy"].value == pytest.approx(100.0)
    assert res.groups["pro_male"]["anti_accuracy"].value == pytest.approx(50.0)
    assert set(res.groups) >= {"type1", "type2"}
    all_splits = WinoBias().evaluate(handle, "causal_pair", RunContext(n_bootstrap=50,
                                                                       extra={"winobias_split": "all"}))
    assert all_splits.metrics["gap"].n == 12
    with pytest.raises(BiasboardError, match="winobias_split"):
        WinoBias().evaluate(handle, "causal_pair", RunContext(extra={"winobias_split": "train"}))


def test_pair_metrics_gap_is_pro_minus_anti():
    m = pair_metrics(np.array([-1.0, -1.0, -3.0, -2.0]), np.array([-2.0, -2.0, -1.0, -2.0]), n_bootstrap=200, seed=0)
    assert (m["pro_accuracy"].value, m["anti_accuracy"].value, m["gap"].value) == (50.0, 25.0, 25.0)
    assert m["gap"].ci95[0] <= 25.0 <= m["gap"].ci95[1]


def test_bad_files(tmp_path, monkeypatch):
    monkeypatch.setenv("BIASBOARD_DATA_DIR", str(tmp_path))
    write_files(tmp_path, ["1 [The nurse] said [she] was late ."], ["2 [The nurse] said [he] was late ."])
    with pytest.raises(DataError, match="line number 1 pairs with 2"):
        load_pairs(("test",))
    write_files(tmp_path, ["The nurse said she was late ."], ["1 [The nurse] said [he] was late ."])
    with pytest.raises(DataError, match="row 1"):
        load_pairs(("test",))


def test_real_files_pair_up():
    try:
        test_pairs, dropped = load_pairs(("test",))
    except DataError:
        pytest.skip("WinoBias data not available")
    # 2 types x 396 line pairs; the rest differ in more than the pronouns in the original files
    assert len(test_pairs) + dropped == 792 and dropped < 20
    assert {p.type for p in test_pairs} == {1, 2} and {p.pro_gender for p in test_pairs} == {"M", "F"}
    assert len({p.id for p in test_pairs}) == len(test_pairs)


@pytest.mark.slow
def test_smollm2_cell_honours_the_result_contract():
    from biasboard.harness.models.handles import load_handle

    try:
        load_pairs(("test",))
    except DataError:
        pytest.skip("WinoBias data not available")
    res = WinoBias().evaluate(load_handle("zoo:smollm2-135m"), "causal_pair",
                              RunContext(seed=0, batch_size=16, n_bootstrap=200, extra={"eval_sample": 60}))
    assert list(res.metrics)[0] == "gap"
    for name, m in res.metrics.items():
        assert m.n == 60 and m.ci95 is not None and not math.isnan(m.value), name
    assert len(res.examples) == 60 and res.data_sha256 and res.flags["eval_sample"]
    assert res.metrics["pro_accuracy"].value + res.metrics["anti_accuracy"].value <= 100.0
