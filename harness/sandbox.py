"""Running submission code: Python-level guards (a tripwire) and operating-system isolation (a boundary).

Why: a leaderboard entry must be reproducible offline, and loading weights must never unpickle (a pickle can run
arbitrary code). The guards make an attempt visible as a failed check instead of a silent success; code written to
evade them can. Where the machine offers bubblewrap (``bwrap``), the validation worker also runs in its own network,
PID, IPC and mount namespaces with every capability dropped: no network interface, read-only system, model cache
and data, a private /tmp and home, writable only its scratch folder, and every descendant dies with it. Resource
limits (address space, CPU time, processes) apply either way. See docs/submitting.md for what is not covered.
"""
from __future__ import annotations

import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["Guards", "Isolation", "Limits", "Outcome", "bwrap_problem", "classify_written_file", "guarded",
           "install_guards", "isolation", "run_isolated", "written_files"]

BLOCKED = "network access is blocked while running a submission (offline mode)"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".dill")


@dataclass
class Guards:
    """What the guarded code attempted."""

    network: list[str] = field(default_factory=list)
    """One line per blocked attempt: what was contacted and from where."""
    unsafe_loads: list[str] = field(default_factory=list)
    """One line per refused ``torch.load(..., weights_only=False)``, and (``audit``) per unpickled global or
    ``marshal`` load, wherever it came from (``load_audit``)."""
    processes: list[str] = field(default_factory=list)
    """One line per process the guarded code started (seen by the audit hook; the guards do not reach into it)."""
    writes: list[str] = field(default_factory=list)
    """One line per file written, created, moved, removed or re-stamped outside ``write_roots`` (``write_audit``)."""
    code_roots: list[str] = field(default_factory=list)
    """Folders of the code being validated now, for naming call sites (``load_audit``)."""
    write_roots: list[str] = field(default_factory=list)
    """Folders the code may write to (resolved); empty: writes are not audited."""
    read_only_roots: list[str] = field(default_factory=list)
    """Folders it may not write to even inside a ``write_roots`` folder (the shared model cache, data, code)."""
    on_note: Callable[[str, str], None] | None = None
    """Called with (kind, line) as each unsafe load or write is seen (the worker sends it at once, in case it
    never finishes)."""

    def note(self, kind: str, line: str) -> None:
        """Record ``line`` under ``kind`` (``unsafe_loads`` or ``writes``)."""
        getattr(self, kind).append(line)
        if self.on_note is not None:
            self.on_note(kind, line)

    def unsafe_load(self, line: str) -> None:
        self.note("unsafe_loads", line)


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


def install_guards(*, network: bool = True, torch_load: bool = True, audit: bool = False) -> Guards:
    """Patch this interpreter: internet sockets and DNS lookups raise OSError, unsafe torch.load raises.

    Unix-domain sockets stay allowed (local IPC is not network access). Permanent: use ``guarded`` for a block.
    ``audit`` also installs audit hooks (they cannot be removed) that see the C-level ``_socket`` calls the
    patches miss (internet connects and name lookups are recorded and refused there too) and every unpickled
    global or ``marshal`` load however it was reached (``load_audit``: aliases, ``torch.serialization.load``),
    and every write outside ``guards.write_roots`` once those are set (``write_audit``).
    """
    guards = Guards()
    if audit:
        from biasboard.harness.load_audit import install_load_audit
        from biasboard.harness.write_audit import install_write_audit

        install_load_audit(lambda: guards.code_roots, guards.unsafe_load)
        install_write_audit(guards)
    if network and audit:
        def hook(event, args):
            if event in ("socket.connect", "socket.sendto") and args and \
                    getattr(args[0], "family", None) in (socket.AF_INET, socket.AF_INET6):
                guards.network.append(f"{event.split('.')[1]} {args[-1]!r} (raw socket) from {_caller()}")
                raise OSError(BLOCKED)
            if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr") and \
                    args and args[0] not in ("localhost", None):
                guards.network.append(f"DNS lookup {args[0]!r} (raw socket) from {_caller()}")
                raise OSError(BLOCKED)

            if event in ("subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.fork", "os.forkpty"):
                what = args[1] if event == "subprocess.Popen" else (args[0] if args else "")
                guards.processes.append(f"{event} {str(what)[:120]} from {_caller()}")

        sys.addaudithook(hook)
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
                guards.unsafe_load(f"torch.load(weights_only=False) at {_caller()}: refused")
                raise RuntimeError("torch.load with weights_only=False is refused: it unpickles arbitrary objects; "
                                   "save weights as safetensors")
            kwargs["weights_only"] = True
            return orig_load(*args, **kwargs)

        torch.load = safe_load
        if audit:
            from biasboard.harness.load_audit import install_safe_globals_audit

            install_safe_globals_audit(lambda: guards.code_roots, guards.unsafe_load)
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


