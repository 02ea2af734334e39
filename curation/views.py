"""Curator pages: adjudicate a clip, the audit dashboard, exports (create, follow,
download). Thin: check the role, validate, call one service or selector, render.

htmx requests get partials (an adjudication row, an export row); the same URLs answer
plain form posts with a redirect, so the pages work without JavaScript."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import dateformat
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from relabel_app.ids import INTEGER_MAX, BadNumber, optional_id, page_number, parse_int
from relabel_app.models import Clip, Dataset, Label
from relabel_app.roles import curator_required
from review.clip_notes import clip_notes_list
from review.models import GoldClip

from . import adjudication, export_jobs, gold_clips
from .adjudication_queue import (
    DEFAULT_MARGIN,
    PAGE_SIZE,
    REASONS,
    adjudication_queue,
    adjudication_queue_next,
    clip_disputes,
    queue_filter_for,
)
from .dashboard import LazyCharts
from .forms import AdjudicationForm, ExportForm, GoldSettingsForm
from .gold import excluded_reviewer_names, gold_reviewed_before, reviewer_gold_accuracy
from .models import ExportJob
from .resolution import latest_run
from .selectors import clip_label_states, dataset_runs, export_jobs_for, run_for
from .snapshots import (
    audit_snapshot_for_page,
    audit_snapshot_get,
    audit_snapshot_progress,
    audit_snapshot_request,
    decisions_since,
)


@curator_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "curation/index.html", {"datasets": Dataset.objects.order_by("name")})


# --- adjudication -----------------------------------------------------------------------


def _clip_or_404(clip_id: int) -> Clip:
    return get_object_or_404(Clip.objects.select_related("dataset"), pk=clip_id)


def _audio_url(clip: Clip) -> str | None:
    if not clip.audio_path:
        return None
    try:
        return reverse("review:clip_audio", kwargs={"clip_id": clip.pk})
    except NoReverseMatch:
        return None


def _queue_context(request: HttpRequest) -> dict:
    """The adjudication queue a clip page was reached from (``?queue=<reason>|all&rank=N``),
    so "next" continues through the same list."""
    reason = request.GET.get("queue", "")
    if reason not in ("all", *REASONS):
        return {}
    try:
        rank = parse_int(request.GET.get("rank", "0"), name="rank", max_value=INTEGER_MAX)
    except BadNumber:
        rank = 0  # a stale or edited link: start the queue from its top
    return {"queue": reason, "queue_rank": rank,
            "queue_reason_label": REASONS.get(reason, "All reasons")}


@curator_required
@require_GET
def clip_adjudicate(request: HttpRequest, clip_id: int) -> HttpResponse:
    clip = _clip_or_404(clip_id)
    run = run_for(clip.dataset, request.GET.get("run"), clip=clip)
    states = clip_label_states(clip=clip, run=run)
    # Why the queue lists this clip, per label: the same statement as the queue page.
    f = queue_filter_for(dataset=clip.dataset, run=run, margin=_margin(request))
    disputes = clip_disputes(f=f, clip_id=clip.pk)
    for s in states:
        s.dispute = disputes.pairs.get(s.label.pk)
    gold = GoldClip.objects.filter(clip=clip).first()
    return render(request, "curation/clip.html", {
        "clip": clip, "run": run, "runs": dataset_runs(clip.dataset), "states": states,
        "audio_url": _audio_url(clip), "disputes": disputes, "threshold": f.threshold,
        "gold": gold, **_queue_context(request),
        "gold_trivial_note": (_trivial_gold_note(seen) if gold is not None
                              and (seen := gold_reviewed_before(clip=clip, gold=gold))
                              else ""),
        "excluded_reviewers": excluded_reviewer_names(dataset=clip.dataset),
        "clip_notes": clip_notes_list(clip=clip),
    })


def _reason(request: HttpRequest) -> str:
    reason = request.GET.get("reason", "") or request.GET.get("queue", "")
    return reason if reason in REASONS else ""


def _margin(request: HttpRequest) -> float:
    try:
        return min(1.0, max(0.0, float(request.GET.get("margin", DEFAULT_MARGIN))))
    except ValueError:
        return DEFAULT_MARGIN


@curator_required
@require_GET
def adjudication_queue_page(request: HttpRequest, name: str) -> HttpResponse:
    dataset = get_object_or_404(Dataset, name=name)
    run = run_for(dataset, request.GET.get("run"))
    page_no = page_number(request.GET.get("page"))
    f = queue_filter_for(dataset=dataset, run=run, reason=_reason(request),
                         margin=_margin(request))
    queue = adjudication_queue(f=f, offset=(page_no - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    if not queue.rows and queue.matching:
        # Past the end: the last page, as Django's Paginator.get_page answers.
        page_no = -(-queue.matching // PAGE_SIZE)
        queue = adjudication_queue(f=f, offset=(page_no - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    return render(request, "curation/adjudication_queue.html", {
        "dataset": dataset, "run": run, "runs": dataset_runs(dataset), "q": queue,
        "page_no": page_no, "queue_key": f.reason or "all",
        "has_next": queue.offset + len(queue.rows) < queue.matching,
        "page_end": queue.offset + len(queue.rows),
    })


@curator_required
@require_GET
def adjudicate_next(request: HttpRequest, name: str) -> HttpResponse:
    """"Next to adjudicate": the clip after ``?after=<clip id>`` in the queue (the first
    without it), opened on its adjudication page in queue mode."""
    dataset = get_object_or_404(Dataset, name=name)
    run = run_for(dataset, request.GET.get("run"))
    f = queue_filter_for(dataset=dataset, run=run, reason=_reason(request),
                         margin=_margin(request))
    after = optional_id(request.GET.get("after"), name="after")  # BadNumber: a 400
    rank = parse_int(request.GET.get("rank", "0"), name="rank", max_value=INTEGER_MAX)
    nxt = adjudication_queue_next(f=f, current_clip_id=after, rank=rank)
    queue_url = reverse("curation:adjudication_queue", kwargs={"name": dataset.name})
    if nxt is None:
        messages.info(request, "Nothing left to adjudicate in this list.")
        return redirect(queue_url + (f"?reason={f.reason}" if f.reason else ""))
    clip_id, rank = nxt
    url = reverse("curation:clip", kwargs={"clip_id": clip_id})
    query = f"?queue={f.reason or 'all'}&rank={rank}" + (f"&run={run.pk}" if run else "")
    return redirect(url + query)


@curator_required
@require_POST
def gold_make(request: HttpRequest, clip_id: int) -> HttpResponse:
    clip = _clip_or_404(clip_id)
    if request.POST.get("action") == "remove":
        gold_clips.gold_remove(clip=clip, curator=request.user)
        messages.success(request, "This clip is no longer a gold clip.")
    else:
        try:
            n = gold_clips.gold_make_from_adjudications(clip=clip, curator=request.user)
        except gold_clips.GoldError as e:
            messages.error(request, str(e))
        else:
            messages.success(request, f"Gold clip: {n} adjudicated label is its gold answer."
                             if n == 1 else
                             f"Gold clip: {n} adjudicated labels are its gold answers.")
            gold = GoldClip.objects.filter(clip=clip).first()
            if gold is not None and (seen := gold_reviewed_before(clip=clip, gold=gold)):
                messages.warning(request, _trivial_gold_note(seen))
    back = request.POST.get("next", "")
    if not back.startswith("/curation/"):
        back = reverse("curation:clip", kwargs={"clip_id": clip.pk})
    # Back to the gold card, not the top of the page (the scroll position is kept).
    return redirect(back.split("#", 1)[0] + "#gold")


def _trivial_gold_note(reviewers: list[str]) -> str:
    n = len(reviewers)
    return (f"These gold answers were made from a clip already reviewed by {n} reviewer"
            f"{'s' if n != 1 else ''} ({', '.join(reviewers)}): the adjudications saw "
            f"their verdicts, so their accuracy on this clip is trivial, not a measure.")


@curator_required
def reviewers(request: HttpRequest, name: str) -> HttpResponse:
    """Per reviewer: gold precision and recall, the floor that flags, the gold settings."""
    dataset = get_object_or_404(Dataset, name=name)
    if request.method == "POST":
        form = GoldSettingsForm(request.POST)
        if form.is_valid():
            gold_clips.dataset_gold_settings_update(
                dataset=dataset, gold_rate=form.cleaned_data["gold_rate_percent"] / 100.0,
                gold_floor=(None if form.cleaned_data["gold_floor_percent"] is None
                            else form.cleaned_data["gold_floor_percent"] / 100.0),
                gold_exclude_flagged=form.cleaned_data["gold_exclude_flagged"],
                user=request.user,
            )
            messages.success(request, "Gold settings saved.")
            return redirect("curation:reviewers", name=dataset.name)
    elif request.method == "GET":
        form = GoldSettingsForm(initial={
            "gold_rate_percent": round(dataset.gold_rate * 100, 2),
            "gold_floor_percent": (None if dataset.gold_floor is None
                                   else round(dataset.gold_floor * 100, 2)),
            "gold_exclude_flagged": dataset.gold_exclude_flagged})
    else:
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    return render(request, "curation/reviewers.html", {
        "dataset": dataset, "form": form, "gold": reviewer_gold_accuracy(dataset=dataset),
        "gold_clips": GoldClip.objects.filter(dataset=dataset).count(),
    })


@curator_required
@require_POST
def adjudicate(request: HttpRequest, clip_id: int, label_id: int) -> HttpResponse:
    clip = _clip_or_404(clip_id)
    label = get_object_or_404(Label, pk=label_id)
    form = AdjudicationForm(request.POST)
    if not form.is_valid():
        return HttpResponse(form.errors.as_text(), status=400)
    if form.cleaned_data["verdict"] == AdjudicationForm.CLEAR:
        adjudication.adjudication_clear(clip=clip, label=label, curator=request.user)
    else:
        try:
            adjudication.adjudication_record(
                clip=clip, label=label, curator=request.user,
                verdict=form.cleaned_data["verdict"], note=form.cleaned_data["note"],
            )
        except adjudication.LabelRefused as e:  # the trainable rule (review.label_rules)
            if request.htmx:
                return HttpResponse(str(e), status=400, content_type="text/plain")
            messages.error(request, str(e))
            return redirect(reverse("curation:clip", kwargs={"clip_id": clip.pk})
                            + f"#label-{label.pk}")
    run = run_for(clip.dataset, request.POST.get("run"), clip=clip)
    if not request.htmx:
        url = reverse("curation:clip", kwargs={"clip_id": clip.pk})
        return redirect(url + (f"?run={run.pk}" if run else "") + f"#label-{label.pk}")
    states = clip_label_states(clip=clip, run=run, label_id=label.pk)
    f = queue_filter_for(dataset=clip.dataset, run=run)
    if states:
        states[0].dispute = clip_disputes(f=f, clip_id=clip.pk).pairs.get(label.pk)
    return render(request, "curation/_adjudication_row.html",
                  {"clip": clip, "run": run, "s": states[0] if states else None,
                   "label": label, "threshold": f.threshold})


# --- audits -----------------------------------------------------------------------------


def _audit_run(dataset: Dataset, value: str | None):
    """The run of the audit page: ?run=ID, ?run=none for none, else the latest run (model
    chain or external label set). Returns (run, ok)."""
    if value == "none":
        return None, True
    if value in (None, ""):
        return latest_run(dataset), True
    run = run_for(dataset, value)
    return run, run is not None


@curator_required
@require_GET
def audit(request: HttpRequest, name: str) -> HttpResponse:
    """The stored snapshot of the audit (curation.snapshots): a fixed number of queries
    whatever the dataset's size."""
    dataset = get_object_or_404(Dataset, name=name)
    run, ok = _audit_run(dataset, request.GET.get("run"))
    if not ok:
        raise Http404("No such run in this dataset.")
    snapshot, since = audit_snapshot_for_page(dataset=dataset, run=run)
    figures = snapshot.figures if snapshot and snapshot.figures else None
    return render(request, "curation/audit.html", {
        "dataset": dataset, "run": run, "runs": dataset_runs(dataset), "f": figures,
        # Drawn only when the template's cached block is rendered (once per snapshot).
        "charts": LazyCharts(figures), "snapshot": snapshot,
        "decisions_since": since, "run_param": "none" if run is None else run.pk,
        "run_is_latest": run is not None and request.GET.get("run") in (None, ""),
        **audit_snapshot_progress(snapshot),
    })


