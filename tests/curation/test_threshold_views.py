"""The audit page's threshold panel: loaded by htmx, the "Fit thresholds" button (htmx and a
plain form post), the table and the held-out figures, errors, and who may use it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from curation import thresholds as th
from tests.curation.conftest import make_run
from tests.curation.threshold_fixtures import build_synthetic
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def synthetic(db):
    return build_synthetic()


def test_audit_page_loads_the_panel_by_htmx(client, synthetic):
    ds, run, clips, cora = synthetic
    client.force_login(cora)
    html = client.get(reverse("curation:audit", args=[ds.name]), {"run": run.pk}).content.decode()
    url = reverse("curation:thresholds", args=[ds.name]) + f"?run={run.pk}"
    assert f'hx-get="{url}"' in html and 'hx-trigger="load"' in html
    assert f'href="{url}"' in html  # without JavaScript: a link to the panel's page


def _fit_job(run):
    from curation.models import ThresholdFitJob

    return ThresholdFitJob.objects.filter(run=run).order_by("-created_at").first()


def test_fit_button_queues_a_fit_and_the_panel_follows_it(client, synthetic,
                                                          django_capture_on_commit_callbacks,
                                                          monkeypatch):
    from curation import threshold_jobs
    from pipeline.models import ThresholdSet

    ds, run, clips, cora = synthetic
    queued: list[int] = []
    # The broker hop alone is left out here (a real worker: test_threshold_browser.py).
    monkeypatch.setattr(threshold_jobs, "_enqueue", queued.append)
    client.force_login(cora)
    panel = client.get(reverse("curation:thresholds", args=[ds.name]), {"run": run.pk}, **HX)
    text = panel.content.decode()
    assert "No threshold set for this run's CLAP model yet" in text
    assert "Fit thresholds</button>" in text
    assert "at least 3 accepted and 3 rejected decisions" in text
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(reverse("curation:thresholds_fit", args=[ds.name]),
                        {"run": run.pk, "min_decisions": 10}, **HX)
    assert r.status_code == 200
    job = _fit_job(run)
    assert queued == [job.pk] and job.status == "pending" and job.requested_by == cora
    assert not ThresholdSet.objects.exists()  # nothing fitted inside the request
    text = r.content.decode()
    poll = (f'hx-get="{reverse("curation:thresholds", args=[ds.name])}?run={run.pk}'
            f'&amp;job={job.pk}" hx-trigger="every 1s"')
    assert poll in text and "waiting for a worker" in text
    assert "Fit thresholds</button>" in text and " disabled>Fit thresholds" in text
    # A second press while it is pending starts nothing, and says so.
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(reverse("curation:thresholds_fit", args=[ds.name]),
                        {"run": run.pk, "min_decisions": 10}, **HX)
    assert "is already queued" in r.content.decode()
    assert "this press did not start another" in r.content.decode()
    assert queued == [job.pk] and _fit_job(run).pk == job.pk
    # Polled while pending: 200 and still polling.
    url = reverse("curation:thresholds", args=[ds.name])
    r = client.get(url, {"run": run.pk, "job": job.pk}, **HX)
    assert r.status_code == 200 and 'hx-trigger="every 1s"' in r.content.decode()

    threshold_jobs.threshold_fit_job_run(job_id=job.pk)  # what the worker runs
    job.refresh_from_db()
    ts = ThresholdSet.objects.get()
    assert job.status == "done" and job.threshold_set == ts
    r = client.get(url, {"run": run.pk, "job": job.pk}, **HX)
    assert r.status_code == 286  # htmx stops polling
    text = r.content.decode()
    assert 'hx-trigger="every 1s"' not in text
    assert ts.created_by == cora and ts.min_decisions == 10
    assert "Threshold set thr v1 fitted." in text
    assert "<strong>0.5000</strong>" in text  # the global threshold
    # Rows: class, decisions, accepted, threshold, F1.
    assert ("<td>Speech <code class=\"small\">/m/09x0r</code></td><td>19</td><td>10</td>"
            "<td>0.5000</td><td>1.000</td>") in text
    assert ("<td>Dog <code class=\"small\">/m/0bt9lr</code></td><td>19</td><td>16</td>"
            "<td>0.2000</td><td>1.000</td>") in text
    # Siren: 12 decisions, none accepted: refused its own threshold, with the reason.
    assert ("<td>Siren <code class=\"small\">/m/03kmc9</code></td><td>12</td><td>0</td>"
            "<td>12</td><td>0 accepted and 12 rejected: a threshold needs at least 3 "
            "accepted and 3 rejected decisions</td>") in text
    ev = ts.evaluation
    assert f"<td>{ev['per_class']['f1']:.3f}</td>" in text
    assert f"apply_thresholds --run {run.pk} --set thr@1" in text
    # A duplicate message finds the job done and does nothing.
    threshold_jobs.threshold_fit_job_run(job_id=job.pk)
    assert ThresholdSet.objects.count() == 1
    # The full page (no htmx) shows the same panel.
    page = client.get(reverse("curation:thresholds", args=[ds.name]), {"run": run.pk})
    assert "<title>Thresholds of thr" in page.content.decode()
    assert "Threshold set <strong>thr v1</strong>" in page.content.decode()


def test_plain_post_redirects_to_the_audit(client, synthetic, monkeypatch):
    from curation import threshold_jobs

    monkeypatch.setattr(threshold_jobs, "_enqueue", lambda job_id: None)
    ds, run, clips, cora = synthetic
    client.force_login(cora)
    r = client.post(reverse("curation:thresholds_fit", args=[ds.name]),
                    {"run": run.pk, "min_decisions": 10})
    assert r.status_code == 302
    assert r["Location"] == reverse("curation:audit", args=[ds.name]) + f"?run={run.pk}#thresholds"
    threshold_jobs.threshold_fit_job_run(job_id=_fit_job(run).pk)
    assert th.threshold_set_by_name("thr").version == 1


def test_errors_are_shown_and_nothing_is_stored(client, synthetic, monkeypatch):
    from curation import threshold_jobs
    from pipeline.models import ThresholdSet

    monkeypatch.setattr(threshold_jobs, "_enqueue", lambda job_id: None)
    ds, run, clips, cora = synthetic
    client.force_login(cora)
    empty = make_run(ds)
    r = client.post(reverse("curation:thresholds_fit", args=[ds.name]),
                    {"run": empty.pk, "min_decisions": 10}, **HX)
    job = _fit_job(empty)
    threshold_jobs.threshold_fit_job_run(job_id=job.pk)
    r = client.get(reverse("curation:thresholds", args=[ds.name]),
                   {"run": empty.pk, "job": job.pk}, **HX)
    assert "Thresholds not fitted:" in r.content.decode()
    assert "no decided candidates" in r.content.decode()
    r = client.post(reverse("curation:thresholds_fit", args=[ds.name]),
                    {"run": run.pk, "min_decisions": 0}, **HX)
    assert "Thresholds not fitted: min_decisions" in r.content.decode()
    assert not ThresholdSet.objects.exists()
    ext = make_run(ds, kind="external")
    r = client.get(reverse("curation:thresholds", args=[ds.name]), {"run": ext.pk}, **HX)
    assert "is an external label set" in r.content.decode()


def test_reviewers_may_not(client, synthetic):
    from pipeline.models import ThresholdSet

    ds, run, clips, cora = synthetic
    client.force_login(UserFactory(username="tv-rev"))
    assert client.get(reverse("curation:thresholds", args=[ds.name])).status_code == 403
    r = client.post(reverse("curation:thresholds_fit", args=[ds.name]),
                    {"run": run.pk, "min_decisions": 10})
    assert r.status_code == 403
    assert not ThresholdSet.objects.exists()
