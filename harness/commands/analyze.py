"""``biasboard analyze transfer``: does downstream bias follow upstream bias or dataset bias? (Steed et al. 2022;
Baksi, Singh, Joshi 2024)

Reads the results store, pairs every downstream cell (e.g. ``bios`` after fine-tuning) with the upstream cell of the
same model, method, parameters and seed (e.g. ``seat``), takes the dataset bias the downstream task measured on its
fine-tuning data, and fits ordinary least squares: downstream ~ 1 + upstream + dataset_bias. Methods that only change
the fine-tuning data or loss have no upstream cell of their own; they are paired with the ``none`` cell of the model.
"""
from __future__ import annotations

import json
from pathlib import Path

from biasboard.harness.errors import BiasboardError


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="analyses over many cells of the results store")
    inner = p.add_subparsers(dest="analysis", metavar="ANALYSIS")
    t = inner.add_parser("transfer", help="regress downstream bias on upstream bias and dataset bias",
                         description=__doc__)
    t.add_argument("--store", type=Path, default=None, help="results store (default: ./biasboard-out/results.sqlite)")
    t.add_argument("--records", type=Path, default=None, help="a JSON or JSONL file of result records instead")
    t.add_argument("--downstream", default="bios:tpr_gap_rms", metavar="TASK[:VARIANT][:METRIC]",
                   help="downstream bias (default: bios:tpr_gap_rms)")
    t.add_argument("--upstream", default="seat:mean", metavar="TASK[:VARIANT][:METRIC]",
                   help="upstream bias; the headline metric when METRIC is omitted (default: seat:mean)")
    t.add_argument("--dataset-bias", default="auto", metavar="METRIC",
                   help="metric of the downstream record measuring bias in its fine-tuning data (default: "
                        "the first of train_gender_skew, train_identity_toxicity_gap present; 'none' to leave it out)")
    t.add_argument("--json", action="store_true", help="print the regression as JSON")
    t.set_defaults(func=run)
    e = inner.add_parser("effects", help="each method against `none`: paired differences with CIs, Holm-adjusted",
                         description="For every finished method cell, compare its headline metric (or --all-metrics) "
                                     "with the `none` cell of the same model, task, variant and seed on the same "
                                     "examples: difference, change in distance from the ideal with a paired "
                                     "bootstrap 95% CI, and a verdict Holm-adjusted across all comparisons shown.")
    e.add_argument("--store", type=Path, default=None, help="results store (default: ./biasboard-out/results.sqlite)")
    e.add_argument("--records", type=Path, default=None, help="a JSON or JSONL file of result records instead")
    e.add_argument("--all-metrics", action="store_true", help="every metric of each cell, not only the headline")
    e.add_argument("--reference", default="none", metavar="METHOD",
                   help="the method the others are compared with (default: none); e.g. topk_ae_dro pairs "
                        "robust_debias with it on each corpus split (parameters both have must agree)")
    e.add_argument("--method", action="append", default=None, metavar="METHOD",
                   help="compare only this method with the reference (repeatable; default: every method)")
    e.add_argument("--json", action="store_true", help="print the effects as JSON")
    e.set_defaults(func=run_effects)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_effects(args) -> int:
    from biasboard.harness.analysis.effects import effects_table, method_effects
    from biasboard.harness.commands.support import load_store

    if args.records:
        from biasboard.harness.analysis.transfer import load_records

        records, examples = load_records(args), (lambda key: [])
    else:
        _, records, examples = load_store(args.store)
    result = method_effects(records, examples, all_metrics=args.all_metrics, reference=args.reference,
                            methods=args.method)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    if not result["rows"]:
        raise BiasboardError(f"no method cell has a finished `{args.reference}` cell to compare with; "
                             + "; ".join(result["dropped"][:5]))
    print(effects_table(result))
    print(f"\nDifference = method - {args.reference}. Δ distance to ideal < 0: closer to the metric's ideal. "
          f"Intervals: paired bootstrap over the shared examples; Holm across the {result['n_tests']} paired "
          "comparison(s).")
    for note in sorted({r["reference_note"] for r in result["rows"] if r["reference_note"]}):
        print(f"reference: {note} for the cells at other seeds")
    for why in result["dropped"]:
        print(f"left out: {why}")
    return 0


def run(args) -> int:
    from tabulate import tabulate

    from biasboard.harness.analysis.transfer import assemble, load_records, transfer

    records = load_records(args)
    rows, dropped = assemble(records, args.downstream, args.upstream, args.dataset_bias)
    if not rows:
        raise BiasboardError("transfer regression: no downstream cell has a matching upstream cell; "
                             + "; ".join(dropped[:5]))
    fit = transfer(rows)
    fit.update({"downstream": args.downstream, "upstream": args.upstream, "cells": rows, "dropped": dropped})
    if args.json:
        print(json.dumps(fit, indent=1))
        return 0
    print(f"downstream bias ({args.downstream}) ~ 1 + upstream bias ({args.upstream})"
          + (f" + dataset bias ({rows[0]['dataset_bias_metric']})" if "dataset_bias" in rows[0] else "")
          + f"   n = {fit['n']} cells, R^2 = {fit['r2']:.3f}, adj. R^2 = {fit['adj_r2']:.3f}")
    table = [[c["name"], f"{c['coef']:.4g}", f"{c['se']:.3g}", f"{c['t']:.2f}", f"{c['p_value']:.3g}",
              f"[{c['ci95'][0]:.3g}, {c['ci95'][1]:.3g}]"] for c in fit["coefficients"]]
    print(tabulate(table, headers=["term", "coef", "SE", "t", "p", "95% CI"], tablefmt="github"))
    for note in fit["notes"]:
        print(f"note: {note}")
    if dropped:
        print(f"left out {len(dropped)} downstream cell(s) without an upstream match: " + "; ".join(dropped[:10]))
    return 0