@curator_required
@require_GET
def audit_state(request: HttpRequest, name: str) -> HttpResponse:
    """The snapshot's state line, polled while a computation is queued or running. Once
    a snapshot newer than the page's (``shown``) is ready: 286 (htmx stops polling) and
    HX-Refresh, so the page reloads itself with the new figures."""
    dataset = get_object_or_404(Dataset, name=name)
    run, ok = _audit_run(dataset, request.GET.get("run"))
    if not ok:
        raise Http404("No such run in this dataset.")
    snapshot = audit_snapshot_get(dataset=dataset, run=run)
    since = decisions_since(snapshot=snapshot) if snapshot and snapshot.computed_at else 0
    progress = audit_snapshot_progress(snapshot)
    response = render(request, "curation/_audit_state.html", {
        "dataset": dataset, "snapshot": snapshot, "decisions_since": since,
        "run_param": "none" if run is None else run.pk, **progress})
    if not progress["snapshot_busy"]:
        response.status_code = HttpResponseStopPolling.status_code
        shown = request.GET.get("shown", "")
        # The same text as the template's {{ computed_at|date:'U.u' }} (epoch, microseconds).
        now_shown = (dateformat.format(snapshot.computed_at, "U.u")
                     if snapshot and snapshot.computed_at else "")
        if snapshot is not None and now_shown != shown:
            response["HX-Refresh"] = "true"
    return response


