"""The static site built from a real SQLite store: pages, escaping, no network, intervals, drill-down."""
from __future__ import annotations

import argparse
import json
import re
from html.parser import HTMLParser

import pytest
from leaderboard_fixtures import EVIL_METHOD, EVIL_MODEL, quick_board, stereoset_record, write_store

from biasboard.harness.commands import leaderboard as leaderboard_cmd
from biasboard.leaderboard import plots
from biasboard.leaderboard.release import safe_name
from biasboard.leaderboard.site import build, drill_down


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    records, examples = quick_board()
    write_store(tmp / "results.sqlite", records, examples)
    index = build(tmp / "results.sqlite", tmp / "out")
    return {"index": index, "out": tmp / "out", "records": records, "examples": examples}


def page(site, rel):
    return (site["out"] / rel).read_text()


def test_every_page_is_written(site):
    out = site["out"]
    records = site["records"]
    assert site["index"] == out / "index.html"
    for task in {r["task"] for r in records}:
        assert (out / "tasks" / f"{safe_name(task)}.html").is_file()
    for model in {r["model"] for r in records}:
        assert (out / "models" / f"{safe_name(model)}.html").is_file()
    for method in {r["method"] for r in records}:
        assert (out / "methods" / f"{safe_name(method)}.html").is_file()
    for r in records:
        assert (out / "cells" / f"{safe_name(r['key'])}.html").is_file()
    assert (out / "static" / "board.css").is_file() and (out / "static" / "board.js").is_file()
    assert json.loads((out / "release.json").read_text())["schema"] == "biasboard-release/2"


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts, self.refs, self.handlers = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts.append(attrs.get("src"))
        for name, value in attrs.items():
            if name in ("href", "src") and value:
                self.refs.append(value)
            if name.startswith("on"):
                self.handlers.append((tag, name, value))


def all_pages(site):
    return sorted(site["out"].rglob("*.html"))


