"""Inline SVG charts rendered on the server: no JavaScript library, no request leaving the
machine. Every text that comes from data is escaped; each function returns safe markup."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#2456c9", "#e07b39", "#1f8a4c", "#9b59b6", "#c0392b", "#7f8c8d", "#b7791f")
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


@dataclass
class Series:
    name: str
    values: Sequence[float | None]
    color: str = ""


def _fmt(v: float) -> str:
    if v == int(v):
        return f"{int(v):,}"
    return f"{v:.2f}"


def _nice_max(v: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``v`` (the axis end):
    42 -> 50, 7.3 -> 10, 0.31 -> 0.5."""
    if v <= 0:
        return 1.0
    for exp in range(-3, 10):
        for step in (1, 2, 2.5, 5):
            m = step * 10**exp
            if m >= v:
                return m
    return v


def nice_ticks(lo: float, hi: float, *, target: int = 5) -> list[float]:
    """About ``target`` intervals between ``lo`` and ``hi`` on round values: a step of 1, 2,
    2.5 or 5 times a power of ten, the ends rounded out to it (-0.0663..0.4123 ->
    -0.1, 0, 0.1, ... 0.5), so labels need only the step's decimals."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / target
    step = raw
    for exp in range(-9, 16):
        found = next((m * 10.0**exp for m in (1, 2, 2.5, 5) if m * 10.0**exp >= raw * (1 - 1e-9)),
                     None)
        if found is not None:
            step = found
            break
    start = math.floor(lo / step + 1e-9) * step
    end = math.ceil(hi / step - 1e-9) * step
    n = int(round((end - start) / step))
    return [round(start + i * step, 12) + 0.0 for i in range(n + 1)]


def tick_labels(values: Sequence[float], *, min_decimals: int = 0,
                max_decimals: int = 6) -> list[str]:
    """Labels for axis ticks with thousands separators and just enough decimals that no two
    distinct values read the same ("0.050, 0.052, 0.054", not "0.05, 0.05, 0.05") and none
    is rounded ("12.5", not "12")."""
    distinct = {round(v, max_decimals) for v in values}
    for d in range(min_decimals, max_decimals + 1):
        labels = [f"{v:,.{d}f}" for v in values]
        exact = all(abs(round(v, d) - v) < 1e-9 * max(1.0, abs(v)) for v in values)
        if exact and len(set(labels)) == len(distinct):
            return labels
    return [f"{v:,.{max_decimals}f}" for v in values]


def _svg(width: int, height: int, title: str, body: list[str]) -> SafeString:
    t = escape(title)
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{t}" class="chart">'
        f"<title>{t}</title>" + "".join(body) + "</svg>"
    )


def _legend(series: Sequence[Series], x: int, y: int) -> list[str]:
    out = []
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        yy = y + i * 16
        out.append(f'<rect x="{x}" y="{yy - 9}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{x + 14}" y="{yy}" {FONT}>{escape(s.name)}</text>')
    return out


def grouped_bars(categories: Sequence[str], series: Sequence[Series], *, title: str,
                 x_label: str = "", y_label: str = "", width: int = 620,
                 height: int = 280) -> SafeString:
    """Vertical bars, one group per category, one bar per series."""
    left, right, top, bottom = 52, 190, 24, 42
    pw, ph = width - left - right, height - top - bottom
    vmax = _nice_max(max((v or 0 for s in series for v in s.values), default=0))
    body = [f'<text x="{left}" y="14" {FONT} font-weight="600">{escape(title)}</text>']
    ticks = [vmax * i / 4 for i in range(5)]
    for i, text in enumerate(tick_labels(ticks)):
        y = top + ph - ph * i / 4
        body.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" '
                    'stroke="#e4e7ee"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT}>'
                    f"{escape(text)}</text>")
    n = max(1, len(categories))
    group_w = pw / n
    bar_w = max(1.0, group_w * 0.8 / max(1, len(series)))
    for ci, cat in enumerate(categories):
        gx = left + ci * group_w + group_w * 0.1
        for si, s in enumerate(series):
            v = s.values[ci] if ci < len(s.values) else None
            if not v:
                continue
            h = ph * v / vmax
            color = s.color or PALETTE[si % len(PALETTE)]
            body.append(
                f'<rect x="{gx + si * bar_w:.1f}" y="{top + ph - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{color}"><title>{escape(s.name)}, {escape(cat)}: '
                f"{escape(_fmt(v))}</title></rect>"
            )
        if n <= 30 or ci % max(1, n // 20) == 0:
            body.append(f'<text x="{gx + group_w * 0.4:.1f}" y="{top + ph + 14}" '
                        f'text-anchor="middle" {FONT}>{escape(cat)}</text>')
    body.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" '
                'stroke="#5b6475"/>')
    if x_label:
        body.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle" '
                    f"{FONT}>{escape(x_label)}</text>")
    if y_label:
        body.append(f'<text transform="translate(12 {top + ph / 2:.1f}) rotate(-90)" '
                    f'text-anchor="middle" {FONT}>{escape(y_label)}</text>')
    body += _legend(series, left + pw + 16, top + 10)
    return _svg(width, height, title, body)


def horizontal_bars(items: Sequence[tuple[str, float]], *, title: str, width: int = 620,
                    color: str = PALETTE[0], value_format: str = "{:,}") -> SafeString:
    """One horizontal bar per (label, value), in the order given."""
    left, right, top, row = 250, 60, 26, 20
    height = top + row * max(1, len(items)) + 8
    pw = width - left - right
    vmax = max((v for _, v in items), default=0) or 1
    body = [f'<text x="4" y="14" {FONT} font-weight="600">{escape(title)}</text>']
    for i, (name, v) in enumerate(items):
        y = top + i * row
        w = pw * v / vmax
        short = name if len(name) <= 38 else name[:36] + "…"
        body.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" {FONT}>'
                    f"<title>{escape(name)}</title>{escape(short)}</text>")
        body.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" '
                    f'fill="{color}"/>')
        body.append(f'<text x="{left + w + 4:.1f}" y="{y + 13}" {FONT}>'
                    f"{escape(value_format.format(v))}</text>")
    if not items:
        body.append(f'<text x="{left}" y="{top + 13}" {FONT} fill="#5b6475">no data</text>')
    return _svg(width, height, title, body)


def line_chart(series: Sequence[tuple[Series, Sequence[float]]], *, title: str,
               x_label: str, y_label: str, markers: Sequence[tuple[float, float, str]] = (),
               vlines: Sequence[tuple[float, str, str]] = (), x_range=(0.0, 1.0),
               y_range=(0.0, 1.0), width: int = 460, height: int = 320) -> SafeString:
    """Lines through (x, y) points: ``series`` is [(Series(name, ys), xs)]. ``markers``
    are labelled points (x, y, text); ``vlines`` vertical lines (x, text, color)."""
    # Room on the right for half of the last tick label (it is centred on its tick).
    left, right, top, bottom = 46, 24, 24, 40
    pw, ph = width - left - right, height - top - bottom
    # Axes on round ticks (the ends rounded out), labels with the decimals the step needs.
    xticks, yticks = nice_ticks(*x_range), nice_ticks(*y_range)
    x0, x1 = xticks[0], xticks[-1]
    y0, y1 = yticks[0], yticks[-1]

    def sx(x):
        return left + pw * ((x - x0) / ((x1 - x0) or 1))

    def sy(y):
        return top + ph - ph * ((y - y0) / ((y1 - y0) or 1))

    body = [f'<text x="{left}" y="14" {FONT} font-weight="600">{escape(title)}</text>']
    for fx, xt in zip(xticks, tick_labels(xticks, min_decimals=1), strict=True):
        body.append(f'<line x1="{sx(fx):.1f}" x2="{sx(fx):.1f}" y1="{top}" y2="{top + ph}" '
                    'stroke="#eef0f4"/>')
        body.append(f'<text x="{sx(fx):.1f}" y="{top + ph + 14}" text-anchor="middle" {FONT}>'
                    f"{escape(xt)}</text>")
    for fy, yt in zip(yticks, tick_labels(yticks, min_decimals=1), strict=True):
        body.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(fy):.1f}" y2="{sy(fy):.1f}" '
                    'stroke="#eef0f4"/>')
        body.append(f'<text x="{left - 5}" y="{sy(fy) + 4:.1f}" text-anchor="end" {FONT}>'
                    f"{escape(yt)}</text>")
    body.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
                'stroke="#5b6475"/>')
    for i, (x, text, color) in enumerate(vlines):
        if x is None or not (x0 <= x <= x1):
            continue
        body.append(f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top}" y2="{top + ph}" '
                    f'stroke="{color}" stroke-dasharray="4 3"/>')
        # Labels stagger downwards and sit on the side with more room.
        right_half = sx(x) > left + pw / 2
        anchor, dx = ("end", -4) if right_half else ("start", 4)
        body.append(f'<text x="{sx(x) + dx:.1f}" y="{top + 12 + 14 * i}" text-anchor="{anchor}" '
                    f'{FONT} fill="{color}" paint-order="stroke" stroke="#fff" '
                    f'stroke-width="3">{escape(text)}</text>')
    legend = []
    for i, (s, xs) in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        pts = [(x, y) for x, y in zip(xs, s.values, strict=False) if y is not None]
        if pts:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
            body.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                        'stroke-width="2"/>')
        legend.append(s)
    for x, y, text in markers:
        body.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="5" fill="#c0392b" '
                    f'stroke="#fff"><title>{escape(text)}</title></circle>')
        anchor = "end" if sx(x) > left + pw * 0.6 else "start"
        dx = -8 if anchor == "end" else 8
        body.append(f'<text x="{sx(x) + dx:.1f}" y="{sy(y) - 8:.1f}" text-anchor="{anchor}" '
                    f'{FONT} fill="#c0392b">{escape(text)}</text>')
    body.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle" {FONT}>'
                f"{escape(x_label)}</text>")
    body.append(f'<text transform="translate(11 {top + ph / 2:.1f}) rotate(-90)" '
                f'text-anchor="middle" {FONT}>{escape(y_label)}</text>')
    if len(legend) > 1:
        body += _legend(legend, left + 10, top + ph - 16 * len(legend) + 4)
    return _svg(width, height, title, body)


def interval_bars(items: Sequence[tuple[str, float, float | None, float | None]], *, title: str,
                  width: int = 620, color: str = PALETTE[0]) -> SafeString:
    """One row per (label, value, low, high) on a 0-1 axis: a dot at the value and a bar
    from low to high (a confidence interval), in the order given."""
    left, right, top, row = 250, 60, 40, 16
    height = top + row * max(1, len(items)) + 8
    pw = width - left - right
    body = [f'<text x="4" y="14" {FONT} font-weight="600">{escape(title)}</text>']
    for i, tick in enumerate(("0", "0.25", "0.5", "0.75", "1")):
        x = left + pw * i / 4
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 6}" y2="{height - 8}" '
                    'stroke="#e4e7ee"/>')
        body.append(f'<text x="{x:.1f}" y="{top - 10}" text-anchor="middle" {FONT}>{tick}</text>')
    for i, (name, v, lo, hi) in enumerate(items):
        y = top + i * row + row / 2
        short = name if len(name) <= 38 else name[:36] + "…"
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT}>'
                    f"<title>{escape(name)}</title>{escape(short)}</text>")
        if lo is not None and hi is not None:
            body.append(f'<line x1="{left + pw * lo:.1f}" x2="{left + pw * hi:.1f}" '
                        f'y1="{y:.1f}" y2="{y:.1f}" stroke="{color}" stroke-width="3" '
                        'stroke-opacity="0.45"/>')
        label = f"{v:.2f}" + (f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else "")
        body.append(f'<circle cx="{left + pw * v:.1f}" cy="{y:.1f}" r="3.5" fill="{color}">'
                    f"<title>{escape(name)}: {escape(label)}</title></circle>")
    if not items:
        body.append(f'<text x="{left}" y="{top + 13}" {FONT} fill="#5b6475">no answers yet</text>')
    return _svg(width, height, title, body)
