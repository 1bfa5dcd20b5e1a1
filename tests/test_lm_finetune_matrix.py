"""The LM-methods matrices plan into the grid the issue asks for, with every method resolving its parameters."""
from __future__ import annotations

from pathlib import Path

from harness.matrix import Matrix, plan
from harness.registry import METHODS

MATRICES = Path(__file__).resolve().parents[1] / "leaderboard" / "matrices"


def test_lm_methods_matrix_plans_the_full_grid():
    cells, skipped = plan(Matrix.load(MATRICES / "lm_methods.yaml"))
    # splade-tiny (mlm): seat, stereoset, crows pll, glue = 4 tasks; smollm2 (clm): seat, stereoset, crows causal,
    # glue = 4 tasks; 11 method configurations, 3 seeds: 2 * 4 * 11 * 3 = 264
    assert len(cells) == 264
    assert {s.task for s in skipped} == {"crows_pairs:causal_sum", "crows_pairs:pll_unmodified"}  # wrong family
    labels = {c.method.label for c in cells}
    assert {"robust_debias(corpus=6bias_high)", "bias_vector(lambda=100.0)", "none", "group_dro"} <= labels
    for c in cells:  # every configuration's parameters resolve against the method's defaults
        METHODS.get(c.method.name)().resolve_params(dict(c.params))


def test_fit_matrix_is_a_subset():
    cells, _ = plan(Matrix.load(MATRICES / "lm_methods_fit.yaml"))
    assert len(cells) == 11 * 3 and {c.model.spec.id for c in cells} == {"zoo:splade-tiny"}
