"""The WIKI planted-bias acceptance test, on a real architecture (zoo:splade-tiny) fine-tuned end to end and scored on
Dixon et al.'s real bias madlibs: synthetic comments with a planted identity-term/toxicity association (skew 1) give
many more false positives on non-toxic madlibs that mention an identity term than unskewed comments (skew 0), and a
larger FPED; at skew 0 the identity false positive rate stays small."""
from __future__ import annotations

import pytest

from biasboard.harness.registry import TASKS
from biasboard.harness.specs import RunContext

pytestmark = pytest.mark.slow

# Task defaults (3,000 synthetic training comments, 400 validation, 2 epochs, max length 64) except the learning
# rate: 1e-3 suits this 2-layer model (the default 5e-5 is meant for base-size models); a seeded 4,000-row madlibs
# sample keeps the test near a minute on one thread. The assertions below were calibrated at the fixed 0.5
# threshold (task version 1); at the default EER threshold the same runs give identity FPR 2.2% -> 6.1% and FPED
# 1.18 -> 3.96.
EXTRA = {"lr": 1e-3, "n_eval": 4000, "data_seed": 0, "threshold": 0.5}


@pytest.fixture
def handle(splade):
    """The session's zoo:splade-tiny (conftest), run on one thread: small batches are as fast and a shared machine
    never stalls."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield splade
    torch.set_num_threads(threads)


def _run(handle, tmp_path, skew):
    ctx = RunContext(seed=0, cache_dir=tmp_path, n_bootstrap=200, extra={**EXTRA, "skew": skew})
    res = TASKS.get("wiki_toxicity")().evaluate(handle, "madlibs", ctx)
    assert res.flags["synthetic_data"] is True and res.flags["eval_subsample"] == 4000
    m = res.metrics
    print(f"\nsplade-tiny, skew {skew}: identity_fpr {m['identity_fpr'].value:.1f} [{m['identity_fpr'].ci95[0]:.1f}, "
          f"{m['identity_fpr'].ci95[1]:.1f}] % (n {m['identity_fpr'].n}), fped {m['fped'].value:.2f} "
          f"[{m['fped'].ci95[0]:.2f}, {m['fped'].ci95[1]:.2f}], mean_bpsn_auc {m['mean_bpsn_auc'].value:.3f}, "
          f"auc {m['auc'].value:.3f}, accuracy {m['accuracy'].value:.1f}%, "
          f"train gap {m['train_identity_toxicity_gap'].value:.1f} pp")
    return m


def test_planted_identity_association_shows_as_false_positives_on_madlibs(handle, tmp_path):
    flat = _run(handle, tmp_path, 0.0)
    skewed = _run(handle, tmp_path, 1.0)
    # the planted dataset bias: none at skew 0, 40+ pp at skew 1 (overall toxic share is the same in both)
    assert abs(flat["train_identity_toxicity_gap"].value) < 1
    assert skewed["train_identity_toxicity_gap"].value > 40
    # the model learnt the task at skew 0, and makes few identity-term false positives there
    assert flat["accuracy"].value > 90 and flat["auc"].value > 0.95
    assert flat["identity_fpr"].value < 12 and flat["fped"].value < 4
    # skew 1: the identity FPR rises far outside both CIs (measured +34 pp; CIs are +-2 pp), and so does FPED
    assert skewed["identity_fpr"].ci95[0] > flat["identity_fpr"].ci95[1] + 15
    assert skewed["fped"].ci95[0] > flat["fped"].ci95[1]
    assert skewed["fped"].value > 2 * flat["fped"].value
    # the bias-specific AUC falls; the model still separates toxic from non-toxic well
    assert skewed["mean_bpsn_auc"].value < flat["mean_bpsn_auc"].value
    assert skewed["auc"].value > 0.9
