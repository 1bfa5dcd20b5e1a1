"""Issue 16 item 4: a rewrite that keeps size and mtime changes the digest; zoo files are checked against pins."""
from __future__ import annotations

import hashlib
import os

import pytest

from biasboard.harness.digest import file_sha256, memoised_sha256
from biasboard.harness.errors import BiasboardError
from biasboard.harness.models import zoo


def _rewrite_keeping_size_and_mtime(path):
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    with open(path, "r+b") as fh:
        fh.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_rewrite_with_old_size_and_mtime_is_rehashed(tmp_path, monkeypatch):
    monkeypatch.setenv("BIASBOARD_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"a" * 1000)
    first = file_sha256(f)
    assert memoised_sha256(f) == first
    _rewrite_keeping_size_and_mtime(f)
    assert memoised_sha256(f) is None  # ctime moved: the memo cannot prove the file unchanged
    assert file_sha256(f) == hashlib.sha256(f.read_bytes()).hexdigest() != first


def test_zoo_pull_refuses_files_that_differ_from_their_pin(tmp_path, monkeypatch):
    monkeypatch.setenv("BIASBOARD_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"b" * 2048)
    pin = hashlib.sha256(b"b" * 2048).hexdigest()
    monkeypatch.setitem(zoo.PINS, "splade-tiny", {"model.safetensors": pin})
    assert zoo.verify("splade-tiny", model) == model
    _rewrite_keeping_size_and_mtime(model / "model.safetensors")
    with pytest.raises(BiasboardError, match="differ from the pinned sha256"):
        zoo.verify("splade-tiny", model)
    assert zoo.pin_problems("splade-tiny", model, trust_memo=False)


def test_every_local_zoo_model_matches_its_pins():
    for alias in zoo.PINS:
        path = zoo.local_path(alias)
        if path is not None:
            assert zoo.pin_problems(alias, path) == [], alias


def test_every_zoo_entry_has_pinned_digests():
    """No zoo model is handed out unverified: each has at least one pinned file, each pin a sha256 in hex."""
    assert set(zoo.PINS) == set(zoo.ZOO)
    for alias, pins in zoo.PINS.items():
        assert pins, alias
        for rel, digest in pins.items():
            assert len(digest) == 64 and int(digest, 16) >= 0, (alias, rel)
    entry = zoo.ZOO["efficientnet-lite0"]
    assert zoo.PINS["efficientnet-lite0"]["."].startswith(entry.inner.rsplit("-", 1)[1].split(".")[0])


def test_unisolated_validation_rehashes_the_zoo_and_fails_the_sandbox_line(tmp_path, monkeypatch):
    """Without bubblewrap the worker could write the shared model cache (and the digest memo): after validation
    every zoo file is hashed afresh, memo ignored, and a changed one fails the sandbox line."""
    from biasboard.harness import submission
    from biasboard.harness.sandbox import Isolation, Limits

    monkeypatch.setenv("BIASBOARD_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"c" * 4096)
    monkeypatch.setattr(zoo, "ZOO", {"splade-tiny": zoo.ZOO["splade-tiny"]})
    monkeypatch.setitem(zoo.PINS, "splade-tiny", {"model.safetensors": hashlib.sha256(b"c" * 4096).hexdigest()})
    monkeypatch.setattr(zoo, "local_path", lambda alias: model)
    assert zoo.verify("splade-tiny", model) == model  # memoised as matching
    assert submission._zoo_tampering() == []
    _rewrite_keeping_size_and_mtime(model / "model.safetensors")
    tampered = submission._zoo_tampering()
    assert len(tampered) == 1 and tampered[0].startswith("zoo:splade-tiny: ") and "pinned" in tampered[0]
    check = submission._sandbox_check(Isolation("none", "test"), Limits(), [], tampered)
    assert check.status == "FAIL" and "zoo:splade-tiny" in check.detail
