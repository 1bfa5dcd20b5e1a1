"""The worst_group task end to end on the small CNN: ERM's worst-group accuracy falls as the spurious correlation
rises, every vision method runs through the registry and returns a well-formed result."""
import math

import pytest

from biasboard.harness.models.vision import builtin_handle
from biasboard.harness.registry import METHODS, TASKS
from biasboard.harness.specs import RunContext

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cnn():
    return builtin_handle("small-cnn")


def _run(handle, variant, method="vision_erm", params=None, **extra):
    m = METHODS.get(method)()
    ctx = RunContext(seed=0, method=m, params=m.resolve_params(params or {}), n_bootstrap=200, extra=extra)
    return TASKS.get("worst_group")().evaluate(handle, variant, ctx)


def test_erm_worst_group_falls_as_rho_rises(cnn):
    low = _run(cnn, "digits_rho50", epochs=4)
    high = _run(cnn, "digits_rho98", epochs=4)
    wl, wh = low.metrics["worst_group_accuracy"], high.metrics["worst_group_accuracy"]
    # without correlation the colour carries no signal; at rho 0.98 ERM leans on the colour
    assert wl.value - wh.value > 15, (wl, wh)
    assert wh.ci95[1] < wl.ci95[0]
    # at rho 0.98 the weighted (training-frequency) accuracy hides the failure that worst-group shows
    assert high.metrics["weighted_accuracy"].value - wh.value > 20


@pytest.mark.parametrize("method,params", [("vision_erm", {}), ("vision_group_dro", {"eta": 0.1}),
                                           ("jtt", {"id_epochs": 1, "lambda_up": 5}),
                                           ("debiasify", {"warmup_epochs": 1, "gamma": 0.5, "max_k": 4}),
                                           ("none", {})])
def test_every_method_gives_a_well_formed_result(cnn, method, params):
    r = _run(cnn, "digits_rho90", method, params, epochs=2, selection="val_average")
    assert list(r.metrics)[0] == "worst_group_accuracy"
    for name, m in r.metrics.items():
        assert m.n == 720 and m.ci95 is not None and m.ci95[0] <= m.value <= m.ci95[1], name
        assert m.direction == "max" and m.ideal == 100.0 and 0 <= m.value <= 100
    assert set(r.groups) == {"digit0-4/red", "digit0-4/green", "digit5-9/red", "digit5-9/green"}
    n = {name: g["accuracy"].n for name, g in r.groups.items()}
    assert sum(n.values()) == 720 and n["digit0-4/red"] == n["digit0-4/green"] and n["digit5-9/red"] == n[
        "digit5-9/green"]
    worst = min(g["accuracy"].value for g in r.groups.values())
    assert math.isclose(worst, r.metrics["worst_group_accuracy"].value)
    assert len(r.examples) == 720 and {"id", "y", "a", "group", "pred", "correct"} <= set(r.examples[0])
    assert r.flags["model_selection"] == "val_average" and 1 <= r.flags["selected_epoch"] <= 2
    assert r.flags["synthetic_data"] is True and r.axis == "spurious"


def test_bad_selection_rule_is_a_usage_error(cnn):
    from biasboard.harness.errors import BiasboardError

    with pytest.raises(BiasboardError, match="selection"):
        _run(cnn, "digits_rho90", selection="test_worst")


def test_real_variants_say_where_data_is_missing(tmp_path, monkeypatch):
    from biasboard.harness.errors import DataError

    monkeypatch.setenv("BIASBOARD_DATA_DIR", str(tmp_path))
    task = TASKS.get("worst_group")()
    with pytest.raises(DataError, match="waterbirds/metadata.csv"):
        task.data_files("waterbirds")
    assert task.data_files("digits_rho90")[0].name == "digits.csv.gz"


def test_max_examples_smoke_run(cnn):
    r = _run(cnn, "digits_rho90", epochs=1, max_examples=200)
    assert r.metrics["worst_group_accuracy"].n == 200 and len(r.examples) == 200
    assert r.flags["max_examples"] == 200 and any("smoke run" in n for n in r.notes)


def test_pretrained_backbone_trains_on_upsampled_digits():
    from biasboard.harness.models import load_handle

    h = load_handle("zoo:efficientnet-lite0")
    assert h.extras["min_input"] == 64   # 16x16 digits are upsampled before the ImageNet network
    r = _run(h, "digits_rho90", "debiasify", {"warmup_epochs": 0, "gamma": 0.5, "max_k": 3}, epochs=1,
             max_examples=64)
    assert r.metrics["worst_group_accuracy"].n == 64 and any("debiasify clusters" in n for n in r.notes)


def test_result_depends_on_the_seed_only_not_on_global_rng_state(cnn):
    import torch

    torch.manual_seed(123)
    a = _run(cnn, "digits_rho90", epochs=1, max_examples=200)
    torch.manual_seed(456)
    torch.rand(1000)
    b = _run(builtin_handle("small-cnn"), "digits_rho90", epochs=1, max_examples=200)
    assert [e["pred"] for e in a.examples] == [e["pred"] for e in b.examples]
