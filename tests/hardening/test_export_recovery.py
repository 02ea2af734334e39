"""Issue 12, break 6: an export job stuck forever after its worker was killed (kill -9:
the job stayed "running" with 0 rows, a .part file was left, no retry or cancel). Now a
running job beats; a job whose worker is gone is re-queued once, then failed with the
reason; curators can Retry or Cancel; partial files of dead jobs are removed.

The worker tests kill a real Celery worker subprocess (SIGKILL) while its export is held
running by a table lock this test takes, and watch the job recover."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone

from curation.export_jobs import export_job_create, export_job_run, export_jobs_recover
from curation.models import ExportJob
from review.decisions import decision_record
from tests.factories import ClipFactory, DatasetFactory, UserFactory


def _dataset(name: str, n: int = 4):
    from relabel_app.models import Label

    ds = DatasetFactory(name=name)
    rita = UserFactory(role="reviewer")
    speech = Label.objects.get(mid="/m/09x0r")
    for i in range(n):
        clip = ClipFactory(dataset=ds, position=i)
        decision_record(clip=clip, label=speech, reviewer=rita, verdict="accept")
    return ds


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _part(settings, job: ExportJob) -> Path:
    from curation.export_jobs import export_job_relative_path

    target = Path(settings.EXPORT_DIR) / export_job_relative_path(job)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.abcdef123456.part")
    part.write_bytes(b"half")
    return part


@pytest.fixture
def export_dir(settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"
    return settings.EXPORT_DIR


# --- the rule, without a worker ----------------------------------------------------------


@pytest.mark.django_db
def test_silent_job_is_requeued_once_then_failed(export_dir, settings,
                                                  django_capture_on_commit_callbacks):
    ds = _dataset("recsilent")
    old = timezone.now() - timedelta(seconds=settings.EXPORT_HEARTBEAT_STALE_S + 5)
    job = ExportJob.objects.create(dataset=ds, format="decisions", status="running",
                                   attempts=1, heartbeat_at=old, worker="elsewhere:123")
    part = _part(settings, job)
    with django_capture_on_commit_callbacks() as queued:
        assert export_jobs_recover() == {"requeued": [job.pk], "failed": []}
    job.refresh_from_db()
    assert job.status == "pending" and "no heartbeat since" in job.error
    assert len(queued) == 1 and not part.exists()

    # The second life dies the same way: failed, with the reason, not queued again.
    ExportJob.objects.filter(pk=job.pk).update(status="running", attempts=2, heartbeat_at=old)
    part = _part(settings, job)
    with django_capture_on_commit_callbacks() as queued:
        assert export_jobs_recover() == {"requeued": [], "failed": [job.pk]}
    job.refresh_from_db()
    assert job.status == "failed" and "interrupted twice" in job.error
    assert "no heartbeat since" in job.error and job.finished_at is not None
    assert queued == [] and not part.exists()


@pytest.mark.django_db
def test_worker_known_dead_is_recovered_at_once_and_live_ones_are_left(export_dir):
    ds = _dataset("recdead")
    now = timezone.now()
    dead = ExportJob.objects.create(dataset=ds, format="decisions", status="running",
                                    attempts=1, heartbeat_at=now,
                                    worker=f"{socket.gethostname()}:{_dead_pid()}")
    alive = ExportJob.objects.create(dataset=ds, format="decisions", status="running",
                                     attempts=1, heartbeat_at=now,
                                     worker=f"{socket.gethostname()}:{os.getpid()}")
    remote = ExportJob.objects.create(dataset=ds, format="decisions", status="running",
                                      attempts=1, heartbeat_at=now, worker="otherhost:1")
    done = export_jobs_recover()
    assert done == {"requeued": [dead.pk], "failed": []}
    statuses = dict(ExportJob.objects.values_list("pk", "status"))
    assert statuses == {dead.pk: "pending", alive.pk: "running", remote.pk: "running"}
    # A duplicate message for a job whose worker still beats does nothing.
    assert export_job_run(job_id=alive.pk).attempts == 1
    assert ExportJob.objects.get(pk=alive.pk).status == "running"


@pytest.mark.django_db
def test_the_periodic_check_recovers_and_the_page_offers_retry_and_cancel(client, export_dir,
                                                                         settings):
    ds = _dataset("recpage")
    curator = UserFactory(role="curator")
    old = timezone.now() - timedelta(hours=1)
    stuck = ExportJob.objects.create(dataset=ds, format="decisions", status="running",
                                     attempts=2, heartbeat_at=old, worker="gone:1")
    queued = ExportJob.objects.create(dataset=ds, format="decisions")
    client.force_login(curator)
    client.get(f"/curation/dataset/{ds.name}/exports/")
    stuck.refresh_from_db()
    assert stuck.status == "running"  # a GET writes nothing
    from curation.tasks import recover_exports_task

    assert recover_exports_task() == {"requeued": [], "failed": [stuck.pk]}
    assert settings.CELERY_BEAT_SCHEDULE["recover-exports"]["task"] == recover_exports_task.name
    page = client.get(f"/curation/dataset/{ds.name}/exports/").content.decode()
    stuck.refresh_from_db()
    assert stuck.status == "failed" and "interrupted twice" in stuck.error
    assert f"/curation/exports/{stuck.pk}/retry/" in page and ">Retry</button>" in page
    assert f"/curation/exports/{queued.pk}/cancel/" in page and ">Cancel</button>" in page

    r = client.post(f"/curation/exports/{queued.pk}/cancel/")
    assert r.status_code == 302
    queued.refresh_from_db()
    assert queued.status == "canceled" and curator.username in queued.error
    assert export_job_run(job_id=queued.pk).status == "canceled"  # its message: no-op

    r = client.post(f"/curation/exports/{stuck.pk}/retry/")
    assert r.status_code == 302
    stuck.refresh_from_db()
    assert (stuck.status, stuck.attempts, stuck.error) == ("pending", 0, "")
    assert export_job_run(job_id=stuck.pk).status == "done"


@pytest.mark.django_db
def test_reviewers_cannot_retry_or_cancel(client, export_dir):
    ds = _dataset("recperm")
    job = ExportJob.objects.create(dataset=ds, format="decisions", status="failed")
    client.force_login(UserFactory(role="reviewer"))
    for action in ("retry", "cancel"):
        assert client.post(f"/curation/exports/{job.pk}/{action}/").status_code == 403
    assert ExportJob.objects.get(pk=job.pk).status == "failed"


def test_broker_visibility_timeout_is_shorter_than_an_hour(settings):
    if settings.CELERY_BROKER_URL.startswith("redis"):
        vt = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
        assert settings.CELERY_TASK_TIME_LIMIT < vt < 3600


# --- a real worker, killed -------------------------------------------------------------


class _TableLock:
    """Holds ACCESS EXCLUSIVE on the adjudication table (the decisions export reads it),
    so an export stays running until released."""

    def __enter__(self):
        from curation.models import Adjudication

        self.conn = connections.create_connection("default")
        self.conn.set_autocommit(False)
        with self.conn.cursor() as cur:
            cur.execute(f"LOCK TABLE {Adjudication._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        return self

    def __exit__(self, *exc):
        self.conn.rollback()
        self.conn.close()


def _wait(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _running_with_part(job_id: int, export_dir: Path, attempt: int):
    job = ExportJob.objects.get(pk=job_id)
    if job.status != "running" or job.attempts != attempt or job.heartbeat_at is None:
        return None
    parts = list(export_dir.rglob("*.part"))
    return job if parts else None


def _kill(proc) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


@pytest.fixture
def worker_env(monkeypatch, export_dir):
    monkeypatch.setenv("RELABEL_EXPORT_DIR", str(export_dir))
    monkeypatch.setenv("RELABEL_EXPORT_HEARTBEAT_S", "0.5")
    return export_dir


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_killed_worker_export_is_requeued_and_done_by_a_new_worker(worker, worker_env):
    ds = _dataset("reckill", n=4)
    curator = UserFactory(role="curator")
    job = export_job_create(dataset=ds, fmt="decisions", user=curator)  # queued on commit
    with _TableLock():
        first = worker()
        _wait(lambda: _running_with_part(job.pk, worker_env, 1), 90, "the job to run")
        beat = ExportJob.objects.get(pk=job.pk).heartbeat_at
        _wait(lambda: ExportJob.objects.get(pk=job.pk).heartbeat_at > beat, 10,
              "a heartbeat while blocked")
        _kill(first)
    stuck = ExportJob.objects.get(pk=job.pk)
    assert (stuck.status, stuck.rows_done) == ("running", 0)  # what the issue saw

    # The periodic check (the beat's task, called here).
    from curation.tasks import recover_exports_task

    assert recover_exports_task()["requeued"] == [job.pk]
    job.refresh_from_db()
    assert job.status == "pending" and "stopped" in job.error
    assert list(worker_env.rglob("*.part")) == []

    second = worker()
    done = _wait(lambda: ExportJob.objects.filter(pk=job.pk, status="done").first(), 120,
                 "the new worker to finish the job")
    assert second.poll() is None
    assert done.attempts == 2 and done.rows_done == 4
    assert (worker_env / done.path).read_text().count("\n") == 5  # header + 4 decisions
    assert list(worker_env.rglob("*.part")) == []


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_export_killed_twice_fails_with_the_reason(worker, worker_env):
    ds = _dataset("reckill2", n=2)
    curator = UserFactory(role="curator")
    job = export_job_create(dataset=ds, fmt="decisions", user=curator)
    for attempt in (1, 2):
        with _TableLock():
            proc = worker()
            _wait(lambda a=attempt: _running_with_part(job.pk, worker_env, a), 90,
                  f"run {attempt}")
            _kill(proc)
        # What a cron job runs (also run by every worker as it starts).
        done = export_jobs_recover()
        assert done == ({"requeued": [job.pk], "failed": []} if attempt == 1
                        else {"requeued": [], "failed": [job.pk]}), done
    job.refresh_from_db()
    assert job.status == "failed"
    assert "interrupted twice" in job.error and "stopped" in job.error
    assert list(worker_env.rglob("*.part")) == []


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_cancel_stops_a_running_export(worker, worker_env):
    """Cancel on a job its worker is running (held by the lock): the worker's heartbeat
    sees it, stops the statement, leaves no file; the worker lives on."""
    from curation.export_jobs import export_job_cancel

    ds = _dataset("reccancel", n=2)
    curator = UserFactory(role="curator")
    job = export_job_create(dataset=ds, fmt="decisions", user=curator)
    with _TableLock():
        proc = worker()
        _wait(lambda: _running_with_part(job.pk, worker_env, 1), 90, "the job to run")
        export_job_cancel(job=ExportJob.objects.get(pk=job.pk), user=curator)
        _wait(lambda: not list(worker_env.rglob("*.part")), 30, "the worker to stop")
    job.refresh_from_db()
    assert job.status == "canceled" and job.size_bytes is None
    assert not (worker_env / job.path).exists()
    assert proc.poll() is None
