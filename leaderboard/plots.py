"""Inline SVG plots (no JavaScript library, no network): a bias-vs-utility Pareto plot and group bar charts.

Every label passes through ``html.escape``; the result is wrapped in ``Markup`` so templates embed it as is.
"""
from __future__ import annotations

import html
import math
from typing import Any

from markupsafe import Markup

from biasboard.leaderboard import ranking


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick positions covering [lo, hi] (steps of 1, 2 or 5 times a power of ten).

    >>> nice_ticks(0, 10)
    [0, 2, 4, 6, 8, 10]
    >>> nice_ticks(26.7, 86.7)  # the last tick reaches past the largest value
    [20, 40, 60, 80, 100]
    """
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while True:
        ticks.append(round(t, 10))
        if t >= hi - step * 1e-9:
            return ticks
        t += step


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def pareto_front(points: list[dict[str, Any]]) -> list[int]:
    """Indices of points no other point beats on both axes (lower x = less bias, higher y = more utility).

    >>> pareto_front([{"x": 1, "y": 1}, {"x": 2, "y": 3}, {"x": 3, "y": 2}, {"x": 0.5, "y": 0.2}])
    [3, 0, 1]
    """
    order = sorted(range(len(points)), key=lambda i: (points[i]["x"], -points[i]["y"]))
    front, best_y = [], -math.inf
    for i in order:
        if points[i]["y"] > best_y:
            front.append(i)
            best_y = points[i]["y"]
    return front


def pareto_svg(points: list[dict[str, Any]], *, x_label: str, y_label: str, width: int = 760,
               height: int = 400) -> Markup:
    """Scatter of (bias distance, utility) per row with the Pareto front drawn; better is up and to the left."""
    points = [p for p in points if p.get("x") is not None and p.get("y") is not None]
    if not points:
        return Markup("")
    ml, mr, mt, mb = 64, 190, 24, 52
    pw, ph = width - ml - mr, height - mt - mb
    xs = [p["x"] for p in points] + [0.0]
    ys = [p["y"] for p in points]
    xt = nice_ticks(min(xs), max(xs) * 1.05 if max(xs) > 0 else 1.0)
    yt = nice_ticks(min(ys), max(ys))
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]
    if y1 == y0:
        y1 = y0 + 1

    def sx(x):
        return ml + (x - x0) / (x1 - x0) * pw

    def sy(y):
        return mt + ph - (y - y0) / (y1 - y0) * ph

    out = [f'<svg class="plot pareto" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'role="img" aria-label="{_esc(y_label)} versus {_esc(x_label)}" xmlns="http://www.w3.org/2000/svg">']
    for t in xt:
        out.append(f'<line class="grid" x1="{sx(t):.1f}" y1="{mt}" x2="{sx(t):.1f}" y2="{mt + ph}"/>'
                   f'<text class="tick" x="{sx(t):.1f}" y="{mt + ph + 16}" text-anchor="middle">{_fmt(t)}</text>')
    for t in yt:
        out.append(f'<line class="grid" x1="{ml}" y1="{sy(t):.1f}" x2="{ml + pw}" y2="{sy(t):.1f}"/>'
                   f'<text class="tick" x="{ml - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    out.append(f'<rect class="frame" x="{ml}" y="{mt}" width="{pw}" height="{ph}"/>')
    out.append(f'<text class="axis-label" x="{ml + pw / 2:.1f}" y="{height - 10}" text-anchor="middle">'
               f'{_esc(x_label)} \u2192 more bias</text>')
    out.append(f'<text class="axis-label" transform="translate(16 {mt + ph / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle">{_esc(y_label)} \u2192 more useful</text>')
    out.append(f'<text class="better" x="{ml + 8}" y="{mt + 16}">\u2196 better</text>')
    front = pareto_front(points)
    if len(front) > 1:
        path = " ".join(f"{sx(points[i]['x']):.1f},{sy(points[i]['y']):.1f}" for i in front)
        out.append(f'<polyline class="front" points="{path}"/>')
    on_front = set(front)
    for i, p in enumerate(points):
        cx, cy = sx(p["x"]), sy(p["y"])
        cls = "pt front-pt" if i in on_front else "pt"
        tip = f"{p['label']}: {x_label} {_fmt(p['x'])}, {y_label} {_fmt(p['y'])}"
        dot = (f'<circle class="{cls}" cx="{cx:.1f}" cy="{cy:.1f}" r="5"><title>{_esc(tip)}</title></circle>'
               f'<text class="pt-label" x="{cx + 8:.1f}" y="{cy + 4:.1f}">{_esc(_short(p["label"]))}</text>')
        out.append(f'<a href="{_esc(p["href"])}">{dot}</a>' if p.get("href") else dot)
    out.append("</svg>")
    return Markup("".join(out))


def _short(label: str, n: int = 30) -> str:
    """Shorten in the middle, so both the model and the method stay recognisable.

    >>> _short("zoo:splade-tiny \u00b7 bias_vector(lam=10)", 20)
    'zoo:splad\u2026or(lam=10)'
    """
    if len(label) <= n:
        return label
    head = (n - 1) // 2
    return label[:head] + "\u2026" + label[len(label) - (n - 1 - head):]


def group_bars_svg(bars: list[dict[str, Any]], *, ideal: float | None, direction: str, unit: str = "",
                   width: int = 620) -> Markup:
    """Horizontal bars per group drawn from the ideal to the value, with the 95% CI as a whisker and n."""
    bars = [b for b in bars if b.get("value") is not None]
    if not bars:
        return Markup("")
    ml, mr, mt, bh = 170, 130, 22, 22
    height = mt + bh * len(bars) + 30
    pw = width - ml - mr
    lo_vals = [b["value"] for b in bars] + [c for b in bars if b.get("ci95") for c in b["ci95"] if c is not None]
    base = ideal if ideal is not None else (0.0 if min(lo_vals) >= 0 else min(lo_vals))
    ticks = nice_ticks(min(lo_vals + [base]), max(lo_vals + [base]))
    x0, x1 = ticks[0], ticks[-1]

    def sx(x):
        return ml + (x - x0) / (x1 - x0) * pw

    bad = [ranking.distance({"value": b["value"], "ideal": ideal, "direction": direction}) for b in bars]
    scale = ranking.shade_scale({"unit": unit, "ideal": ideal, "direction": direction}, bad)
    out = [f'<svg class="plot bars" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
           f'aria-label="per-group values with 95% intervals" xmlns="http://www.w3.org/2000/svg">']
    for t in ticks:
        out.append(f'<line class="grid" x1="{sx(t):.1f}" y1="{mt - 6}" x2="{sx(t):.1f}" y2="{height - 24}"/>'
                   f'<text class="tick" x="{sx(t):.1f}" y="{height - 10}" text-anchor="middle">{_fmt(t)}</text>')
    for i, (b, d) in enumerate(zip(bars, bad)):
        y = mt + i * bh
        v = b["value"]
        left, right = sorted((sx(base), sx(v)))
        shade = ranking.shade(d, scale=scale)
        cls = f"bar shade-{shade}" if shade is not None else "bar"
        ci = b.get("ci95")
        tip = f"{b['label']}: {_fmt(v)}{unit}" + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "") + f", n={b.get('n')}"
        out.append(f'<g><title>{_esc(tip)}</title>'
                   f'<text class="bar-label" x="{ml - 8}" y="{y + 15}" text-anchor="end">{_esc(_short(b["label"], 24))}</text>'
                   f'<rect class="{cls}" x="{left:.1f}" y="{y + 3}" width="{max(right - left, 1):.1f}" height="{bh - 8}"/>')
        if ci and ci[0] is not None and ci[1] is not None:
            a, c = sx(ci[0]), sx(ci[1])
            mid = y + bh / 2 - 1
            out.append(f'<line class="whisker" x1="{a:.1f}" y1="{mid:.1f}" x2="{c:.1f}" y2="{mid:.1f}"/>'
                       f'<line class="whisker" x1="{a:.1f}" y1="{mid - 5:.1f}" x2="{a:.1f}" y2="{mid + 5:.1f}"/>'
                       f'<line class="whisker" x1="{c:.1f}" y1="{mid - 5:.1f}" x2="{c:.1f}" y2="{mid + 5:.1f}"/>')
        out.append(f'<text class="bar-value" x="{ml + pw + 8}" y="{y + 15}">{_fmt(v)}{_esc(unit)} '
                   f'(n={_esc(b.get("n"))})</text></g>')
    if ideal is not None:
        out.append(f'<line class="ideal" x1="{sx(ideal):.1f}" y1="{mt - 10}" x2="{sx(ideal):.1f}" y2="{height - 24}"/>'
                   f'<text class="ideal-label" x="{sx(ideal):.1f}" y="{mt - 12}" text-anchor="middle">'
                   f'ideal {_fmt(ideal)}</text>')
    out.append("</svg>")
    return Markup("".join(out))
