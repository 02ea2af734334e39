"""Spreadsheet-safe CSV text cells (OWASP "CSV injection"): a cell that a spreadsheet
would read as a formula gets a leading single quote. Every CSV the app writes passes its
free-text cells (notes, names, usernames, categories, model text) through one of the two
forms below; MIDs and numbers never start with these characters, so they are unchanged and
the AudioSet segments CSV stays byte-identical to the official lists."""

from __future__ import annotations

# '=', '+', '-', '@', tab and carriage return start a formula in Excel, LibreOffice and
# Google Sheets (a leading tab or CR is dropped by some importers, exposing what follows).
# Their fullwidth forms too: spreadsheets with East Asian input normalise them to ASCII.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# Invisible characters a spreadsheet drops before reading the cell: "\u200b=1" is "=1".
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"


def spreadsheet_safe(value: str) -> str:
    """The cell text, prefixed with a single quote when it begins like a formula (after
    any zero-width characters)."""
    if value and value.lstrip(ZERO_WIDTH).startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


# The same test as a POSIX regular expression ('-' last in the bracket: a literal).
_FORMULA_RE = "^[" + ZERO_WIDTH + "]*[" + "".join(p for p in FORMULA_PREFIXES if p != "-") + "-]"


def spreadsheet_safe_sql(expr: str) -> str:
    """The same rule as a PostgreSQL expression over a text column (for COPY ... TO)."""
    return f"(CASE WHEN {expr} ~ '{_FORMULA_RE}' THEN '''' || {expr} ELSE {expr} END)"
