"""``biasboard regress``: fail CI when a bias metric got significantly worse than the reviewed baseline."""
from __future__ import annotations

import sys
from pathlib import Path

from biasboard.harness.commands.support import default_store, one_line_errors, load_store


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "regress", help="compare results with a baseline; exit 1 on a significant regression",
        description="Exit codes: 0 no regression; 1 a regression (farther from the ideal by more than the "
                    "tolerance, and significant: paired bootstrap, Holm-corrected across the metrics and cells "
                    "compared); 2 usage error or missing data; 3 no regression, but some cells are not comparable "
                    "with the baseline (another eval_sample, data digest, n or set of examples), so they were not "
                    "judged. See docs/regress.md.")
    p.add_argument("--baseline", required=True, help="baseline JSON (e.g. leaderboard/baseline.json)")
    p.add_argument("--store", default=None, help=f"results store (default: {default_store()})")
    p.add_argument("--format", choices=("text", "markdown", "junit"), default="text")
    p.add_argument("--output", default=None, help="write the report to this file instead of stdout")
    p.add_argument("--allow-missing", action="store_true",
                   help="report baseline cells missing from the store without failing (exit 0)")
    p.add_argument("--allow-not-comparable", action="store_true",
                   help="report cells run on other data than the baseline without failing (exit 0 instead of 3)")
    p.add_argument("--verbose", action="store_true", help="text format: also list unchanged metrics and new cells")
    p.add_argument("--seed", type=int, default=0, help="seed of the paired bootstrap")
    p.set_defaults(func=run)


@one_line_errors
def run(args) -> int:
    from biasboard.harness.regress import compare, load_baseline
    from biasboard.harness.regress_report import RENDERERS, render_text

    baseline = load_baseline(args.baseline)
    store_path, records, examples = load_store(args.store)
    report = compare(baseline, records, examples, seed=args.seed, allow_missing=args.allow_missing,
                     allow_not_comparable=args.allow_not_comparable)
    report.store_path = str(store_path)
    text = render_text(report, verbose=args.verbose) if args.format == "text" else RENDERERS[args.format](report)
    if args.output:
        Path(args.output).write_text(text)
        from biasboard.harness.regress_report import summary

        print(summary(report), file=sys.stderr)
    else:
        sys.stdout.write(text)
    return report.exit_code
