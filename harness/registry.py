"""Registries of tasks and methods.

Built-in tasks and methods are entry points of biasboard's own distribution (groups ``biasboard.tasks`` and
``biasboard.methods``, ``module:attr``), exactly like outside packages: the engine holds their names as strings and
imports a plugin only when it is asked for, so it never imports ``tasks`` or ``submissions`` itself. A module's
``@register_task`` / ``@register_method`` decorator still validates the class when it is imported, and
``--include PATH`` adds a folder of adapter modules. Plugins are validated when they register, not when
they run, so a broken adapter fails at once with a message that says what is wrong.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Callable

from biasboard.harness.errors import BiasboardError

FAMILIES = ("mlm", "clm", "encoder", "wordvec", "vision")


class RegistryError(BiasboardError, LookupError):
    """Unknown name or invalid plugin."""


class Registry:
    """Name -> class, with lazy ``module:attr`` entries and "did you mean" suggestions."""

    def __init__(self, kind: str, validator: Callable[[Any], None]):
        self.kind = kind
        self._validate = validator
        self._entries: dict[str, Any] = {}

    def register(self, obj: Any, name: str | None = None, *, replace: bool = False) -> Any:
        self._validate(obj)
        name = name or obj.name
        old = self._entries.get(name)
        if old is not None and old is not obj and not isinstance(old, str) and not replace:
            if getattr(old, "__module__", None) != obj.__module__ or old.__qualname__ != obj.__qualname__:
                raise RegistryError(f"{self.kind} {name!r} is already registered by {old.__module__}")
        self._entries[name] = obj
        return obj

    def add_lazy(self, name: str, target: str) -> None:
        """Register ``module:attr`` to be imported on first use."""
        if ":" not in target:
            raise RegistryError(f"{self.kind} entry {name!r}: expected 'module:attr', got {target!r}")
        self._entries.setdefault(name, target)

    def get(self, name: str) -> Any:
        _ensure_loaded()
        if name not in self._entries:
            hint = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
            msg = f"unknown {self.kind} {name!r}."
            if hint:
                msg += f" Did you mean {', '.join(repr(h) for h in hint)}?"
            msg += f" Valid {self.kind}s: {', '.join(self.names())}"
            raise RegistryError(msg)
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            try:
                obj = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                raise RegistryError(f"{self.kind} {name!r}: cannot load {entry!r}: {exc}") from exc
            self.register(obj, name, replace=True)
            entry = obj
        return entry

    def names(self) -> list[str]:
        _ensure_loaded()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        _ensure_loaded()
        return name in self._entries


def _require(cond: bool, obj: Any, kind: str, what: str) -> None:
    if not cond:
        raise RegistryError(f"{kind} {getattr(obj, '__name__', obj)!r}: {what}")


def _check_common(obj: Any, kind: str) -> None:
    _require(inspect.isclass(obj), obj, kind, "must be a class")
    for attr in ("name", "version", "families", "description"):
        _require(isinstance(getattr(obj, attr, None), (str, tuple, frozenset)), obj, kind, f"missing class attribute {attr!r}")
    _require(isinstance(obj.name, str) and obj.name.replace("_", "").isalnum(), obj, kind,
             "name must be letters, digits and underscores")
    bad = set(obj.families) - set(FAMILIES)
    _require(not bad, obj, kind, f"unknown families {sorted(bad)}; valid: {FAMILIES}")


def _check_signature(obj: Any, kind: str, hook: str, params: tuple[str, ...]) -> None:
    fn = getattr(obj, hook, None)
    _require(callable(fn), obj, kind, f"hook {hook!r} is not callable")
    got = [p for p in inspect.signature(fn).parameters if p != "self"]
    _require(tuple(got[: len(params)]) == params and len(got) == len(params), obj, kind,
             f"hook {hook}{tuple(got)} must take exactly {params}")


def validate_task(obj: Any) -> None:
    _check_common(obj, "task")
    _require(isinstance(getattr(obj, "variants", None), dict) and obj.variants, obj, "task",
             "variants must be a non-empty dict of name -> Variant")
    _require(obj.default_variant in obj.variants, obj, "task", "default_variant must be one of variants")
    _check_signature(obj, "task", "evaluate", ("handle", "variant", "ctx"))


METHOD_HOOKS = {
    "apply": ("handle", "ctx"),
    "transform_data": ("dataset", "ctx"),
    "training_loss": ("losses", "batch", "ctx"),
    "represent": ("hidden", "ctx"),
}
METHOD_KINDS = ("identity", "weights", "finetune", "data", "loss", "representation")


def validate_method(obj: Any) -> None:
    _check_common(obj, "method")
    _require(getattr(obj, "kind", None) in METHOD_KINDS, obj, "method", f"kind must be one of {METHOD_KINDS}")
    _require(isinstance(getattr(obj, "params", None), dict), obj, "method", "params must be a dict of defaults")
    hooks = [h for h in METHOD_HOOKS if h in vars(obj) or any(h in vars(b) for b in obj.__mro__[1:-1])]
    _require(bool(hooks), obj, "method", f"implements none of the hooks {tuple(METHOD_HOOKS)}")
    for hook in hooks:
        _check_signature(obj, "method", hook, METHOD_HOOKS[hook])


TASKS = Registry("task", validate_task)
METHODS = Registry("method", validate_method)


def describe_task(cls) -> dict[str, Any]:
    """What the board shows of a task, from its class declaration (stored with the results, read by the site)."""
    return {"description": cls.description, "citation": cls.citation, "axis": cls.axis, "version": cls.version,
            "families": list(cls.families), "default_variant": cls.default_variant,
            "variants": {v: {"description": spec.description, "families": list(spec.families)}
                         for v, spec in cls.variants.items()}}


def describe_method(cls) -> dict[str, Any]:
    """What the board shows of a method, from its class declaration (stored with the results, read by the site)."""
    return {"description": cls.description, "citation": cls.citation, "kind": cls.kind, "version": cls.version,
            "families": list(cls.families), "params": dict(cls.params)}


def register_task(cls):
    """Class decorator: add a Task subclass to the task registry (validated now)."""
    return TASKS.register(cls)


def register_method(cls):
    """Class decorator: add a Method subclass to the method registry (validated now)."""
    return METHODS.register(cls)


_LOADED = False


def _ensure_loaded() -> None:
    """Read the entry points (built-in and outside plugins) once; nothing is imported until asked for."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for group, registry in (("biasboard.tasks", TASKS), ("biasboard.methods", METHODS)):
        for ep in importlib.metadata.entry_points(group=group):
            registry.add_lazy(ep.name, ep.value)


def include_path(path: str | Path) -> list[str]:
    """Import every adapter module (``*.py`` or package folder) under ``path`` so its decorators register.

    Returns the module names imported. A folder that is itself a package is imported as one module.
    """
    path = Path(path).resolve()
    if not path.exists():
        raise RegistryError(f"--include {path}: no such file or folder")
    candidates = [path] if (path / "__init__.py").exists() or path.suffix == ".py" else sorted(
        p for p in path.iterdir() if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").exists()
    )
    imported = []
    for cand in candidates:
        init = cand / "__init__.py" if cand.is_dir() else cand
        name = f"biasboard_include_{cand.stem}"
        spec = importlib.util.spec_from_file_location(name, init,
                                                      submodule_search_locations=[str(cand)] if cand.is_dir() else None)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            # as Python's own import does: a module that failed is not left half-made in sys.modules (Ray workers
            # are told to import every include there, and would all fail on this one)
            sys.modules.pop(name, None)
            if isinstance(exc, Exception) and not isinstance(exc, BiasboardError):
                # an outside adapter failing to import is a usage error, with its reason
                raise RegistryError(f"--include {init}: import failed: {type(exc).__name__}: {exc}") from exc
            raise
        imported.append(name)
    return imported
