"""Runs in the UI: list, start (curators), live progress (htmx polling), cancel, resume."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from relabel_app.roles import ROLE_GROUPS, user_is_curator, user_roles

from .forms import StartRunForm
from .models import PipelineRun
from .profiles import ProfileError
from .services import run_cancel, run_dispatch, run_get_or_create, run_progress, run_resume


def _require_role(request) -> None:
    """Run pages need a role, as /api/runs/ does: an account in no group gets 403."""
    if not user_roles(request.user) & set(ROLE_GROUPS):
        raise PermissionDenied("Run pages need the reviewer, curator or admin role.")


def _require_curator(request) -> None:
    if not user_is_curator(request.user):
        raise PermissionDenied("Only curators manage runs.")


@login_required
def run_list(request):
    _require_role(request)
    runs = PipelineRun.objects.select_related("dataset", "created_by").order_by("-created_at")[:50]
    form = StartRunForm() if user_is_curator(request.user) else None
    return render(request, "pipeline/run_list.html", {"runs": runs, "form": form})


@login_required
@require_POST
def run_start(request):
    _require_curator(request)
    form = StartRunForm(request.POST)
    if not form.is_valid():
        runs = PipelineRun.objects.select_related("dataset").order_by("-created_at")[:50]
        return render(request, "pipeline/run_list.html", {"runs": runs, "form": form}, status=400)
    try:
        run, created = run_get_or_create(
            dataset=form.cleaned_data["dataset"], profile=form.cleaned_data["profile"],
            new=form.cleaned_data["new"], user=request.user,
        )
    except ProfileError as e:
        messages.error(request, str(e))
        return redirect("pipeline:run_list")
    run_dispatch(run=run)
    messages.success(request, f"Run {run.pk} {'started' if created else 'continued'}.")
    return redirect("pipeline:run_detail", pk=run.pk)


@login_required
def run_detail(request, pk: int):
    _require_role(request)
    run = get_object_or_404(PipelineRun.objects.select_related("dataset"), pk=pk)
    ctx = {"run": run, "progress": run_progress(run=run), "is_curator": user_is_curator(request.user)}
    if request.htmx:
        resp = render(request, "pipeline/_run_progress.html", ctx)
        if ctx["progress"].status in (PipelineRun.Status.DONE, PipelineRun.Status.CANCELLED):
            resp.status_code = HttpResponseStopPolling.status_code
        return resp
    return render(request, "pipeline/run_detail.html", ctx)


@login_required
@require_POST
def run_cancel_view(request, pk: int):
    _require_curator(request)
    run_cancel(run=get_object_or_404(PipelineRun, pk=pk))
    return redirect("pipeline:run_detail", pk=pk)


@login_required
@require_POST
def run_resume_view(request, pk: int):
    _require_curator(request)
    run_resume(run=get_object_or_404(PipelineRun, pk=pk))
    return redirect("pipeline:run_detail", pk=pk)
