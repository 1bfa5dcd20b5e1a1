"""The packaged matrices hold exactly the cells README and BENCHMARKS.md promise (and state the cost of): the
standard matrix (17 full-data cells: CrowS-Pairs, SEAT, WEAT and both StereoSet splits) and the default quick matrix
(every zoo family, a downstream task, none and two mitigation methods, minutes on a CPU). A cell more or less changes
what a run costs and what the regression baseline compares, so the whole set is pinned, not a subset."""
from pathlib import Path

from biasboard.harness.matrix import Matrix, plan

MATRICES = Path(__file__).resolve().parents[1] / "leaderboard" / "matrices"
STANDARD, QUICK = MATRICES / "standard.yaml", MATRICES / "quick.yaml"
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
    ("zoo:smollm2-135m", NONE, "bbq", "causal_mc"),
    ("zoo:smollm2-135m", NONE, "winobias", "causal_pair"),
    ("zoo:smollm2-135m", NONE, "holistic_bias", "likelihood_bias"),
}


def test_standard_matrix_is_exactly_the_promised_cells():
    cells, _ = plan(Matrix.load(STANDARD))
    have = [(c.model.spec.id, (c.method.name, tuple(c.method.params)), c.task, c.variant) for c in cells]
    assert len(EXPECTED) == 20
    assert len(cells) == 20 and set(have) == EXPECTED, (sorted(set(have) - EXPECTED), sorted(EXPECTED - set(have)))
    assert {c.seed for c in cells} == {0}


GROUP_DRO = ("vision_group_dro", (("eta", 0.1),))
QUICK_EXPECTED = {
    ("zoo:splade-tiny", method, task, variant)
    for method in (NONE, PERTURB)
    for task, variant in (("crows_pairs", "pll_unmodified"), ("crows_pairs", "ll_modified"), ("seat", "mean"),
                          ("stereoset", "intrasentence"))
} | {
    ("zoo:smollm2-135m", NONE, "crows_pairs", "causal_sum"),
    ("zoo:smollm2-135m", NONE, "stereoset", "intrasentence"),
    ("zoo:minilm-l6", NONE, "seat", "mean"),
    ("zoo:minilm-l6", PERTURB, "seat", "mean"),
    ("zoo:glove-6b-50d", NONE, "weat", "sent_bias"),
    ("zoo:glove-6b-50d", NONE, "weat", "caliskan_wefe"),
} | {("zoo:efficientnet-lite0", method, "worst_group", "digits_rho90") for method in (NONE, GROUP_DRO)}


def test_default_quick_matrix_shows_every_family_a_downstream_task_and_two_methods():
    cells, _ = plan(Matrix.load(QUICK))
    have = [(c.model.spec.id, (c.method.name, tuple(c.method.params)), c.task, c.variant) for c in cells]
    assert len(cells) == 16 and set(have) == QUICK_EXPECTED, (sorted(set(have) - QUICK_EXPECTED),
                                                             sorted(QUICK_EXPECTED - set(have)))
    assert {c.model.family for c in cells} == {"mlm", "clm", "encoder", "wordvec", "vision"}
    # the sampled SmolLM2 cells share one seeded sample, so every comparison on them stays paired
    smol = [c for c in cells if c.model.spec.id == "zoo:smollm2-135m"]
    assert all(dict(c.extra).get("eval_sample") == 300 for c in smol)
