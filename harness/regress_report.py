"""Render a regression report as plain text (terminal), Markdown (pull-request comment) or JUnit XML (CI)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from biasboard.harness.regress import Finding, Report

ORDER = ("regression", "missing_cell", "missing_metric", "not_comparable", "improvement", "unchanged", "new_cell")
TITLES = {"regression": "Regressions", "missing_cell": "Missing cells", "missing_metric": "Missing metrics",
          "not_comparable": "Not comparable (other sample, data or n than the baseline; not judged)",
          "improvement": "Improvements", "unchanged": "Unchanged", "new_cell": "New cells (not in the baseline)"}
VERDICTS = {0: "PASS", 1: "FAIL (regression)", 2: "INCOMPLETE (missing data)",
            3: "NOT COMPARABLE (no regression found; some cells ran on other data than the baseline)"}


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def summary(report: Report) -> str:
    c = report.counts()
    return (f"biasboard regress {VERDICTS[report.exit_code]}: {c['regression']} regression(s), "
            f"{c['improvement']} improvement(s), {c['unchanged']} unchanged, "
            f"{c['missing_cell'] + c['missing_metric']} missing, {c['not_comparable']} not comparable, "
            f"{c['new_cell']} new cell(s)")


def method_note(report: Report) -> str:
    """The statistics behind the verdicts, stated once per report."""
    return (f"significance: paired bootstrap over matched examples (95% interval); p-values Holm-corrected across "
            f"the {report.n_tests} paired comparison(s) of this report (family-wise alpha 0.05); metrics without "
            f"per-example rows on both sides: unpaired, tolerance only (no interval shown)")


def _change(f: Finding) -> str:
    """The change with the interval that belongs to it: the paired interval for a paired change, none otherwise."""
    if f.change is None:
        return "-"
    if f.test == "paired_bootstrap" and f.ci95:
        return f"{f.change:+.4g} [95% CI {_num(f.ci95[0])}, {_num(f.ci95[1])}]"
    return f"{f.change:+.4g} (no interval)"


def _ideal(f: Finding) -> str:
    if f.direction == "target":
        return f"ideal {_num(f.ideal)}"
    return {"max": "higher is better", "min": "lower is better"}.get(f.direction, "")


def _test(f: Finding) -> str:
    if f.test == "paired_bootstrap":
        holm = f", Holm p={f.p_holm:.3g}" if f.p_holm is not None else ""
        return f"paired bootstrap, n={f.n_paired}{holm}"
    return "unpaired: tolerance only" if f.test else ""


def render_text(report: Report, *, verbose: bool = False) -> str:
    lines = [summary(report), f"baseline: {report.baseline_path}   store: {report.store_path}", method_note(report)]
    for status in ORDER:
        items = report.of(status)
        if not items or (status in ("unchanged", "new_cell") and not verbose):
            continue
        lines.append("")
        lines.append(f"{TITLES[status]} ({len(items)}):")
        for f in items:
            if f.status == "not_comparable":
                lines.append(f"  {f.cell}  {f.metric}: {_num(f.baseline)} -> {_num(f.current)}; {f.reason}")
            elif f.metric and f.current is not None:
                lines.append(f"  {f.cell}  {f.metric}: {_num(f.baseline)} -> {_num(f.current)} ({_ideal(f)}); "
                             f"change in distance {_change(f)}, tolerance {_num(f.tolerance)}, {_test(f)}")
                lines.append(f"      {f.reason}")
            else:
                lines.append(f"  {f.cell}{'  ' + f.metric if f.metric else ''}: {f.reason}")
    if not verbose and (report.of("unchanged") or report.of("new_cell")):
        lines.append("")
        lines.append("(unchanged metrics and new cells are listed with --verbose)")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """Escape text for a Markdown table cell (pipes, HTML and newlines)."""
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
            .replace("\n", " "))


def render_markdown(report: Report) -> str:
    icon = {0: ":white_check_mark:", 1: ":x:", 2: ":warning:", 3: ":warning:"}[report.exit_code]
    out = [f"### {icon} {_md(summary(report))}", "", f"> {_md(method_note(report))}", ""]
    header = ["| Cell | Metric | Baseline | Current | Ideal | Change in distance [95% CI] | Tolerance | Test |",
              "|---|---|---:|---:|---|---:|---:|---|"]

    def table(items):
        rows = [f"| {_md(f.cell)} | {_md(f.metric)} | {_num(f.baseline)} | {_num(f.current)} | {_md(_ideal(f))} | "
                f"{_md(_change(f))} | {_num(f.tolerance)} | {_md(_test(f))} |" for f in items]
        return header + rows

    for status in ORDER:
        items = report.of(status)
        if not items:
            continue
        title = f"{TITLES[status]} ({len(items)})"
        if status in ("missing_cell", "new_cell"):
            body = [f"- {_md(f.cell)}: {_md(f.reason)}" for f in items]
        elif status == "not_comparable":
            body = [f"- {_md(f.cell)} {_md(f.metric)}: {_num(f.baseline)} -> {_num(f.current)}; {_md(f.reason)}"
                    for f in items]
        else:
            body = table(items)
        if status in ("regression", "missing_cell", "missing_metric", "not_comparable"):
            out += [f"#### {title}", "", *body, ""]
        else:
            out += [f"<details><summary>{title}</summary>", "", *body, "", "</details>", ""]
    out.append("Positive change = farther from the metric's ideal. A regression needs change > tolerance and, "
               "with per-example scores, a paired bootstrap 95% interval above 0 and a Holm-adjusted p below 0.05.")
    return "\n".join(out) + "\n"


def render_junit(report: Report) -> str:
    """One test case per baseline metric (missing cells count as errors); new cells go to system-out."""
    cases = [f for f in report.findings if f.status != "new_cell"]
    suite = ET.Element("testsuite", name="biasboard-regress", tests=str(len(cases)),
                       failures=str(len(report.of("regression"))),
                       errors=str(len(report.of("missing_cell")) + len(report.of("missing_metric"))),
                       skipped=str(len(report.of("not_comparable"))))
    for f in cases:
        task, _, rest = f.cell.partition(" \u00b7 ")
        case = ET.SubElement(suite, "testcase", classname=task, name=f"{rest} \u00b7 {f.metric or '(cell)'}")
        detail = (f"{f.metric}: {_num(f.baseline)} -> {_num(f.current)} ({_ideal(f)}); change in distance "
                  f"{_change(f)}, tolerance {_num(f.tolerance)}, {_test(f)}. {f.reason}")
        if f.status == "regression":
            ET.SubElement(case, "failure", message=f"regression: {f.metric}", type="regression").text = detail
        elif f.status in ("missing_cell", "missing_metric"):
            ET.SubElement(case, "error", message=f.status.replace("_", " "), type=f.status).text = f.reason
        elif f.status == "not_comparable":
            ET.SubElement(case, "skipped", message=f"not comparable: {f.reason}")
        else:
            ET.SubElement(case, "system-out").text = f"{f.status}: {detail}"
    new = report.of("new_cell")
    if new:
        ET.SubElement(suite, "system-out").text = "new cells not in the baseline:\n" + "\n".join(f.cell for f in new)
    root = ET.Element("testsuites", name="biasboard")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


RENDERERS = {"text": render_text, "markdown": render_markdown, "junit": render_junit}
