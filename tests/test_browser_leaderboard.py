"""The built leaderboard in headless Chromium: sorting, filtering, navigation, no console errors, a screenshot.

Needs Debian's ``chromium`` (``/usr/bin/chromium``) and playwright-python; playwright's own browser download is
never used. Screenshots go to ``test-artifacts/`` (or ``$BIASBOARD_ARTIFACTS``).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from leaderboard_fixtures import EVIL_MODEL, quick_board, write_store

from biasboard.leaderboard.ranking import mean_ranks
from biasboard.leaderboard.site import build

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = os.environ.get("BIASBOARD_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("BIASBOARD_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    records, examples = quick_board()
    write_store(tmp / "results.sqlite", records, examples)
    index = build(tmp / "results.sqlite", tmp / "out")
    return {"index": index, "release": json.loads((tmp / "out" / "release.json").read_text())}


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    errors = []
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("dialog", lambda d: (errors.append(f"dialog opened: {d.message}"), d.dismiss()))
    pg.errors = errors
    yield pg
    context.close()


def column_values(pg, col_id):
    return pg.eval_on_selector_all(
        f'#board tbody tr:not([hidden]) td[data-col="{col_id}"]', "tds => tds.map(td => td.dataset.sort)")


def visible_rows(pg):
    return pg.eval_on_selector_all("#board tbody tr:not([hidden])", "trs => trs.map(tr => tr.dataset.text)")


def test_sort_filter_navigate_without_errors(site, page):
    pg = page
    pg.goto(site["index"].as_uri())
    assert pg.title().startswith("Overview")
    total = len(site["release"]["rows"])
    assert pg.inner_text("#row-count") == f"{total} of {total} rows"

    # the page script computes the same mean ranks as the release
    shown = pg.eval_on_selector_all("#board tbody tr", "trs => trs.map(tr => tr.querySelector('.mr').textContent)")
    expected = [f"{round(r['mean_rank'], 2):g}" for r in site["release"]["rows"]]
    assert shown == expected

    # click a column header: rows ordered by distance from the ideal, best first; click again: worst first
    col = "stereoset:intrasentence"
    pg.click(f'#board thead th[data-col="{col}"]')
    values = [float(v) for v in column_values(pg, col) if v]
    assert values == sorted(values) and len(values) == total
    assert pg.get_attribute(f'#board thead th[data-col="{col}"]', "aria-sort") == "ascending"
    pg.click(f'#board thead th[data-col="{col}"]')
    values = [float(v) for v in column_values(pg, col) if v]
    assert values == sorted(values, reverse=True)

    # sort by model name
    pg.click("#board thead th:first-child")
    names = pg.eval_on_selector_all("#board tbody tr td:first-child", "tds => tds.map(td => td.dataset.sort)")
    assert names == sorted(names, key=str.lower)

    # filter by family: only clm rows remain, and ranks are recomputed among them
    pg.select_option('select[data-filter="family"]', "clm")
    rows = visible_rows(pg)
    assert rows and all("smollm2" in r for r in rows)
    ranks = pg.eval_on_selector_all("#board tbody tr:not([hidden])",
                                    "trs => trs.map(tr => [tr.dataset.text, tr.querySelector('.mr').textContent])")
    clm = [r for r in site["release"]["rows"] if r["family"] == "clm"]
    cols = [c["id"] for c in site["release"]["columns"]]
    matrix = [[r["cells"][c]["badness"] if c in r["cells"] else None for c in cols] for r in clm]
    want = {f"{r['model']} {r['method_label']}": f"{round(m, 2):g}" for r, (m, _) in zip(clm, mean_ranks(matrix))}
    assert dict(ranks) == want and len(want) == 2
    # hand check: none has CrowS 8.9 and SS 11 from ideal, bias_vector 13.3 and 7: ranks (1, 2) and (2, 1)
    assert sorted(want.values()) == ["1.5", "1.5"]

    # filter by axis: the gender-only SEAT column disappears from view
    pg.select_option('select[data-filter="family"]', "")
    pg.select_option('select[data-filter="axis"]', "gender")
    assert pg.is_visible('#board thead th[data-col="seat:mean_pool"]')
    assert not pg.is_visible('#board thead th[data-col="stereoset:intrasentence"]')
    pg.select_option('select[data-filter="axis"]', "")

    # text search, with a hostile model name shown as text
    pg.fill('input[data-filter="text"]', "alert(1)")
    assert visible_rows(pg) and all(EVIL_MODEL in r for r in visible_rows(pg))
    assert pg.locator("#board tbody tr:not([hidden]) td:first-child a").first.inner_text() == EVIL_MODEL
    pg.fill('input[data-filter="text"]', "")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "leaderboard-overview.png"), full_page=True)

    # open a task page from the header link, sort a table there
    pg.click('#board thead th[data-col="crows_pairs:pll_unmodified"] a')
    pg.wait_for_load_state()
    assert pg.url.endswith("tasks/crows_pairs.html")
    assert pg.is_visible("svg.plot.bars")
    pg.screenshot(path=str(ARTIFACTS / "leaderboard-task-crows_pairs.png"), full_page=True)

    # drill into a cell from the task page
    pg.click("table.cells tbody tr:first-child a:text('details')")
    pg.wait_for_load_state()
    assert "/cells/" in pg.url and pg.is_visible("table.examples")
    margins = pg.eval_on_selector_all("table.examples tbody tr td:nth-child(2)", "tds => tds.map(td => +td.dataset.sort)")
    assert margins == sorted(margins, reverse=True)  # most stereotyped pairs first
    assert pg.errors == []
