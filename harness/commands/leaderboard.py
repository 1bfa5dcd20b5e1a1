"""``biasboard leaderboard build``: render the static site and JSON release from a results store."""
from __future__ import annotations

from pathlib import Path

from biasboard.harness.commands.support import default_store, one_line_errors


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("leaderboard", help="build the static HTML leaderboard")
    sub = p.add_subparsers(dest="leaderboard_cmd", required=True)
    b = sub.add_parser("build", help="render HTML pages and release.json from a results store")
    b.add_argument("--store", default=None, help=f"results store (default: {default_store()})")
    b.add_argument("--out", default=None, help="output folder (default: <store folder>/site)")
    b.set_defaults(func=build)


@one_line_errors
def build(args) -> int:
    from biasboard.harness.plugins import site_builder

    build_site = site_builder()

    store = Path(args.store) if args.store else default_store()
    out = Path(args.out) if args.out else store.parent / "site"
    before = _stamp(out / "index.html")
    index = build_site(store, out)
    if before is not None and _stamp(index) == before:
        # a builder that keeps a site made from the same store content and code leaves index.html untouched
        print(f"leaderboard unchanged at {index}  (built from this store and code already; delete "
              f"{out / '.build-fingerprint'} to force a rebuild)")
    else:
        print(f"leaderboard written to {index}  (open it in a browser; release data: {out / 'release.json'})")
    return 0


def _stamp(path: Path) -> int | None:
    """The file's modification time in nanoseconds, None when it does not exist."""
    return path.stat().st_mtime_ns if path.is_file() else None
