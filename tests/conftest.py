"""Shared fixtures: data location, offline zoo models (loaded once per session), tiny local models."""
from __future__ import annotations

import os
from pathlib import Path

import sys

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # test helpers such as crows_reference
os.environ.setdefault("BIASBOARD_DATA_DIR", str(REPO.parent / "shared" / "data"))
# Absolute, so tests that change the working directory still find the data (CI passes a relative path).
os.environ["BIASBOARD_DATA_DIR"] = str(Path(os.environ["BIASBOARD_DATA_DIR"]).resolve())
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _share_cores_between_xdist_workers() -> None:
    """Under pytest-xdist (``-n N``) each worker, and every CLI subprocess a test starts, gets its share of the
    cores: N processes with torch's default thread count each oversubscribe the machine (on 2 cores two runs with 2
    threads each made model cells 5-8x slower, docs/scale-out.md). An explicit OMP_NUM_THREADS wins."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers < 2 or "OMP_NUM_THREADS" in os.environ:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    share = str(max(1, cores // workers))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = share
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(share))


_share_cores_between_xdist_workers()
DATA_DIR = Path(os.environ["BIASBOARD_DATA_DIR"])


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert DATA_DIR.exists(), f"test data folder {DATA_DIR} is missing (set BIASBOARD_DATA_DIR)"
    return DATA_DIR


@pytest.fixture(scope="session")
def splade():
    from biasboard.harness.models import load_handle

    return load_handle("zoo:splade-tiny")


@pytest.fixture(scope="session")
def smollm():
    from biasboard.harness.models import load_handle

    return load_handle("zoo:smollm2-135m")


@pytest.fixture(scope="session")
def minilm():
    from biasboard.harness.models import load_handle

    return load_handle("zoo:minilm-l6")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT MLM with the real uncased BERT vocabulary (from zoo:splade-tiny's
    tokenizer), saved with save_pretrained: exercises the local-folder loading path."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from biasboard.harness.models import resolve_model

    path = tmp_path_factory.mktemp("tiny-bert")
    tok = AutoTokenizer.from_pretrained(resolve_model("zoo:splade-tiny").path)
    tok.save_pretrained(path)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    BertForMaskedLM(cfg).save_pretrained(path)
    return path


@pytest.fixture
def isolated_out(tmp_path, monkeypatch) -> Path:
    """An output folder of its own for CLI runs."""
    out = tmp_path / "out"
    monkeypatch.setenv("BIASBOARD_OUT", str(out))
    return out
