"""Writes of the curation app: adjudications (with their append-only log) and export jobs.

Keyword-only arguments; each runs in one transaction. Role checks are here as well as in
the views, so a script or the API cannot adjudicate or export as a reviewer."""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from relabel_app.models import Clip, Dataset, Label
from relabel_app.roles import user_is_curator

from .models import Adjudication, AdjudicationLog, AdjudicationVerdict, ExportJob, Policy

log = logging.getLogger(__name__)


def _require_curator(user) -> None:
    if not user_is_curator(user):
        raise PermissionDenied("Only curators adjudicate and export.")


def _log(*, clip: Clip, label: Label, curator, action: str, before: Adjudication | None,
         after: Adjudication | None) -> AdjudicationLog:
    return AdjudicationLog.objects.create(
        clip=clip, label=label, curator=curator, action=action,
        before_verdict=before.verdict if before else "", before_note=before.note if before else "",
        after_verdict=after.verdict if after else "", after_note=after.note if after else "",
    )


@transaction.atomic
def adjudication_record(*, clip: Clip, label: Label, curator, verdict: str,
                        note: str = "") -> Adjudication:
    """Set the curator's final verdict on a label of a clip (overrides the reviewers'
    majority). Idempotent: the same call twice leaves one row and one log entry. Another
    curator's later call replaces the verdict and becomes its author."""
    _require_curator(curator)
    verdict = AdjudicationVerdict(verdict).value
    adj = Adjudication.objects.select_for_update().filter(clip=clip, label=label).first()
    if adj is None:
        try:
            # A savepoint: when a concurrent request inserted the row first, the unique
            # constraint fires here and we update that row instead.
            with transaction.atomic():
                adj = Adjudication.objects.create(
                    clip=clip, label=label, curator=curator, verdict=verdict, note=note
                )
        except IntegrityError:
            adj = Adjudication.objects.select_for_update().get(clip=clip, label=label)
        else:
            _log(clip=clip, label=label, curator=curator,
                 action=AdjudicationLog.Action.RECORD, before=None, after=adj)
            return adj
    if (adj.verdict, adj.note, adj.curator_id) == (verdict, note, curator.pk):
        return adj
    before = Adjudication(verdict=adj.verdict, note=adj.note)
    adj.verdict, adj.note, adj.curator = verdict, note, curator
    adj.save(update_fields=["verdict", "note", "curator", "updated_at"])
    _log(clip=clip, label=label, curator=curator, action=AdjudicationLog.Action.RECORD,
         before=before, after=adj)
    return adj


@transaction.atomic
def adjudication_clear(*, clip: Clip, label: Label, curator) -> bool:
    """Remove the adjudication of a label (the reviewers' majority applies again).
    Returns whether there was one."""
    _require_curator(curator)
    adj = Adjudication.objects.select_for_update().filter(clip=clip, label=label).first()
    if adj is None:
        return False
    _log(clip=clip, label=label, curator=curator, action=AdjudicationLog.Action.CLEAR,
         before=adj, after=None)
    adj.delete()
    return True


# --- export jobs ----------------------------------------------------------------------


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


def export_job_run(*, job_id: int) -> ExportJob | None:
    """Run a queued export job: write the file under settings.EXPORT_DIR and record the
    outcome on the job. A duplicate message for a finished job does nothing; a job left
    "running" by a worker that died runs again (the file is renamed into place only when
    complete, so a rerun never mixes with the earlier attempt)."""
    from .exports import export_to_path

    with transaction.atomic():
        job = (ExportJob.objects.select_for_update().select_related("dataset")
               .filter(pk=job_id).first())
        if job is None or job.finished:
            return job
        job.status = ExportJob.Status.RUNNING
        job.started_at = timezone.now()
        job.path = export_job_relative_path(job)
        job.rows_done, job.error = 0, ""
        job.save(update_fields=["status", "started_at", "path", "rows_done", "error"])

    progress = _ProgressWriter(job.pk)
    try:
        result = export_to_path(
            dataset=job.dataset, fmt=job.format, policy=job.policy,
            path=export_job_target(job), progress=progress,
        )
    except Exception as e:
        log.exception("export job %s failed", job.pk)
        job.status = ExportJob.Status.FAILED
        job.error = f"{type(e).__name__}: {e}"[:2000]
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
        return job
    finally:
        progress.close()
    job.status = ExportJob.Status.DONE
    job.rows_done = job.rows_total = result.rows
    job.size_bytes = result.bytes
    job.summary = result.as_dict()
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "rows_done", "rows_total", "size_bytes", "summary",
                            "finished_at"])
    return job
