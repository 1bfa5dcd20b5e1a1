"""`biasboard validate`: the template passes out of the box; each deliberately broken submission fails its line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from biasboard.harness.cli import main
from biasboard.harness.submission import load_manifest, param_errors, scan_unsafe_loads, validate, validate_many
from submission_fixtures import (ALIASED_UNSAFE_LOAD, GOOD_MANIFEST, NETWORK_CALL, NOISE_UNSEEDED, PICKLED_WEIGHTS,
                                 method_source, write_submission)

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "submissions" / "_template"


def status(checklist, name):
    return checklist.get(name).status


# --- static checks (no subprocess) --------------------------------------------------------------------------------
def test_template_manifest_is_valid_and_params_check_ranges():
    manifest = load_manifest(TEMPLATE)
    assert manifest["name"] == "my_method"
    assert param_errors(manifest, {"strength": 0.5}) == []
    assert param_errors(manifest, {"strength": 1.5}) == ["strength: value 1.5 is outside the range [0.0, 1.0]"]
    assert param_errors(manifest, {"strength": "high"}) == ["strength: value 'high' is not of type float"]


def test_bad_manifest_names_file_and_field(tmp_path):
    bad = dict(GOOD_MANIFEST, families=["mlm", "speech"])
    folder = write_submission(tmp_path, "badfam", method_source("badfam", ""), bad)
    with pytest.raises(Exception) as err:
        load_manifest(folder)
    assert "manifest.yaml" in str(err.value) and "field 'families.1'" in str(err.value)
    assert "'speech' is not one of" in str(err.value)


def test_manifest_default_outside_its_range_is_reported(tmp_path):
    bad = dict(GOOD_MANIFEST, params={"scale": {"type": "float", "default": 3.0, "range": [0.0, 1.0]}})
    folder = write_submission(tmp_path, "badrange", method_source("badrange", ""), bad)
    with pytest.raises(Exception, match=r"field 'params.scale': default 3.0 is outside the range \[0.0, 1.0\]"):
        load_manifest(folder)


def test_static_scan_finds_unpickling_calls(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "__init__.py").write_text("import pickle, torch, numpy as np\n"
                                        "a = pickle.load(open('x', 'rb'))\n"
                                        "b = torch.load('w.pt')\n"
                                        "c = torch.load('w.pt', weights_only=True)\n"
                                        "d = np.load('v.npy', allow_pickle=True)\n"
                                        "e = np.load('v.npy')\n")
    assert scan_unsafe_loads(folder) == ["__init__.py:2: pickle.load(...)", "__init__.py:3: torch.load(...)",
                                         "__init__.py:5: np.load(...)"]


# --- checks that run code (subprocess) ----------------------------------------------------------------------------
def test_import_level_failures_each_get_a_clear_line(tmp_path):
    """Bad manifest, wrong hook signature, missing dependency: static and import checks only (no smoke)."""
    bad_manifest = dict(GOOD_MANIFEST)
    del bad_manifest["license"]
    folders = [
        write_submission(tmp_path, "bad_manifest", method_source("bad_manifest", ""), bad_manifest),
        write_submission(tmp_path, "bad_hook", method_source("bad_hook", "", signature="self, model")),
        write_submission(tmp_path, "bad_import", "import no_such_package_xyz\n"),
    ]
    manifest_case, hook_case, import_case = validate_many(folders, smoke=False, timeout=300)

    assert status(manifest_case, "manifest") == "FAIL"
    assert "'license' is a required property" in manifest_case.get("manifest").detail
    assert status(manifest_case, "agreement") == "FAIL"
    assert status(manifest_case, "hooks") == "PASS"  # the code itself is fine
    assert not manifest_case.passed

    assert status(hook_case, "manifest") == "PASS"
    assert status(hook_case, "hooks") == "FAIL"
    assert "hook apply('model',) must take exactly ('handle', 'ctx')" in hook_case.get("hooks").detail

    assert status(import_case, "import") == "FAIL"
    assert "ModuleNotFoundError: No module named 'no_such_package_xyz'" in import_case.get("import").detail
    assert "__init__.py:1" in import_case.get("import").detail


@pytest.mark.slow
def test_runtime_failures_each_get_a_clear_line(tmp_path):
    """Non-deterministic output, a network call, pickled weights, an aliased unsafe load inside `apply`: the smoke
    runs catch each one."""
    folders = [
        write_submission(tmp_path, "noisy", method_source("noisy", NOISE_UNSEEDED)),
        write_submission(tmp_path, "chatty", method_source("chatty", NETWORK_CALL)),
        write_submission(tmp_path, "pickly", method_source("pickly", PICKLED_WEIGHTS)),
        write_submission(tmp_path, "sneaky", method_source("sneaky", ALIASED_UNSAFE_LOAD)),
    ]
    noisy, chatty, pickly, sneaky = validate_many(folders, timeout=900)

    assert status(noisy, "smoke") == "PASS"
    assert status(noisy, "determinism") == "FAIL"
    assert "two runs with seed 0 differ" in noisy.get("determinism").detail

    assert status(chatty, "smoke") == "PASS"  # it swallowed the error, but the attempt was seen
    assert status(chatty, "offline") == "FAIL"
    assert "DNS lookup 'example.org:80'" in chatty.get("offline").detail
    assert status(chatty, "determinism") == "PASS"

    assert status(pickly, "safe_loading") == "FAIL"
    assert "torch.load" in pickly.get("safe_loading").detail
    assert status(pickly, "weights") == "FAIL"
    assert "pickled/state.pt" in pickly.get("weights").detail

    assert scan_unsafe_loads(folders[3]) == []  # the alias hides it from the source scan
    assert status(sneaky, "safe_loading") == "FAIL"
    assert "via torch.serialization.load at sneaky/__init__.py:" in sneaky.get("safe_loading").detail
    assert "fetch(path, weights_only=False)" in sneaky.get("safe_loading").detail
    assert status(sneaky, "weights") == "FAIL"
    for checklist in (noisy, chatty, pickly, sneaky):
        assert not checklist.passed


@pytest.mark.slow
def test_template_validates_out_of_the_box_through_the_cli(capsys):
    code = main(["validate", str(TEMPLATE), "--json"])
    out = json.loads(capsys.readouterr().out)[0]
    assert code == 0, out
    assert out["method"] == "my_method" and out["passed"]
    assert [c["status"] for c in out["checks"]] == ["PASS"] * 11
    assert out["isolation"].startswith(("isolation: bubblewrap", "not isolated"))


@pytest.mark.slow  # waits out a 20 s limit: CI runs it, the fast tier does not
def test_time_limit_kills_a_hanging_import(tmp_path):
    folder = write_submission(tmp_path, "sleepy", "import time\ntime.sleep(600)\n")
    checklist = validate(folder, smoke=False, timeout=20)
    assert status(checklist, "import") == "FAIL"
    assert "timed out after 20 s during import" in checklist.get("import").detail
    assert status(checklist, "smoke") == "SKIP"


def test_validate_usage_errors_exit_2(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_new_method_copies_the_template_with_names_filled_in(tmp_path, capsys):
    assert main(["new-method", "fair_shift", "--dir", str(tmp_path)]) == 0
    folder = tmp_path / "fair_shift"
    manifest = yaml.safe_load((folder / "manifest.yaml").read_text())
    assert manifest["name"] == "fair_shift"
    source = (folder / "__init__.py").read_text()
    assert 'name = "fair_shift"' in source and "class FairShift(Method)" in source and "my_method" not in source
    assert main(["new-method", "fair_shift", "--dir", str(tmp_path)]) == 2  # exists
    assert main(["new-method", "Bad-Name", "--dir", str(tmp_path)]) == 2
    assert main(["new-method", "perturb", "--dir", str(tmp_path)]) == 2  # taken
    checklist = validate(folder, smoke=False, timeout=300)
    assert [c.status for c in checklist.checks[:6]] == ["PASS"] * 6, checklist.render()
