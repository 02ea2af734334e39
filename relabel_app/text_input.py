"""One rule for control characters in text from a request: refused with a 400 before any
view (or the database) sees them.

PostgreSQL refuses NUL in text (psycopg raises, which was a 500), a lone surrogate from a
JSON ``"\\ud800"`` cannot be encoded to UTF-8 (the same), and the other control characters
have no business in a label reference, a name or a note. Tab, newline and carriage return
stay allowed (a note's textarea sends CRLF). Forms and query strings are checked by
`ControlCharacterMiddleware`; JSON bodies by the API's parser (api.parsers)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse

REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
MESSAGE = "Text with control characters (such as NUL) is not accepted."


class ControlCharacters(BadRequest):
    pass


def has_control_characters(text: str) -> bool:
    return REFUSED.search(text) is not None


def any_control_characters(texts: Iterable[str]) -> bool:
    return any(REFUSED.search(t) for t in texts)


def _form_texts(data) -> Iterable[str]:
    for key, values in data.lists():
        yield key
        yield from (v for v in values if isinstance(v, str))


def check_request_text(request: HttpRequest) -> None:
    """Raise `ControlCharacters` when the path, the query string or a form field has one."""
    texts: list[Iterable[str]] = [(request.path,), _form_texts(request.GET)]
    content_type = request.content_type or ""
    if request.method == "POST" and content_type in ("application/x-www-form-urlencoded",
                                                     "multipart/form-data"):
        texts.append(_form_texts(request.POST))
    if any(any_control_characters(t) for t in texts):
        raise ControlCharacters(MESSAGE)


class ControlCharacterMiddleware:
    """Refuses (400) a request whose path, query or form fields hold control characters;
    the 400 is the error page, or JSON under /api/ (relabel_app.errors)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        check_request_text(request)
        return self.get_response(request)
