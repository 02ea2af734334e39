"""The audit page's threshold panel: the run's active threshold set (class, decisions,
threshold, F1; held-out precision / recall / F1 of global vs per-class thresholds) and the
"Fit thresholds" button. Loaded by htmx into the audit page (so the audit itself stays one
read), and a page of its own without JavaScript."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from relabel_app.models import Dataset
from relabel_app.roles import curator_required

from .forms import ThresholdFitForm
from .selectors import dataset_runs, run_for
from .thresholds import (
    DEFAULT_MIN_DECISIONS,
    ThresholdError,
    threshold_panel_data,
    threshold_set_fit,
)

PANEL = "curation/_thresholds_panel.html"


def _context(dataset: Dataset, run, min_decisions: int = DEFAULT_MIN_DECISIONS,
             **extra) -> dict:
    return {"dataset": dataset, "run": run, "tp": threshold_panel_data(run=run),
            "thresholds_loaded": True, "min_decisions": min_decisions, **extra}


@curator_required
@require_GET
def thresholds(request: HttpRequest, name: str) -> HttpResponse:
    dataset = get_object_or_404(Dataset, name=name)
    run = run_for(dataset, request.GET.get("run"))
    ctx = _context(dataset, run, runs=dataset_runs(dataset))
    return render(request, PANEL if request.htmx else "curation/thresholds.html", ctx)


@curator_required
@require_POST
def thresholds_fit(request: HttpRequest, name: str) -> HttpResponse:
    dataset = get_object_or_404(Dataset, name=name)
    form = ThresholdFitForm(request.POST)
    error = None
    run = None
    if not form.is_valid():
        error = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
    else:
        run = run_for(dataset, form.cleaned_data["run"])
        if run is None:
            error = f"no run {form.cleaned_data['run']} in dataset {dataset.name}"
        else:
            try:
                ts = threshold_set_fit(dataset=dataset, run=run, user=request.user,
                                       min_decisions=form.cleaned_data["min_decisions"])
            except ThresholdError as e:
                error = str(e)
    if request.htmx:
        ctx = _context(dataset, run, error=error, fitted=None if error else ts,
                       min_decisions=(form.cleaned_data.get("min_decisions")
                                      if form.is_valid() else DEFAULT_MIN_DECISIONS))
        # 200 either way: htmx swaps only successful responses, and the panel shows the error.
        return render(request, PANEL, ctx)
    if error:
        messages.error(request, f"Thresholds not fitted: {error}")
    else:
        messages.success(request, f"Threshold set {ts.name} v{ts.version} fitted.")
    url = reverse("curation:audit", kwargs={"name": dataset.name})
    return redirect(url + (f"?run={run.pk}" if run else "") + "#thresholds")
