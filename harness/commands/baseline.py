"""``biasboard baseline update``: snapshot chosen cells and metrics, with tolerances, as a reviewable baseline."""
from __future__ import annotations

import json
from pathlib import Path

from biasboard.harness.commands.support import default_store, one_line_errors, load_store
from biasboard.harness.errors import BiasboardError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("baseline", help="write the regression baseline")
    sub = p.add_subparsers(dest="baseline_cmd", required=True)
    u = sub.add_parser("update", help="snapshot results from a store into a baseline file (review it, then commit)",
                       description="Writes the file named by --out (nothing else). Refuses to overwrite a file git "
                                   "tracks, such as the committed leaderboard/baseline.json, unless --force.")
    u.add_argument("--store", default=None, help=f"results store (default: {default_store()})")
    u.add_argument("--out", required=True,
                   help="baseline file to write (required: the official one is leaderboard/baseline.json); a file "
                        "git tracks is only overwritten with --force")
    u.add_argument("--force", action="store_true", help="overwrite --out even when git tracks it")
    u.add_argument("--task", action="append", default=[], help="keep cells of this task (repeatable; TASK or "
                   "TASK:VARIANT)")
    u.add_argument("--model", action="append", default=[], help="keep cells of this model (repeatable)")
    u.add_argument("--method", action="append", default=[], help="keep cells of this method (repeatable)")
    u.add_argument("--metric", action="append", default=[], help="keep only these metrics (repeatable; default all)")
    u.add_argument("--tolerance", action="append", default=[], metavar="METRIC=X",
                   help="tolerance for a metric, in its units (repeatable)")
    u.add_argument("--default-tolerance", type=float, default=None,
                   help="tolerance for other metrics (default: 1 point for percent metrics, 0.05 otherwise)")
    u.add_argument("--no-examples", action="store_true",
                   help="do not store per-example scores (the gate then judges by tolerance alone)")
    u.set_defaults(func=update)


def git_tracked(path: Path) -> bool:
    """True when git tracks ``path`` (False outside a repository or without git)."""
    import subprocess

    try:
        res = subprocess.run(["git", "ls-files", "--error-unmatch", path.resolve().name], cwd=path.resolve().parent,
                             capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return res.returncode == 0


def parse_tolerances(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip() or out[name.strip()] < 0:
            raise BiasboardError(f"--tolerance {item!r}: expected METRIC=X with X >= 0, e.g. stereotype_score=1.5")
    return out


def dump_baseline(doc: dict) -> str:
    """Indented JSON for review, with each metric's per-example scores on one line (diffs stay readable)."""
    compact = {}
    for i, cell in enumerate(doc["cells"]):
        for name, metric in cell["metrics"].items():
            per = metric.get("per_example")
            if per:
                token = f"@@per_example_{i}_{len(compact)}@@"
                compact[token] = json.dumps(per["values"], separators=(",", ":"))
                metric["per_example"] = {**per, "values": token}
    text = json.dumps(doc, indent=1)
    for token, values in compact.items():
        text = text.replace(json.dumps(token), values)
    return text + "\n"


@one_line_errors
def update(args) -> int:
    from biasboard.harness.regress import make_baseline

    tolerances = parse_tolerances(args.tolerance)
    out = Path(args.out)
    if out.exists() and not args.force and git_tracked(out):
        raise BiasboardError(f"{out} is tracked by git; refusing to overwrite it without --force (or choose another "
                             "--out)")
    store_path, records, examples = load_store(args.store)

    def keep(r):
        tasks_ok = not args.task or r.task in args.task or f"{r.task}:{r.variant}" in args.task
        return r.done and tasks_ok and (not args.model or r.model in args.model) and (
            not args.method or r.method in args.method)

    doc = make_baseline([r for r in records if keep(r)], examples, metrics=args.metric or None,
                        tolerances=tolerances, fallback_tolerance=args.default_tolerance,
                        with_examples=not args.no_examples)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_baseline(doc))
    n_metrics = sum(len(c["metrics"]) for c in doc["cells"])
    paired = sum(1 for c in doc["cells"] for m in c["metrics"].values() if "per_example" in m)
    print(f"baseline written to {out}: {len(doc['cells'])} cells, {n_metrics} metrics "
          f"({paired} with per-example scores for the paired test) from {store_path}. Review it, then commit it.")
    return 0
