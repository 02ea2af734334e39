"""Export jobs in the UI: per-role access, the Celery task run directly (no worker), the
progress partial, the download."""

from __future__ import annotations

import json

import pytest

from curation.export_jobs import _ProgressWriter, export_job_create, export_job_run
from curation.models import ExportJob
from curation.tasks import export_task


@pytest.fixture(autouse=True)
def _export_dir(settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"
    return settings.EXPORT_DIR


def _job(policy_set, fmt="csv", policy="keep-original"):
    return ExportJob.objects.create(dataset=policy_set.dataset, format=fmt, policy=policy,
                                    created_by=policy_set.users["curator"])


def test_reviewer_gets_403_on_every_export_url(client, policy_set, reviewers):
    job = _job(policy_set)
    export_task.run(job.pk)
    client.force_login(reviewers[0])
    urls = ["/curation/", "/curation/dataset/cur/exports/",
            f"/curation/exports/{job.pk}/progress/", f"/curation/exports/{job.pk}/download/"]
    for url in urls:
        assert client.get(url).status_code == 403, url
    r = client.post("/curation/dataset/cur/exports/", {"format": "csv", "policy": "strict"})
    assert r.status_code == 403
    assert ExportJob.objects.count() == 1


def test_anonymous_is_sent_to_log_in(client, policy_set):
    job = _job(policy_set)
    for url in ("/curation/dataset/cur/exports/", f"/curation/exports/{job.pk}/download/",
                f"/curation/exports/{job.pk}/progress/"):
        r = client.get(url)
        assert r.status_code == 302 and r["Location"].startswith("/accounts/login/"), url


def test_curator_exports_follows_and_downloads(client, policy_set, curator,
                                               django_capture_on_commit_callbacks, _export_dir):
    client.force_login(curator)
    assert client.get("/curation/dataset/cur/exports/").status_code == 200
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = client.post("/curation/dataset/cur/exports/", {"format": "json", "policy": "strict"})
    assert r.status_code == 302
    assert len(callbacks) == 1  # the task is queued after commit; no worker in this test
    job = ExportJob.objects.get()
    assert (job.format, job.policy, job.status, job.created_by) == (
        "json", "strict", "pending", curator)

    # While pending, the row polls.
    r = client.get(f"/curation/exports/{job.pk}/progress/", HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and 'hx-trigger="every 1s"' in r.content.decode()
    assert client.get(f"/curation/exports/{job.pk}/download/").status_code == 404

    assert export_task.run(job.pk) == "done"
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.rows_total) == ("done", 3, 3)
    # On disk the file is named from ids; the download keeps the readable name.
    assert job.path == f"dataset-{job.dataset_id}/export-{job.pk}-json-strict.json"
    assert job.summary["num_segs"] == 3 and job.summary["clips_left_out"] == 2
    assert (_export_dir / job.path).stat().st_size == job.size_bytes

    # Finished: the progress partial stops the polling (286) and shows the link.
    r = client.get(f"/curation/exports/{job.pk}/progress/", HTTP_HX_REQUEST="true")
    assert r.status_code == 286
    html = r.content.decode()
    assert "hx-trigger" not in html and f"/curation/exports/{job.pk}/download/" in html

    r = client.get(f"/curation/exports/{job.pk}/download/")
    assert r.status_code == 200
    assert r["Content-Disposition"].startswith("attachment")
    assert f"cur-json-strict-{job.pk}.json" in r["Content-Disposition"]
    body = b"".join(r.streaming_content)
    assert len(json.loads(body)["data"]) == 3

    # Kept and listed.
    page = client.get("/curation/dataset/cur/exports/").content.decode()
    assert f"cur-json-strict-{job.pk}.json" in page


def test_duplicate_message_does_nothing(policy_set, _export_dir):
    job = _job(policy_set)
    export_job_run(job_id=job.pk)
    job.refresh_from_db()
    finished = job.finished_at
    assert export_task.run(job.pk) == "done"
    job.refresh_from_db()
    assert job.finished_at == finished
    assert export_task.run(10**9) == "missing"
    # Only the finished file is in the folder: no partial file left behind.
    folder = _export_dir / f"dataset-{job.dataset_id}"
    assert [p.name for p in folder.iterdir()] == [job.path.rsplit("/", 1)[-1]]


def test_failure_is_recorded_on_the_job(policy_set, monkeypatch):
    def boom(**kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("curation.exports.export_to_path", boom)
    job = _job(policy_set, fmt="decisions")
    assert export_task.run(job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == "failed" and "disk full" in job.error


def test_service_checks_the_role(policy_set, reviewers):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        export_job_create(dataset=policy_set.dataset, fmt="csv", user=reviewers[0])


def test_broker_down_marks_the_job_failed(policy_set, curator, monkeypatch,
                                          django_capture_on_commit_callbacks):
    def down(*a, **k):
        raise ConnectionError("broker away")

    monkeypatch.setattr(export_task, "delay", down)
    with django_capture_on_commit_callbacks(execute=True):
        job = export_job_create(dataset=policy_set.dataset, fmt="csv", user=curator)
    job.refresh_from_db()
    assert job.status == "failed" and "broker away" in job.error


@pytest.mark.django_db(transaction=True)
def test_progress_is_written_through_its_own_connection():
    """The export holds the default connection until its last row; progress goes through
    another one so a poller sees it while the export runs."""
    from relabel_app.models import Dataset

    ds = Dataset.objects.create(name="prog")
    job = ExportJob.objects.create(dataset=ds, format="csv")
    writer = _ProgressWriter(job.pk)
    try:
        writer(5, 10)
    finally:
        writer.close()
    job.refresh_from_db()
    assert (job.rows_done, job.rows_total) == (5, 10)


def test_export_task_is_routed_to_the_export_queue():
    from relabel_app.celery import app

    route = app.amqp.router.route({}, export_task.name, args=(1,), kwargs={})
    assert export_task.name == "curation.export"
    assert route["queue"].name == "export"


def test_decisions_file_name_has_no_policy(policy_set):
    job = _job(policy_set, fmt="decisions")
    export_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.path == f"dataset-{job.dataset_id}/export-{job.pk}-decisions.csv"
    assert job.file_name == f"cur-decisions-{job.pk}.csv" and job.rows_done == 18
