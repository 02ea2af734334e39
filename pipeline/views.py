"""Runs in the UI: list, start (curators), live progress (htmx polling), cancel, resume."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from relabel_app.roles import curator_required, reviewer_required, user_is_curator

from .config_view import config_for_reviewer, text_for_reviewer
from .forms import StartRunForm
from .models import PipelineRun
from .profiles import ProfileError
from .services import (
    run_cancel,
    run_dispatch,
    run_failed_results,
    run_get_or_create,
    run_progress,
    run_resume,
)


def _last_start(request) -> dict:
    """The start form's initial choices: the profile (and dataset) this curator last
    started a run with, so "tiny" is not picked again by default after "paper"."""
    last = (PipelineRun.objects.filter(created_by=request.user)
            .exclude(kind=PipelineRun.Kind.DERIVED).order_by("-created_at", "-id")
            .values("profile_name", "dataset_id").first())
    if last is None:
        return {}
    return {"profile": last["profile_name"], "dataset": last["dataset_id"]}


def _run_list_page(request, form, status: int = 200):
    runs = PipelineRun.objects.select_related("dataset", "created_by").order_by("-created_at")[:50]
    return render(request, "pipeline/run_list.html", {"runs": runs, "form": form}, status=status)


@reviewer_required
def run_list(request):
    form = StartRunForm(initial=_last_start(request)) if user_is_curator(request.user) else None
    return _run_list_page(request, form)


@login_required
@require_POST
@curator_required
def run_start(request):
    form = StartRunForm(request.POST)
    if not form.is_valid():
        return _run_list_page(request, form, status=400)
    try:
        run, created = run_get_or_create(
            dataset=form.cleaned_data["dataset"], profile=form.cleaned_data["profile"],
            new=form.cleaned_data["new"], user=request.user,
        )
    except ProfileError as e:
        # The form again as it was sent (dataset and profile kept), with the reason.
        form.add_error("profile", str(e))
        return _run_list_page(request, form, status=400)
    run_dispatch(run=run)
    messages.success(request, f"Run {run.pk} {'started' if created else 'continued'}.")
    return redirect("pipeline:run_detail", pk=run.pk)


@reviewer_required
def run_detail(request, pk: int):
    run = get_object_or_404(PipelineRun.objects.select_related("dataset"), pk=pk)
    is_curator = user_is_curator(request.user)
    if not is_curator:  # server paths and base URLs are for the curators who run models
        run.stop_reason = text_for_reviewer(run.stop_reason)
    ctx = {"run": run, "progress": run_progress(run=run), "is_curator": is_curator}
    if request.htmx:
        resp = render(request, "pipeline/_run_progress.html", ctx)
        if ctx["progress"].status in (PipelineRun.Status.DONE, PipelineRun.Status.CANCELLED):
            resp.status_code = HttpResponseStopPolling.status_code
        return resp
    failed, failed_total = run_failed_results(run=run)
    config = run.config
    if not is_curator:
        config = config_for_reviewer(config)
        for r in failed:
            r.error = text_for_reviewer(r.error)
    ctx.update(failed=failed, failed_total=failed_total,
               config_json=json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False))
    return render(request, "pipeline/run_detail.html", ctx)


@login_required
@require_POST
@curator_required
def run_cancel_view(request, pk: int):
    run_cancel(run=get_object_or_404(PipelineRun, pk=pk))
    return redirect("pipeline:run_detail", pk=pk)


@login_required
@require_POST
@curator_required
def run_resume_view(request, pk: int):
    run = get_object_or_404(PipelineRun, pk=pk)
    if run_progress(run=run).can_resume:
        run_resume(run=run)
    else:
        messages.info(request, f"Run {run.pk} is not cancelled or interrupted: nothing to resume.")
    return redirect("pipeline:run_detail", pk=pk)
