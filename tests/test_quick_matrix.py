"""The default quick matrix holds exactly the cells README, BENCHMARKS.md (17 cells, its measured cost) and issue #3
promise: CrowS-Pairs, SEAT, WEAT and both StereoSet splits. A cell more or less changes what a run costs and what
the regression baseline compares, so the whole set is pinned, not a subset."""
from pathlib import Path

from biasboard.harness.matrix import Matrix, plan

QUICK = Path(__file__).resolve().parents[1] / "leaderboard" / "matrices" / "quick.yaml"
PERTURB = ("perturb", (("sigma", 0.01),))
NONE = ("none", ())

EXPECTED = {
    ("zoo:splade-tiny", method, task, variant)
    for method in (NONE, PERTURB)
    for task, variant in (("crows_pairs", "pll_unmodified"), ("crows_pairs", "ll_modified"), ("seat", "mean"),
                          ("stereoset", "intrasentence"))
} | {
    ("zoo:smollm2-135m", NONE, "crows_pairs", "causal_sum"),
    ("zoo:smollm2-135m", PERTURB, "crows_pairs", "causal_sum"),
    ("zoo:smollm2-135m", NONE, "seat", "mean"),
    ("zoo:smollm2-135m", NONE, "stereoset", "intrasentence"),
    ("zoo:smollm2-135m", NONE, "stereoset", "intersentence"),
    ("zoo:minilm-l6", NONE, "seat", "mean"),
    ("zoo:minilm-l6", PERTURB, "seat", "mean"),
    ("zoo:glove-6b-50d", NONE, "weat", "sent_bias"),
    ("zoo:glove-6b-50d", NONE, "weat", "caliskan_wefe"),
}


def test_quick_matrix_is_exactly_the_promised_cells():
    cells, _ = plan(Matrix.load(QUICK))
    have = [(c.model.spec.id, (c.method.name, tuple(c.method.params)), c.task, c.variant) for c in cells]
    assert len(EXPECTED) == 17
    assert len(cells) == 17 and set(have) == EXPECTED, (sorted(set(have) - EXPECTED), sorted(EXPECTED - set(have)))
    assert {c.seed for c in cells} == {0}
