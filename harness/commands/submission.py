"""``biasboard new-method NAME``, ``biasboard validate PATH``, ``biasboard submit PATH``: the submission workflow.

Exit codes: 0 success, 1 a failed check / failed cell (or, with ``--strict``, a gate regression), 2 usage errors.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
from importlib import resources
from pathlib import Path

from biasboard.harness.commands.support import one_line_errors
from biasboard.harness.commands.support import add_output_args, store_path
from biasboard.harness.errors import BiasboardError

TEMPLATE_NAME, TEMPLATE_CLASS = "my_method", "MyMethod"


def add_parser(sub) -> None:
    p = sub.add_parser("new-method", help="start a method submission from the template",
                       description="Copy submissions/_template to DIR/NAME with the names filled in.")
    p.add_argument("name", help="method name: lowercase letters, digits and underscores")
    p.add_argument("--dir", type=Path, default=Path("submissions"), help="parent folder (default: ./submissions)")
    p.set_defaults(func=new_method)

    p = sub.add_parser("validate", help="check a method submission (manifest, hooks, smoke run, determinism, ...)",
                       description="Print a checklist, one line per check with the reason. Submission code runs in a "
                                   "subprocess with a time limit, offline. Exit 0 all passed, 1 a check failed, "
                                   "2 usage error.")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="submission folder(s), e.g. submissions/NAME")
    p.add_argument("--timeout", type=float, default=None, help="seconds for the whole check (default: 900)")
    p.add_argument("--no-smoke", action="store_true", help="skip the smoke runs (static and import checks only)")
    p.add_argument("--json", action="store_true", help="print the checklist as JSON")
    p.set_defaults(func=validate)

    p = sub.add_parser("submit", help="run the official cells for a method and write the submission report",
                       description="Validate, run the official matrix's cells for the method next to none and the "
                                   "reference methods (cached and resumable), then write report.md (for the pull "
                                   "request) and report.json.")
    p.add_argument("path", type=Path, help="submission folder, e.g. submissions/NAME")
    p.add_argument("--matrix", type=Path, default=None, help="matrix YAML (default: leaderboard/matrices/official.yaml)")
    p.add_argument("--report-dir", type=Path, default=None, help="where to write the report (default: OUT/submissions/NAME)")
    p.add_argument("--no-validate", action="store_true", help="skip `biasboard validate` before running")
    p.add_argument("--timeout", type=float, default=None, help="seconds for the validation step (default: 900)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--strict", action="store_true", help="exit 1 when the gate finds a regression against none")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_output_args(p)
    p.set_defaults(func=submit)


@one_line_errors
def new_method(args) -> int:
    from biasboard.harness.registry import METHODS

    name = args.name
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise BiasboardError(f"method name {name!r}: use lowercase letters, digits and underscores, starting "
                             f"with a letter")
    if name in METHODS:
        raise BiasboardError(f"a method named {name!r} is already registered; choose another name")
    target = args.dir / name
    if target.exists():
        raise BiasboardError(f"{target} already exists")
    template = Path(str(resources.files("biasboard.submissions") / "_template"))  # package data, found by name
    cls_name = "".join(part.capitalize() for part in name.split("_"))
    target.mkdir(parents=True)
    for src in sorted(template.iterdir()):
        if src.is_file() and src.suffix in (".py", ".yaml", ".md"):
            text = src.read_text().replace(TEMPLATE_CLASS, cls_name).replace(TEMPLATE_NAME, name)
            (target / src.name).write_text(text)
    print(f"created {target}/ ({', '.join(sorted(p.name for p in target.iterdir()))})\n"
          f"next: edit {target / '__init__.py'} and {target / 'manifest.yaml'}, then\n"
          f"  biasboard validate {target}\n  biasboard submit {target}")
    return 0


@one_line_errors
def validate(args) -> int:
    from biasboard.harness.submission import DEFAULT_TIMEOUT, validate_many

    checklists = validate_many(args.paths, timeout=args.timeout or DEFAULT_TIMEOUT, smoke=not args.no_smoke)
    if args.json:
        print(json.dumps([c.to_json() for c in checklists], indent=2))
    else:
        print("\n\n".join(c.render() for c in checklists))
    return 0 if all(c.passed for c in checklists) else 1


def official_matrix() -> Path:
    from biasboard.harness.plugins import packaged_matrix

    return packaged_matrix("official")


def import_method(folder: Path, name: str):
    """Import a submission folder in this process and return its registered class."""
    import importlib
    import inspect

    from biasboard.harness.registry import METHODS, include_path
    from biasboard.harness.submission_worker import _dotted_name

    dotted = _dotted_name(folder.resolve())
    if dotted:
        importlib.import_module(dotted)
    elif name not in METHODS:
        include_path(folder)
    cls = METHODS.get(name)
    if folder.resolve() not in Path(inspect.getfile(cls)).resolve().parents:
        raise BiasboardError(f"a different method named {name!r} is already registered (by {cls.__module__}); "
                             f"rename yours")
    return cls


@one_line_errors
def submit(args) -> int:
    from biasboard.harness.sandbox import guarded
    from biasboard.harness.submission import DEFAULT_TIMEOUT, load_manifest, validate

    folder = args.path
    if not folder.is_dir():
        raise BiasboardError(f"{folder}: not a folder; expected a submission folder such as submissions/NAME")
    manifest = load_manifest(folder)
    name = manifest["name"]
    if not args.no_validate:
        checklist = validate(folder, timeout=args.timeout or DEFAULT_TIMEOUT)
        print(checklist.render(), file=sys.stderr)
        if not checklist.passed:
            print(f"biasboard: {folder} did not validate; fix the FAIL lines above, then submit again", file=sys.stderr)
            return 1
    with guarded():  # the official cells run offline too; unsafe torch.load is refused
        return _run_official(args, folder, manifest)


def _run_official(args, folder: Path, manifest: dict) -> int:
    from dataclasses import replace

    from biasboard.harness.matrix import Matrix, MethodSpec, plan
    from biasboard.harness.runner import record_plugin_meta, run_local
    from biasboard.harness.store import Store
    from biasboard.harness.submission_report import build_report, render_report_markdown

    name = manifest["name"]
    import_method(folder, name)
    matrix = Matrix.load(args.matrix or official_matrix())
    references = [m.name for m in matrix.methods if m.name != name]
    if "none" not in references:
        references.insert(0, "none")
    methods = tuple(m for m in matrix.methods if m.name != name)
    methods = ((MethodSpec("none"),) if not any(m.name == "none" for m in methods) else ()) + methods
    matrix = replace(matrix, methods=methods + (MethodSpec(name),))
    cells, skipped = plan(matrix)
    mine = [c for c in cells if c.method.name == name]
    wanted = {(c.model.spec.id, c.task, c.variant, c.seed) for c in mine}
    cells = [c for c in cells if c.method.name == name or (c.model.spec.id, c.task, c.variant, c.seed) in wanted]
    if not mine:
        reasons = "; ".join(sorted({s.reason for s in skipped if s.method.startswith(name)}))
        raise BiasboardError(f"the matrix {matrix.name!r} has no cell {name} can run ({reasons or 'no pairing'})")
    spath = store_path(args)
    store = Store(spath)
    record_plugin_meta(cells, store)
    opts = matrix.options
    print(f"submit {name}: {len(mine)} cells for the method, {len(cells) - len(mine)} reference cells "
          f"(matrix {matrix.name}; finished cells come from {spath})", file=sys.stderr)
    summary = run_local(cells, store, batch_size=args.batch_size or int(opts.get("batch_size", 32)),
                        n_bootstrap=int(opts.get("n_bootstrap", 1000)), progress=not args.quiet,
                        extra=opts.get("extra"))
    keys = {c.key for c in cells}
    records = [r for r in store.records(status=None) if r.key in keys]
    doc = build_report(method=name, manifest=manifest, references=references, records=records,
                       examples=store.examples, matrix=str(args.matrix or "leaderboard/matrices/official.yaml"),
                       store=str(spath), failed=summary.failed)
    out = args.report_dir or (spath.parent / "submissions" / name)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    (out / "report.md").write_text(render_report_markdown(doc))
    print(f"{len(summary.done)} computed, {len(summary.cached)} from cache, {len(summary.failed)} failed")
    print(f"regression gate vs none: {doc['gate']['summary'] or doc['gate']['verdict']}")
    print(f"report: {out / 'report.md'} and {out / 'report.json'}")
    if summary.interrupted:
        return 130
    if summary.failed or (args.strict and doc["gate"]["exit_code"] == 1):
        return 1
    return 0
