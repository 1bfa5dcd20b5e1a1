"""Deliberately broken method submissions, written into a temporary folder by the submission tests."""
from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

HEADER = """
import torch
from biasboard.harness.registry import register_method
from biasboard.harness.specs import Method
"""

GOOD_MANIFEST = {"name": "NAME", "version": "1.0", "authors": ["Test"], "citation": "A test fixture.",
                 "license": "Apache-2.0", "kind": "weights", "families": ["mlm"], "hooks": ["apply"],
                 "params": {"scale": {"type": "float", "default": 0.01, "range": [0.0, 1.0]}}}


def method_source(name: str, body: str, *, signature: str = "self, handle, ctx", extra: str = "") -> str:
    """A weights-kind method named ``name`` whose ``apply`` runs ``body`` (which must define ``model``)."""
    return HEADER + textwrap.dedent(extra) + textwrap.dedent(f"""

    @register_method
    class Fixture(Method):
        name = "{name}"
        version = "1.0"
        description = "test fixture"
        citation = "A test fixture."
        families = ("mlm",)
        kind = "weights"
        params = {{"scale": 0.01}}

        def apply({signature}):
            model = handle.clone_model()
    """) + textwrap.indent(textwrap.dedent(body), " " * 8) + \
        "\n        return handle.derive(model=model, step='fixture')\n"


def write_submission(root: Path, name: str, source: str, manifest: dict | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(source)
    doc = dict(GOOD_MANIFEST if manifest is None else manifest)
    if doc.get("name") == "NAME":
        doc["name"] = name
    (folder / "manifest.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder


NOISE_UNSEEDED = """
gen = torch.Generator().manual_seed(int.from_bytes(__import__("os").urandom(4), "little"))
with torch.no_grad():
    for p in model.parameters():
        p.add_(0.05 * p.std() * torch.randn(p.shape, generator=gen))
"""

NETWORK_CALL = """
import socket
try:  # a "helpful" download that fails quietly: validation must still see the attempt
    socket.create_connection(("example.org", 80), timeout=2).close()
except OSError:
    pass
"""

PICKLED_WEIGHTS = """
path = ctx.cache_dir / "pickled" / "state.pt"
path.parent.mkdir(parents=True, exist_ok=True)
torch.save(model.state_dict(), path)
model.load_state_dict(torch.load(path))
"""

ALIASED_UNSAFE_LOAD = """
from torch.serialization import load as fetch
path = ctx.cache_dir / "aliased" / "state.pt"
path.parent.mkdir(parents=True, exist_ok=True)
torch.save(model.state_dict(), path)
try:
    model.load_state_dict(fetch(path, weights_only=False))
except Exception:
    pass  # swallowed: validation must still see the attempt
"""
