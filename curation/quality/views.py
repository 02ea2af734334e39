"""Quality study pages. Curators: create (/curation/dataset/<name>/quality/) and read the
report (.../quality/<id>/, CSV downloads). Reviewers: the blind study screen. Thin: check
the role, validate, call one service or selector, render."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from relabel_app.ids import BadNumber, id_if_in_range, looks_like_id, parse_int
from relabel_app.label_info import ontology
from relabel_app.models import Clip, Dataset, Label
from relabel_app.roles import curator_required, reviewer_required
from review.audio_serving import AudioPathRefused, clip_audio_file
from review.label_search import label_search

from ..charts import interval_bars
from ..selectors import dataset_runs
from .answers import (
    may_answer,
    quality_answers_record,
    quality_classes_add,
    quality_clips_done,
    quality_next_units,
)
from .csv import full_csv, qa_csv
from .forms import StudyForm
from .models import QualityStudy
from .report import overall_lines, quality_report
from .sampling import CURATED, ORIGINAL, RUN_PREFIX, QualityError, quality_study_create
from .table import class_rows_html


def _study(dataset_name: str, study_id: int) -> QualityStudy:
    return get_object_or_404(QualityStudy.objects.select_related("dataset"),
                             pk=study_id, dataset__name=dataset_name)


def _source_choices(dataset: Dataset) -> list[tuple[str, str]]:
    out = [(ORIGINAL, "original (the dataset's own labels)")]
    for run in dataset_runs(dataset):
        out.append((f"{RUN_PREFIX}{run.pk}", f"run:{run.pk} ({run.get_kind_display()}, "
                                             f"{run.profile_name})"))
    out.append((CURATED, "curated (frozen now, keep-original policy)"))
    return out


@curator_required
@require_http_methods(["GET", "POST"])
def studies(request: HttpRequest, name: str) -> HttpResponse:
    dataset = get_object_or_404(Dataset, name=name)
    form = StudyForm(request.POST or None, source_choices=_source_choices(dataset))
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            study = quality_study_create(
                dataset=dataset, name=d["name"], sources=d["sources"], per_class=d["per_class"],
                recall_clips=d["recall_clips"], answers_per_question=d["answers_per_question"],
                classes=[m for m in (d["classes"] or "").split(",") if m.strip()],
                seed=d["seed"], created_by=request.user, answerers=list(d["answerers"]))
        except QualityError as e:
            form.add_error(None, str(e))
        else:
            messages.success(request, f"Quality study {study.name} created.")
            return redirect("curation:quality_report", name=dataset.name, study_id=study.pk)
    rows = [(s, s.questions.count(), s.questions.filter(answer_count__gt=0).count())
            for s in QualityStudy.objects.filter(dataset=dataset)]
    return render(request, "curation/quality/studies.html",
                  {"dataset": dataset, "form": form, "rows": rows},
                  status=400 if request.method == "POST" else 200)


def _chart(report: dict):
    items = []
    for r in sorted(report["classes"], key=lambda r: (r.estimate.value is None,
                                                      r.estimate.value or 0, r.name)):
        if r.estimate.value is not None:
            items.append((f"{r.name} · {r.source}", r.estimate.value, r.estimate.low,
                          r.estimate.high))
    shown = items[:80]
    more = f", the {len(shown)} lowest of {len(items)}" if len(items) > len(shown) else ""
    return interval_bars(shown, title=f"Per-class precision with 95 % Wilson intervals "
                                      f"(sorted{more})")


@curator_required
@require_GET
def report(request: HttpRequest, name: str, study_id: int) -> HttpResponse:
    study = _study(name, study_id)
    rep = quality_report(study)
    sort = request.GET.get("sort", "mid")
    keys = {"mid": lambda r: (r.mid, r.source), "precision": lambda r: (
        r.estimate.value is None, r.estimate.value or 0, r.mid),
        "rated": lambda r: (-r.rated, r.mid), "name": lambda r: (r.name, r.source)}
    rows = sorted(rep["classes"], key=keys.get(sort, keys["mid"]))
    return render(request, "curation/quality/report.html", {
        "study": study, "dataset": study.dataset, "report": rep, "sort": sort,
        "class_rows": class_rows_html(rows),
        "lines": overall_lines(rep), "chart": _chart(rep),
    })


@curator_required
@require_GET
def report_csv(request: HttpRequest, name: str, study_id: int) -> HttpResponse:
    study = _study(name, study_id)
    rep = quality_report(study)
    source = request.GET.get("source")
    if source is not None:
        if source not in study.sources:
            return HttpResponse(f"unknown source {source!r}\n", status=400,
                                content_type="text/plain")
        text, fname = qa_csv(rep, source), f"{study.name}-{source.replace(':', '-')}-qa.csv"
    else:
        text, fname = full_csv(rep), f"{study.name}-quality.csv"
    resp = HttpResponse(text, content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="{fname}"'
    return resp


# --- the blind study screen (reviewers) --------------------------------------------------


def _answerable(request: HttpRequest, study_id: int) -> QualityStudy:
    study = get_object_or_404(QualityStudy.objects.select_related("dataset"), pk=study_id)
    if not may_answer(study=study, user=request.user):
        raise PermissionDenied("You are not among this study's answerers.")
    return study


def _audio_url(clip: Clip) -> str:
    try:
        ok = clip_audio_file(clip) is not None
    except AudioPathRefused:
        ok = False
    return reverse("review:clip_audio", kwargs={"clip_id": clip.pk}) if ok else ""


def _units_context(study: QualityStudy, units) -> dict:
    onto = ontology(need_ids=[q.label_id for u in units for q in u.questions])
    blocks = []
    for u in units:
        blocks.append({
            "clip": u.clip, "recall": u.recall, "audio_url": _audio_url(u.clip),
            "unit": u.unit,
            "questions": [(q, onto.get(q.label_id)) for q in u.questions],
        })
    return {"study": study, "blocks": blocks}


@reviewer_required
@require_GET
@never_cache
def answer_screen(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _answerable(request, study_id)
    units = quality_next_units(study=study, reviewer=request.user, limit=3)
    ctx = _units_context(study, units)
    ctx["more_url"] = reverse("curation:quality_units", kwargs={"study_id": study.pk})
    ctx["first_audio"] = next((b["audio_url"] for b in ctx["blocks"] if b["audio_url"]), "")
    ctx["search_url"] = reverse("curation:quality_search", kwargs={"study_id": study.pk})
    return render(request, "curation/quality/answer.html", ctx)


@reviewer_required
@require_GET
@never_cache
def units_partial(request: HttpRequest, study_id: int) -> HttpResponse:
    """The next clips after ``after`` (a unit key), for the screen's preload."""
    study = _answerable(request, study_id)
    after = request.GET.get("after", "")
    try:
        # A unit key is a signed bigint (a seeded hash rank).
        after_unit = None if not after else (
            -parse_int(after[1:], name="after") if after.startswith("-")
            else parse_int(after, name="after"))
    except BadNumber:
        return HttpResponse("bad after\n", status=400, content_type="text/plain")
    units = quality_next_units(study=study, reviewer=request.user, limit=3, after_unit=after_unit)
    return render(request, "curation/quality/_units.html", _units_context(study, units))


