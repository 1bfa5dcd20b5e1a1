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
from leaderboard_fixtures import EVIL_MODEL, quick_board, seat_record, write_store

from biasboard.leaderboard.ranking import win_rates
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
    lone = seat_record("zoo:glove-6b-50d", "none", 1.2, family="wordvec")  # alone in its column, like WEAT
    lone.update(task="weat", variant="caliskan", key="lone-weat-cell")
    write_store(tmp / "results.sqlite", records + [lone], examples)
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
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
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
    assert pg.inner_text("#row-count") == f"{total} of {total} rows shown"

    # default order = the release order (utility tier, then win rate), and the page script shows the same numbers
    texts = pg.eval_on_selector_all("#board tbody tr", "trs => trs.map(tr => tr.dataset.text)")
    assert texts == [f"{r['model']} {r['method_label']} {r['family']} {r['method_kind']}" for r in site["release"]["rows"]]
    shown = pg.eval_on_selector_all("#board tbody tr", "trs => trs.map(tr => tr.querySelector('.mr').textContent)")
    expected = ["\u2013" if r["win_rate"] is None else f"{round(100 * r['win_rate'] + 1e-9, 1):.1f}%"
                for r in site["release"]["rows"]]
    assert shown == expected
    # no rank from a one-row column: the lone WEAT cell says so and its row is unranked
    tip = pg.get_attribute('#board td.metric:not(.empty)[data-col="weat:caliskan"]', "title")
    assert "only row in this column, not ranked" in tip
    assert pg.inner_text("#board tbody tr:last-child .mr") == "\u2013"  # the lone row is unranked, listed last

    # click a column header: rows ordered by distance from the ideal, best first; click again: worst first
    col = "stereoset:intrasentence"
    pg.click(f'#board thead th[data-col="{col}"]')
    values = [float(v) for v in column_values(pg, col) if v]
    assert values == sorted(values) and len(values) == sum(col in r["cells"] for r in site["release"]["rows"])
    assert pg.get_attribute(f'#board thead th[data-col="{col}"]', "aria-sort") == "ascending"
    pg.click(f'#board thead th[data-col="{col}"]')
    values = [float(v) for v in column_values(pg, col) if v]
    assert values == sorted(values, reverse=True)

    # sort by model name
    pg.click("#board thead th:first-child")
    names = pg.eval_on_selector_all("#board tbody tr td:first-child", "tds => tds.map(td => td.dataset.sort)")
    assert names == sorted(names, key=str.lower)

    # filter by family: only clm rows remain, win rates are recomputed among them, the counter follows
    pg.select_option('select[data-filter="family"]', "clm")
    rows = visible_rows(pg)
    assert rows and all("smollm2" in r for r in rows)
    assert pg.inner_text("#row-count") == f"{len(rows)} of {total} rows shown"
    clm = [r for r in site["release"]["rows"] if r["family"] == "clm"]
    cols = [c["id"] for c in site["release"]["columns"] if c["role"] == "bias"]
    matrix = [[r["cells"][c]["badness"] if c in r["cells"] else None for c in cols] for r in clm]
    want = sorted(f"{round(100 * w['win_rate'], 1):.1f}%" for w in win_rates(matrix))
    got = pg.eval_on_selector_all("#board tbody tr:not([hidden])", "trs => trs.map(tr => tr.querySelector('.mr').textContent)")
    assert sorted(got) == want and len(want) == 2
    # columns with no clm value are hidden with the rows
    assert not pg.is_visible('#board thead th[data-col="crows_pairs:pll_unmodified"]')

    # a filter that leaves a row without any value hides it: the SEAT column has no smollm2 row
    pg.select_option('select[data-filter="family"]', "")
    pg.select_option('select[data-filter="task"]', "seat")
    rows = visible_rows(pg)
    assert rows and not any("smollm2" in r for r in rows)
    assert pg.inner_text("#row-count") == f"{len(rows)} of {total} rows shown"
    pg.select_option('select[data-filter="task"]', "")

    # search matches every word, in any order; the state lives in the URL and survives a reload
    pg.fill('input[data-filter="q"]', "bias_vector splade")
    assert visible_rows(pg) and all("splade" in r and "bias_vector" in r for r in visible_rows(pg))
    pg.click('#board thead th[data-col="seat:mean_pool"]')
    before = visible_rows(pg)
    assert "q=bias_vector+splade" in pg.url and "sort=seat" in pg.url
    pg.reload()
    pg.wait_for_load_state()
    assert pg.input_value('input[data-filter="q"]') == "bias_vector splade" and visible_rows(pg) == before
    assert pg.get_attribute('#board thead th[data-col="seat:mean_pool"]', "aria-sort") == "ascending"

    # CSV download of the board: the rows shown, with value, interval and n per column
    with pg.expect_download() as dl:
        pg.click("button.csv")
    csv_text = Path(dl.value.path()).read_text()
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("Model,Method,tier,win_rate_pct") and len(lines) == 1 + len(before)
    assert "zoo:splade-tiny" in lines[1] and "bias_vector(lam=10)" in lines[1]
    pg.fill('input[data-filter="q"]', "")
    pg.click('#board thead th[data-key="rank"]')

    # filter by axis: the gender-only SEAT column disappears from view
    pg.select_option('select[data-filter="family"]', "")
    pg.select_option('select[data-filter="axis"]', "gender")
    assert pg.is_visible('#board thead th[data-col="seat:mean_pool"]')
    assert not pg.is_visible('#board thead th[data-col="stereoset:intrasentence"]')
    pg.select_option('select[data-filter="axis"]', "")

    # text search, with a hostile model name shown as text
    pg.fill('input[data-filter="q"]', "alert(1)")
    assert visible_rows(pg) and all(EVIL_MODEL in r for r in visible_rows(pg))
    assert pg.locator("#board tbody tr:not([hidden]) td:first-child a").first.inner_text() == EVIL_MODEL
    pg.fill('input[data-filter="q"]', "")

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
