"""Static word vectors (GloVe and friends) as a handle family."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from biasboard.harness.errors import BiasboardError


def load_word_vectors(path: Path, fmt: str) -> tuple[np.ndarray, dict[str, int]]:
    """Return (vectors [V, d] float32, word -> row)."""
    if fmt == "glove":
        if path.is_dir():
            npy = next(iter(sorted(path.glob("*.npy"))), None)
            index = next(iter(sorted(path.glob("*.parquet"))), None)
            if npy is None or index is None:
                raise BiasboardError(f"{path}: expected a .npy matrix and a .parquet index of words")
            import pandas as pd

            vectors = np.load(npy).astype(np.float32, copy=False)
            words = pd.read_parquet(index)["index"].astype(str).tolist()
        else:  # a plain GloVe text file: word v1 v2 ...
            words, rows = [], []
            with open(path, encoding="utf8") as fh:
                for lineno, line in enumerate(fh, 1):
                    parts = line.rstrip().split(" ")
                    try:
                        rows.append(np.asarray(parts[1:], dtype=np.float32))
                    except ValueError:
                        raise BiasboardError(f"file {path}, row {lineno}: not a GloVe vector line") from None
                    words.append(parts[0])
            vectors = np.stack(rows)
        if len(words) != len(vectors):
            raise BiasboardError(f"{path}: {len(words)} words but {len(vectors)} vectors")
        vocab = {}
        for i, w in enumerate(words):
            vocab.setdefault(w, i)
        return vectors, vocab
    raise BiasboardError(f"{path}: unknown word-vector format {fmt!r}")
