"""Runtime detection of unsafe deserialisation in the validation worker, through CPython's audit events.

Why: the static source scan (``submission.scan_unsafe_loads``) only sees calls spelled ``pickle.loads`` or
``torch.load``; an alias (``from pickle import loads as l``), ``getattr(__import__('pickle'), 'lo' + 'ads')`` or
``torch.serialization.load(path, weights_only=False)`` slips past it. Every unpickler that resolves a global
(the C and Python ``pickle.Unpickler``, and so ``torch.load(weights_only=False)``, ``np.load(allow_pickle=True)``,
joblib, dill) raises the ``pickle.find_class`` audit event, however it was reached, and a pickle without globals
cannot call anything. torch's weights-only unpickler resolves globals from its own allow-list without that
event, so ``torch.load(weights_only=True)`` stays allowed, unless the code widened that list itself
(``torch.serialization.add_safe_globals([exec])`` makes a weights-only load run code): a weights-only load that
consults such added globals is refused too. ``marshal.loads`` / ``marshal.load`` (code objects from bytes) are
refused, except from the import system reading ``.pyc`` files.

Each attempt is refused (the unpickler raises before the global is used) and recorded with the global it asked
for and the call site in the submission's files. An audit hook cannot be removed, so this is for the worker only.
"""
from __future__ import annotations

import linecache
import os
import pickle
import sys
from pathlib import Path
from typing import Callable

__all__ = ["audit_unpickler_subclasses", "install_load_audit", "install_safe_globals_audit", "trusted_marshal_callers",
           "unpicklers_defined_in"]


def trusted_marshal_callers() -> set:
    """Code objects allowed to call ``marshal.loads``: the import system's .pyc and zip-import readers."""
    import zipimport

    codes = set()
    external = sys.modules.get("_frozen_importlib_external")
    for fn in (getattr(external, "_compile_bytecode", None), getattr(zipimport, "_unmarshal_code", None)):
        if fn is not None:
            codes.add(fn.__code__)
    return codes


def _site(frame, roots: list[str]) -> tuple[str, str]:
    """(call site in the submission's files, the function it called there) for the frame that triggered an event.

    The site is the innermost frame whose file lies under one of ``roots``; the function is the frame it called
    (``torch.serialization.load``), empty when it called C code directly (``pickle.loads``)."""
    callee = None
    while frame is not None:
        name = frame.f_code.co_filename
        root = next((r for r in roots if name == r or name.startswith(r + os.sep)), None)
        if root is not None:
            line = linecache.getline(name, frame.f_lineno).strip()
            called = ""
            if callee is not None:  # co_qualname: Python 3.11+
                code = callee.f_code
                called = f"{callee.f_globals.get('__name__', '?')}.{getattr(code, 'co_qualname', code.co_name)}"
            site = f"{os.path.relpath(name, os.path.dirname(root))}:{frame.f_lineno}"
            return site + (f" `{line[:80]}`" if line else ""), called
        if name != __file__:  # the find_class wrapper above is not what the code called
            callee = frame
        frame = frame.f_back
    return "", ""


def _outside(frame) -> str:
    """file:line of the innermost frame (no submission frame on the stack: code with a borrowed file name?)."""
    return f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}" if frame is not None else "?"


def _unpickler_classes() -> set:
    """Every subclass of the C and the Python ``Unpickler``, at any depth."""
    import _pickle

    seen: set = set()
    todo = [_pickle.Unpickler, pickle._Unpickler]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    return seen


def audit_unpickler_subclasses() -> None:
    """Make each Unpickler subclass's own ``find_class`` raise the ``pickle.find_class`` event first.

    Why: an override that does not call the base class resolves globals without the event (torch.package's
    PackageUnpickler does; so can a submission's own subclass). Run at install and on every import."""
    for cls in _unpickler_classes():
        own = cls.__dict__.get("find_class")
        if own is None or getattr(own, "_biasboard_audited", False):
            continue

        def find_class(self, module, name, _own=own):
            sys.audit("pickle.find_class", module, name)
            return _own(self, module, name)

        find_class._biasboard_audited, find_class.__wrapped__ = True, own
        try:
            cls.find_class = find_class
        except TypeError:  # a class that refuses new attributes: reported by unpicklers_defined_in if it is ours
            continue


def unpicklers_defined_in(roots: list[str]) -> list[str]:
    """Unpickler subclasses whose methods live in ``roots`` (a submission has no reason to define one: an own
    ``load_global`` or dispatch entry resolves globals unseen), as 'Class at file:line'."""
    out = []
    for cls in _unpickler_classes():
        for attr, fn in vars(cls).items():
            code = getattr(getattr(fn, "__wrapped__", fn), "__code__", None)
            root = code and next((r for r in roots if code.co_filename.startswith(r + os.sep)), None)
            if root:
                rel = os.path.relpath(code.co_filename, os.path.dirname(root))
                out.append(f"defines an Unpickler subclass: {cls.__qualname__}.{attr} at {rel}:{code.co_firstlineno}")
                break
    return sorted(out)


def install_load_audit(roots: Callable[[], list[str]], record: Callable[[str], None]) -> None:
    """Refuse and ``record`` every unpickled global and every ``marshal`` load outside the import system.

    ``roots()`` gives the folders of the submission being validated now (resolved paths), for naming call sites.
    """
    trusted = trusted_marshal_callers()

    def hook(event: str, args: tuple) -> None:
        if event == "import":
            audit_unpickler_subclasses()
            return
        if event == "pickle.find_class":
            what, error = f"unpickling global {args[0]}.{args[1]}", pickle.UnpicklingError
        elif event in ("marshal.loads", "marshal.load"):
            if sys._getframe(1).f_code in trusted:
                return
            what, error = f"{event}(...) (code objects from bytes)", ValueError
        else:
            return
        caller = sys._getframe(1)
        site, called = _site(caller, roots())
        via = f" via {called}" if called else ""
        where = f"at {site}" if site else f"outside the submission's files (at {_outside(caller)})"
        record(f"{what}{via} {where}: refused")
        raise error(f"biasboard validate refused {what}: unpickling can run arbitrary code; load weights with "
                    f"safetensors or torch.load(..., weights_only=True)")

    audit_unpickler_subclasses()
    sys.addaudithook(hook)


def install_safe_globals_audit(roots: Callable[[], list[str]], record: Callable[[str], None]) -> None:
    """Refuse and ``record`` a weights-only ``torch.load`` that consults globals added with ``add_safe_globals``.

    torch asks for the added globals only when its own allow-list does not cover an opcode, so plain tensor
    checkpoints never reach this check; the ``torch.*`` classes torch adds itself (``torch.distributed``) are
    not counted. A patch of torch's module attribute: a tripwire, like the other guards."""
    import torch._weights_only_unpickler as weights_only

    original = weights_only._get_user_allowed_globals

    def user_allowed_globals():
        allowed = original()
        added = sorted(name for name in allowed if not name.startswith("torch."))  # torch registers its own
        if added:
            caller = sys._getframe(1)
            site, called = _site(caller, roots())
            where = f"at {site}" if site else f"outside the submission's files (at {_outside(caller)})"
            names = ", ".join(added[:3]) + (" ..." if len(added) > 3 else "")
            record(f"weights-only load with globals added by add_safe_globals ({names})"
                   f"{f' via {called}' if called else ''} {where}: refused")
            raise pickle.UnpicklingError("biasboard validate refused a weights-only load that relies on globals "
                                         "added with torch.serialization.add_safe_globals: they can run code")
        return allowed

    weights_only._get_user_allowed_globals = user_allowed_globals
