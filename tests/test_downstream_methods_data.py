"""Downstream interventions: scrub, resample, random_init, proxy_scrub (Baksi, Singh, Joshi 2024), checked on the
synthetic data whose cues we know, plus registration and clear errors."""
from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

from biasboard.harness.errors import BiasboardError, UnsupportedError
from biasboard.harness.registry import METHODS
from biasboard.harness.specs import RunContext
from biasboard.tasks import synthetic_bios, synthetic_wiki
from biasboard.tasks.wordlists import FEMALE_NAMES, GENDER_WORDS, IDENTITY_TERMS, MALE_NAMES, word_pattern, words_of


def _ctx(name, **params):
    method = METHODS.get(name)()
    return method, RunContext(seed=0, params=method.resolve_params(params), method=method)


@pytest.fixture(scope="module")
def bios():
    return synthetic_bios.generate(synthetic_bios.BiosConfig(n=400, seed=0))


def test_registered_with_manifests():
    from pathlib import Path

    import yaml

    for name, hooks in (("scrub", ["transform_data"]), ("resample", ["transform_data"]),
                        ("random_init", ["apply"]), ("proxy_scrub", ["transform_data"])):
        cls = METHODS.get(name)
        manifest = yaml.safe_load((Path(__file__).resolve().parents[1] / "submissions" / name / "manifest.yaml").read_text())
        assert manifest["name"] == name and manifest["hooks"] == hooks and manifest["version"] == cls.version
        assert set(manifest["params"]) == set(cls.params)
        assert {k: v["default"] for k, v in manifest["params"].items()} == cls.params


def test_scrub_removes_every_gender_cue_and_keeps_labels(bios):
    method, ctx = _ctx("scrub")
    out = method.transform_data(bios, ctx)
    cues = set(GENDER_WORDS) | set(FEMALE_NAMES) | set(MALE_NAMES)
    before = sum(w in cues for t in bios.texts for w in words_of(t))
    after = [w for t in out.texts for w in words_of(t) if w in cues]
    assert before > 2 * len(bios) and after == []
    assert out.labels == bios.labels and out.groups == bios.groups and out.ids == bios.ids
    assert "nurse" in " ".join(out.texts) or "patients" in " ".join(out.texts)  # content words stay


def test_scrub_identity_terms_on_wiki_comments():
    data = synthetic_wiki.generate(synthetic_wiki.WikiConfig(n=300, seed=0))
    method, ctx = _ctx("scrub")
    out = method.transform_data(data, ctx)
    pat = word_pattern(IDENTITY_TERMS)
    assert sum(bool(pat.search(t)) for t in data.texts) > 50
    assert not any(pat.search(t) for t in out.texts)
    with pytest.raises(UnsupportedError, match="no word list"):
        method.transform_data(dataclasses.replace(data, axis="religion"), ctx)


def test_resample_makes_group_independent_of_label(bios):
    method, ctx = _ctx("resample")
    out = method.transform_data(bios, ctx)
    y, g = np.asarray(out.labels), np.asarray(out.groups)
    overall = (np.asarray(bios.groups) == "female").mean()
    for c in set(y.tolist()):
        assert (g[y == c] == "female").mean() == pytest.approx(overall, abs=0.06)
    assert abs(len(out) - len(bios)) <= len(set(y.tolist()))  # rounding only
    assert Counter(out.labels) == pytest.approx(Counter(bios.labels), abs=1)
    method, ctx = _ctx("resample", target="uniform")
    g2, y2 = np.asarray(method.transform_data(bios, ctx).groups), np.asarray(method.transform_data(bios, ctx).labels)
    assert (g2 == "female").mean() == pytest.approx(0.5, abs=0.03)
    with pytest.raises(BiasboardError, match="target"):
        _ctx("resample", target="sideways")[0].transform_data(bios, _ctx("resample", target="sideways")[1])
    with pytest.raises(BiasboardError, match="unknown parameter"):
        _ctx("resample", amount=3)


@pytest.mark.slow
def test_random_init_same_architecture_new_weights():
    import torch

    from biasboard.harness.models import load_handle

    h = load_handle("zoo:splade-tiny")
    method, ctx = _ctx("random_init")
    out = method.apply(h, ctx)
    assert type(out.model) is type(h.model) and out.tokenizer is h.tokenizer
    assert out.lineage[-1] == "random_init(seed=0)" and out.extras["finetune_lr"] == 5e-4
    a, b = h.model.state_dict(), out.model.state_dict()
    assert a.keys() == b.keys()
    w = "bert.encoder.layer.0.attention.self.query.weight"
    assert a[w].shape == b[w].shape and not torch.allclose(a[w], b[w])
    again = method.apply(h, ctx).model.state_dict()
    assert torch.equal(again[w], b[w])  # seeded


@pytest.mark.slow
def test_proxy_scrub_direction_and_proxies(bios):
    from biasboard.submissions.proxy_scrub import _load, gender_direction, proxy_scores

    vectors, vocab = _load("zoo:glove-6b-50d")
    d = gender_direction(vectors, vocab)
    s = proxy_scores(["she", "her", "he", "his", "nurse", "engineer"], vectors, vocab, d)
    assert s["she"] > 0 > s["he"] and s["her"] > 0 > s["his"]
    assert s["nurse"] > s["engineer"]
    method, ctx = _ctx("proxy_scrub", top_n=15)
    out = method.transform_data(bios, ctx)
    proxies = [w for w, _ in method.last_proxies]
    assert len(proxies) == 15 and not set(proxies) & set(GENDER_WORDS)
    scores = [abs(v) for _, v in method.last_proxies]
    assert scores == sorted(scores, reverse=True)
    left = {w for t in out.texts for w in words_of(t)}
    assert not left & set(proxies) and not left & set(GENDER_WORDS)
    with pytest.raises(UnsupportedError, match="gender direction"):
        method.transform_data(synthetic_wiki.generate(synthetic_wiki.WikiConfig(n=20)), ctx)


def test_data_without_group_axis_glue_style(bios):
    plain = dataclasses.replace(bios, axis="", groups=None)
    method, ctx = _ctx("scrub")
    out = method.transform_data(plain, ctx)  # gender list: the utility cost of scrubbing on GLUE
    assert not {"she", "he", "her", "his"} & {w for t in out.texts for w in words_of(t)}
    method, ctx = _ctx("resample")
    with pytest.raises(UnsupportedError, match="no group labels"):
        method.transform_data(plain, ctx)
