"""``biasboard data fetch [TASK]``: download original benchmark files (digest-checked) into ``BIASBOARD_DATA_DIR``
when it is writable, else the user cache (``harness.paths.download_dir``)."""
from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="benchmark data files")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    fetch = dsub.add_parser("fetch", help="download the original files of TASK (default: all tasks)")
    fetch.add_argument("task", nargs="?")
    fetch.add_argument("--force", action="store_true", help="download again even when a verified copy exists")
    fetch.set_defaults(func=run_fetch)
    where = dsub.add_parser("where", help="show the folders searched for data")
    where.set_defaults(func=run_where)


def run_fetch(args) -> int:
    from biasboard.harness.data import fetch

    fetch(args.task, force=args.force)
    return 0


def run_where(args) -> int:
    from biasboard.harness.paths import data_dirs

    for d in data_dirs():
        print(d)
    return 0
