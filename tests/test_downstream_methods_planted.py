"""The planted-bias acceptance test of issue 5, on a real architecture (zoo:splade-tiny) fine-tuned end to end:
more gender skew in the fine-tuning bios gives a larger TPR gap, and scrubbing the fine-tuning data of a model
without pre-training (random_init) shrinks it (Baksi, Singh, Joshi 2024)."""
from __future__ import annotations

import pytest

from biasboard.harness.registry import METHODS, TASKS
from biasboard.harness.specs import RunContext

pytestmark = pytest.mark.slow

SIZES = {"n_train": 1000, "n_val": 150, "n_test": 800, "epochs": 3, "max_length": 48,
         "occupations": "nurse,surgeon,dietitian,dentist,attorney,paralegal,accountant,software_engineer"}


@pytest.fixture(scope="module")
def scratch():
    import torch

    from biasboard.harness.models import load_handle

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: one thread is as fast and never stalls on a shared machine
    method = METHODS.get("random_init")()
    yield method.apply(load_handle("zoo:splade-tiny"), RunContext(seed=0, params=method.resolve_params({})))
    torch.set_num_threads(threads)


def _gap(handle, tmp_path, skew, method=None):
    m = METHODS.get(method)() if method else None
    ctx = RunContext(seed=0, cache_dir=tmp_path, n_bootstrap=200, extra={**SIZES, "skew": skew}, method=m,
                     params=m.resolve_params({}) if m else {})
    res = TASKS.get("bios")().evaluate(handle, "synthetic", ctx)
    assert res.flags["synthetic_data"] is True and any("SYNTHETIC" in n for n in res.notes)
    assert res.metrics["accuracy"].value > 60  # the model did learn the task
    return res


def test_planted_skew_is_detected_and_scrubbing_a_scratch_model_shrinks_it(scratch, tmp_path):
    flat = _gap(scratch, tmp_path, 0.0)
    skewed = _gap(scratch, tmp_path, 1.5)
    scrubbed = _gap(scratch, tmp_path, 1.5, "scrub")
    g0, g1, gs = (r.metrics["tpr_gap_rms"].value for r in (flat, skewed, scrubbed))
    for label, r in (("skew 0", flat), ("skew 1.5", skewed), ("skew 1.5 + scrub", scrubbed)):
        m = r.metrics
        print(f"\nrandom_init splade-tiny, {label}: tpr_gap_rms {m['tpr_gap_rms'].value:.1f} "
              f"[{m['tpr_gap_rms'].ci95[0]:.1f}, {m['tpr_gap_rms'].ci95[1]:.1f}] pp, pearson r "
              f"{m['tpr_gap_pearson_r'].value:.2f}, accuracy {m['accuracy'].value:.1f}%")
    assert g1 > g0 + 10, (g0, g1)
    assert gs < g1 - 10, (g1, gs)
    assert skewed.metrics["tpr_gap_pearson_r"].value > 0.5  # gaps follow the share of women in training
    assert skewed.metrics["train_gender_skew"].value > flat.metrics["train_gender_skew"].value + 20