@reviewer_required
@require_POST
def answer(request: HttpRequest, study_id: int, question_id: int) -> HttpResponse:
    study = _answerable(request, study_id)
    try:
        quality_answers_record(study=study, reviewer=request.user,
                               answers=[(question_id, request.POST.get("verdict", ""))])
    except QualityError as e:
        return JsonResponse({"error": str(e)}, status=409 if "answers already" in str(e) else 400)
    return JsonResponse({"ok": True})


@reviewer_required
@require_POST
def clip_done(request: HttpRequest, study_id: int, clip_id: int) -> HttpResponse:
    study = _answerable(request, study_id)
    clip = get_object_or_404(Clip, pk=clip_id, dataset=study.dataset)
    try:
        quality_clips_done(study=study, clips=[clip], reviewer=request.user)
    except QualityError as e:
        return JsonResponse({"error": str(e)}, status=400)
    if request.htmx or request.headers.get("Accept") == "application/json":
        return JsonResponse({"ok": True})
    return redirect("curation:quality_answer", study_id=study.pk)


@reviewer_required
@require_POST
def class_add(request: HttpRequest, study_id: int, clip_id: int) -> HttpResponse:
    study = _answerable(request, study_id)
    clip = get_object_or_404(Clip, pk=clip_id, dataset=study.dataset)
    ref = request.POST.get("label") or ""
    label = Label.objects.filter(pk=id_if_in_range(ref)).first() if looks_like_id(ref) else None
    if label is None:
        return HttpResponse("Choose a class.", status=400, content_type="text/plain")
    try:
        quality_classes_add(study=study, reviewer=request.user, additions=[(clip, label)])
    except QualityError as e:
        return HttpResponse(str(e), status=400, content_type="text/plain")
    return HttpResponse(f"Added: {label.name}", content_type="text/plain")


@reviewer_required
@require_GET
def search(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _answerable(request, study_id)
    query = request.GET.get("q", "")[:100]
    return render(request, "curation/quality/_search.html", {
        "hits": label_search(query=query), "query": query, "study": study})
