"""Logging filters used by settings.LOGGING."""

from __future__ import annotations

import logging


class ClientErrorsOnOneLine(logging.Filter):
    """django.request logs a 403 (PermissionDenied) with the exception's traceback. A user
    opening a page their role does not allow is not a bug: log such 4xx records as one line
    (the request line and the reason) and keep tracebacks for 5xx."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and 400 <= status < 500 and record.exc_info:
            exc = record.exc_info[1]
            reason = str(exc) if exc is not None else ""
            request = getattr(record, "request", None)
            user = getattr(getattr(request, "user", None), "username", "") or "anonymous"
            record.msg = f"{record.getMessage()} [{status}, user {user}]" + (
                f": {reason}" if reason else "")
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True