# --- operating-system isolation -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """Resource limits set with ``setrlimit`` in the worker before it starts (inherited by its children)."""

    address_space: int = 4 << 30
    """Bytes of virtual memory per process (RLIMIT_AS): a tiny-model smoke cell peaks near 1.5 GiB."""
    cpu_seconds: int = 900
    """CPU seconds per process (RLIMIT_CPU)."""
    processes: int = 256
    """Processes of the user (RLIMIT_NPROC); the kernel does not enforce it for root, so it is skipped there."""
    memory_budget: int = 2 << 30
    """Peak resident memory the whole worker tree may reach before the sandbox check fails."""

    def describe(self) -> str:
        procs = f"{self.processes} processes" if os.geteuid() != 0 else "processes not limited (running as root)"
        return (f"limits: address space {self.address_space / (1 << 30):g} GiB, CPU {self.cpu_seconds} s, "
                f"{procs}, peak memory budget {self.memory_budget / (1 << 30):g} GiB")


@dataclass(frozen=True)
class Isolation:
    """Which isolation a run had, in words for the report."""

    kind: str
    """``bubblewrap`` or ``none``."""
    detail: str

    @property
    def isolated(self) -> bool:
        return self.kind != "none"

    def describe(self) -> str:
        return f"isolation: {self.detail}" if self.isolated else f"not isolated: {self.detail}"


_BWRAP_PROBE: list[str | None] = []