@curator_required
@require_POST
def audit_refresh(request: HttpRequest, name: str) -> HttpResponse:
    dataset = get_object_or_404(Dataset, name=name)
    run, ok = _audit_run(dataset, request.POST.get("run"))
    if not ok:
        raise Http404("No such run in this dataset.")
    audit_snapshot_request(dataset=dataset, run=run)
    messages.success(request, "The audit is being recomputed; the page updates itself when "
                              "it is ready.")
    url = reverse("curation:audit", kwargs={"name": dataset.name})
    return redirect(url + f"?run={'none' if run is None else run.pk}")


# --- exports ----------------------------------------------------------------------------


@curator_required
def exports(request: HttpRequest, name: str) -> HttpResponse:
    dataset = get_object_or_404(Dataset, name=name)
    if request.method == "POST":
        form = ExportForm(request.POST)
        if form.is_valid():
            job = export_jobs.export_job_create(
                dataset=dataset, fmt=form.cleaned_data["format"],
                policy=form.cleaned_data["policy"], user=request.user,
            )
            messages.success(request, f"Export #{job.pk} queued.")
            return redirect("curation:exports", name=dataset.name)
    elif request.method == "GET":
        # Jobs whose worker died are recovered by the worker-cpu's beat
        # (curation.recover_exports), at worker start and by manage.py recover_exports.
        form = ExportForm()
    else:
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    return render(request, "curation/exports.html", {
        "dataset": dataset, "form": form, "jobs": export_jobs_for(dataset),
    })


