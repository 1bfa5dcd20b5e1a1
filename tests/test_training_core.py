"""The one training core: downstream fine-tuning, LM fine-tuning and vision fits run the same loop with the same
config type, seed the same way (same seed -> identical weights, another seed -> different ones) and share one weight
cache (keys of the pre-merge loops kept, so existing cache folders stay valid)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from biasboard.harness.errors import BiasboardError
from biasboard.harness.training import cache, downstream, lm, loop, vision
from biasboard.harness.training.config import TrainConfig
from biasboard.harness.training.objectives import ErmObjective, Objective


def test_one_loop_and_one_config_type():
    assert downstream.train_loop is lm.train_loop is vision.train_loop is loop.train_loop
    assert vision.TrainConfig is lm.TrainConfig is downstream.TrainConfig is TrainConfig
    assert isinstance(vision.CrossEntropy(), Objective) and isinstance(vision.LossHook(None, None), Objective)


def test_config_fields_are_per_family():
    assert TrainConfig("downstream", num_labels=2).epochs == 2 and TrainConfig("vision").epochs == 20
    assert TrainConfig("lm").steps == 200 and TrainConfig("lm").optimizer == "adamw"
    with pytest.raises(BiasboardError, match="steps is not a setting"):
        TrainConfig("downstream", num_labels=2, steps=5)
    with pytest.raises(BiasboardError, match="num_labels"):
        TrainConfig("downstream")
    with pytest.raises(BiasboardError, match="always 'adamw'"):
        TrainConfig("lm", optimizer="sgd")
    with pytest.raises(BiasboardError, match="family"):
        TrainConfig("audio")


def test_cache_keys_of_the_premerge_loops_are_kept():
    """The key digests exactly the fields each family's config had before the merge, with the same values, so
    weights cached by the old loops are found again (sha256 of sorted JSON, as json_sha256 always did)."""
    assert TrainConfig("downstream", num_labels=3).key_fields() == {
        "num_labels": 3, "epochs": 2, "lr": 5e-5, "batch_size": 32, "max_length": 64, "weight_decay": 0.01,
        "warmup_ratio": 0.1, "patience": 1, "evals_per_epoch": 1, "pooling": "auto", "dropout": 0.1,
        "max_grad_norm": 1.0, "seed": 0}
    assert TrainConfig("lm", steps=5).key_fields() == {
        "steps": 5, "batch_size": 32, "lr": 5e-5, "aux_lr": 1e-3, "max_length": 32, "mlm_probability": 0.15,
        "weight_decay": 0.01, "warmup_ratio": 0.1, "max_grad_norm": 1.0, "seed": 0}
    # json_sha256({"config": asdict(LMTrainConfig(steps=5, batch_size=8, max_length=16, lr=1e-4, seed=2))}), pre-merge
    key = cache.cache_key(config=TrainConfig("lm", steps=5, batch_size=8, max_length=16, lr=1e-4, seed=2).key_fields())
    assert key == "260e22dd7c2e4c72f034021afd84c14247af0b2083fd1847e9de00942c53f707"


class _Regression(loop.StepHooks):
    """A toy family: linear regression on fixed data, shuffled with the torch pass generator."""

    def __init__(self, seed):
        g = torch.Generator().manual_seed(123)
        self.x, self.y = torch.randn(40, 3, generator=g), torch.randn(40, generator=g)
        self.passes = loop.torch_passes(seed)
        self.steps = 0

    def order(self, epoch):
        return self.passes(len(self.y))

    def loss(self, model, rows, epoch):
        out = nn.functional.dropout(model(self.x[rows]).squeeze(-1), 0.5, training=True)  # global-RNG draws
        return ErmObjective().loss({"losses": (out - self.y[rows]) ** 2}, {}, epoch)

    def after_step(self, **kw):
        self.steps = kw["step"]
        return False


def _toy_fit(seed, max_steps=None):
    torch.manual_seed(seed)
    model = nn.Linear(3, 1)
    config = TrainConfig("downstream", num_labels=1, batch_size=8, lr=0.05, seed=seed)
    opt, _ = loop.adamw(model.named_parameters(), config)
    step = _Regression(seed)
    taken = loop.train_loop(model, step, config, optimizer=opt, batches=5, epochs=3, max_steps=max_steps,
                            clip=list(model.parameters()), seed=seed)
    return model, taken


def test_loop_seeding_and_budget():
    a, taken = _toy_fit(0)
    b, _ = _toy_fit(0)
    c, _ = _toy_fit(1)
    assert taken == 15 and not a.training
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.weight, c.weight)
    assert _toy_fit(0, max_steps=7)[1] == 7


def test_best_weights_keep_and_restore():
    model = nn.Linear(2, 1)
    best = loop.BestWeights("min", tol=1e-6)
    assert best.offer(1.0, model)
    kept = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not best.offer(1.0 - 1e-7, model)  # not better by more than tol
    best.restore(model)
    assert torch.equal(model.weight, kept)
    up = loop.BestWeights("max")
    assert up.offer(0.0, model) and not up.offer(0.0, model) and up.offer(0.5, model)


def test_cache_round_trip(tmp_path):
    model = nn.Linear(3, 2)
    folder = cache.weights_folder(tmp_path, "finetuned", "ab" * 32)
    assert folder == tmp_path / "finetuned" / ("ab" * 16)
    assert cache.load_cached(nn.Linear(3, 2), folder) is None
    cache.save_atomic(model, folder, {"history": [1]})
    other = nn.Linear(3, 2)
    assert cache.load_cached(other, folder) == {"history": [1]} and not other.training
    assert torch.equal(other.weight, model.weight)
    cache.save_atomic(nn.Linear(3, 2), folder, {"history": [2]})  # a second writer loses the race quietly
    assert cache.load_cached(other, folder) == {"history": [1]}


def _vision_fit(seed):
    from biasboard.harness.models import load_handle
    from biasboard.tasks.vision_data import make_colored_digits

    h = load_handle("vision:small-cnn")
    trainer = vision.Trainer(backbone=h.model, stage_dims=h.extras["stage_dims"], data=make_colored_digits(rho=0.9),
                             config=TrainConfig("vision", epochs=1, selection="last", seed=seed),
                             normalize=(h.extras["mean"], h.extras["std"]))
    return trainer.fit(vision.CrossEntropy(), indices=np.arange(96)).model


def test_vision_family_seeding():
    a, b, c = _vision_fit(0), _vision_fit(0), _vision_fit(1)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))


@pytest.mark.slow
def test_text_families_seed_and_cache_the_same_way(tmp_path):
    """Downstream and LM runs: same seed -> same weights, other seed -> other weights, second call from the cache
    (both under ``<cache>/<kind>/<key[:32]>``)."""
    from biasboard.harness.models import load_handle
    from biasboard.harness.specs import RunContext
    from biasboard.harness.training.corpora import holistic_split
    from biasboard.tasks import synthetic_bios

    h = load_handle("zoo:splade-tiny")
    make = lambda n, s: synthetic_bios.generate(synthetic_bios.BiosConfig(n=n, occupations=("nurse", "surgeon"),  # noqa
                                                                          seed=s))
    train, val = make(48, 0), make(16, 1)
    corpus = holistic_split("3bias", n_sentences=24, seed=0)

    def down(seed, where):
        cfg = TrainConfig("downstream", num_labels=2, epochs=1, batch_size=16, max_length=24, lr=1e-3, seed=seed)
        return downstream.finetune(h, train, val, cfg, RunContext(cache_dir=tmp_path / where))

    def up(seed, where):
        cfg = TrainConfig("lm", steps=2, batch_size=8, max_length=12, lr=1e-4, seed=seed)
        return lm.finetune_lm(h, corpus, cfg, lambda dim, c: ErmObjective(), objective_id={"name": "erm"},
                              cache=tmp_path / where)

    for run, kind in ((down, "finetuned"), (up, "lm_finetuned")):
        a, b, c = run(0, "a"), run(0, "b"), run(1, "a")
        same = lambda x, y: all(torch.equal(p, q) for p, q in zip(x.model.state_dict().values(),  # noqa
                                                                   y.model.state_dict().values()))
        assert a.key == b.key != c.key and same(a, b) and not same(a, c)
        again = run(0, "a")
        assert again.from_cache and same(a, again)
        assert (tmp_path / "a" / kind / a.key[:32] / "model.safetensors").exists()
