"""worst_group settings per cell without training or image data: the epoch-selection rule follows group_DRO's
convention (ERM by validation average accuracy, robust methods by worst-group accuracy), and JTT / Debiasify get
their papers' settings on the Waterbirds / CelebA variants and the small ones on the synthetic digits."""
import pytest

from biasboard.harness.errors import BiasboardError
from biasboard.harness.registry import METHODS, TASKS
from biasboard.tasks.worst_group import default_selection, resolve_settings

TASK = TASKS.get("worst_group")


def _resolve(variant, method, params=None, **extra):
    m = METHODS.get(method)()
    return resolve_settings(TASK.variants[variant].options, extra, m, m.resolve_params(params or {}))


@pytest.mark.parametrize("method,rule", [("none", "val_average"), ("vision_erm", "val_average"),
                                         ("vision_group_dro", "val_worst_group"), ("jtt", "val_worst_group"),
                                         ("debiasify", "val_worst_group")])
def test_default_selection_follows_group_dro_convention(method, rule):
    assert default_selection(METHODS.get(method)()) == rule
    for variant in ("digits_rho90", "waterbirds", "celeba_blond_male"):
        assert _resolve(variant, method)[0]["selection"] == rule
    # worst-group selection stays available by name, for ERM too
    assert _resolve("digits_rho90", method, selection="val_worst_group")[0]["selection"] == "val_worst_group"
    assert default_selection(None) == "val_average"


def test_bad_selection_is_a_usage_error():
    with pytest.raises(BiasboardError, match="selection must be one of"):
        _resolve("digits_rho90", "vision_erm", selection="test_worst")


def test_jtt_settings_per_dataset():
    opts, params, preset = _resolve("waterbirds", "jtt")
    assert params == {"id_epochs": 60, "lambda_up": 100}
    assert (opts["lr"], opts["weight_decay"], opts["optimizer"], opts["epochs"]) == (1e-5, 1.0, "sgd", 300)
    for variant in ("celeba_blond_male", "celeba_wavy_male"):
        opts, params, _ = _resolve(variant, "jtt")
        assert params == {"id_epochs": 1, "lambda_up": 50}
        assert (opts["lr"], opts["weight_decay"], opts["epochs"]) == (1e-5, 0.1, 50)
    # the synthetic digits keep the small settings and the task's own optimiser
    opts, params, _ = _resolve("digits_rho98", "jtt")
    assert params == {"id_epochs": 2, "lambda_up": 20}
    assert (opts["optimizer"], opts["lr"], opts["weight_decay"], opts["batch_size"]) == ("adam", 1e-3, 1e-4, 64)
    # explicit params and extra win over the dataset's settings
    opts, params, _ = _resolve("waterbirds", "jtt", {"id_epochs": 5}, weight_decay=0.5)
    assert params == {"id_epochs": 5, "lambda_up": 100} and opts["weight_decay"] == 0.5


def test_debiasify_settings_per_dataset():
    for variant in ("waterbirds", "celeba_blond_male", "celeba_wavy_male"):
        opts, params, preset = _resolve(variant, "debiasify")
        assert {k: opts[k] for k in ("optimizer", "lr", "weight_decay", "batch_size", "epochs")} == \
            {"optimizer": "adam", "lr": 1e-4, "weight_decay": 0.01, "batch_size": 100, "epochs": 50}
        assert params["gamma"] == 0.02 and preset is not None
    opts, _, preset = _resolve("digits_rho98", "debiasify")
    assert preset is None and (opts["optimizer"], opts["lr"], opts["batch_size"], opts["epochs"]) == \
        ("adam", 1e-3, 64, 12)
    assert _resolve("waterbirds", "debiasify", batch_size=32)[0]["batch_size"] == 32


def test_other_methods_keep_the_variant_settings():
    for method in ("vision_erm", "vision_group_dro", "none"):
        opts, _, preset = _resolve("waterbirds", method)
        assert preset is None
        assert (opts["optimizer"], opts["lr"], opts["weight_decay"], opts["batch_size"]) == ("sgd", 1e-3, 1e-4, 128)


def test_jtt_without_a_resolved_setting_is_a_clear_error():
    jtt = METHODS.get("jtt")()
    from biasboard.harness.specs import RunContext

    with pytest.raises(ValueError, match="id_epochs, lambda_up = 0 means the dataset's setting"):
        jtt.fit_vision(trainer=None, ctx=RunContext(params=jtt.resolve_params({})))
