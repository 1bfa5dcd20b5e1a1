"""``biasboard`` command line: one module per subcommand under ``harness.commands``.

Exit codes: 0 success, 1 a failure the command reports (failed cells, a regression), 2 usage or data errors
(printed as one clear message, never a traceback).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
import sys

from biasboard.harness.errors import BiasboardError

COMMAND_MODULES = [
    "biasboard.harness.commands.run",
    "biasboard.harness.commands.eval",
    "biasboard.harness.commands.list",
    "biasboard.harness.commands.models",
    "biasboard.harness.commands.data",
    "biasboard.harness.commands.leaderboard",
    "biasboard.harness.commands.regress",
    "biasboard.harness.commands.baseline",
    "biasboard.harness.commands.analyze",
    "biasboard.harness.commands.submission",
]


def build_parser() -> argparse.ArgumentParser:
    import biasboard.harness as harness

    parser = argparse.ArgumentParser(
        prog="biasboard",
        description="Benchmark social bias in language models (and spurious correlations in vision models), and the "
                    "methods that mitigate it. Results are cached: rerunning only computes what is missing.")
    parser.add_argument("--version", action="version", version=f"biasboard {harness.__version__}")
    parser.add_argument("--include", action="append", default=[], metavar="PATH",
                        help="import method/task adapters from a folder or file before running (repeatable)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        from biasboard.harness.registry import include_path

        for path in args.include:
            include_path(path)
        return int(args.func(args) or 0)
    except BiasboardError as exc:
        print(f"biasboard: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except sqlite3.DatabaseError as exc:  # a store that passed the open checks but is damaged further in
        print(f"biasboard: error: results store: {exc} (the file may be truncated or corrupt)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("biasboard: interrupted; finished cells are saved, rerun to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
