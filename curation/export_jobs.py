"""Export jobs: create, run (with a heartbeat and progress on the job row), recover those
whose worker is gone, retry, cancel.

Keyword-only arguments. Role checks are here as well as in the views, so a script or the
API cannot export as a reviewer."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from relabel_app.models import Dataset
from relabel_app.roles import require_curator

from .models import ExportJob, Policy

log = logging.getLogger(__name__)


def _require_curator(user) -> None:
    require_curator(user, "Only curators adjudicate and export.")


def export_job_create(*, dataset: Dataset, fmt: str, policy: str = Policy.KEEP_ORIGINAL,
                      user) -> ExportJob:
    """Record an export job and queue it (queue "export") once the transaction commits."""
    _require_curator(user)
    job = ExportJob.objects.create(
        dataset=dataset, format=ExportJob.Format(fmt).value, policy=Policy(policy).value,
        created_by=user,
    )
    transaction.on_commit(lambda: _export_job_enqueue(job.pk))
    return job


def _export_job_enqueue(job_id: int) -> None:
    from .tasks import export_task

    try:
        export_task.delay(job_id)
    except Exception as e:  # broker away: say so on the job instead of a 500 after commit
        log.exception("could not queue export job %s", job_id)
        ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.PENDING).update(
            status=ExportJob.Status.FAILED, error=f"could not queue the export: {e}",
            finished_at=timezone.now(),
        )


def export_job_relative_path(job: ExportJob) -> str:
    """Where the job's file goes, relative to settings.EXPORT_DIR: built from ids only
    (no name a user typed), e.g. ``dataset-7/export-42-csv-strict.csv``."""
    from .exports import file_extension

    # The policy does not apply to the decisions CSV, so it is not in that file's name.
    kind = job.format if job.format == ExportJob.Format.DECISIONS else f"{job.format}-{job.policy}"
    return f"dataset-{int(job.dataset_id)}/export-{int(job.pk)}-{kind}.{file_extension(job.format)}"


class ExportPathRefused(Exception):
    """An export path that would land outside settings.EXPORT_DIR."""


def export_job_target(job: ExportJob) -> Path:
    """The absolute file the job writes, checked to lie inside settings.EXPORT_DIR
    (symlinks followed) before anything is written."""
    root = Path(settings.EXPORT_DIR).resolve()
    target = (root / job.path).resolve()
    if not job.path or not target.is_relative_to(root) or target == root:
        raise ExportPathRefused(f"export path {job.path[:200]!r} is outside the export folder")
    return target


class _ProgressWriter:
    """Writes an export's progress to its job row through a connection of its own: the
    export's statement holds the default connection (and its snapshot) until the last
    row, and a poller must see progress before that."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self._conn = None

    def __call__(self, done: int, total: int | None) -> None:
        try:
            if self._conn is None:
                self._conn = connections.create_connection("default")
            with self._conn.cursor() as cur:
                cur.execute(
                    f"UPDATE {ExportJob._meta.db_table} SET rows_done = %s, "
                    "rows_total = coalesce(%s, rows_total) WHERE id = %s",
                    [done, total, self.job_id],
                )
        except Exception:  # progress is cosmetic; never fail an export for it
            log.warning("export job %s: progress update failed", self.job_id, exc_info=True)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_dead(pid: int) -> bool:
    """Whether a process of this machine is gone (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


def _worker_known_dead(worker: str) -> bool:
    """A worker on this machine whose process is gone. Workers elsewhere are judged by
    their heartbeat alone."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return _pid_dead(int(pid))


