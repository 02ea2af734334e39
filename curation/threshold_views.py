"""The audit page's threshold panel: the run's active threshold set (class, decisions,
threshold, F1; held-out precision / recall / F1 of global vs per-class thresholds) and the
"Fit thresholds" button. Loaded by htmx into the audit page (so the audit itself stays one
read), and a page of its own without JavaScript. A fit runs as a Celery task
(curation.threshold_jobs); the panel polls while it is pending and stops when it is done."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from relabel_app.models import Dataset
from relabel_app.roles import curator_required

from .forms import ThresholdFitForm
from .models import ThresholdFitJob
from .selectors import dataset_runs, run_for
from .threshold_jobs import threshold_fit_active, threshold_fit_request
from .thresholds import (
    DEFAULT_MIN_DECISIONS,
    MIN_EACH,
    ThresholdError,
    threshold_panel_data,
)

PANEL = "curation/_thresholds_panel.html"


# A fit that finished this recently is still reported on the panel (a page reloaded
# meanwhile, e.g. when the audit snapshot became ready, still says how the fit went).
RECENT_FIT = timedelta(minutes=2)


def _job_for(run, job_id: str | None, user) -> ThresholdFitJob | None:
    """The fit the panel follows: ?job=ID (of this run), else the run's pending one, else
    one of the user's that finished in the last RECENT_FIT."""
    if run is None:
        return None
    if job_id and job_id.isascii() and job_id.isdigit() and len(job_id) < 12:
        job = ThresholdFitJob.objects.filter(pk=int(job_id), run=run).first()
        if job is not None:
            return job
    return threshold_fit_active(run=run) or (
        ThresholdFitJob.objects.filter(run=run, requested_by=user,
                                       finished_at__gte=timezone.now() - RECENT_FIT)
        .order_by("-finished_at").first())


def _context(dataset: Dataset, run, min_decisions: int = DEFAULT_MIN_DECISIONS,
             job: ThresholdFitJob | None = None, **extra) -> dict:
    ctx = {"dataset": dataset, "run": run, "tp": threshold_panel_data(run=run),
           "thresholds_loaded": True, "min_decisions": min_decisions, "job": job,
           "min_each": MIN_EACH, **extra}
    if job is not None and not job.active:
        # The fit this panel followed has finished: say how, once.
        if job.status == ThresholdFitJob.Status.DONE and job.threshold_set is not None:
            ctx.setdefault("fitted", job.threshold_set)
        elif job.status == ThresholdFitJob.Status.FAILED:
            ctx.setdefault("error", job.error)
    return ctx


def _panel(request: HttpRequest, ctx: dict) -> HttpResponse:
    response = render(request, PANEL, ctx)
    job = ctx.get("job")
    if request.htmx and job is not None and not job.active and request.GET.get("job"):
        # The polling request that saw the fit finish: htmx stops polling (286).
        response.status_code = HttpResponseStopPolling.status_code
    return response


@curator_required
@require_GET
def thresholds(request: HttpRequest, name: str) -> HttpResponse:
    dataset = get_object_or_404(Dataset, name=name)
    run = run_for(dataset, request.GET.get("run"))
    job = _job_for(run, request.GET.get("job"), request.user)
    ctx = _context(dataset, run, job=job, runs=dataset_runs(dataset),
                   min_decisions=job.min_decisions if job else DEFAULT_MIN_DECISIONS)
    if request.htmx:
        return _panel(request, ctx)
    return render(request, "curation/thresholds.html", ctx)


@curator_required
@require_POST
def thresholds_fit(request: HttpRequest, name: str) -> HttpResponse:
    """Queue a fit (curation.threshold_jobs); the panel follows it. Form errors and
    refusals that need no data (another dataset's run, an external label set) answer at
    once; a second press while a fit of the run is pending or running starts nothing."""
    dataset = get_object_or_404(Dataset, name=name)
    form = ThresholdFitForm(request.POST)
    error = None
    run = None
    req = None
    if not form.is_valid():
        error = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
    else:
        run = run_for(dataset, form.cleaned_data["run"])
        if run is None:
            error = f"no run {form.cleaned_data['run']} in dataset {dataset.name}"
        else:
            try:
                req = threshold_fit_request(dataset=dataset, run=run, user=request.user,
                                            min_decisions=form.cleaned_data["min_decisions"])
            except ThresholdError as e:
                error = str(e)
    min_decisions = (form.cleaned_data.get("min_decisions") if form.is_valid()
                     else DEFAULT_MIN_DECISIONS)
    if request.htmx:
        ctx = _context(dataset, run, error=error, min_decisions=min_decisions,
                       job=req.job if req else None,
                       already_running=req is not None and not req.started)
        # 200 either way: htmx swaps only successful responses, and the panel shows the error.
        return render(request, PANEL, ctx)
    if error:
        messages.error(request, f"Thresholds not fitted: {error}")
    elif req is not None and not req.started:
        messages.info(request, f"A fit of run #{run.pk} is already running; this press did "
                               "not start another.")
    else:
        messages.success(request, f"Fitting thresholds on run #{run.pk} in the background; "
                                  "the panel below shows the set when it is ready.")
    url = reverse("curation:audit", kwargs={"name": dataset.name})
    return redirect(url + (f"?run={run.pk}" if run else "") + "#thresholds")
