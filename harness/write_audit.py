"""Recording file writes outside the validation worker's own folders, through CPython's audit events.

Why: bubblewrap makes everything but the scratch folder, /tmp and home read-only, so an attempt to rewrite the
shared model cache or to write beside the project fails there, silently: the submission swallows the error and
the checklist could still say PASSED. Recording the attempt (the ``open`` of a file for writing, and renames,
removals, new folders, links, truncations, changed times, modes and owners) makes it a failed ``sandbox`` line,
isolated or not. Recorded, not refused: the operating system refuses where it can. A tripwire: C extensions that
write without Python's ``open`` are not seen.
"""
from __future__ import annotations

import os
import sys

from biasboard.harness.load_audit import _outside, _site

__all__ = ["forbidden", "install_write_audit", "written_paths"]

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
PATH_EVENTS = {"os.rename": 2, "os.link": 2, "os.symlink": (1,), "os.remove": 1, "os.rmdir": 1, "os.mkdir": 1,
               "os.truncate": 1, "os.utime": 1, "os.chmod": 1, "os.chown": 1, "shutil.rmtree": 1}
"""Audit event -> how many leading arguments are paths it changes (or which ones, as a tuple)."""
MAX_LINES = 20
"""Writes recorded per run at most (one line each); enough to show what was tried."""


def written_paths(event: str, args: tuple) -> list:
    """The paths an audit event writes to (empty for reads and for events that change no file)."""
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None))[:3]
        writes = bool(flags & WRITE_FLAGS) if isinstance(flags, int) else any(c in str(mode or "") for c in "wax+")
        return [path] if writes else []
    which = PATH_EVENTS.get(event)
    if which is None:
        return []
    positions = which if isinstance(which, tuple) else range(which)
    return [args[i] for i in positions if i < len(args)]


def _inside(real: str, roots: list[str]) -> bool:
    return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def forbidden(path, allowed: list[str], read_only: list[str]) -> str | None:
    """The resolved path when writing it is not allowed (inside a read-only root, or outside every allowed one),
    else None (file descriptors are skipped)."""
    if isinstance(path, int) or path is None:
        return None
    try:
        real = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return None
    return real if _inside(real, read_only) or not _inside(real, allowed) else None


def install_write_audit(guards) -> None:
    """Record, in ``guards.writes``, each write outside ``guards.write_roots`` or inside ``guards.read_only_roots``
    (none while ``write_roots`` is empty)."""

    def hook(event: str, args: tuple) -> None:
        roots = guards.write_roots
        if not roots or len(guards.writes) >= MAX_LINES or not (event == "open" or event in PATH_EVENTS):
            return
        for path in written_paths(event, args):
            real = forbidden(path, roots, guards.read_only_roots)
            if real is None:
                continue
            caller = sys._getframe(1)
            site, _ = _site(caller, guards.code_roots)
            where = f"at {site}" if site else f"from {_outside(caller)}"
            guards.note("writes", f"{'open for writing' if event == 'open' else event} {real} {where}")

    sys.addaudithook(hook)
