"""WEAT / SEAT statistics as pure functions on cosine-similarity matrices (Caliskan et al. 2017; May et al. 2019).

Definitions follow W4ngatang/sent-bias ``weat.py`` (also vendored by McGill-NLP/bias-bench):

- ``s(w, A, B) = mean_a cos(w, a) - mean_b cos(w, b)``;
- effect size ``d = (mean_{x in X} s(x) - mean_{y in Y} s(y)) / std_{w in X u Y} s(w)`` with ``ddof=1``;
- one-sided permutation p-value ``P[sum_{X'} s >= sum_X s]`` over equal splits (X', Y') of X u Y. Exact
  enumeration when the number of splits is at most the sample budget; otherwise ``budget - 1`` sampled splits
  plus one "hallucinated" extreme split, ``p = (1 + #{>=}) / budget``, as the original biases it. Ties count as
  extreme (the original's conservative ``>=``); sums within ``1e-10 * sum|s|`` of the observed sum are ties,
  so float summation order cannot flip a tie.

The sampled test draws, for every sample, how many items of X the split keeps (k, hypergeometric), then a uniform
k-subset of X and one of Y: Bernoulli(1/2) subsets (8 items per random byte, summed through per-byte lookup tables)
bucketed by size. The split is uniform, exactly as a shuffle would give, without a Python loop or a sort per sample.
Sums are taken in integer multiples of a unit ~1e-16 of ``sum|s|`` (exact and order-free, and the subset size rides
in the low bits), and X and Y are drawn on two threads from their own random streams (same p on one thread).
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import gammaln

TIE_RTOL = 1e-10


def cosine_matrix(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row vector with every column vector.

    >>> cosine_matrix(np.array([[1., 0.], [1., 1.]]), np.array([[2., 0.]])).round(4).tolist()
    [[1.0], [0.7071]]
    """
    r = np.asarray(rows, dtype=np.float64)
    c = np.asarray(cols, dtype=np.float64)
    r = r / np.linalg.norm(r, axis=1, keepdims=True)
    c = c / np.linalg.norm(c, axis=1, keepdims=True)
    return r @ c.T


def association(cos: np.ndarray, n_a: int) -> np.ndarray:
    """``s(w, A, B)`` for each row w of ``cos`` (columns: the A items, then the B items).

    >>> association(np.array([[0.5, 0.3, 0.1]]), n_a=2).tolist()  # (0.5+0.3)/2 - 0.1
    [0.30000000000000004]
    """
    cos = np.asarray(cos, dtype=np.float64)
    return cos[:, :n_a].mean(axis=1) - cos[:, n_a:].mean(axis=1)


def effect_size(s: np.ndarray, n_x: int) -> float:
    """WEAT effect size from the association values of X (first ``n_x``) then Y; std over X u Y, ddof=1.

    >>> round(effect_size(np.array([3., 1., 0., 0.]), n_x=2), 4)  # (2 - 0) / std([3,1,0,0], ddof=1)=1.4142
    1.4142
    """
    s = np.asarray(s, dtype=np.float64)
    return float((s[:n_x].mean() - s[n_x:].mean()) / s.std(ddof=1))


def _subset_sums(s: np.ndarray, k: int) -> np.ndarray:
    """Sums of all ``k``-subsets of ``s`` (C(len(s), k) values), by dynamic programming over items."""
    m = len(s)
    levels: list[np.ndarray] = [np.zeros(1)]
    empty = np.zeros(0)
    for i, v in enumerate(s):
        remaining = m - i - 1
        new = []
        for j in range(min(i + 1, k) + 1):
            if j + remaining < k:  # cannot reach k any more
                new.append(empty)
                continue
            skip = levels[j] if j < len(levels) else empty
            take = levels[j - 1] + v if j >= 1 else empty
            new.append(np.concatenate((skip, take)))
        levels = new
    return levels[k]


def _quantized(s: np.ndarray, n: int) -> tuple[np.ndarray, float, int]:
    """``s`` as integer multiples of a unit, the unit, and the bits kept for subset sizes (sizes up to ``n``).

    Integer sums are exact and independent of summation order, and a subset's size can ride in the low bits of its
    sum (one table lookup per byte gives both). The unit leaves room for any subset sum of ``s`` shifted by the
    size bits within int64; rounding moves a sum by at most ``n`` units, below 1e-12 of ``sum|s|`` for n < 1000.
    """
    size_bits = max(n, 1).bit_length()
    total = float(np.abs(s).sum())
    unit = total * 2.0 ** (size_bits - 61) if total > 0 else 1.0
    return np.rint(s / unit).astype(np.int64), unit, size_bits


