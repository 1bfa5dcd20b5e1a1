"""The shared fine-tuning loop on a real model (zoo:splade-tiny): deterministic, cached by everything that determines
the weights, prediction independent of batch size, method hooks called with the right inputs, early stopping,
regression, and a clm backbone (last-token pooling)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from biasboard.harness.errors import BiasboardError
from biasboard.harness.specs import RunContext
from biasboard.harness.training import TextDataset, TrainConfig, finetune, predict
from biasboard.tasks import synthetic_bios

pytestmark = pytest.mark.slow

OCC = ("nurse", "surgeon", "software_engineer")


@pytest.fixture(scope="module")
def handle():
    from biasboard.harness.models import load_handle

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: one thread is as fast and never stalls on a shared machine
    yield load_handle("zoo:splade-tiny")
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    make = lambda n, s: synthetic_bios.generate(synthetic_bios.BiosConfig(n=n, occupations=OCC, seed=s))  # noqa
    return make(160, 0), make(48, 1), make(64, 2)


CFG = TrainConfig("downstream", num_labels=3, epochs=1, lr=1e-3, batch_size=16, max_length=32, seed=0)


def test_deterministic_and_cached(handle, data, tmp_path):
    train, val, test = data
    a = finetune(handle, train, val, CFG, RunContext(cache_dir=tmp_path / "a"))
    b = finetune(handle, train, val, CFG, RunContext(cache_dir=tmp_path / "b"))
    assert not a.from_cache and not b.from_cache and a.key == b.key
    for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(x, y), name
    c = finetune(handle, train, val, CFG, RunContext(cache_dir=tmp_path / "a"))
    assert c.from_cache
    assert np.allclose(predict(a, test), predict(c, test), atol=1e-6)
    # anything that determines the weights changes the key: seed, data, lineage
    other_seed = finetune(handle, train, val, dataclasses.replace(CFG, seed=1), RunContext(cache_dir=tmp_path / "a"))
    assert other_seed.key != a.key
    assert finetune(handle.derive(step="x"), train, val, CFG, RunContext(cache_dir=tmp_path / "a")).key != a.key


def test_prediction_does_not_depend_on_batch_size(handle, data, tmp_path):
    train, val, test = data
    ft = finetune(handle, train, val, CFG, RunContext(cache_dir=tmp_path))
    one, many = predict(ft, test, batch_size=1), predict(ft, test, batch_size=64)
    assert np.abs(one - many).max() < 1e-4


def test_handle_is_not_mutated(handle, data, tmp_path):
    before = {k: v.clone() for k, v in handle.model.state_dict().items()}
    finetune(handle, *data[:2], CFG, RunContext(cache_dir=tmp_path))
    for k, v in handle.model.state_dict().items():
        assert torch.equal(v, before[k]), k


class _Recorder:
    name, version = "recorder", "0"

    def __init__(self):
        self.groups_seen, self.loss_calls = [], 0

    def transform_data(self, dataset, ctx):
        return dataset.select(range(0, len(dataset), 2))

    def training_loss(self, losses, batch, ctx):
        assert losses.ndim == 1 and losses.shape[0] == batch["labels"].shape[0] == batch["features"].shape[0]
        self.groups_seen.extend(batch["groups"])
        self.loss_calls += 1
        return losses.max()  # a DRO-like reduction: only the worst example drives the step


def test_method_hooks(handle, data, tmp_path):
    train, val, _ = data
    rec = _Recorder()
    ft = finetune(handle, train, val, CFG, RunContext(cache_dir=tmp_path, method=rec))
    assert len(ft.train_data) == len(train) // 2
    assert rec.loss_calls == int(np.ceil(len(train) / 2 / CFG.batch_size))
    assert set(rec.groups_seen) == {"female", "male"} and len(rec.groups_seen) == len(train) // 2
    plain = finetune(handle, train, val, CFG, RunContext(cache_dir=tmp_path))
    assert plain.key != ft.key


def test_early_stopping_stops_when_validation_does_not_improve(handle, data, tmp_path):
    cfg = TrainConfig("downstream", num_labels=3, epochs=5, lr=0.0, batch_size=16, max_length=32, patience=1)
    ft = finetune(handle, *data[:2], cfg, RunContext(cache_dir=tmp_path))
    assert len(ft.history) == 2 and ft.history[-1]["epoch"] == 2


def test_regression_and_empty_data(handle, tmp_path):
    texts = tuple(f"the score is {i % 5}" for i in range(64))
    d = TextDataset(texts=texts, labels=tuple(float(i % 5) for i in range(64)), ids=tuple(map(str, range(64))),
                    text_pairs=texts)
    cfg = TrainConfig("downstream", num_labels=1, epochs=2, lr=1e-3, batch_size=16, max_length=32)
    ft = finetune(handle, d, d.select(range(16)), cfg, RunContext(cache_dir=tmp_path))
    out = predict(ft, d)
    assert out.shape == (64, 1) and np.isfinite(out).all()
    with pytest.raises(BiasboardError, match="non-empty"):
        finetune(handle, d.select([]), d, cfg, RunContext(cache_dir=tmp_path))


def test_clm_backbone_uses_last_token(handle, data, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    from biasboard.harness.models.handles import ModelHandle

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=handle.tokenizer.vocab_size, hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64)
    clm = ModelHandle("tiny-llama", "clm", LlamaForCausalLM(cfg), handle.tokenizer, "local")
    ft = finetune(clm, *data[:2], CFG, RunContext(cache_dir=tmp_path))
    assert ft.model.pooling == "last"
    one, many = predict(ft, data[2], batch_size=1), predict(ft, data[2], batch_size=32)
    assert np.abs(one - many).max() < 1e-4
