"""``biasboard run [MATRIX]``: evaluate a matrix (the quick one by default), cached and resumable."""
from __future__ import annotations

import functools
import sys
from pathlib import Path

from biasboard.harness.commands.support import add_output_args, results_table, store_path

EXECUTORS = {"local": "biasboard.harness.runner:run_local"}


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="evaluate a matrix of models x methods x tasks x seeds (default: the quick matrix)",
                       description="Evaluate every cell of a matrix YAML. Finished cells are read from the store; "
                                   "an interrupted run continues where it stopped.")
    p.add_argument("matrix", nargs="?", help="matrix YAML (default: the packaged quick matrix)")
    add_output_args(p)
    p.add_argument("--force", action="store_true", help="recompute cells even when the store has them")
    p.add_argument("--executor", default="local", help="where cells run: local (default) or ray")
    p.add_argument("--address", default=None, help="Ray cluster address (with --executor ray)")
    p.add_argument("--batch-size", type=int, default=None, help="forward-pass batch size (results do not depend on it)")
    p.add_argument("--no-site", action="store_true", help="do not build the static leaderboard site")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                   help="how long to wait at the end for cells a concurrent run on the same store is computing "
                        "(default: until it finishes them; a dead run's cells are taken over)")
    p.set_defaults(func=run)


def default_matrix() -> Path:
    from biasboard.harness.plugins import packaged_matrix

    return packaged_matrix("quick")


def run(args) -> int:
    from biasboard.harness.fetch import auto_fetch

    with auto_fetch(progress=not args.quiet):  # a missing pinned data file is downloaded while planning
        return _run(args)


def _run(args) -> int:
    from biasboard.harness.errors import BiasboardError
    from biasboard.harness.matrix import Matrix, plan
    from biasboard.harness.progress import CostBar, plan_summary
    from biasboard.harness.runner import record_plugin_meta
    from biasboard.harness.store import Store, check_store_file

    if args.batch_size is not None and args.batch_size < 1:
        raise BiasboardError(f"--batch-size must be a positive integer, got {args.batch_size}")
    matrix = Matrix.load(args.matrix or default_matrix())
    matrix.print_warnings()
    spath = store_path(args)
    if Path(spath).exists():
        check_store_file(Path(spath))  # a file that is not our store is refused before any model is resolved
    cells, skipped = plan(matrix)  # data files are found (or fetched) here, before the store is created
    store = Store(spath)
    for warning in sorted({w for c in cells for w in c.data_warnings}):
        print(f"biasboard: warning: {warning}", file=sys.stderr)
    record_plugin_meta(cells, store)
    opts = matrix.options
    batch_size = args.batch_size or int(opts.get("batch_size", 32))
    estimator = _estimator(cells, store, force=args.force)
    print(f"matrix {matrix.name}: {len(cells)} cells: "
          f"{plan_summary(cells, skipped, store.done_keys(), force=args.force).line(estimator.eta())}",
          file=sys.stderr)
    if args.executor == "local":
        from biasboard.harness.runner import run_local

        summary = run_local(cells, store, force=args.force, batch_size=batch_size, progress=not args.quiet,
                            extra=opts.get("extra"), wait=args.wait, on_cell=estimator.cell_done,
                            bar_class=functools.partial(CostBar, estimator=estimator))
    else:
        import importlib

        try:
            executor = importlib.import_module(f"biasboard.harness.executors.{args.executor}")
        except ImportError:
            raise BiasboardError(f"unknown executor {args.executor!r}; available: local, ray") from None
        summary = executor.run(cells, store, force=args.force, batch_size=batch_size, progress=not args.quiet,
                               extra=opts.get("extra"), address=args.address)
    keys = {c.key for c in cells}
    records = [r for r in store.records(status=None) if r.key in keys]
    print(results_table(records))
    skipped_at_run = getattr(summary, "skipped", [])
    print(f"\n{len(summary.done)} computed, {len(summary.cached)} from cache, {len(summary.failed)} failed"
          + (f", {len(skipped_at_run)} unsupported" if skipped_at_run else "")
          + (f", {len(summary.elsewhere)} computed by a concurrent run" if getattr(summary, "elsewhere", None) else "")
          + (f", {len(summary.running_elsewhere)} still running elsewhere"
             if getattr(summary, "running_elsewhere", None) else "")
          + (" (interrupted: rerun to continue)" if summary.interrupted else ""))
    for key, message in skipped_at_run:
        print(f"  unsupported {key[:12]}: {message}", file=sys.stderr)
    for key, message in summary.failed:
        print(f"  failed {key[:12]}: {message}", file=sys.stderr)
    print(f"results store: {spath}")
    if not args.no_site:
        site = _build_site(spath, (args.out or spath.parent) / "site")
        if site:
            print(f"leaderboard: {site / 'index.html'}")
    if summary.interrupted:
        return 130
    return 1 if summary.failed else 0


def _estimator(cells, store, *, force: bool):
    """The cost-weighted ETA of the cells this run computes, in the order ``run_local`` computes them."""
    from biasboard.harness.progress import build_estimator
    from biasboard.harness.registry import TASKS
    from biasboard.harness.runner import RunSummary, pending_cells

    cached = RunSummary()
    pending = pending_cells(cells, store, force=force, summary=cached)
    info: dict[tuple[str, str], tuple] = {}

    def task_info(cell):
        key = (cell.task, cell.variant)
        if key not in info:
            task_cls = TASKS.get(cell.task)
            info[key] = (task_cls().data_files(cell.variant), bool(getattr(task_cls, "fine_tunes", False)))
        return info[key]

    done = set(cached.cached)
    return build_estimator(pending, [c for c in cells if c.key in done], store.records(status=None), task_info)


def _build_site(spath: Path, out: Path) -> Path | None:
    from biasboard.harness.plugins import site_builder

    site_builder()(spath, out)
    return out
