"""Exports never write a MID outside the 527 trainable classes: a curated label that is not
trainable (an abstract class accepted before "Add a label" refused them) is left out and
counted, in the result and in the export command's output."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from curation.exports import export_write
from review.decisions import decision_record
from tests.factories import DatasetFactory, UserFactory

from .conftest import MIDS, label, make_clip

pytestmark = pytest.mark.django_db

HUMAN_SOUNDS = "/m/0dgw9r"  # abstract, no class index


@pytest.fixture
def older_data():
    """Clip 0: original Speech plus Human sounds accepted by a reviewer (older data).
    Clip 1: only Human sounds, accepted. Clip 2: original Dog."""
    from relabel_app.models import Label

    abstract = Label.objects.get(mid=HUMAN_SOUNDS)
    assert abstract.index is None and abstract.abstract
    ds = DatasetFactory(name="older")
    reviewer = UserFactory()
    c0 = make_clip(ds, "AAAAAAAAAA0", 0.0, 0, originals=("speech",))
    c1 = make_clip(ds, "BBBBBBBBBB1", 0.0, 1)
    make_clip(ds, "CCCCCCCCCC2", 0.0, 2, originals=("dog",))
    for clip in (c0, c1):
        decision_record(clip=clip, label=abstract, reviewer=reviewer, verdict="accept")
    return ds


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_leaves_out_labels_outside_the_527(older_data, fmt):
    buf = io.BytesIO()
    r = export_write(dataset=older_data, fmt=fmt, policy="keep-original", out=buf)
    text = buf.getvalue().decode()
    assert HUMAN_SOUNDS not in text
    assert r.labels_not_trainable == 2
    # Clip 1 had nothing else: it has no curated label left, so it is left out too.
    assert (r.num_segs, r.num_positive_labels, r.num_unique_labels, r.clips_left_out) == (2, 2, 2, 1)
    if fmt == "csv":
        rows = [x for x in text.splitlines() if not x.startswith("#")]
        assert rows == [f'AAAAAAAAAA0, 0.000, 10.000, "{MIDS["speech"]}"',
                        f'CCCCCCCCCC2, 0.000, 10.000, "{MIDS["dog"]}"']
    else:
        labels = [d["labels"] for d in json.loads(text)["data"]]
        assert labels == [MIDS["speech"], MIDS["dog"]]


def test_export_command_counts_the_left_out_labels(older_data, tmp_path):
    out = io.StringIO()
    path = tmp_path / "older.csv"
    call_command("export", dataset="older", out=str(path), stdout=out)
    assert "2 curated labels left out: not among the 527 trainable classes" in out.getvalue()
    assert HUMAN_SOUNDS not in path.read_text()
    # Without such labels the command says nothing about them.
    decision_record(clip=make_clip(older_data, "DDDDDDDDDD3", 0.0, 3), label=label("siren"),
                    reviewer=UserFactory(), verdict="accept")
    from review.models import Decision

    Decision.objects.filter(label__mid=HUMAN_SOUNDS).delete()
    out = io.StringIO()
    call_command("export", dataset="older", out=str(path), stdout=out)
    assert "left out: not among" not in out.getvalue()
