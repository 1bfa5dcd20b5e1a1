"""The default quick matrix holds the cells README and issue #3 promise: SEAT, WEAT and both StereoSet splits."""
from pathlib import Path

from biasboard.harness.matrix import Matrix, plan

QUICK = Path(__file__).resolve().parents[1] / "leaderboard" / "matrices" / "quick.yaml"


def test_quick_matrix_has_the_intrinsic_bias_cells():
    cells, _ = plan(Matrix.load(QUICK))
    have = {(c.model.spec.id, c.method.name, c.task, c.variant) for c in cells}
    assert {
        ("zoo:minilm-l6", "none", "seat", "mean"),
        ("zoo:splade-tiny", "none", "seat", "mean"),
        ("zoo:smollm2-135m", "none", "seat", "mean"),
        ("zoo:glove-6b-50d", "none", "weat", "sent_bias"),
        ("zoo:glove-6b-50d", "none", "weat", "caliskan_wefe"),
        ("zoo:splade-tiny", "none", "stereoset", "intrasentence"),
        ("zoo:smollm2-135m", "none", "stereoset", "intrasentence"),
        ("zoo:smollm2-135m", "none", "stereoset", "intersentence"),
    } <= have
    assert len(cells) == 17
