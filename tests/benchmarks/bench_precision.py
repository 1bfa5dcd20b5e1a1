"""What reduced precision does to the numbers: each cell at float32 (the reference), bfloat16 and mixed-bf16 on the
full data, compared per example (the issue 18 rule: an official reproduction stays within one CrowS-Pairs pair and
0.01 SEAT effect size of float32).

A plain script, not collected by the test run. It runs ``biasboard eval --json --examples`` once per cell and
precision (results kept in OUT/results.sqlite, so a rerun only compares), times each run, and prints a Markdown
table of the per-example agreement::

    BIASBOARD_DATA_DIR=../shared/data python tests/benchmarks/bench_precision.py --out precision-out [--quick]

Figures: BENCHMARKS.md, "Precision: bfloat16 and mixed-bf16 against float32".
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DTYPES = ("float32", "bfloat16", "mixed-bf16")
CELLS = (  # (model, task:variant); the order is the order of importance
    ("zoo:smollm2-135m", "crows_pairs:causal_sum"),
    ("zoo:minilm-l6", "seat:mean"),
    ("zoo:splade-tiny", "seat:mean"),
    ("zoo:splade-tiny", "crows_pairs:pll_unmodified"),
    ("zoo:smollm2-135m", "stereoset:intrasentence"),
    ("zoo:smollm2-135m", "stereoset:intersentence"),
)


def run_cell(model: str, task: str, dtype: str, out: Path, max_examples: int | None) -> dict:
    """One ``biasboard eval`` in its own process: the record with examples, plus its wall and CPU seconds."""
    cmd = ["biasboard", "eval", "--model", model, "--task", task, "--dtype", dtype, "--json", "--examples",
           "--out", str(out)] + (["--max-examples", str(max_examples)] if max_examples else [])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    record = json.loads(proc.stdout)
    record["_timing"] = {"wall": wall, "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}
    return record


def value(record: dict, name: str) -> float:
    m = record["metrics"][name]
    return float(m["value"] if isinstance(m, dict) else m)


def compare(task: str, ref: dict, other: dict) -> dict:
    """Per-example agreement of ``other`` with the float32 ``ref`` (rows matched by id)."""
    a = {(e.get("split"), e["id"]): e for e in ref["examples"]}
    b = {(e.get("split"), e["id"]): e for e in other["examples"]}
    if a.keys() != b.keys():
        raise SystemExit(f"{task}: the two runs scored different examples")
    keys = sorted(a, key=str)
    if task.startswith("crows_pairs"):
        flips = [k for k in keys if a[k]["more_is_higher"] != b[k]["more_is_higher"] or a[k]["tie"] != b[k]["tie"]]
        delta = max(abs(b[k][f"sent_{s}_score"] - a[k][f"sent_{s}_score"]) for k in keys for s in ("more", "less"))
        pairs = sum(b[k]["more_is_higher"] for k in keys) - sum(a[k]["more_is_higher"] for k in keys)
        return {"n": len(keys), "flipped": len(flips), "agreement": 1 - len(flips) / len(keys),
                "headline": f"{value(other, 'stereotype_score'):.2f} vs {value(ref, 'stereotype_score'):.2f} "
                            f"({pairs:+d} pairs)", "max |score diff|": delta}
    if task.startswith("stereoset"):
        flips = [k for k in keys if a[k]["pro"] != b[k]["pro"] or a[k]["related"] != b[k]["related"]]
        labels = [c for c in a[keys[0]] if c.startswith("score_")]
        delta = max(abs(b[k][c] - a[k][c]) / max(abs(a[k][c]), 1e-300) for k in keys for c in labels)
        heads = ", ".join(f"{m.upper()} {value(other, m) - value(ref, m):+.2f}" for m in ("ss", "lms", "icat"))
        return {"n": len(keys), "flipped": len(flips), "agreement": 1 - len(flips) / len(keys),
                "headline": heads, "max |score diff|": delta}
    # SEAT: one row per test
    d = np.array([b[k]["effect_size"] - a[k]["effect_size"] for k in keys])
    head = [m for m in ("mean_abs_effect_size", "effect_size") if m in ref["metrics"]][:1]
    heads = f"headline {value(other, head[0]) - value(ref, head[0]):+.4f}" if head else ""
    return {"n": len(keys), "flipped": int(sum(np.sign(b[k]["effect_size"]) != np.sign(a[k]["effect_size"])
                                                for k in keys)),
            "agreement": float("nan"), "headline": heads, "max |score diff|": float(np.max(np.abs(d)))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("precision-bench"), help="folder for the results store")
    ap.add_argument("--cells", type=int, default=len(CELLS), help="only the first N cells of the list")
    ap.add_argument("--pick", default="", help="comma-separated 1-based positions in the list instead (e.g. 1,5)")
    ap.add_argument("--dtypes", default=",".join(DTYPES), help="comma-separated; float32 always runs")
    ap.add_argument("--quick", action="store_true", help="first 100 examples (a smoke run, not the figures)")
    args = ap.parse_args(argv)
    dtypes = ["float32"] + [d for d in args.dtypes.split(",") if d != "float32"]
    rows = []
    chosen = [CELLS[int(i) - 1] for i in args.pick.split(",")] if args.pick else CELLS[: args.cells]
    for model, task in chosen:
        records = {d: run_cell(model, task, d, args.out, 100 if args.quick else None) for d in dtypes}
        for d in dtypes:
            t = records[d]["_timing"]
            print(f"{model} {task} {d}: wall {t['wall']:.1f} s, cpu {t['cpu']:.1f} s", file=sys.stderr, flush=True)
        for d in dtypes[1:]:
            c = compare(task, records["float32"], records[d])
            agree = "" if np.isnan(c["agreement"]) else f"{100 * c['agreement']:.2f}%"
            rows.append(f"| {model} | {task} | {d} | {c['n']} | {c['flipped']} | {agree} | {c['headline']} | "
                        f"{c['max |score diff|']:.3g} |")
            print(rows[-1], flush=True)
    print("\n| model | task | dtype | n | flipped | agreement | headline vs float32 | max abs per-example diff |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
