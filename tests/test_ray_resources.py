"""Resource declarations for the Ray executor, and the promise that the local path never imports Ray.

No Ray needed: these run everywhere.
"""
from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from biasboard.harness.errors import BiasboardError
from biasboard.harness.executors.resources import FAMILY_DEFAULTS, GiB, Resources, cell_resources, declared, weights_bytes


def fake_cell(tmp_path, *, family="mlm", task="crows_pairs", method="none", weight_bytes=0):
    model_dir = tmp_path / f"model-{family}-{weight_bytes}"
    model_dir.mkdir(exist_ok=True)
    if weight_bytes:
        (model_dir / "model.safetensors").write_bytes(b"\0" * weight_bytes)
    (model_dir / "config.json").write_text("{}")  # not a weight file: not counted
    model = SimpleNamespace(family=family, path=model_dir)
    return SimpleNamespace(model=model, task=task, method=SimpleNamespace(name=method))


def test_union_takes_the_larger_request_of_each_kind():
    a, b = Resources(num_cpus=1, num_gpus=0, memory=3), Resources(num_cpus=0.5, num_gpus=1, memory=2)
    assert a.union(b) == Resources(num_cpus=1, num_gpus=1, memory=3)
    assert Resources(memory=5).ray_options() == {"num_cpus": 1.0, "num_gpus": 0.0, "memory": 5}
    assert "memory" not in Resources().ray_options()  # 0 means: reserve nothing


def test_family_default_and_weights_size(tmp_path):
    assert cell_resources(fake_cell(tmp_path)) == FAMILY_DEFAULTS["mlm"] == Resources(num_cpus=1, memory=GiB)
    # 600 MB of weights -> 4 x 600 MB = 2.4 GB, above the 1 GiB default
    big = fake_cell(tmp_path, weight_bytes=600_000_000)
    assert weights_bytes(big.model.path) == 600_000_000
    assert cell_resources(big) == Resources(num_cpus=1, memory=2_400_000_000)
    assert cell_resources(fake_cell(tmp_path, family="clm")).memory == 2 * GiB


def test_task_and_method_declarations_and_override(tmp_path, monkeypatch):
    from biasboard.harness.registry import METHODS, TASKS

    monkeypatch.setattr(TASKS.get("crows_pairs"), "resources", {"num_gpus": 1}, raising=False)
    monkeypatch.setattr(METHODS.get("perturb"), "resources", Resources(num_cpus=4, memory=0), raising=False)
    cell = fake_cell(tmp_path, method="perturb")
    assert cell_resources(cell) == Resources(num_cpus=4, num_gpus=1, memory=GiB)
    assert cell_resources(cell, override={"num_gpus": 0, "num_cpus": 2}) == Resources(num_cpus=2, memory=GiB)
    with pytest.raises(BiasboardError, match="unknown keys \\['gpus'\\]"):
        cell_resources(cell, override={"gpus": 1})


def test_bad_declarations_are_named():
    class Bad:
        resources = {"cpus": 2}

    class Worse:
        resources = 2

    with pytest.raises(BiasboardError, match="Bad.resources: unknown keys \\['cpus'\\]"):
        declared(Bad)
    with pytest.raises(BiasboardError, match="Worse.resources must be a mapping"):
        declared(Worse)
    assert declared(object) == Resources(num_cpus=0.0)  # nothing asked: adds nothing to the family default


def test_local_path_and_executor_module_do_not_import_ray():
    code = ("import sys, harness.runner, harness.commands.run, harness.executors, harness.executors.ray; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_ray_is_a_clear_usage_error(tmp_path, monkeypatch):
    import biasboard.harness.executors.ray as ray_executor
    from biasboard.harness.runner import RunSummary

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as when it is not installed
    with pytest.raises(BiasboardError, match=r"pip install 'biasboard\[ray\]'"):
        ray_executor._import_ray(start_local=False)
    # nothing pending: no Ray needed at all
    store = SimpleNamespace(done_keys=lambda: {"k"})
    summary = ray_executor.run([SimpleNamespace(key="k")], store)
    assert isinstance(summary, RunSummary) and summary.cached == ["k"] and not summary.done
