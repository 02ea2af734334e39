"""Audit honest (issue 21, item 11): Refresh shows progress and the page updates itself
when the snapshot is ready (htmx polling that stops with 286 and reloads the page), and a
Refresh pressed while a debounced refresh waits its two minutes is computed now."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from curation import snapshots
from curation.models import AuditSnapshot
from tests.factories import UserFactory

from .conftest import decide, make_clip, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def audit_ds():
    from relabel_app.models import Dataset

    ds = Dataset.objects.create(name="prog")
    run = make_run(ds, threshold=0.3)
    r = UserFactory(username="prog-r")
    for i in range(3):
        decide(make_clip(ds, f"progprog{i:03d}", 0.0, i, ["dog"]), "dog", r, "accept")
    return ds, run


def test_refresh_is_not_folded_into_a_debounced_wait(audit_ds, client, monkeypatch,
                                                      django_capture_on_commit_callbacks):
    ds, run = audit_ds
    queued: list[tuple[int, float]] = []
    monkeypatch.setattr(snapshots, "_enqueue", lambda sid, countdown: queued.append(
        (sid, countdown)))
    snap = snapshots.audit_snapshot_request(dataset=ds, run=run)
    snapshots.audit_snapshot_compute(snapshot_id=snap.pk)
    with django_capture_on_commit_callbacks(execute=True):
        snapshots.audit_snapshot_after_decision(dataset_id=ds.pk)  # due in 2 minutes
    snap.refresh_from_db()
    assert snap.status == "pending" and queued[-1][1] == 120.0
    assert snap.requested_at > timezone.now() + timedelta(seconds=100)
    client.force_login(UserFactory(username="prog-cur", role="curator"))
    html = client.get(reverse("curation:audit", args=[ds.name]),
                      {"run": run.pk}).content.decode()
    assert "Refresh queued: due in 1" in html  # 119 or 120 s
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("curation:audit_refresh", args=[ds.name]), {"run": run.pk})
    snap.refresh_from_db()
    assert queued[-1] == (snap.pk, 0.0)  # computed now
    assert snap.requested_at <= timezone.now()
    # The debounced message, when it comes after the sooner one was computed, does nothing.
    snapshots.audit_snapshot_compute(snapshot_id=snap.pk)
    snap.refresh_from_db()
    first = snap.computed_at
    assert snap.status == "done"
    assert snapshots.audit_snapshot_compute(snapshot_id=snap.pk).computed_at == first


def test_state_line_polls_until_ready_then_reloads_the_page(audit_ds, client, monkeypatch):
    ds, run = audit_ds
    monkeypatch.setattr(snapshots, "_enqueue", lambda sid, countdown: None)
    client.force_login(UserFactory(username="prog-cur2", role="curator"))
    audit_url = reverse("curation:audit", args=[ds.name])
    html = client.get(audit_url, {"run": run.pk}).content.decode()  # asks for a first one
    state_url = reverse("curation:audit_state", args=[ds.name])
    assert f'hx-get="{state_url}?run={run.pk}&amp;shown="' in html
    assert 'hx-trigger="every 2s"' in html and "waiting for a worker" in html
    r = client.get(state_url, {"run": run.pk, "shown": ""}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and 'hx-trigger="every 2s"' in r.content.decode()
    snap = AuditSnapshot.objects.get(dataset=ds, run=run)
    # Running: how long, against the last computation's time.
    AuditSnapshot.objects.filter(pk=snap.pk).update(
        status="running", started_at=timezone.now() - timedelta(seconds=3),
        compute_seconds=6.0)
    r = client.get(state_url, {"run": run.pk, "shown": ""}, HTTP_HX_REQUEST="true")
    text = r.content.decode()
    assert re.search(r"Computing the audit… [34] s \(the last one took 6\.0 s\)", text)
    assert re.search(r'<progress value="0\.5\d" max="1"', text)  # 3 s of about 6
    AuditSnapshot.objects.filter(pk=snap.pk).update(status="pending")
    snapshots.audit_snapshot_compute(snapshot_id=snap.pk)
    r = client.get(state_url, {"run": run.pk, "shown": ""}, HTTP_HX_REQUEST="true")
    assert r.status_code == 286 and r["HX-Refresh"] == "true"
    assert "hx-trigger" not in r.content.decode()
    # The reloaded page shows the figures and does not poll.
    html = client.get(audit_url, {"run": run.pk}).content.decode()
    assert "Computed at" in html and 'hx-trigger="every 2s"' not in html
    # A page that already shows this snapshot is not reloaded again.
    snap.refresh_from_db()
    shown = re.search(r"shown=([\d.]+)", client.get(audit_url, {"run": run.pk})
                      .content.decode().replace("&amp;", "&"))
    assert shown is None  # the ready page does not poll; its value, as a page would send it:
    from django.template import Context, Template

    shown = Template("{{ t|date:'U.u' }}").render(Context({"t": snap.computed_at}))
    assert re.fullmatch(r"\d{10}\.\d{6}", shown)
    r = client.get(state_url, {"run": run.pk, "shown": shown}, HTTP_HX_REQUEST="true")
    assert r.status_code == 286 and "HX-Refresh" not in r
    # A page showing an older snapshot is reloaded.
    r = client.get(state_url, {"run": run.pk, "shown": "1000000000.000000"},
                   HTTP_HX_REQUEST="true")
    assert r.status_code == 286 and r["HX-Refresh"] == "true"