def test_hostile_names_render_as_text(site):
    for path in all_pages(site):
        html = path.read_text()
        assert "<script>alert(1)" not in html and "<img src=x" not in html, path
        c = _Collector()
        c.feed(html)
        assert not c.handlers, (path, c.handlers)  # no element got an event-handler attribute
        assert all(src and src.endswith("static/board.js") for src in c.scripts), (path, c.scripts)
    index = page(site, "index.html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index and "&lt;img src=x onerror=alert(2)&gt;" in index


def test_works_offline_from_file_urls(site):
    for path in all_pages(site):
        c = _Collector()
        c.feed(path.read_text())
        external = [r for r in c.refs if re.match(r"^(https?:)?//", r)]
        assert not external, (path, external)
        for ref in c.refs:  # every relative link resolves to a file of the site
            target = (path.parent / ref.split("#")[0]).resolve()
            assert target.exists(), (path, ref)
    css = (site["out"] / "static" / "board.css").read_text()
    assert "@import" not in css and "url(" not in css


def test_overview_has_columns_ranks_and_direction_aware_colours(site):
    html = page(site, "index.html")
    for col in ("crows_pairs", "stereoset", "seat"):
        assert f'data-task="{col}"' in html
    assert "Win rate" in html and "Ranking rule." in html and "degenerate" in html and "utility not measured" in html
    release = json.loads((site["out"] / "release.json").read_text())
    # the 47.8% CrowS cell (below 50) is coloured by its distance 2.2, i.e. the 'at ideal' shade, not as 'low'
    for row in release["rows"]:
        for cid, e in row["cells"].items():
            if cid.startswith("crows_pairs"):
                assert e["shade"] == int(min(4, abs(e["value"] - 50) // 5))
    for f in ("family", "kind", "axis", "task", "q"):
        assert f'data-filter="{f}"' in html
    assert 'class="plot pareto"' in html and "Pareto front" in html


def test_task_page_shows_every_variant_group_interval_and_n(site):
    html = page(site, f"tasks/{safe_name('crows_pairs')}.html")
    assert "Variant <code>pll_unmodified</code>" in html and "Variant <code>causal_sum</code>" in html
    for group in ("gender", "race-color", "religion"):
        assert f"<td data-sort=\"{group}\">{group}</td>" in html
    assert html.count('class="interval"') >= 10 and 'class="plot bars"' in html
    assert "n=30" in html and "n=90" in html
    rec = next(r for r in site["records"] if r["task"] == "crows_pairs")
    lo, hi = rec["metrics"]["stereotype_score"]["ci95"]
    assert f"[{lo:.1f}, {hi:.1f}]" in html


def test_method_page_has_what_it_does(site):
    html = page(site, f"methods/{safe_name('none')}.html")
    assert "Parameters (defaults)" in html and "<dt>Kind</dt>" in html
    evil = page(site, f"methods/{safe_name(EVIL_METHOD)}.html")
    assert "not registered" in evil


def test_cell_page_has_provenance_and_most_stereotyped_first(site):
    rec = next(r for r in site["records"] if r["task"] == "crows_pairs" and r["model"] == EVIL_MODEL)
    html = page(site, f"cells/{safe_name(rec['key'])}.html")
    for label in ("Harness version", "Data sha256", "Weights sha256", "Seed", "Finished"):
        assert f"<dt>{label}</dt>" in html
    assert rec["provenance"]["weights_sha256"] in html and rec["key"] in html
    rows = site["examples"][rec["key"]]
    top = max(rows, key=lambda r: r["sent_more_score"] - r["sent_less_score"])
    first_row = html.split("<tbody>")[-1].split("</tr>")[0]
    assert f">{top['id']}<" in first_row and "counts as stereotyping" in html


def test_drill_down_orders_by_margin_and_caps():
    rows = [{"id": i, "sent_more_score": -10.0 - i, "sent_less_score": -12.0} for i in range(5)]
    dd = drill_down(rows, limit=3)
    # margins: 2, 1, 0, -1, -2 -> ids 0, 1, 2 shown, 5 in total
    assert [r["id"] for r in dd["rows"]] == [0, 1, 2] and dd["total"] == 5
    assert dd["columns"][:2] == ["id", "margin"]
    assert drill_down([])["total"] == 0


def test_pareto_front_hand_worked():
    # (x = distance from ideal, y = utility): (1, 80) and (3, 90) are on the front; (4, 85) is beaten by (3, 90)
    pts = [{"x": 3.0, "y": 90.0}, {"x": 1.0, "y": 80.0}, {"x": 4.0, "y": 85.0}]
    assert plots.pareto_front(pts) == [1, 0]
    svg = str(plots.pareto_svg([dict(p, label="<b>x</b>") for p in pts], x_label="|ss-50|", y_label="lms"))
    assert svg.count("<circle") == 3 and "<b>" not in svg and "&lt;b&gt;" in svg


def test_leaderboard_build_command(site, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    leaderboard_cmd.add_parser(parser.add_subparsers(dest="cmd"))
    store = site["out"].parent / "results.sqlite"
    args = parser.parse_args(["leaderboard", "build", "--store", str(store), "--out", str(tmp_path / "o")])
    assert args.func(args) == 0 and (tmp_path / "o" / "index.html").is_file()
    assert "leaderboard written to" in capsys.readouterr().out
    assert args.func(args) == 0  # same store, same code: the site is kept, and the message says so
    assert "leaderboard unchanged at" in capsys.readouterr().out
    (tmp_path / "o" / ".build-fingerprint").unlink()
    assert args.func(args) == 0 and "leaderboard written to" in capsys.readouterr().out
    args = parser.parse_args(["leaderboard", "build", "--store", str(tmp_path / "missing.sqlite")])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "missing.sqlite").exists()  # a typo must not create an empty store
    (tmp_path / "junk.sqlite").write_text("not a database")
    args = parser.parse_args(["leaderboard", "build", "--store", str(tmp_path / "junk.sqlite")])
    assert args.func(args) == 2
    assert "is not a biasboard results store" in capsys.readouterr().err


def test_groups_that_report_another_metric_are_still_shown(site):
    # SEAT cells report mean_abs_effect_size overall and effect_size per test: the task page charts the latter
    html = page(site, f"tasks/{safe_name('seat')}.html")
    assert "Groups: <code>effect_size</code>" in html and 'class="plot bars"' in html
    assert '<td data-sort="weat6">weat6</td>' in html and "p=0.01" in html


def test_failed_cells_are_listed_not_scored(tmp_path):
    from leaderboard_fixtures import stereoset_record

    from biasboard.harness.store import Store

    ok = stereoset_record("m", "none", 58.0, 80.0)
    write_store(tmp_path / "s.sqlite", [ok], {})
    with Store(tmp_path / "s.sqlite") as store:
        store.put_failure("bad-key", {"model": "<b>m2</b>", "method": "none", "method_params": {}, "task": "seat",
                                      "variant": "mean_pool", "seed": 0}, "ValueError: boom\nTraceback...")
    build(tmp_path / "s.sqlite", tmp_path / "out")
    release = json.loads((tmp_path / "out" / "release.json").read_text())
    assert release["failures"][0]["error"] == "ValueError: boom" and len(release["cells"]) == 1
    html = (tmp_path / "out" / "index.html").read_text()
    assert "1 cell(s) failed" in html and "&lt;b&gt;m2&lt;/b&gt;" in html and "ValueError: boom" in html


def test_downloads_bibtex_and_model_page(site, tmp_path):
    out = site["out"]
    assert (out / "citations.bib").is_file() and 'href="citations.bib"' in page(site, "index.html")
    html = page(site, f"models/{safe_name('zoo:splade-tiny')}.html")
    for label in ("Family", "Parameters", "Source", "Licence"):
        assert f"<dt>{label}</dt>" in html
    # model metadata the run stored is shown with a link to its source
    from leaderboard_fixtures import stereoset_record

    from biasboard.harness.store import Store

    write_store(tmp_path / "s.sqlite", [stereoset_record("zoo:x", "none", 55.0, 80.0)], {})
    with Store(tmp_path / "s.sqlite") as store:
        store.put_plugin_meta("models", "zoo:x", {"family": "mlm", "description": "tiny BERT", "parameters": 4416698,
                                                  "licence": "apache-2.0", "source": {
                                                      "kind": "pypi", "package": "pkg", "version": "0.1",
                                                      "url": "https://pypi.org/project/pkg/0.1/", "hub_id": ""}})
        store.put_plugin_meta("tasks", "stereoset", {"description": "d", "citation": "Nadeem, Bethke, Reddy. "
                              "StereoSet: Measuring stereotypical bias. ACL 2021", "axis": "multiple", "version": "1",
                              "families": [], "variants": {}})
    build(tmp_path / "s.sqlite", tmp_path / "o")
    html = (tmp_path / "o" / "models" / f"{safe_name('zoo:x')}.html").read_text()
    assert "tiny BERT" in html and "4.42M" in html and 'href="https://pypi.org/project/pkg/0.1/"' in html
    assert "apache-2.0" in html
    assert "@inproceedings{nadeem2021stereoset," in (tmp_path / "o" / "citations.bib").read_text()
    assert (tmp_path / "o" / "bib" / "task-stereoset.bib").is_file()
    assert "download .bib" in (tmp_path / "o" / "tasks" / "stereoset.html").read_text()


def test_inline_intervals_of_one_column_share_a_scale(site):
    html = page(site, f"tasks/{safe_name('crows_pairs')}.html")
    table = html.split('<table class="cells sortable">')[1].split("</table>")[0]
    scales = set(re.findall(r'class="interval"[^>]*data-lo="([^"]+)" data-hi="([^"]+)"', table))
    assert len(scales) == 1  # one metric column per variant table here -> one shared [lo, hi]


def test_seat_counts_are_information_not_warnings(tmp_path):
    from leaderboard_fixtures import seat_record

    rec = seat_record("m", "none", 0.5)
    rec["flags"] = {"tests": 10, "permutation_samples": 100000}
    write_store(tmp_path / "s.sqlite", [rec], {})
    build(tmp_path / "s.sqlite", tmp_path / "o")
    assert "⚠ tests" not in (tmp_path / "o" / "index.html").read_text()
    cell = (tmp_path / "o" / "cells" / f"{safe_name(rec['key'])}.html").read_text()
    assert "Run information" in cell and "permutation_samples 100000" in cell and "⚠" not in cell


def test_method_page_shows_paired_effects_against_none(tmp_path):
    """Issue 17: every method page has the method's paired change against `none`, with CI, n and verdict."""
    from biasboard.leaderboard.site import build_site
    from tests.leaderboard_fixtures import crows_examples, crows_record, flip_pairs

    rows = crows_examples(400, 0.75, seed=5)
    moved = flip_pairs(rows, 2)
    none, fix = crows_record("m", "none", rows), crows_record("m", "fix", moved, kind="finetune")
    build_site([none, fix], {none["key"]: rows, fix["key"]: moved}, tmp_path)
    page = (tmp_path / "methods" / "fix.html").read_text()
    assert "Effect against no mitigation" in page and "closer to ideal" in page and ">400<" in page
    assert "Effect against no mitigation" not in (tmp_path / "methods" / "none.html").read_text()


def test_unchanged_store_keeps_the_site_and_any_change_rebuilds_it(tmp_path):
    """A warm `biasboard run` must not spend its time re-rendering an identical board, and must never show a stale
    one: the site is rebuilt when a cell is added or rewritten, and when a build was interrupted."""
    from biasboard.harness.store import Store
    from biasboard.leaderboard.site import FINGERPRINT

    write_store(tmp_path / "s.sqlite", [stereoset_record("zoo:a", "none", 55.0, 80.0)], {})
    index = build(tmp_path / "s.sqlite", tmp_path / "out")
    first = index.stat().st_mtime_ns
    assert (tmp_path / "out" / FINGERPRINT).is_file()
    assert build(tmp_path / "s.sqlite", tmp_path / "out") == index and index.stat().st_mtime_ns == first

    with Store(tmp_path / "s.sqlite") as store:  # a new cell: rebuilt, and the new model is on the board
        rec = stereoset_record("zoo:b", "none", 60.0, 85.0)
        store.put(rec.pop("key"), rec, [])
    build(tmp_path / "s.sqlite", tmp_path / "out")
    assert index.stat().st_mtime_ns != first and "zoo:b" in index.read_text()

    second = index.stat().st_mtime_ns
    (tmp_path / "out" / FINGERPRINT).unlink()  # as a build stopped half-way leaves it
    build(tmp_path / "s.sqlite", tmp_path / "out")
    assert index.stat().st_mtime_ns != second
