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
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from relabel_app.models import Clip, Dataset, Label
from relabel_app.roles import curator_required

from . import services
from .audits import dataset_audit
from .dashboard import audit_charts
from .forms import AdjudicationForm, ExportForm
from .models import ExportJob
from .selectors import clip_label_states, dataset_runs, export_jobs_for, run_for


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


@curator_required
@require_GET
def clip_adjudicate(request: HttpRequest, clip_id: int) -> HttpResponse:
    clip = _clip_or_404(clip_id)
    run = run_for(clip.dataset, request.GET.get("run"), clip=clip)
    return render(request, "curation/clip.html", {
        "clip": clip, "run": run, "runs": dataset_runs(clip.dataset),
        "states": clip_label_states(clip=clip, run=run), "audio_url": _audio_url(clip),
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
        services.adjudication_clear(clip=clip, label=label, curator=request.user)
    else:
        services.adjudication_record(
            clip=clip, label=label, curator=request.user,
            verdict=form.cleaned_data["verdict"], note=form.cleaned_data["note"],
        )
    run = run_for(clip.dataset, request.POST.get("run"), clip=clip)
    if not request.htmx:
        url = reverse("curation:clip", kwargs={"clip_id": clip.pk})
        return redirect(url + (f"?run={run.pk}" if run else "") + f"#label-{label.pk}")
    states = clip_label_states(clip=clip, run=run, label_id=label.pk)
    return render(request, "curation/_adjudication_row.html",
                  {"clip": clip, "run": run, "s": states[0] if states else None,
                   "label": label})


# --- audits -----------------------------------------------------------------------------


@curator_required
@require_GET
def audit(request: HttpRequest, name: str) -> HttpResponse:
    dataset = get_object_or_404(Dataset, name=name)
    run = run_for(dataset, request.GET.get("run"))
    figures = dataset_audit(dataset=dataset, run=run, use_default_run=False)
    return render(request, "curation/audit.html", {
        "dataset": dataset, "run": run, "runs": dataset_runs(dataset), "f": figures,
        "charts": audit_charts(figures),
    })


# --- exports ----------------------------------------------------------------------------


@curator_required
def exports(request: HttpRequest, name: str) -> HttpResponse:
    dataset = get_object_or_404(Dataset, name=name)
    if request.method == "POST":
        form = ExportForm(request.POST)
        if form.is_valid():
            job = services.export_job_create(
                dataset=dataset, fmt=form.cleaned_data["format"],
                policy=form.cleaned_data["policy"], user=request.user,
            )
            messages.success(request, f"Export #{job.pk} queued.")
            return redirect("curation:exports", name=dataset.name)
    elif request.method == "GET":
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
    return FileResponse(open(path, "rb"), as_attachment=True, filename=path.name,  # noqa: SIM115
                        content_type=content_type)
