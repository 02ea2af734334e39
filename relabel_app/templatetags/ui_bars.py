"""Bars without inline styles (the Content-Security-Policy blocks style="..."): a percentage
becomes a whole number 0..100 that picks a class of static/css/widths.css, ``w-N`` (width)
or ``l-N`` (left offset). ``<span class="w-{{ p.percent|bar_pct }}">``."""

from __future__ import annotations

import math

from django import template

register = template.Library()


@register.filter
def bar_pct(value) -> int:
    """A percentage as a whole number from 0 to 100 (anything unreadable is 0; a value above
    zero shows at least 1, so a started bar is never empty)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return 0
    if math.isnan(x) or x <= 0:
        return 0
    return min(100, max(1, round(x)))
