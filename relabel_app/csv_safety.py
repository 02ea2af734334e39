"""Spreadsheet-safe CSV text cells (OWASP "CSV injection"): a cell that a spreadsheet
would read as a formula gets a leading single quote. Every CSV the app writes passes its
free-text cells (notes, names, usernames, categories, model text) through one of the two
forms below; MIDs and numbers never start with these characters, so they are unchanged and
the AudioSet segments CSV stays byte-identical to the official lists."""

from __future__ import annotations

# '=', '+', '-', '@', tab and carriage return start a formula in Excel, LibreOffice and
# Google Sheets (a leading tab or CR is dropped by some importers, exposing what follows).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """The cell text, prefixed with a single quote when it begins like a formula."""
    if value and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def spreadsheet_safe_sql(expr: str) -> str:
    """The same rule as a PostgreSQL expression over a text column (for COPY ... TO)."""
    return (
        f"(CASE WHEN left({expr}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') "
        f"THEN '''' || {expr} ELSE {expr} END)"
    )
