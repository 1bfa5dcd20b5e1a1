"""Guards for running submission code: record and refuse network connections and unsafe ``torch.load`` calls.

Why: a leaderboard entry must be reproducible offline, and loading weights must never unpickle (a pickle can run
arbitrary code). These guards make an attempt visible as a failed check instead of a silent success. They are a
tripwire, not a security boundary: code that wants to escape them can (see docs/submitting.md).
"""
from __future__ import annotations

import socket
import sysconfig
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

__all__ = ["Guards", "guarded", "install_guards", "classify_written_file", "written_files"]

BLOCKED = "network access is blocked while running a submission (offline mode)"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".dill")


@dataclass
class Guards:
    """What the guarded code attempted."""

    network: list[str] = field(default_factory=list)
    """One line per blocked attempt: what was contacted and from where."""
    unsafe_loads: list[str] = field(default_factory=list)
    """One line per refused ``torch.load(..., weights_only=False)``."""


def _caller() -> str:
    """file:line of the innermost frame outside the standard library and this module (who tried)."""
    stdlib = sysconfig.get_paths()["stdlib"]
    frames = [f for f in traceback.extract_stack()[:-2]
              if "harness/sandbox.py" not in f.filename.replace("\\", "/") and not f.filename.startswith(stdlib)]
    f = frames[-1] if frames else None
    return f"{Path(f.filename).name}:{f.lineno}" if f else "?"


@contextmanager
def guarded(*, network: bool = True, torch_load: bool = True) -> Iterator[Guards]:
    """``install_guards`` for the duration of a ``with`` block; the patched functions are restored after it."""
    import torch

    saved = [(socket.socket, "connect", socket.socket.connect), (socket.socket, "connect_ex", socket.socket.connect_ex),
             (socket, "getaddrinfo", socket.getaddrinfo), (torch, "load", torch.load)]
    try:
        yield install_guards(network=network, torch_load=torch_load)
    finally:
        for owner, attr, value in saved:
            setattr(owner, attr, value)


def install_guards(*, network: bool = True, torch_load: bool = True) -> Guards:
    """Patch this interpreter: internet sockets and DNS lookups raise OSError, unsafe torch.load raises.

    Unix-domain sockets stay allowed (local IPC is not network access). Permanent: use ``guarded`` for a block.
    """
    guards = Guards()
    if network:
        orig_connect, orig_connect_ex = socket.socket.connect, socket.socket.connect_ex

        def refuse(kind, target):
            guards.network.append(f"{kind} {target!r} from {_caller()}")
            raise OSError(BLOCKED)

        def connect(self, address):
            if self.family in (socket.AF_INET, socket.AF_INET6):
                refuse("connect", address)
            return orig_connect(self, address)

        def connect_ex(self, address):
            if self.family in (socket.AF_INET, socket.AF_INET6):
                refuse("connect", address)
            return orig_connect_ex(self, address)

        def getaddrinfo(host, port, *args, **kwargs):
            refuse("DNS lookup", f"{host}:{port}")

        socket.socket.connect = connect
        socket.socket.connect_ex = connect_ex
        socket.getaddrinfo = getaddrinfo
    if torch_load:
        import torch

        orig_load = torch.load

        def safe_load(*args, **kwargs):
            if kwargs.get("weights_only") is False:
                guards.unsafe_loads.append(f"torch.load(weights_only=False) from {_caller()}")
                raise RuntimeError("torch.load with weights_only=False is refused: it unpickles arbitrary objects; "
                                   "save weights as safetensors")
            kwargs["weights_only"] = True
            return orig_load(*args, **kwargs)

        torch.load = safe_load
    return guards


def written_files(root: Path) -> list[Path]:
    """Regular files under ``root``, not following symlinked folders (shared model caches are linked in)."""
    out = []
    for path in sorted(root.rglob("*")):
        if any(p.is_symlink() for p in [path, *path.parents] if root in p.parents or p == root):
            continue
        if path.is_file():
            out.append(path)
    return out


def classify_written_file(path: Path) -> str | None:
    """Why a written file is not acceptable as weights, or None when it is fine (safetensors or not weights)."""
    name = path.name.lower()
    head = path.read_bytes()[:16] if path.stat().st_size else b""
    if name.endswith(".safetensors"):
        import json

        try:
            n = int.from_bytes(head[:8], "little")
            with path.open("rb") as fh:
                fh.seek(8)
                json.loads(fh.read(n))
        except (ValueError, OSError):
            return "named .safetensors but not a valid safetensors file"
        return None
    if name.endswith(PICKLE_SUFFIXES):
        return f"weights in a pickle-based format ({path.suffix}); save them with safetensors"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a Python pickle"
    if head.startswith(b"PK\x03\x04"):
        import zipfile

        try:
            with zipfile.ZipFile(path) as zf:
                if any(n.endswith(".pkl") for n in zf.namelist()):
                    return "a torch.save archive (pickle inside)"
        except zipfile.BadZipFile:
            return None
    if head.startswith(b"\x93NUMPY"):
        with path.open("rb") as fh:
            header = fh.read(512)
        if b"'|O'" in header:
            return "a numpy object array (pickle inside)"
    return None