def bwrap_problem() -> str | None:
    """None when bubblewrap can build the sandbox here, else why not (the exact error). Probed once per process."""
    if os.environ.get("BIASBOARD_NO_BWRAP"):
        return "BIASBOARD_NO_BWRAP is set"
    if not _BWRAP_PROBE:
        exe = shutil.which("bwrap")
        if exe is None:
            _BWRAP_PROBE.append("bwrap not found (install the bubblewrap package)")
        else:
            cmd = [exe, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", *_NAMESPACES, "true"]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
                _BWRAP_PROBE.append(None if proc.returncode == 0 else
                                    f"`{' '.join(cmd)}` failed: {proc.stderr.strip() or proc.returncode}")
            except (OSError, subprocess.TimeoutExpired) as exc:
                _BWRAP_PROBE.append(f"`{' '.join(cmd)}` failed: {exc}")
    return _BWRAP_PROBE[0]


_NAMESPACES = ["--unshare-user", "--uid", "1000", "--gid", "1000", "--unshare-net", "--unshare-pid", "--unshare-ipc",
               "--unshare-uts", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
MASKED_ETC = ("passwd", "group", "shadow", "gshadow")
"""Host account files replaced inside the sandbox by a one-user version (or nothing)."""


def isolation() -> Isolation:
    """The isolation ``run_isolated`` will use on this machine."""
    problem = bwrap_problem()
    if problem is None:
        return Isolation("bubblewrap", "bubblewrap (no network, read-only model cache and data, private /tmp and "
                                       "home, writable only its scratch folder, all descendants killed with it)")
    return Isolation("none", f"Python-level guards only ({problem})")


def _covering(paths: list[Path]) -> list[Path]:
    """The paths with every one that lies inside another dropped, parents first."""
    out: list[Path] = []
    for p in sorted({Path(os.path.realpath(x)) for x in paths if os.path.exists(x)}, key=lambda x: len(x.parts)):
        if not any(p == q or q in p.parents for q in out):
            out.append(p)
    return out


def bwrap_command(cmd: list[str], *, scratch: Path, read_only: list[Path]) -> list[str]:
    """``cmd`` wrapped in bubblewrap: system folders, the Python installation and ``read_only`` bound read-only,
    ``scratch`` the only writable folder, a private /tmp and home, account files masked."""
    etc = scratch / ".etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text("sandbox:x:1000:1000:sandbox:/home/sandbox:/bin/sh\n")
    (etc / "group").write_text("sandbox:x:1000:\n")
    (etc / "empty").write_text("")
    out = ["bwrap", *_NAMESPACES, "--proc", "/proc", "--dev", "/dev"]
    for system in ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc", "/sys", "/opt"):
        if os.path.exists(system):
            out += ["--ro-bind", system, system]
    for name in MASKED_ETC:
        if os.path.exists(f"/etc/{name}"):
            out += ["--ro-bind", str(etc / (name if name in ("passwd", "group") else "empty")), f"/etc/{name}"]
    out += ["--tmpfs", "/tmp", "--tmpfs", "/home", "--setenv", "HOME", "/home/sandbox", "--dir", "/home/sandbox"]
    home = Path.home()
    if home != Path("/") and str(home) not in ("/tmp", "/home"):
        out += ["--tmpfs", str(home)]  # the host home stays invisible; what the worker needs is bound below
    python = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path(os.path.realpath(sys.executable)).parent,
              *[Path(p) for p in sys.path if p], *[Path(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    scratch_real = Path(os.path.realpath(scratch))
    for path in _covering(python + list(read_only)):
        if path == scratch_real or scratch_real in path.parents or str(path) in ("/", "/tmp", "/home"):
            continue
        out += ["--ro-bind", str(path), str(path)]
    out += ["--bind", str(scratch_real), str(scratch_real), "--chdir", str(scratch_real)]
    return out + list(cmd)


@dataclass
class Outcome:
    """How an isolated run ended."""

    code: int | None
    stderr_tail: str
    timed_out: bool
    peak_rss: int
    """Bytes: the largest resident set of the run's process tree (from the kernel's rusage)."""
    leftovers: list[str] = field(default_factory=list)
    """Descendants still alive when the worker ended (killed), as 'pid command'."""


def _limits_preexec(limits: Limits):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limits.address_space, limits.address_space))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        if os.geteuid() != 0:
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _proc_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, start time, command) for every process we can see."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
            name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
            table[int(entry)] = (int(rest[1]), rest[19], name)
        except (OSError, ValueError, IndexError):  # the process ended while we read it (an empty or partial stat)
            continue
    return table


class _Tracker:
    """Records every descendant of one process (polling /proc), so a grandchild that left with
    ``start_new_session=True`` is still known and can be killed by pid and start time. One whose parent died
    before a poll re-parents to us (we are a child subreaper during the run) and is recognised as new."""

    def __init__(self, root: int, interval: float = 0.1, before: set[int] | None = None) -> None:
        self.root, self.interval = root, interval
        # Processes that existed before the run: taken before it starts, or a child forked before this snapshot
        # (bubblewrap's namespace init and the worker, on a busy machine) would never count as a descendant.
        self.before = set(_proc_table()) if before is None else before
        self.seen: dict[int, tuple[str, str]] = {}
        self.peak_rss = 0
        """Bytes: the largest resident set seen, of one process (VmHWM) or of the whole tree at one poll."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def scan(self) -> None:
        table = _proc_table()
        family = {self.root} | set(self.seen)
        me = os.getpid()
        changed = True
        while changed:
            changed = False
            for pid, (ppid, start, name) in table.items():
                if pid in family or pid in self.before:
                    continue
                if ppid in family or ppid == me:
                    family.add(pid)
                    self.seen[pid] = (start, name)
                    changed = True
        total = 0
        for pid in family:
            hwm, rss = _memory(pid)
            self.peak_rss = max(self.peak_rss, hwm)
            total += rss
        self.peak_rss = max(self.peak_rss, total)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.scan()
            except Exception:  # noqa: BLE001 - one racy poll must not end the tracking (and the memory peak with it)
                continue

    def kill_all(self) -> list[str]:
        """SIGKILL every recorded descendant still alive (same pid and start time); 'pid name' of each."""
        self._stop.set()
        self._thread.join()
        self.scan()
        killed = []
        for _ in range(3):
            table = _proc_table()
            alive = [pid for pid, (start, _name) in self.seen.items()
                     if pid in table and table[pid][1] == start and not _zombie(pid)]
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(f"{pid} {self.seen[pid][1]}")
                except ProcessLookupError:
                    pass
            if not alive:
                break
            time.sleep(0.1)
        return sorted(set(killed))


def _memory(pid: int) -> tuple[int, int]:
    """(peak resident bytes, current resident bytes) of a process, 0s when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            fields = dict(line.split(":", 1) for line in fh if line.startswith(("VmHWM", "VmRSS")))
    except (OSError, ValueError):
        return 0, 0
    return tuple(int(fields.get(k, "0 kB").split()[0]) * 1024 for k in ("VmHWM", "VmRSS"))  # type: ignore[return-value]


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _set_subreaper(on: bool) -> None:
    """Orphaned descendants re-parent to this process while on (Linux), so the tracker can still find them."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, int(on), 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def run_isolated(cmd: list[str], *, timeout: float, env: dict[str, str], scratch: Path, read_only: list[Path],
                 limits: Limits, pass_fds: tuple[int, ...] = (), on_start=None) -> Outcome:
    """Run ``cmd`` with ``limits``, inside bubblewrap when it works here, and kill every descendant at the time
    limit and when the worker ends. ``on_start`` runs right after the process starts (the parent closes its copies
    of the child's pipe ends there)."""
    full = bwrap_command(cmd, scratch=scratch, read_only=read_only) if isolation().isolated else list(cmd)
    _set_subreaper(True)
    before = set(_proc_table())
    try:
        proc = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                                start_new_session=True, pass_fds=pass_fds, preexec_fn=_limits_preexec(limits))
        if on_start:
            on_start()
        tracker = _Tracker(proc.pid, before=before - {proc.pid})
        err_chunks: list[str] = []
        reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
        reader.start()
        timed_out = False
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status, usage = proc.pid, 0, None
            if pid:
                break
            if time.monotonic() > deadline:
                timed_out = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        leftovers = tracker.kill_all()
        _reap(tracker.seen)
        reader.join(timeout=5)
    finally:
        _set_subreaper(False)
    err = "".join(err_chunks)
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and "Warning" not in ln and "it/s]" not in ln]
    peak = max((usage.ru_maxrss * 1024) if usage else 0, tracker.peak_rss)
    return Outcome(proc.returncode, lines[-1][-400:] if lines else "", timed_out, peak, leftovers)


def _reap(pids) -> None:
    """Collect the killed descendants that re-parented to us, so no zombies stay behind (never blocks)."""
    time.sleep(0.05)
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def new_key() -> bytes:
    """A fresh secret for authenticating one worker's results."""
    return secrets.token_bytes(32)
