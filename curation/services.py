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


def _audit_refresh_later(dataset_id: int) -> None:
    """After a decision of a curator: the audit snapshots refresh, debounced."""

    def request() -> None:
        from .snapshots import audit_snapshot_after_decision

        try:
            audit_snapshot_after_decision(dataset_id=dataset_id)
        except Exception:  # never fail an adjudication for its audit refresh
            log.exception("could not request an audit refresh of dataset %s", dataset_id)

    transaction.on_commit(request)


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
            _audit_refresh_later(clip.dataset_id)
            return adj
    if (adj.verdict, adj.note, adj.curator_id) == (verdict, note, curator.pk):
        return adj
    before = Adjudication(verdict=adj.verdict, note=adj.note)
    adj.verdict, adj.note, adj.curator = verdict, note, curator
    adj.save(update_fields=["verdict", "note", "curator", "updated_at"])
    _log(clip=clip, label=label, curator=curator, action=AdjudicationLog.Action.RECORD,
         before=before, after=adj)
    _audit_refresh_later(clip.dataset_id)
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
    _audit_refresh_later(clip.dataset_id)
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
    from .exports import file_extension

    name = job.dataset.name
    # The policy does not apply to the decisions CSV, so it is not in that file's name.
    kind = job.format if job.format == ExportJob.Format.DECISIONS else f"{job.format}-{job.policy}"
    return f"{name}/{name}-{kind}-{job.pk}.{file_extension(job.format)}"


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
            path=Path(settings.EXPORT_DIR) / job.path, progress=progress,
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


# --- gold clips -------------------------------------------------------------------------


class GoldError(ValueError):
    """A gold clip cannot be made or imported; the message says why."""


@transaction.atomic
def gold_make_from_adjudications(*, clip: Clip, curator) -> int:
    """"Make gold": the clip's adjudicated labels become its gold answers (accept =
    present, reject = absent), replacing earlier answers. Returns the number of answers."""
    from review.models import GoldClip, GoldLabel

    _require_curator(curator)
    adjudications = list(Adjudication.objects.filter(clip=clip).values_list("label_id",
                                                                              "verdict"))
    if not adjudications:
        raise GoldError("This clip has no adjudicated labels: adjudicate its labels first.")
    gold, _ = GoldClip.objects.update_or_create(
        clip=clip, defaults={"dataset_id": clip.dataset_id, "created_by": curator,
                             "source": GoldClip.Source.ADJUDICATED, "complete": False},
    )
    GoldLabel.objects.filter(clip=clip).delete()
    GoldLabel.objects.bulk_create([
        GoldLabel(gold=gold, clip=clip, label_id=label_id,
                  present=verdict == AdjudicationVerdict.ACCEPT)
        for label_id, verdict in adjudications
    ])
    return len(adjudications)


@transaction.atomic
def gold_remove(*, clip: Clip, curator) -> bool:
    from review.models import GoldClip

    _require_curator(curator)
    deleted, _ = GoldClip.objects.filter(clip=clip).delete()
    return bool(deleted)


def gold_import_segments(*, path: str | Path, dataset: Dataset, user=None) -> dict:
    """Gold answers from a segments CSV (three ``#`` lines, then ``YTID, start, end,
    "mid,mid"``): each row's clip becomes a *complete* gold clip whose listed labels are
    present and every other label absent. One transaction: a malformed row, an unknown
    MID or a row matching no clip of the dataset stops it with the line number and
    nothing is written."""
    from relabel_app.segment_import import iter_lines, parse_segment_line
    from review.models import GoldClip, GoldLabel

    label_ids = dict(Label.objects.values_list("mid", "id"))
    clips = {}
    rows: list[tuple[int, int, list[int]]] = []
    path = Path(path)
    try:
        f = path.open("rb")
    except OSError as e:
        raise GoldError(f"{path}: cannot read: {e.strerror or e}") from None
    with f:
        for lineno, line in iter_lines(f):
            if line is None:
                raise GoldError(f"{path}: line {lineno}: line too long")
            text = line.strip()
            if not text or text.startswith(b"#"):
                continue
            try:
                ytid, start, _end, mids = parse_segment_line(text)
            except ValueError as e:
                raise GoldError(f"{path}: line {lineno}: {e}") from None
            ids = []
            for mid in mids:
                lid = label_ids.get(mid.decode(errors="replace"))
                if lid is None:
                    raise GoldError(f"{path}: line {lineno}: unknown label "
                                    f"{mid[:80].decode(errors='replace')!r}")
                ids.append(lid)
            rows.append((lineno, ytid.decode(), start, ids))
    if not rows:
        raise GoldError(f"{path}: no segment rows")
    ytids = {r[1] for r in rows}
    for c in Clip.objects.filter(dataset=dataset, ytid__in=ytids).only("id", "ytid", "start_s"):
        clips.setdefault(c.ytid, []).append(c)
    matched: list[tuple[Clip, list[int]]] = []
    for lineno, ytid, start, ids in rows:
        clip = next((c for c in clips.get(ytid, []) if abs(c.start_s - start) < 0.0015), None)
        if clip is None:
            raise GoldError(f"{path}: line {lineno}: {ytid} at {start:.3f} s is not a clip of "
                            f"dataset {dataset.name!r}")
        matched.append((clip, ids))
    with transaction.atomic():
        GoldLabel.objects.filter(clip__in=[c for c, _ in matched]).delete()
        GoldClip.objects.filter(clip__in=[c for c, _ in matched]).delete()
        golds = GoldClip.objects.bulk_create([
            GoldClip(dataset=dataset, clip=c, source=GoldClip.Source.IMPORTED, complete=True,
                     created_by=user) for c, _ in matched
        ])
        GoldLabel.objects.bulk_create([
            GoldLabel(gold=g, clip=c, label_id=lid, present=True)
            for g, (c, ids) in zip(golds, matched, strict=True) for lid in dict.fromkeys(ids)
        ])
    return {"clips": len(matched), "labels": sum(len(set(ids)) for _, ids in matched)}


@transaction.atomic
def dataset_gold_settings_update(*, dataset: Dataset, gold_rate: float,
                                 gold_floor: float | None, gold_exclude_flagged: bool,
                                 user) -> Dataset:
    """A curator's gold settings for a dataset: the serving rate, the floor that flags a
    reviewer, and whether flagged reviewers' votes leave the majority."""
    _require_curator(user)
    if not 0.0 <= gold_rate <= 1.0:
        raise GoldError("the gold rate must be between 0 and 1")
    if gold_floor is not None and not 0.0 <= gold_floor <= 1.0:
        raise GoldError("the floor must be between 0 and 1")
    dataset.gold_rate, dataset.gold_floor = gold_rate, gold_floor
    dataset.gold_exclude_flagged = gold_exclude_flagged
    dataset.save(update_fields=["gold_rate", "gold_floor", "gold_exclude_flagged"])
    return dataset