class _Heartbeat:
    """Beats the job row every settings.EXPORT_HEARTBEAT_S from a thread of its own (its own
    connection), also while the export's statement waits on a lock; and cancels that
    statement when a curator cancels the job."""

    def __init__(self, job_id: int, export_connection):
        self.job_id = job_id
        self.export_connection = export_connection
        self.canceled = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"export-{job_id}-heartbeat",
                                        daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        conn = None
        try:
            while not self._stop.wait(settings.EXPORT_HEARTBEAT_S):
                try:
                    if conn is None:
                        conn = connections.create_connection("default")
                    with conn.cursor() as cur:
                        cur.execute(
                            f"UPDATE {ExportJob._meta.db_table} SET heartbeat_at = now() "
                            "WHERE id = %s RETURNING status", [self.job_id])
                        row = cur.fetchone()
                    if row is None or row[0] == ExportJob.Status.CANCELED:
                        self.canceled = True
                        raw = getattr(self.export_connection, "connection", None)
                        if raw is not None:  # psycopg: stops the export's statement
                            getattr(raw, "cancel_safe", raw.cancel)()
                        return
                except Exception:  # a missed beat is not an export failure
                    log.warning("export job %s: heartbeat failed", self.job_id, exc_info=True)
                    if conn is not None:
                        conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()


def _remove_part_files(job: ExportJob) -> int:
    """Remove the hidden partial files (``.<name>.<random>.part``) that runs of this job
    left behind. Returns how many."""
    probe = ExportJob(pk=job.pk, dataset_id=job.dataset_id, format=job.format,
                      policy=job.policy, path=job.path or export_job_relative_path(job))
    try:
        target = export_job_target(probe)
    except ExportPathRefused:
        return 0
    n = 0
    if target.parent.is_dir():
        for part in target.parent.glob(f".{target.name}.*.part"):
            part.unlink(missing_ok=True)
            n += 1
    return n


def export_job_run(*, job_id: int) -> ExportJob | None:
    """Run a queued export job: write the file under settings.EXPORT_DIR and record the
    outcome on the job. A duplicate message does nothing: for a finished job, and for a
    running one whose worker still beats (a broker may deliver a message twice). A job
    left "running" by a worker that died runs again (the file is renamed into place only
    when complete, so a rerun never mixes with the earlier attempt)."""
    from .exports import export_to_path

    stale = timezone.now() - timedelta(seconds=settings.EXPORT_HEARTBEAT_STALE_S)
    with transaction.atomic():
        job = (ExportJob.objects.select_for_update().select_related("dataset")
               .filter(pk=job_id).first())
        if job is None or job.finished:
            return job
        if (job.status == ExportJob.Status.RUNNING and job.heartbeat_at is not None
                and job.heartbeat_at > stale and not _worker_known_dead(job.worker)):
            return job  # another worker is on it
        job.status = ExportJob.Status.RUNNING
        job.started_at = job.heartbeat_at = timezone.now()
        job.worker = _worker_id()
        job.attempts += 1
        job.path = export_job_relative_path(job)
        job.rows_done, job.error = 0, ""
        job.save(update_fields=["status", "started_at", "heartbeat_at", "worker", "attempts",
                                "path", "rows_done", "error"])

    progress = _ProgressWriter(job.pk)
    running = ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.RUNNING,
                                       worker=job.worker)
    try:
        # The wrapper object of this thread (``connection`` is a per-thread proxy).
        with _Heartbeat(job.pk, connections["default"]) as beat:
            try:
                result = export_to_path(
                    dataset=job.dataset, fmt=job.format, policy=job.policy,
                    path=export_job_target(job), progress=progress,
                )
            except Exception as e:
                if beat.canceled:
                    log.info("export job %s canceled", job.pk)
                else:
                    log.exception("export job %s failed", job.pk)
                    running.update(status=ExportJob.Status.FAILED,
                                   error=f"{type(e).__name__}: {e}"[:2000],
                                   finished_at=timezone.now())
                job.refresh_from_db()
                return job
    finally:
        progress.close()
    done = running.update(
        status=ExportJob.Status.DONE, rows_done=result.rows, rows_total=result.rows,
        size_bytes=result.bytes, summary=result.as_dict(), finished_at=timezone.now(),
    )
    if not done:  # canceled (or taken over) while the last bytes were written
        (Path(settings.EXPORT_DIR) / job.path).unlink(missing_ok=True)
    job.refresh_from_db()
    return job


