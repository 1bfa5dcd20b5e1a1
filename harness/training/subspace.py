"""Fitting the linear maps of SentenceDebias and INLP on a model's sentence representations, and caching them.

Both follow bias-bench (Meade et al. 2022) on the representation it hooks: the mean over a sentence's tokens
(special tokens included, padding excluded) of the final hidden states (``scoring.encode(pooling="mean")``).

- SentenceDebias (Liang et al. 2020): each counterfactual example's sentence vectors are L2-normalised and centred
  on their own mean; the bias subspace is the first principal component(s) of all centred vectors (bias-bench uses
  one). Here by an exact SVD (the vectors are already centred: sklearn's PCA gives the same components up to sign).
- INLP (Ravfogel et al. 2020): ``n_classifiers`` rounds of a linear SVM (scikit-learn ``LinearSVC``, no intercept,
  primal, ``random_state`` 0: bias-bench's settings, after Liang et al.) trained on the vectors projected onto the
  nullspace of every earlier classifier; the result is the projection onto the intersection of their nullspaces,
  by Ben-Israel's formula N(w1) ∩ ... ∩ N(wn) = N(P_R(w1) + ... + P_R(wn)). Data are split as bias-bench does:
  70/30 train+dev/test, then 70/30 train/dev, both with ``random_state`` 0; the test part is not used.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.linalg

from biasboard.harness.errors import DataError
from biasboard.harness.models import scoring

__all__ = ["bias_subspace", "cached_tensors", "counterfactual_vectors", "inlp_projection", "rowspace_projection",
           "split_like_bias_bench"]


def counterfactual_vectors(handle, examples: list[tuple[str, ...]], *, batch_size: int = 32,
                           max_tokens: int = 128) -> np.ndarray:
    """(examples x group members x dim) mean-pooled, L2-normalised sentence vectors. Examples with a variant longer
    than ``max_tokens`` tokens are left out (bias-bench truncates them at 128; a cut sentence is not a sentence)."""
    lengths = {t: len(ids) for t, ids in zip(*_unique_tokenized(handle, examples))}
    kept = [ex for ex in examples if max(lengths[t] for t in ex) <= max_tokens]
    if len(kept) < 2:
        raise DataError(f"only {len(kept)} counterfactual examples of at most {max_tokens} tokens")
    texts = sorted({t for ex in kept for t in ex})
    vecs = scoring.encode(handle, texts, pooling="mean", batch_size=batch_size).astype(np.float64)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    row = {t: i for i, t in enumerate(texts)}
    return np.stack([vecs[[row[t] for t in ex]] for ex in kept])


def _unique_tokenized(handle, examples):
    texts = sorted({t for ex in examples for t in ex})
    return texts, scoring.tokenize(handle, texts)


def bias_subspace(vectors: np.ndarray, n_components: int = 1) -> np.ndarray:
    """(n_components x dim) orthonormal bias directions: top principal components of the vectors of each example
    (axis 1) centred on the example's mean.

    Worked: two pairs that differ only along the first axis give that axis (up to sign).
    >>> v = np.array([[[1., 0., 1.], [-1., 0., 1.]], [[2., 1., 0.], [0., 1., 0.]]])
    >>> np.abs(bias_subspace(v)).round(6).tolist()
    [[1.0, 0.0, 0.0]]
    """
    centred = vectors - vectors.mean(axis=1, keepdims=True)
    flat = centred.reshape(-1, centred.shape[-1])
    _, _, vt = np.linalg.svd(flat, full_matrices=False)
    return vt[:n_components]


def rowspace_projection(w: np.ndarray) -> np.ndarray:
    """Orthogonal projection onto the row space of ``w`` (zero for an all-zero ``w``)."""
    if np.allclose(w, 0):
        return np.zeros((w.shape[1], w.shape[1]))
    basis = scipy.linalg.orth(w.T)
    return basis @ basis.T


def _nullspace_of_all(rowspaces: list[np.ndarray], dim: int) -> np.ndarray:
    """Projection onto the intersection of the nullspaces whose complements' projections are ``rowspaces``."""
    return np.eye(dim) - rowspace_projection(np.sum(rowspaces, axis=0)) if rowspaces else np.eye(dim)


def split_like_bias_bench(x: np.ndarray, y: np.ndarray):
    """(x_train, x_dev, y_train, y_dev): bias-bench's two 70/30 splits with random_state 0 (test part dropped)."""
    from sklearn.model_selection import train_test_split

    x_rest, _, y_rest, _ = train_test_split(x, y, test_size=0.3, random_state=0)
    x_train, x_dev, y_train, y_dev = train_test_split(x_rest, y_rest, test_size=0.3, random_state=0)
    return x_train, x_dev, y_train, y_dev


_NO_DROPOUT_SCALE = 1.0 / (1.0 - 0.0 + 1e-6)
"""bias-bench's INLP trains on dropout-masked vectors even at dropout rate 0: every training vector is then
scaled by 1/(1 - 0 + 1e-6), after projection, each round. The SVM's answer barely moves (6e-7 relative in round
1 on zoo:minilm-l6), but liblinear's stopping rule turns that into 1.5e-4 in round 2 and 1e-3 by round 6, so the
same scaling is needed to give bias-bench's projection bit for bit (docs/representation-methods.md)."""


def inlp_projection(x_train: np.ndarray, y_train: np.ndarray, x_dev: np.ndarray, y_dev: np.ndarray, *,
                    n_classifiers: int = 80, seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """(dim x dim projection P, dev accuracy of each round's classifier before its directions were removed)."""
    from sklearn.svm import LinearSVC

    dim = x_train.shape[1]
    rowspaces, accuracies = [], []
    p = np.eye(dim)
    for _ in range(n_classifiers):
        clf = LinearSVC(fit_intercept=False, class_weight=None, dual=False, random_state=seed)
        # bias-bench's order, (P @ X.T).T: equal to X @ P in exact arithmetic (P is symmetric) but not in floating
        # point, and 80 liblinear rounds amplify the difference (docs/representation-methods.md)
        clf.fit(_project(p, x_train) * _NO_DROPOUT_SCALE, y_train)
        accuracies.append(float(clf.score(_project(p, x_dev), y_dev)))
        rowspaces.append(rowspace_projection(np.atleast_2d(clf.coef_)))
        p = _nullspace_of_all(rowspaces, dim)
    return p, accuracies


def _project(p: np.ndarray, x: np.ndarray) -> np.ndarray:
    return (p @ x.T).T


def cached_tensors(cache_dir: Path | None, name: str, key: dict, fit: Callable[[], dict[str, np.ndarray]]
                   ) -> dict[str, np.ndarray]:
    """``fit()`` once per ``key`` (model digest, lineage, parameters, data digests): safetensors under
    ``cache_dir/name``, never a pickle. Without a cache folder it fits every time."""
    if cache_dir is None:
        return fit()
    from safetensors.numpy import load_file, save_file

    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]
    path = Path(cache_dir) / name / f"{digest}.safetensors"
    if path.exists():
        return load_file(str(path))
    out = fit()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: np.ascontiguousarray(v) for k, v in out.items()}, str(tmp),
              metadata={"key": json.dumps(key, sort_keys=True, default=str)})
    tmp.replace(path)
    return out
