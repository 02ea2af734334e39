"""One way to read an id or a whole number that comes from outside: a URL, a query string,
a form, a JSON body, a command line.

Python's own readers are too kind for that: ``str.isdigit()`` is true for ``"²"`` and
``"٣"``, ``int("٣")`` is 3 (so a MID ``"٣"`` read as label id 3), ``int("²")`` raises, a
5000-digit string passes Python's 4300-digit limit and a 20-digit one PostgreSQL's bigint.
Here only ASCII digits count, the length is bounded by the column's largest value, and the
value must lie within the column's range; anything else is a `BadNumber` whose message
can be shown to the user (a 400 in views and the API, a one-line error in commands)."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import BadRequest
from django.core.management.base import CommandError

BIGINT_MAX = 2**63 - 1  # ids (BigAutoField) and bigint columns
INTEGER_MAX = 2**31 - 1  # integer columns (versions, counts, positions)

_ASCII_DIGITS = re.compile(r"[0-9]+")


class BadNumber(BadRequest, ValueError):
    """Not an id or number in range. A `BadRequest`, so a view that lets it through answers
    400 (relabel_app.errors), and a `ValueError` for plain code."""


def parse_int(value: object, *, name: str = "value", min_value: int = 0,
              max_value: int = BIGINT_MAX) -> int:
    """``value`` (an int or its decimal text in ASCII digits) as an int within
    ``min_value..max_value``, else `BadNumber`."""
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str):
        text = value.strip()
        # The length check comes first: int() of a huge string is slow or raises.
        if len(text) > len(str(max_value)) or not _ASCII_DIGITS.fullmatch(text):
            raise BadNumber(_message(name, min_value, max_value))
        n = int(text)
    else:
        raise BadNumber(_message(name, min_value, max_value))
    if not min_value <= n <= max_value:
        raise BadNumber(_message(name, min_value, max_value))
    return n


def parse_id(value: object, *, name: str = "id", max_value: int = BIGINT_MAX) -> int:
    """A row id (1 .. the column's largest value), else `BadNumber`."""
    return parse_int(value, name=name, min_value=1, max_value=max_value)


def looks_like_id(text: str) -> bool:
    """Whether ``text`` is written as an id (ASCII digits only), in or out of range: where a
    reference may be an id or a name (a label id or a MID, a dataset id or a name)."""
    return _ASCII_DIGITS.fullmatch(text.strip()) is not None


def id_if_in_range(text: str) -> int | None:
    """For a reference written as an id (`looks_like_id`): the id, or None when no row can
    have it (out of the column's range: "no such row", not an error of its own)."""
    try:
        return parse_id(text)
    except BadNumber:
        return None


def optional_id(value: str | None, *, name: str = "id") -> int | None:
    """An optional id parameter: absent or blank is None, anything else must be an id."""
    if value is None or value.strip() == "":
        return None
    return parse_id(value, name=name)


def _message(name: str, min_value: int, max_value: int) -> str:
    return f"{name} must be a whole number from {min_value} to {max_value} (ASCII digits)"


def page_number(value: str | None) -> int:
    """The page a ``?page=`` asks for, read as Django's ``Paginator.get_page`` reads it:
    not a number is the first page; a number that is no page (0, or too large to be one)
    is `INTEGER_MAX`, which the caller clamps to the last page like any page past the end."""
    if value is None or not looks_like_id(value):
        return 1
    try:
        return parse_int(value, name="page", min_value=1, max_value=INTEGER_MAX)
    except BadNumber:
        return INTEGER_MAX


class IntegerFormField(forms.IntegerField):
    """Django's IntegerField reading through `parse_int` (its own ``int()`` takes "٣")."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, str):
            try:
                return parse_int(value, name=str(self.label or "value"),
                                 max_value=self.max_value if self.max_value is not None
                                 else BIGINT_MAX)
            except BadNumber:
                raise forms.ValidationError(self.error_messages["invalid"],
                                            code="invalid") from None
        return super().to_python(value)


class IdModelChoiceField(forms.ModelChoiceField):
    """A ModelChoiceField over a model's id whose choice must be written as an id (Django
    reads "٣" as the row with id 3)."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, str) and not self.to_field_name:
            try:
                value = parse_id(value)
            except BadNumber:
                raise forms.ValidationError(self.error_messages["invalid_choice"],
                                            code="invalid_choice") from None
        return super().to_python(value)


def command_int(value: str, *, name: str, min_value: int = 1,
                max_value: int = BIGINT_MAX) -> int:
    """`parse_int` for a management command's argument: a bad one is a CommandError (exit
    status 1 and one line, not argparse's usage text or a traceback)."""
    try:
        return parse_int(value, name=name, min_value=min_value, max_value=max_value)
    except BadNumber as e:
        raise CommandError(str(e)) from None