def _job_or_404(job_id: int) -> ExportJob:
    return get_object_or_404(ExportJob.objects.select_related("dataset", "created_by"),
                             pk=job_id)


@curator_required
@require_POST
def export_retry(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job_or_404(job_id)
    try:
        export_jobs.export_job_retry(job=job, user=request.user)
    except ValueError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"Export #{job.pk} queued again.")
    return redirect("curation:exports", name=job.dataset.name)


@curator_required
@require_POST
def export_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job_or_404(job_id)
    try:
        export_jobs.export_job_cancel(job=job, user=request.user)
    except ValueError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"Export #{job.pk} canceled.")
    return redirect("curation:exports", name=job.dataset.name)


@curator_required
@require_GET
def export_progress(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job_or_404(job_id)
    response = render(request, "curation/_export_row.html", {"job": job})
    if job.finished:
        response.status_code = HttpResponseStopPolling.status_code
    return response


@curator_required
@require_GET
def export_download(request: HttpRequest, job_id: int) -> FileResponse:
    job = _job_or_404(job_id)
    if job.status != ExportJob.Status.DONE or not job.path:
        raise Http404("This export has no file (yet).")
    root = Path(settings.EXPORT_DIR).resolve()
    path = (root / job.path).resolve()
    # The path comes from our own job row; still, never serve anything outside EXPORT_DIR.
    if root not in path.parents or not path.is_file():
        raise Http404("The export file is gone.")
    content_type = "application/json" if path.suffix == ".json" else "text/csv"
    # FileResponse closes the file when the response is done.
    return FileResponse(open(path, "rb"), as_attachment=True, filename=job.file_name,  # noqa: SIM115
                        content_type=content_type)
