"""Number formatting for the audit page: None (a ratio with nothing to divide) shows "–"."""

from django import template

register = template.Library()


@register.filter
def num(value, digits=3):
    if value is None:
        return "–"
    return f"{float(value):.{int(digits)}f}"


@register.filter
def pct(value, digits=1):
    if value is None:
        return "–"
    return f"{100.0 * float(value):.{int(digits)}f}%"


@register.filter
def get(mapping, key):
    return (mapping or {}).get(key, 0)


@register.filter
def thousands(value):
    """12345 -> "12,345"; None -> "–"."""
    if value is None or value == "":
        return "–"
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return value
