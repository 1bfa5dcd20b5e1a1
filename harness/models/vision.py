"""Vision handles (worst-group image classification). Filled in by the vision issue."""
from __future__ import annotations

from harness.errors import UnsupportedError


def load_vision_handle(resolved):
    raise UnsupportedError(f"model {resolved.spec.id!r}: the vision family is not supported yet")
