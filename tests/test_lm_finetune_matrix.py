"""The LM-methods matrices plan into the grid the issue asks for, with every method resolving its parameters."""
from __future__ import annotations

from pathlib import Path

from biasboard.harness.matrix import Matrix, plan
from biasboard.harness.registry import METHODS

MATRICES = Path(__file__).resolve().parents[1] / "leaderboard" / "matrices"


def test_full_matrix_plans_the_full_grid():
    cells, skipped = plan(Matrix.load(MATRICES / "lm_methods_full.yaml"))
    # splade-tiny (mlm): seat, stereoset, crows pll, glue = 4 tasks; smollm2 (clm): seat, stereoset, crows causal,
    # glue = 4 tasks; 11 method configurations, 3 seeds: 2 * 4 * 11 * 3 = 264
    assert len(cells) == 264
    assert {s.task for s in skipped} == {"crows_pairs:causal_sum", "crows_pairs:pll_unmodified"}  # wrong family
    labels = {c.method.label for c in cells}
    assert {"robust_debias(corpus=6bias_high)", "bias_vector(lambda=100.0)", "none", "group_dro"} <= labels
    for c in cells:  # every configuration's parameters resolve against the method's defaults
        METHODS.get(c.method.name)().resolve_params(dict(c.params))


def test_hour_matrix_sizes_the_slow_model_down():
    """lm_methods.yaml: every method on both models, splade-tiny x 3 seeds (none once: it has no randomness) on
    full data with GLUE, smollm2 at seed 0 (its fine-tunes are the cost) on SEAT gender tests and fixed samples of
    StereoSet / CrowS-Pairs."""
    cells, skipped = plan(Matrix.load(MATRICES / "lm_methods.yaml"))
    assert not skipped
    by_model = {m: [c for c in cells if c.model.spec.id == m] for m in ("zoo:splade-tiny", "zoo:smollm2-135m")}
    variants = 13 * 3 - 2
    assert len(by_model["zoo:splade-tiny"]) == variants * 4 + 2 and len(by_model["zoo:smollm2-135m"]) == 13 * 3
    corpora = {m: {dict(c.params)["corpus"] for c in cells if c.method.name == m} for m in ("topk_ae_dro", "robust_debias")}
    assert corpora["topk_ae_dro"] == corpora["robust_debias"] == {"3bias", "6bias", "6bias_high"}  # paired per split
    assert {c.seed for c in by_model["zoo:smollm2-135m"]} == {0}
    assert {c.seed for c in cells if c.method.name == "none" and c.task != "glue"} == {0}
    assert {c.seed for c in cells if c.method.name == "none" and c.task == "glue"} == {0, 1, 2}  # it trains per seed
    assert all(not dict(c.extra).get("eval_sample") for c in by_model["zoo:splade-tiny"] if c.task != "seat")
    small = {c.task: dict(c.extra) for c in by_model["zoo:smollm2-135m"]}
    assert small["stereoset"]["eval_sample"] == small["crows_pairs"]["eval_sample"] == 150
    assert len(small["seat"]["tests"]) == 6 and "glue" not in small
    for c in cells:
        METHODS.get(c.method.name)().resolve_params(dict(c.params))


def test_budget_matrix_pairs_two_causal_budgets_on_full_crows_pairs():
    """lm_budget_clm.yaml: each HolisticBias method at the automatic budget and at 64 steps, one `none`, all pairs."""
    cells, skipped = plan(Matrix.load(MATRICES / "lm_budget_clm.yaml"))
    assert not skipped and len(cells) == 11
    assert {(c.model.spec.id, c.task, c.variant, c.seed) for c in cells} == {
        ("zoo:smollm2-135m", "crows_pairs", "causal_sum", 0)}
    assert all(not dict(c.extra).get("eval_sample") for c in cells)
    steps = {}
    for c in cells:
        if c.method.name != "none":
            steps.setdefault(c.method.name, set()).add(dict(c.params).get("steps", 0))
    assert steps == {m: {0, 64} for m in ("erm", "group_dro", "topk_dro", "topk_ae_dro", "robust_debias")}
