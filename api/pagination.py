"""Pagination: cursors (no COUNT, ordered by the primary key) for the big tables (clips,
candidates, decisions); limit/offset for the small ones (datasets, runs, labels)."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination, LimitOffsetPagination


class BigTableCursorPagination(CursorPagination):
    """`?cursor=` from the `next` / `previous` links; `?page_size=` up to 1000.

    Ordered by id: an index every table has, and stable while rows are added (a new row
    gets a larger id, so a walk never sees a row twice)."""

    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class SmallTablePagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000
