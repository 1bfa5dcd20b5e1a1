"""SEAT test selection by name: any sent-bias test file (Heilman double-bind variants included) via
``extra: {tests: [...]}``; the default stays bias-bench's 23 tests; an unknown name is a did-you-mean error."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from biasboard.harness.errors import UnsupportedError
from biasboard.harness.specs import RunContext
from biasboard.tasks.seat import task as seat_task
from biasboard.tasks.seat.task import SEAT_ALL_FILES, SEAT_FILES, Seat

BIAS_BENCH_DEFAULT = (
    [f"sent-weat{i}" for i in ("1", "2", "3", "3b", "4", "5", "5b", "6", "6b", "7", "7b", "8", "8b", "9", "10")]
    + ["sent-angry_black_woman_stereotype", "sent-angry_black_woman_stereotype_b",
       "sent-heilman_double_bind_competent_one_word", "sent-heilman_double_bind_likable_one_word"]
    + [f"sent-religion{i}" for i in ("1", "1b", "2", "2b")])


class FakeHandle:
    id, family = "fake", "encoder"


def fake_encode(handle, texts, **kw):
    """A deterministic text -> vector stand-in for an encoder (seeded by the text's hash)."""
    return np.stack([np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)).normal(size=8)
                     for t in texts])


@pytest.fixture
def fake_encoder(monkeypatch):
    monkeypatch.setattr(seat_task.scoring, "encode", fake_encode)


def run(extra):
    return Seat().evaluate(FakeHandle(), "mean", RunContext(n_bootstrap=50, extra={"permutation_samples": 200,
                                                                                  **extra}))


def test_every_sent_bias_file_is_selectable():
    from biasboard.harness.data import find

    assert list(SEAT_FILES) == BIAS_BENCH_DEFAULT
    assert len(SEAT_ALL_FILES) == 50
    for variant in ("1", "1+3-", "1-", "one_sentence", "one_word"):
        for kind in ("competent", "likable"):
            assert f"heilman_double_bind_{kind}_{variant}" in SEAT_ALL_FILES
    on_disk = {p.name for p in find("seat/sent-weat1.jsonl").parent.glob("*.jsonl")}
    assert on_disk == {p.rsplit("/", 1)[-1] for p in SEAT_ALL_FILES.values() if "bias_bench" not in p}


def test_two_named_tests_return_exactly_those(fake_encoder):
    names = ["heilman_double_bind_competent_1+3-", "heilman_double_bind_likable_one_sentence"]
    res = run({"tests": names})
    assert sorted(r["id"] for r in res.examples) == sorted(names)
    assert set(res.groups) == set(names)  # untyped tests: no gender/race/religion aggregate
    default = run({})
    assert res.data_sha256 and res.data_sha256 != default.data_sha256


def test_default_is_bias_benchs_set_unchanged(fake_encoder):
    default = run({})
    assert [r["id"] for r in default.examples] == BIAS_BENCH_DEFAULT
    named = run({"tests": list(reversed(BIAS_BENCH_DEFAULT))})
    assert default.metrics["mean_abs_effect_size"].value == named.metrics["mean_abs_effect_size"].value
    assert [r["effect_size"] for r in default.examples] == [r["effect_size"] for r in named.examples]


def test_unknown_test_is_a_did_you_mean_error(fake_encoder):
    msg = (r"seat: extra\.tests: unknown test 'heilman_double_bind_competent_1\+3'; "
           r"did you mean 'heilman_double_bind_competent_1\+3-'\?")
    with pytest.raises(UnsupportedError, match=msg):
        run({"tests": ["heilman_double_bind_competent_1+3"]})
    with pytest.raises(UnsupportedError, match="extra.tests must be a list"):
        run({"tests": "sent-weat1"})
