"""CDA and Dropout end to end through the runner on real zoo models: a few fine-tuning steps of zoo:splade-tiny (mlm)
and zoo:smollm2-135m (clm, the zoo's only causal LM: 135M parameters, so only its Dropout cell, the architecture-
specific path, runs here) on the GLUE text corpus, the weights change, and a CrowS-Pairs cell finishes with n and a
CI and names its corpus in the flags."""
from __future__ import annotations

import pytest

from biasboard.harness.matrix import Matrix, plan
from biasboard.harness.runner import HandleCache, evaluate_cell

pytestmark = pytest.mark.slow
BUDGET = {"steps": 2, "batch_size": 4, "max_length": 12, "n_sentences": 200, "train_precision": "float32"}
TASK = {"zoo:splade-tiny": "crows_pairs:pll_unmodified", "zoo:smollm2-135m": "crows_pairs:causal_sum"}


HANDLES = HandleCache()  # one base model per module run


@pytest.mark.parametrize("model,method", [("zoo:splade-tiny", "cda"), ("zoo:splade-tiny", "dropout"),
                                          ("zoo:smollm2-135m", "dropout")])
def test_a_cell_fine_tunes_and_finishes_with_n_and_ci(model, method):
    cells, _ = plan(Matrix.from_dict({
        "name": "cda-dropout-e2e", "models": [model], "methods": [{"name": method, "params": dict(BUDGET)}],
        "tasks": [TASK[model]], "options": {"extra": {"max_examples": 8}, "n_bootstrap": 50}}))
    handles = HANDLES
    record, examples = evaluate_cell(cells[0], handles=handles, extra={"max_examples": 8})
    record = record.to_json() if hasattr(record, "to_json") else record
    base, tuned = dict(handles.base.model.named_parameters()), dict(handles.applied.model.named_parameters())
    assert max(float((tuned[n] - p).detach().abs().max()) for n, p in base.items()) > 0
    assert not handles.applied.model.training
    metric = next(iter(record["metrics"].values()))
    assert metric["n"] == 8 and len(metric["ci95"]) == 2 and len(examples) == 8
    assert record["flags"]["finetune_corpus"].startswith(
        "cda:gender:bias_bench(glue_text(n=200" if method == "cda" else "glue_text(n=200")
    assert record["provenance"]["finetune"]["steps"] == 2
    assert record["provenance"]["lineage"][-1].startswith(f"{method}(")
    if method == "dropout":
        rates = record["flags"]["dropout"]
        assert rates == ({"hidden_dropout_prob": 0.2, "attention_probs_dropout_prob": 0.15}
                         if model == "zoo:splade-tiny" else {"attention_dropout": 0.15})
