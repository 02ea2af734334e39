"""Curation pages are for curators (and admins, superusers): anonymous users are sent to
log in, everyone else gets 403. Uses relabel_app.roles, the project's one role check."""

from __future__ import annotations

from relabel_app.roles import curator_required  # noqa: F401
