"""CDA and Dropout (bias-bench's two fine-tuning baselines) against hand-worked examples: two-sided swaps, casing and
punctuation, untouched words, bias-bench's last-tuple rule, n-way race/religion swaps; dropout rates per architecture,
set on every dropout module for training and restored for evaluation (tiny models built from configs)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from biasboard.harness.errors import DataError, UnsupportedError
from biasboard.harness.models.types import ModelHandle
from biasboard.harness.registry import METHODS
from biasboard.harness.specs import RunContext
from biasboard.harness.training import continued
from biasboard.harness.training.counterfactual import augment, counterfactual, draw_targets, swap_table
from biasboard.submissions.dropout import dropout_settings, set_dropout

GENDER = swap_table("gender")


@pytest.mark.parametrize("text,expected", [
    ("He said his wife was a nurse.", "She said her husband was a nurse."),
    # casing and punctuation kept; bias-bench's list maps mr. to ms. (its last mr. pair)
    ("HE met Mr. Smith; she (his sister) left!", "SHE met Ms. Smith; he (her brother) left!"),
    ("Her sons' father-in-law", "His daughters' mother-in-law"),
    ("men, women: Men? WOMEN!", "women, men: Women? MEN!"),
])
def test_gender_swaps_are_two_sided_and_keep_casing_and_punctuation(text, expected):
    assert counterfactual(text, GENDER) == expected
    assert counterfactual(expected, GENDER) is not None


def test_words_outside_the_lists_are_untouched():
    assert counterfactual("The hero shed a tear; history heralds Sheffield's themes.", GENDER) is None
    assert counterfactual("The hero thanked him.", GENDER) == "The hero thanked her."


def test_a_word_in_several_pairs_takes_the_last_pair_as_bias_bench_does():
    # bias-bench pairs (him, her) then (his, her); (boy, girl) then (guy, girl); (gentleman, lady) then (lord, lady)
    assert counterfactual("her girl, a lady", GENDER) == "his guy, a lord"
    wino = swap_table("gender", "winobias")  # directed swaps: girl -> boy, lady -> gentleman, no entry for "her"
    assert counterfactual("her girl, a lady", wino) == "her boy, a gentleman"
    with pytest.raises(DataError, match="gender swaps only"):
        swap_table("race", "winobias")


def test_augment_keeps_each_matched_sentence_and_adds_its_counterfactual():
    texts = ["She is a doctor.", "It rained all day.", "The king and his sons."]
    a = augment(texts, GENDER)
    assert a.texts == ("She is a doctor.", "He is a doctor.", "The king and his sons.",
                       "The queen and her daughters.")
    assert a.kinds == ("original", "counterfactual") * 2 and a.matched == 2 and a.source_size == 3
    kept = augment(texts, GENDER, keep_unmatched=True)
    assert kept.texts[2] == "It rained all day." and kept.kinds[2] == "unmatched" and len(kept.texts) == 5


def test_n_way_religion_swaps_move_a_whole_column_together():
    table = swap_table("religion")  # (jewish, christian, muslim), (torah, bible, quran), (synagogue, church, mosque)...
    text = "The rabbi read the Torah in the synagogue."
    seen = {counterfactual(text, table, np.random.default_rng([s, 0])) for s in range(40)}
    assert seen == {"The priest read the Bible in the church.", "The imam read the Quran in the mosque."}
    assert augment([text], table, seed=3).texts == augment([text], table, seed=3).texts  # seeded


def test_n_way_columns_draw_independently_and_never_map_to_themselves():
    rng = np.random.default_rng(0)
    draws = [draw_targets(3, rng) for _ in range(300)]
    assert all(t[c] != c for t in draws for c in range(3))
    assert {tuple(t) for t in draws} == {(a, b, c) for a in (1, 2) for b in (0, 2) for c in (0, 1)}
    table = swap_table("race")  # black is last in (black, white, asian): it becomes white or asian
    outs = {counterfactual("Black and Asian", table, np.random.default_rng([s, 0])) for s in range(40)}
    assert outs <= {"White and Black", "White and White", "Asian and Black", "Asian and White"} and len(outs) == 4


def test_cda_refuses_a_corpus_without_attribute_words(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("It rained.\nThe sun came out.\n")
    handle = ModelHandle("m", "mlm", None)
    with pytest.raises(DataError, match="no sentence"):
        METHODS.get("cda")().apply(handle, RunContext(params={"corpus": str(path)}, cache_dir=tmp_path))


def test_glue_text_corpus_is_distinct_real_sentences():
    texts, name, trained_on = continued.plain_texts("glue_text")
    assert name == "glue_text" and trained_on == ["glue"] and len(texts) == len(set(texts)) > 5000
    assert augment(texts, GENDER).matched > 1000
    assert continued.sample(texts, 10, 0) == continued.sample(texts, 10, 0) != continued.sample(texts, 10, 1)


def _configs():
    from transformers import (AlbertConfig, BertConfig, DistilBertConfig, GPT2Config, LlamaConfig, RobertaConfig)

    return {"bert": BertConfig(), "roberta": RobertaConfig(), "albert": AlbertConfig(), "gpt2": GPT2Config(),
            "llama": LlamaConfig(), "distilbert": DistilBertConfig()}


@pytest.mark.parametrize("arch,family,expected,missing", [
    ("bert", "mlm", {"hidden_dropout_prob": 0.2, "attention_probs_dropout_prob": 0.15}, []),
    ("roberta", "mlm", {"hidden_dropout_prob": 0.2, "attention_probs_dropout_prob": 0.15}, []),
    ("albert", "mlm", {"hidden_dropout_prob": 0.05, "attention_probs_dropout_prob": 0.05}, []),
    ("gpt2", "clm", {"resid_pdrop": 0.15, "embd_pdrop": 0.15, "attn_pdrop": 0.15}, []),
    ("llama", "clm", {"attention_dropout": 0.15}, ["hidden"]),
    ("distilbert", "mlm", {"dropout": 0.2, "attention_dropout": 0.15}, []),
])
def test_dropout_rates_per_architecture(arch, family, expected, missing):
    assert dropout_settings(_configs()[arch], family) == (expected, missing)


def test_dropout_rates_can_be_set_and_a_config_without_dropout_is_refused():
    values, _ = dropout_settings(_configs()["bert"], "mlm", hidden=0.3, attention=0.0)
    assert values == {"hidden_dropout_prob": 0.3, "attention_probs_dropout_prob": 0.0}
    from transformers import PretrainedConfig

    with pytest.raises(UnsupportedError, match="none of the dropout keys"):
        dropout_settings(PretrainedConfig(), "mlm")


def _rates(model: nn.Module) -> list[float]:
    out = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    out += [v for m in model.modules() for k, v in vars(m).items() if "drop" in k.lower() and isinstance(v, float)]
    return sorted(out)


def _tiny(arch: str, vocab: int):
    from transformers import (BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                              LlamaForCausalLM)

    torch.manual_seed(0)
    if arch == "bert":
        return BertForMaskedLM(BertConfig(vocab_size=vocab, hidden_size=16, num_hidden_layers=1,
                                          num_attention_heads=2, intermediate_size=32)), "mlm"
    if arch == "gpt2":
        return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_embd=16, n_layer=1, n_head=2)), "clm"
    return LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32,
                                        num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)), "clm"


@pytest.mark.parametrize("arch", ["bert", "gpt2", "llama"])
def test_set_dropout_matches_a_model_built_with_the_rates_and_restores(arch):
    model, family = _tiny(arch, 100)
    before = _rates(model)
    values, _ = dropout_settings(model.config, family)
    old = set_dropout(model, values)
    config = type(model.config)(**{**model.config.to_dict()})
    assert _rates(model) == _rates(type(model)(config)) != before
    set_dropout(model, old)
    assert _rates(model) == before and all(getattr(model.config, k) == v for k, v in old.items())


@pytest.mark.parametrize("arch", ["bert", "gpt2", "llama"])
def test_dropout_reaches_training_and_is_off_and_restored_for_evaluation(splade, tmp_path, monkeypatch, arch):
    """The rates are on the config and the modules while the loop trains (in train mode); the returned model has
    the original rates, is in eval mode, and its weights changed."""
    model, family = _tiny(arch, splade.tokenizer.vocab_size)
    handle = ModelHandle(f"tiny-{arch}", family, model, splade.tokenizer, weights_sha256=arch)
    expected, _ = dropout_settings(model.config, family)
    seen = []
    real = continued.finetune_lm

    def spy(train_handle, *args, **kwargs):
        def check(module, _inputs):
            seen.append((module.training, {k: getattr(module.config, k) for k in expected}, _rates(module)))
        train_handle.model.base_model.register_forward_pre_hook(check)  # the MLM loss calls base_model
        return real(train_handle, *args, **kwargs)

    monkeypatch.setattr(continued, "finetune_lm", spy)
    before_rates = _rates(model)
    ctx = RunContext(seed=0, params={"steps": 2, "batch_size": 4, "n_sentences": 16, "max_length": 12,
                                     "train_precision": "float32"}, cache_dir=tmp_path)
    out = METHODS.get("dropout")().apply(handle, ctx)
    assert len(seen) == 2 and all(training and cfg == expected for training, cfg, _ in seen)
    assert all(rates != before_rates and max(rates) == max(expected.values()) for _, _, rates in seen)
    assert _rates(out.model) == before_rates and not out.model.training
    assert all(getattr(out.model.config, k) == getattr(model.config, k) for k in expected)
    assert _rates(model) == before_rates  # the handle's own model is never changed
    changed = max(float((p - q).detach().abs().max()) for p, q in zip(out.model.parameters(), model.parameters()))
    assert changed > 0
    assert out.extras["finetune"]["dropout"] == expected and out.extras["trained_on"] == ["glue"]
    assert out.extras["result_flags"] == {"finetune_corpus": "glue_text(n=16,seed=0)", "dropout": expected,
                                          **({"dropout_missing": ["hidden"]} if arch == "llama" else {})}
    assert out.extras["finetune"]["weight_decay"] == 0.0 and out.extras["finetune"]["warmup_ratio"] == 0.0


def test_intrinsic_methods_matrix_runs_cda_and_dropout_on_the_masked_lm_with_three_seeds():
    from pathlib import Path

    from biasboard.harness.matrix import Matrix, plan

    path = Path(__file__).resolve().parents[1] / "leaderboard" / "matrices" / "intrinsic_methods.yaml"
    cells, _ = plan(Matrix.load(path))
    ours = [c for c in cells if c.method.name in ("cda", "dropout")]
    assert {c.model.spec.id for c in ours} == {"zoo:splade-tiny"} and {c.seed for c in ours} == {0, 1, 2}
    assert len(ours) == 4 * 3 * 3  # cda gender/race/religion + dropout, 3 tasks, 3 seeds
    assert {c.seed for c in cells if c.method.name not in ("cda", "dropout")} == {0}
