"""Run a list of association tests on precomputed vectors and build the ``TaskResult`` (shared by SEAT and WEAT).

Per test: effect size with a bootstrap CI (X, Y, A, B resampled), the one-sided permutation p-value, and its
Holm adjustment over the tests of the run. Aggregates: mean |effect size| per bias type and over all typed tests
(with CIs from the same bootstrap replicates), and the number of tests significant at alpha = 0.01.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
from scipy import stats as sps

from biasboard.harness.errors import BiasboardError
from biasboard.harness.specs import Metric, RunContext, TaskResult
from biasboard.harness.stats import holm, percentile_ci
from biasboard.tasks.seat import metrics as ms
from biasboard.tasks.seat.data import SeatTest

ALPHA = 0.01
N_PERMUTATIONS = 100_000


@dataclass(frozen=True)
class Prepared:
    """Vectors of one test after look-up (rows of each matrix follow the set's order)."""

    test: SeatTest
    x: np.ndarray
    y: np.ndarray
    a: np.ndarray
    b: np.ndarray
    missing: dict[str, list[str]] = field(default_factory=dict)
    """Examples without a vector (out of vocabulary), per set."""
    balanced_out: list[str] = field(default_factory=list)
    """Target examples dropped so that |X| == |Y| (the permutation test needs equal sizes)."""


def test_seed(seed: int, name: str) -> int:
    """A per-test seed, so a test's p-value does not depend on which other tests run."""
    return int(np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(1)[0])


def balance(prep: Prepared, x_words: list[str], y_words: list[str]) -> Prepared:
    """Drop trailing examples of the larger target set until |X| == |Y| (file order kept, dropped ones reported)."""
    k = min(len(prep.x), len(prep.y))
    return replace(prep, x=prep.x[:k], y=prep.y[:k], balanced_out=x_words[k:] + y_words[k:])


def run_tests(prepared: list[Prepared], bias_types: dict[str, tuple[str, ...]], ctx: RunContext, *,
              axis_note: str = "") -> TaskResult:
    """Effect sizes, p-values, CIs and aggregates for the prepared tests."""
    n_perm = int(ctx.extra.get("permutation_samples", N_PERMUTATIONS))
    rows, reps, notes = [], {}, []
    for prep in prepared:
        t = prep.test
        if min(len(prep.x), len(prep.y)) < 2 or min(len(prep.a), len(prep.b)) < 1:
            notes.append(f"{t.name}: skipped, too few examples with vectors ({len(prep.x)}, {len(prep.y)}, "
                         f"{len(prep.a)}, {len(prep.b)})")
            continue
        cos = ms.cosine_matrix(np.vstack((prep.x, prep.y)), np.vstack((prep.a, prep.b)))
        n_x, n_a = len(prep.x), len(prep.a)
        s = ms.association(cos, n_a)
        seed = test_seed(ctx.seed, t.name)
        p, exact = ms.permutation_p_value(s, n_x, n_samples=n_perm, seed=seed)
        reps[t.name] = ms.effect_size_bootstrap(cos, n_x, n_a, n_resamples=ctx.n_bootstrap, seed=seed)
        bias = next((b for b, names in bias_types.items() if t.name in names), "")
        d = ms.effect_size(s, n_x)
        rows.append({"id": t.name, "bias_type": bias, "typed": bool(bias), "effect_size": d,
                     "abs_effect_size": abs(d),
                     "ci95": list(percentile_ci(reps[t.name], 0.95)), "p_value": p, "exact_test": exact,
                     "n_x": n_x, "n_y": len(prep.y), "n_a": n_a, "n_b": len(prep.b),
                     "categories": list(t.categories), "missing": prep.missing, "balanced_out": prep.balanced_out})
        if any(prep.missing.values()):
            notes.append(f"{t.name}: no vector for {sum(map(len, prep.missing.values()))} example(s), dropped: "
                         + "; ".join(f"{k}: {', '.join(v)}" for k, v in prep.missing.items() if v))
        if prep.balanced_out:
            notes.append(f"{t.name}: dropped {', '.join(prep.balanced_out)} so that |X| == |Y|")
    if not rows:
        raise BiasboardError("no association test could be computed: " + "; ".join(notes))
    for row, adj in zip(rows, holm([r["p_value"] for r in rows])):
        row["p_value_holm"] = float(adj)

    groups: dict[str, dict[str, Metric]] = {}
    typed = [r for r in rows if r["bias_type"]]
    for bias in bias_types:
        members = [r for r in rows if r["bias_type"] == bias]
        if members:
            groups[bias] = _aggregates(members, reps, where={"bias_type": bias})
    for r in rows:
        groups[r["id"]] = {
            "effect_size": Metric(r["effect_size"], r["n_x"] + r["n_y"], ideal=0.0, direction="target",
                                  ci95=tuple(r["ci95"]), p_value=r["p_value"],
                                  description=f"{' vs '.join(r['categories'][:2])} x "
                                              f"{' vs '.join(r['categories'][2:])}; raw one-sided p-value"),
            "p_value_holm": Metric(r["p_value_holm"], r["n_x"] + r["n_y"], direction="max",
                                   p_value=r["p_value_holm"],
                                   description=f"Holm-adjusted p-value over the {len(rows)} tests of the run"),
        }
    metrics = _aggregates(typed or rows, reps, where={"typed": True} if typed else None)
    metrics.update(_significance(rows))
    if axis_note:
        notes.append(axis_note)
    return TaskResult(metrics=metrics, groups=groups, examples=rows, notes=notes,
                      flags={"tests": len(rows), "permutation_samples": n_perm})


def _aggregates(members: list[dict], reps: dict[str, np.ndarray], *,
                where: dict[str, Any] | None = None) -> dict[str, Metric]:
    """Mean |effect size| over ``members`` (the rows matching ``where``; None: all rows). It declares itself the
    mean of those rows' ``abs_effect_size``, so two models or methods compare paired over the same tests."""
    values = [r["effect_size"] for r in members]
    boot = np.nanmean(np.abs(np.vstack([reps[r["id"]] for r in members])), axis=0)
    return {"mean_abs_effect_size": Metric(
        ms.mean_abs(values), len(members), ideal=0.0, direction="min", ci95=percentile_ci(boot, 0.95),
        description=f"mean |effect size| over {len(members)} tests ({', '.join(r['id'] for r in members)}); "
                    "CI from resampling the words / sentences of every test",
        per_example="abs_effect_size", per_example_where=where)}


def _significance(rows: list[dict]) -> dict[str, Metric]:
    """Counts of tests significant at ALPHA; p-value = binomial tail under the global null (tests independent)."""
    m = len(rows)
    out = {}
    for key, label in (("p_value", "raw"), ("p_value_holm", "Holm-adjusted")):
        k = sum(r[key] < ALPHA for r in rows)
        out["significant_tests" + ("_holm" if key.endswith("holm") else "")] = Metric(
            float(k), m, ideal=0.0, direction="min", p_value=float(sps.binom.sf(k - 1, m, ALPHA)) if k else 1.0,
            description=f"tests with {label} p < {ALPHA} out of {m}; p-value: chance of so many under the null")
    return out


def lookup_vectors(test: SeatTest, vector: Callable[[str], np.ndarray | None]) -> Prepared:
    """Vectors of a test's examples via ``vector(text)`` (None = no vector); missing ones dropped and reported."""
    mats, missing, kept = [], {}, {}
    for key, items in zip(("targ1", "targ2", "attr1", "attr2"), (test.x, test.y, test.a, test.b)):
        vecs, lost, ok = [], [], []
        for item in items:
            v = vector(item)
            if v is None:
                lost.append(item)
            else:
                vecs.append(v)
                ok.append(item)
        missing[key] = lost
        kept[key] = ok
        mats.append(np.asarray(vecs, dtype=np.float64).reshape(len(vecs), -1))
    prep = Prepared(test, *mats, missing={k: v for k, v in missing.items() if v})
    if len(prep.x) != len(prep.y):
        prep = balance(prep, kept["targ1"], kept["targ2"])
    return prep