def _byte_tables(q: np.ndarray, size_bits: int) -> np.ndarray:
    """Per-byte lookup table ``table[j, b]`` = (sum of q over the items of byte j whose bit is set in b) shifted
    left by ``size_bits``, plus how many such items there are. Bits past the last item select nothing."""
    m = len(q)
    n_bytes = (m + 7) // 8
    padded = np.zeros(n_bytes * 8, dtype=np.int64)
    padded[:m] = q
    valid = np.zeros(n_bytes * 8, dtype=np.int64)
    valid[:m] = 1
    bits = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(np.int64)
    sums = bits @ padded.reshape(n_bytes, 8).T
    sizes = bits @ valid.reshape(n_bytes, 8).T
    return ((sums << size_bits) + sizes).T.copy()


def _random_subsets(q: np.ndarray, size_bits: int, count: int, bit_generator: np.random.BitGenerator, *,
                    max_bytes: int = 1 << 24) -> tuple[np.ndarray, np.ndarray]:
    """(sum of q over the subset, subset size) for ``count`` Bernoulli(1/2) subsets of the items of ``q``."""
    # Arrow's take reads uint8 indices as they are, where numpy's first copies them to int64: 17% less CPU per
    # p-value at n = 350 (measured; BENCHMARKS.md)
    tables = [pa.array(row) for row in _byte_tables(q, size_bits)]
    n_bytes = len(tables)
    packed = np.zeros(count, dtype=np.int64)
    step = max(1, min(count, max_bytes // n_bytes))
    for lo in range(0, count, step):
        c = min(step, count - lo)
        # raw generator output as bytes: uniform, and several times faster than integers(0, 256)
        words = bit_generator.random_raw(-(-n_bytes * c // 8))
        bits = words.view(np.uint8)[:n_bytes * c].reshape(n_bytes, c)  # byte j of every subset is contiguous
        acc = packed[lo:lo + c]
        for table, byte in zip(tables, bits):
            acc += pc.take(table, pa.array(byte), boundscheck=False).to_numpy()  # indices < 256 by construction
    # small unsigned sizes let the bucketing use numpy's radix sort (about 7x faster than sorting int64)
    sizes = packed.astype(np.uint16 if size_bits <= 16 else np.int64)  # keeps the low bits
    sizes &= (1 << size_bits) - 1
    packed >>= size_bits  # in place: fresh arrays of this size cost page faults
    return packed, sizes


def _split_size_probabilities(n: int) -> np.ndarray:
    """P(|X' n X| = k), k = 0..n, for a uniformly random n-subset X' of the 2n items: hypergeometric,
    C(n,k)^2 / C(2n,n)."""
    k = np.arange(n + 1)
    log_comb = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)  # log C(n, k), vectorised
    p = np.exp(2 * (log_comb - log_comb.max()))
    return p / p.sum()


def _bucketed(q: np.ndarray, size_bits: int, need: np.ndarray, seed: np.random.SeedSequence) -> np.ndarray:
    """Sums of ``need[k]`` independent uniformly random k-subsets of the items of ``q``, for every k (in k order).

    Bernoulli(1/2) subsets are uniform within each size; they are drawn in pools (1.5x the total need, which covers
    every size the split distribution asks for, since it is more concentrated than the binomial by at most
    sqrt(2)) until every size has enough, and the first ``need[k]`` of each size are kept.
    """
    bit_generator = np.random.SFC64(seed)  # a fast generator, its own stream per half
    pool_sums, pool_sizes = [], []
    have = np.zeros(len(need), dtype=np.int64)
    while (have < need).any():
        sums, sizes = _random_subsets(q, size_bits, int(1.5 * need.sum()) + 64, bit_generator)
        pool_sums.append(sums)
        pool_sizes.append(sizes)
        have += np.bincount(sizes, minlength=len(need))
    sums, sizes = np.concatenate(pool_sums), np.concatenate(pool_sizes)
    order = np.argsort(sizes, kind="stable")
    first_of_size = np.concatenate(([0], np.cumsum(have)[:-1]))
    first_needed = np.concatenate(([0], np.cumsum(need)[:-1]))
    take = np.arange(need.sum()) + np.repeat(first_of_size - first_needed, need)
    return sums[order[take]]


def _sampled_sums(q: np.ndarray, n: int, size_bits: int, draws: int, seed: int, *, threads: int = 2) -> np.ndarray:
    """``sum_{X'} q`` for ``draws`` independent uniformly random n-subsets X' of the 2n (integer) items.

    A uniform split keeps k = |X' n X| items of X and n - k of Y, with P(k) = C(n,k)^2 / C(2n,n), a uniform k-subset
    of X and a uniform (n-k)-subset of Y, i.e. Y minus a uniform k-subset of Y. So: draw every sample's k, then
    uniform k-subsets of X and of Y independently, and sum(X') = sum(B_X) + sum(Y) - sum(B_Y). Exact, with no
    sort, shuffle or per-sample loop. The two halves use their own random streams, so they can run on two threads
    (numpy releases the GIL in the loops that matter) and give the same sums with any ``threads``.
    """
    need_seed, x_seed, y_seed = np.random.SeedSequence(seed).spawn(3)
    need = np.random.default_rng(need_seed).multinomial(draws, _split_size_probabilities(n))
    jobs = [(q[:n], size_bits, need, x_seed), (q[n:], size_bits, need, y_seed)]
    if threads > 1:
        with ThreadPoolExecutor(max_workers=2) as pool:
            from_x, from_y = pool.map(lambda job: _bucketed(*job), jobs)
    else:
        from_x, from_y = (_bucketed(*job) for job in jobs)
    return from_x + q[n:].sum() - from_y


def permutation_p_value(s: np.ndarray, n_x: int, *, n_samples: int = 100_000, seed: int = 0,
                        threads: int | None = None) -> tuple[float, bool]:
    """One-sided WEAT permutation p-value; returns ``(p, exact)``. ``s``: associations of X then Y (equal sizes).

    Exact over all C(2n, n) splits when that is at most ``n_samples``, else ``n_samples - 1`` seeded draws
    biased by one extreme split (the original's choice: a sampled p-value is never 0). ``threads`` (default: 2 from
    n = 128 on, where it pays) changes only the speed.

    >>> permutation_p_value(np.array([3., 1., 0., 0.]), n_x=2)  # 6 splits; sums 4,3,3,1,1,0: only {3,1} >= 4
    (0.16666666666666666, True)
    """
    s = np.asarray(s, dtype=np.float64)
    if len(s) != 2 * n_x:
        raise ValueError(f"the permutation test needs |X| == |Y|; got {n_x} and {len(s) - n_x}")
    observed = s[:n_x].sum()
    tol = TIE_RTOL * max(1.0, float(np.abs(s).sum()))
    if math.comb(2 * n_x, n_x) <= n_samples:
        sums = _subset_sums(s, n_x)
        return float(np.count_nonzero(sums >= observed - tol) / len(sums)), True
    q, unit, size_bits = _quantized(s, n_x)
    tol_units = math.ceil(tol / unit) + 2 * n_x  # plus the rounding of both sums
    threads = threads or (2 if n_x >= 128 else 1)
    sums = _sampled_sums(q, n_x, size_bits, n_samples - 1, seed, threads=threads)
    hits = int(np.count_nonzero(sums >= q[:n_x].sum() - tol_units))
    return (1 + hits) / n_samples, False


def effect_size_bootstrap(cos: np.ndarray, n_x: int, n_a: int, *, n_resamples: int = 1000, seed: int = 0,
                          chunk: int = 250) -> np.ndarray:
    """Bootstrap replicates of the effect size, resampling X, Y, A and B (each with replacement, own size).

    ``cos`` rows are X then Y, columns A then B. Resampling is done with multinomial counts, so each replicate is
    a weighted version of the exact formula (mean and ddof=1 std over the resampled X u Y).

    >>> reps = effect_size_bootstrap(np.array([[.9, .1], [.8, .2], [.1, .9], [.2, .8]]), 2, 1, n_resamples=200)
    >>> bool(np.nanmin(reps) > 0)  # X always closer to A than Y is, in every resample
    True
    """
    cos = np.asarray(cos, dtype=np.float64)
    n_xy, n_ab = cos.shape
    n_y, n_b = n_xy - n_x, n_ab - n_a
    rng = np.random.default_rng(seed)
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        c = min(chunk, n_resamples - start)
        wa = rng.multinomial(n_a, np.full(n_a, 1 / n_a), size=c) / n_a
        wb = rng.multinomial(n_b, np.full(n_b, 1 / n_b), size=c) / n_b
        s = cos[:, :n_a] @ wa.T - cos[:, n_a:] @ wb.T  # (n_xy, c)
        wx = rng.multinomial(n_x, np.full(n_x, 1 / n_x), size=c).T
        wy = rng.multinomial(n_y, np.full(n_y, 1 / n_y), size=c).T
        w = np.vstack((wx, wy)).astype(np.float64)
        mean_x = (wx * s[:n_x]).sum(0) / n_x
        mean_y = (wy * s[n_x:]).sum(0) / n_y
        total = n_x + n_y
        mean_all = (w * s).sum(0) / total
        var = ((w * s * s).sum(0) - total * mean_all ** 2) / (total - 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + c] = (mean_x - mean_y) / np.sqrt(np.clip(var, 0.0, None))
    return out


def mean_abs(values: Sequence[float]) -> float:
    """Mean absolute effect size, the SEAT aggregate of bias-bench and the Bias Vector paper.

    >>> mean_abs([0.5, -1.0, 0.0])
    0.5
    """
    return float(np.mean(np.abs(np.asarray(values, dtype=np.float64))))
