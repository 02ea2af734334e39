"""The API's JSON parser: DRF's, refusing control characters in any string of the body
(relabel_app.text_input: one rule for forms, query strings and JSON)."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from relabel_app.text_input import MESSAGE, has_control_characters


def _strings(data):
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield key
            yield from _strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value)


class TextCheckedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if any(has_control_characters(s) for s in _strings(data)):
            raise ParseError(MESSAGE)
        return data
