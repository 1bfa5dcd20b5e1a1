"""Registries: suggestions for unknown names, validation at registration, --include folders."""
import sys
import textwrap

import pytest

from biasboard.harness.registry import METHODS, TASKS, RegistryError, Registry, include_path, validate_method
from biasboard.harness.specs import Method


def test_unknown_task_suggests_close_names():
    with pytest.raises(RegistryError) as err:
        TASKS.get("crows_pair")
    assert "Did you mean 'crows_pairs'" in str(err.value)
    assert "Valid tasks:" in str(err.value)


def test_unknown_method_lists_valid_names():
    with pytest.raises(RegistryError) as err:
        METHODS.get("no-such-method")
    assert "none" in str(err.value) and "perturb" in str(err.value)


def test_method_with_wrong_hook_signature_fails_at_registration():
    class Broken(Method):
        name = "broken"
        version = "1"
        description = "x"
        families = ("mlm",)
        kind = "weights"
        params = {}

        def apply(self, model):  # wrong: must be (handle, ctx)
            return model

    with pytest.raises(RegistryError, match=r"hook apply\('model',\) must take exactly \('handle', 'ctx'\)"):
        validate_method(Broken)


def test_method_without_hooks_or_with_bad_family_fails():
    class NoHooks(Method):
        name = "nohooks"
        version = "1"
        description = "x"
        families = ("mlm",)
        kind = "weights"
        params = {}

    with pytest.raises(RegistryError, match="implements none of the hooks"):
        validate_method(NoHooks)

    class BadFamily(NoHooks):
        families = ("speech",)

        def apply(self, handle, ctx):
            return handle

    with pytest.raises(RegistryError, match="unknown families"):
        validate_method(BadFamily)


def test_lazy_entry_is_imported_on_first_use():
    reg = Registry("method", validate_method)
    reg.add_lazy("perturb2", "biasboard.submissions.perturb:Perturb")
    assert reg.get("perturb2").__name__ == "Perturb"
    reg.add_lazy("ghost", "no.such.module:Thing")
    with pytest.raises(RegistryError, match="cannot load"):
        reg.get("ghost")


def test_include_path_registers_adapter_folder(tmp_path):
    (tmp_path / "halfnoise.py").write_text(textwrap.dedent('''
        from biasboard.harness.registry import register_method
        from biasboard.harness.specs import Method

        @register_method
        class HalfNoise(Method):
            name = "halfnoise_included"
            version = "0.1"
            description = "test adapter"
            families = ("mlm",)
            kind = "weights"
            params = {"sigma": 0.5}

            def apply(self, handle, ctx):
                return handle
    '''))
    include_path(tmp_path)
    assert "halfnoise_included" in METHODS.names()


def test_include_path_reports_import_errors(tmp_path):
    (tmp_path / "bad.py").write_text("raise ValueError('boom')\n")
    with pytest.raises(RegistryError, match="import failed: ValueError: boom"):
        include_path(tmp_path)
    # the failed module is not left behind: Ray workers re-import every include this process holds
    from biasboard.harness.executors.ray import included_paths

    assert str((tmp_path / "bad.py").resolve()) not in included_paths()
    assert "biasboard_include_bad" not in sys.modules
