"""Notes on a clip as a whole (issue 21: "a note on a clip, not only on a decision"): one
per reviewer and clip, written from the clip page through the outbox like a decision,
read by curators on the adjudication page."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from relabel_app.models import Clip

from .models import ClipNote

NOTE_MAX_CHARS = 2000


def clip_note_save(*, clip: Clip, reviewer: AbstractBaseUser, text: str) -> ClipNote | None:
    """Write the reviewer's note on the clip (one statement, so a retried request from the
    outbox is harmless); an empty text removes it. Returns the note, or None when removed."""
    text = text.strip()
    if not text:
        ClipNote.objects.filter(clip=clip, reviewer=reviewer).delete()
        return None
    note = ClipNote(clip=clip, reviewer=reviewer, text=text)
    ClipNote.objects.bulk_create(
        [note], update_conflicts=True, unique_fields=["clip", "reviewer"],
        update_fields=["text", "updated_at"],
    )
    return note


def clip_note_text(*, clip: Clip, reviewer: AbstractBaseUser) -> str:
    """The reviewer's own note on the clip ("" when none): what the clip page's field shows."""
    return (ClipNote.objects.filter(clip=clip, reviewer=reviewer)
            .values_list("text", flat=True).first() or "")


def clip_notes_list(*, clip: Clip) -> list[ClipNote]:
    """Every reviewer's note on the clip, oldest change first (the adjudication page)."""
    return list(ClipNote.objects.filter(clip=clip).select_related("reviewer").order_by("updated_at", "pk"))