def export_jobs_recover(*, now=None) -> dict[str, list[int]]:
    """Find export jobs whose worker is gone and recover them: re-queue each once, fail
    it with the reason the second time; remove their partial files. A worker is gone
    when its job has not beaten for settings.EXPORT_HEARTBEAT_STALE_S, or at once when it
    ran on this machine and its process no longer exists. Cheap when nothing runs (one
    indexed query). Called by the periodic task curation.recover_exports (beat), when a
    worker starts, and by ``manage.py recover_exports``."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.EXPORT_HEARTBEAT_STALE_S)
    out: dict[str, list[int]] = {"requeued": [], "failed": []}
    candidates = list(ExportJob.objects.filter(status=ExportJob.Status.RUNNING)
                      .values_list("pk", flat=True))
    for pk in candidates:
        with transaction.atomic():
            job = (ExportJob.objects.select_for_update(skip_locked=True)
                   .select_related("dataset")
                   .filter(pk=pk, status=ExportJob.Status.RUNNING).first())
            if job is None:
                continue
            dead = _worker_known_dead(job.worker)
            silent = job.heartbeat_at is None or job.heartbeat_at < stale_before
            if not (dead or silent):
                continue
            why = (f"its worker {job.worker or '?'} stopped" if dead else
                   f"its worker {job.worker or '?'} sent no heartbeat since "
                   f"{job.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC" if job.heartbeat_at else
                   "its worker never sent a heartbeat")
            _remove_part_files(job)
            if job.attempts >= 2:
                job.status = ExportJob.Status.FAILED
                job.error = (f"The export was interrupted twice: {why} (attempt "
                             f"{job.attempts}). Not re-queued again; use Retry.")
                job.finished_at = now
                job.save(update_fields=["status", "error", "finished_at"])
                out["failed"].append(job.pk)
                log.warning("export job %s failed: %s", job.pk, job.error)
            else:
                job.status = ExportJob.Status.PENDING
                job.error = f"Re-queued after an interruption: {why}."
                job.heartbeat_at = None
                job.rows_done = 0
                job.save(update_fields=["status", "error", "heartbeat_at", "rows_done"])
                transaction.on_commit(lambda pk=job.pk: _export_job_enqueue(pk))
                out["requeued"].append(job.pk)
                log.warning("export job %s re-queued: %s", job.pk, why)
    return out


def export_job_retry(*, job: ExportJob, user) -> ExportJob:
    """Run a failed or canceled job again (a fresh count of attempts)."""
    _require_curator(user)
    with transaction.atomic():
        locked = ExportJob.objects.select_for_update().get(pk=job.pk)
        if not locked.can_retry:
            raise ValueError(f"export {job.pk} is {locked.status}: nothing to retry")
        _remove_part_files(locked)
        locked.status = ExportJob.Status.PENDING
        locked.error, locked.attempts, locked.rows_done = "", 0, 0
        locked.heartbeat_at, locked.finished_at = None, None
        locked.save(update_fields=["status", "error", "attempts", "rows_done",
                                   "heartbeat_at", "finished_at"])
        transaction.on_commit(lambda: _export_job_enqueue(locked.pk))
    return locked


def export_job_cancel(*, job: ExportJob, user) -> ExportJob:
    """Stop a queued or running job: it is marked canceled at once; a running worker sees
    it at its next heartbeat and stops its statement; partial files are removed."""
    _require_curator(user)
    with transaction.atomic():
        locked = ExportJob.objects.select_for_update().get(pk=job.pk)
        if not locked.can_cancel:
            raise ValueError(f"export {job.pk} is {locked.status}: nothing to cancel")
        locked.status = ExportJob.Status.CANCELED
        locked.error = f"Canceled by {user.get_username()}."
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "error", "finished_at"])
        if locked.worker == "" or _worker_known_dead(locked.worker):
            _remove_part_files(locked)
    return locked
