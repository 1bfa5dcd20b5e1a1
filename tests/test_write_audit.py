"""The validation worker records writes outside its own folders (issue 16 item 6: "write outside its folder").

The audit hook cannot be removed, so it runs in a fresh interpreter here; tests/test_sandbox.py runs the hostile
fixture hostile_files through `biasboard validate`, isolated and not.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from biasboard.harness.write_audit import forbidden, written_paths

DRIVER = """
import json, os, sys
from pathlib import Path
from biasboard.harness.sandbox import Guards
from biasboard.harness.write_audit import install_write_audit
own, shared, outside, code = map(Path, sys.argv[1:5])
guards = Guards(write_roots=[str(own)], read_only_roots=[str(shared)], code_roots=[str(code)])
install_write_audit(guards)
sys.path.insert(0, str(code))
import writer
print(json.dumps(guards.writes))
"""

WRITER = """
import os, sys
from pathlib import Path
own, shared, outside = map(Path, sys.argv[1:4])
(own / "fine.txt").write_text("mine")
os.replace(own / "fine.txt", own / "moved.txt")
(own / "sub").mkdir()
Path("/etc/hostname").read_bytes() if Path("/etc/hostname").exists() else None
open(shared / "weights.bin", "r+b").close()
os.utime(shared / "weights.bin")
(outside / "new.txt").write_text("not mine")
os.replace(own / "moved.txt", outside / "stolen.txt")
"""


def test_writes_outside_or_into_read_only_folders_are_recorded_with_their_call_site(tmp_path):
    own, shared, outside, code = (tmp_path / n for n in ("own", "shared", "outside", "code"))
    for d in (own, shared, outside, code):
        d.mkdir()
    (shared / "weights.bin").write_bytes(b"w")
    (code / "writer.py").write_text(textwrap.dedent(WRITER))
    args = [str(own), str(shared), str(outside), str(code)]
    proc = subprocess.run([sys.executable, "-c", DRIVER, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = [f"open for writing {shared / 'weights.bin'} at code/writer.py:9",
                f"os.utime {shared / 'weights.bin'} at code/writer.py:10",
                f"open for writing {outside / 'new.txt'} at code/writer.py:11",
                f"os.rename {outside / 'stolen.txt'} at code/writer.py:12"]
    assert [line.split(" `")[0] for line in lines] == expected, lines


def test_which_paths_an_event_writes():
    assert written_paths("open", ("f", "r", os.O_RDONLY)) == []
    assert written_paths("open", ("f", "a", os.O_WRONLY | os.O_APPEND)) == ["f"]
    assert written_paths("open", ("f", None, os.O_RDWR)) == ["f"]
    assert written_paths("os.rename", ("a", "b", -1, -1)) == ["a", "b"]
    assert written_paths("os.symlink", ("target", "link", -1)) == ["link"]
    assert written_paths("os.listdir", (".",)) == []
    assert forbidden(3, ["/x"], []) is None  # a file descriptor: its open was already seen
    assert forbidden("/x/y", ["/x"], []) is None and forbidden("/x/y", ["/x"], ["/x/y"]) == "/x/y"
    assert forbidden("/elsewhere", ["/x"], []) == "/elsewhere"
