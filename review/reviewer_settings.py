"""Writes of a reviewer's own settings (autoplay)."""

from __future__ import annotations

from .models import ReviewerSettings


def reviewer_settings_update(*, user, autoplay: bool) -> ReviewerSettings:
    settings_row, _ = ReviewerSettings.objects.update_or_create(
        user=user, defaults={"autoplay": autoplay}
    )
    return settings_row
