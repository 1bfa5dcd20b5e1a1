"""``biasboard eval``: one cell, printed as the result JSON contract (or a table)."""
from __future__ import annotations

import json
import sys

from biasboard.harness.commands.support import add_output_args, results_table, store_path


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate one model x method x task cell",
                       description="Evaluate one cell. The result is cached in the store like any matrix cell.")
    p.add_argument("--model", required=True, help="zoo:ALIAS, a local model folder, or a Hugging Face Hub id")
    p.add_argument("--family", default=None, help="model family when it cannot be inferred (mlm, clm, encoder, ...)")
    p.add_argument("--dtype", default=None, metavar="DTYPE",
                   help="precision: float32 (default, the reference), bfloat16, float16, mixed-bf16 (float32 weights, "
                        "bfloat16 matrix products), or auto (mixed-bf16 where the hardware runs bf16 fast); part of "
                        "the cell key")
    p.add_argument("--task", required=True, help="TASK or TASK:VARIANT (default variant: the first the model supports)")
    p.add_argument("--method", default="none", help="method name (default: none)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="method parameter (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--n-bootstrap", type=int, default=1000)
    p.add_argument("--max-examples", type=int, default=None, help="evaluate only the first N examples (smoke runs)")
    p.add_argument("--json", action="store_true", help="print the result JSON (the contract: README, 'Result contract')")
    p.add_argument("--examples", action="store_true", help="include per-example rows in the JSON")
    p.add_argument("--force", action="store_true", help="recompute even when cached")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the results store")
    add_output_args(p)
    p.set_defaults(func=run)


def parse_params(items: list[str]) -> dict:
    import yaml

    from biasboard.harness.errors import BiasboardError

    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise BiasboardError(f"--param {item!r}: expected NAME=VALUE")
        out[name] = yaml.safe_load(value)
    return out


def run(args) -> int:
    from biasboard.harness.fetch import auto_fetch

    with auto_fetch(progress=not args.json):  # a missing pinned data file is downloaded, not an error
        return _run(args)


def _run(args) -> int:
    from biasboard.harness.errors import UnsupportedError
    from biasboard.harness.matrix import Matrix, plan
    from biasboard.harness.registry import TASKS
    from biasboard.harness.runner import evaluate_cell, record_plugin_meta
    from biasboard.harness.store import Store

    from biasboard.harness.errors import BiasboardError, DataError

    if args.batch_size < 1 or args.n_bootstrap < 1:
        raise BiasboardError("--batch-size and --n-bootstrap must be positive integers")
    model = {"id": args.model, **({"family": args.family} if args.family else {}),
             **({"dtype": args.dtype} if args.dtype else {})}
    task_name, _, variant = args.task.partition(":")
    task_cls = TASKS.get(task_name)
    method = {"name": args.method, "params": parse_params(args.param)}
    extra = {"max_examples": args.max_examples} if args.max_examples else {}
    try:
        matrix = Matrix.from_dict({"name": "eval", "models": [model], "methods": [method], "tasks": [args.task],
                                   "seeds": [args.seed], "options": {"extra": extra, "n_bootstrap": args.n_bootstrap}},
                                  source="eval")
    except DataError as exc:  # name the command-line option, not the matrix built from it
        option = {"methods": "--param", "models": "--model", "tasks": "--task", "seeds": "--seed"}.get(
            str(exc.field).split(".")[0], "eval")
        raise BiasboardError(f"{option}: {str(exc).split(': ', 1)[-1]}") from None
    matrix.print_warnings()
    store = None if args.no_cache else Store(store_path(args))
    cells, skipped = plan(matrix)
    if not variant and cells:
        preferred = [c for c in cells if c.variant == task_cls.default_variant]
        cells = preferred or cells[:1]
    if not cells:
        reasons = "; ".join(s.reason for s in skipped) or f"no variant of {task_name} supports this model"
        raise UnsupportedError(f"cannot evaluate {args.model} on {args.task} with {args.method}: {reasons}")
    cell = cells[0]
    for warning in cell.data_warnings:
        print(f"biasboard: warning: {warning}", file=sys.stderr)
    if store:
        record_plugin_meta([cell], store)
    cached = store.get(cell.key) if store and not args.force else None
    if cached and cached.done:
        record, examples = cached, (store.examples(cell.key) if args.examples else [])
    else:
        record, examples = evaluate_cell(cell, batch_size=args.batch_size,
                                         progress=not args.json and sys.stderr.isatty(), extra=extra)
        if store:
            store.put(cell.key, record, examples)
    if args.json:
        out = {**record.to_json(), "key": cell.key}
        if args.examples:
            out["examples"] = examples
        print(json.dumps(out, indent=2))
    else:
        print(results_table([record]))
        for group, metrics in record.groups.items():
            name, m = next(iter(metrics.items()))
            print(f"  {group:22s} {name} = {m.value:.2f} (n={m.n})")
    return 0
