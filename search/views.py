"""The search screens: "Clips like this" (a partial on the clip page), find by sound
description, and class sweeps. Thin: check the role, validate, call one query or service,
render. Bad input and a missing index show a message, never a 500."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from relabel_app.ids import id_if_in_range, looks_like_id, parse_id
from relabel_app.models import Clip, Dataset, Label
from relabel_app.roles import reviewer_required
from review.decisions import LabelRefused, decision_upsert
from review.models import Decision, Verdict

from . import queries, services
from .models import SearchIndex


def _page_number(raw) -> int:
    try:
        return max(0, min(int(raw or 0), queries.MAX_K // queries.PAGE - 1))
    except ValueError:
        return 0


def _label_from_mid(mid: str) -> Label:
    ref = mid.strip("/")
    label = (Label.objects.filter(pk=id_if_in_range(ref)).first() if looks_like_id(ref)
             else Label.objects.filter(mid="/" + ref).first())
    if label is None:
        from django.http import Http404

        raise Http404("no such class")
    return label


def sweep_url(dataset: Dataset, label: Label, tab: str = "") -> str:
    url = reverse("search:sweep", kwargs={"dataset_id": dataset.pk, "mid": label.mid.strip("/")})
    return url + (f"?tab={tab}" if tab else "")


@reviewer_required
@require_GET
@never_cache
def similar_panel(request: HttpRequest, clip_id: int) -> HttpResponse:
    """The folded "Clips like this" panel's content (fetched by htmx when opened)."""
    clip = get_object_or_404(Clip.objects.select_related("dataset"), pk=clip_id)
    error, page = "", None
    try:
        page = queries.similar_clips(clip=clip, k=queries.SIMILAR_K)
    except queries.SearchUnavailable as e:
        error = str(e)
    return render(request, "search/_similar.html", {"clip": clip, "page": page, "error": error})


@reviewer_required
@require_GET
def find_start(request: HttpRequest) -> HttpResponse:
    """The navigation's "Find by sound": the dataset with a search index (or the first)."""
    idx = SearchIndex.objects.filter(version__gt=0).order_by("-clip_count").first()
    ds = idx.dataset if idx else Dataset.objects.order_by("name").first()
    if ds is None:
        messages.info(request, "No datasets yet.")
        return redirect("review:home")
    return redirect("search:find", dataset_id=ds.pk)


@reviewer_required
@require_GET
@never_cache
def find(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    q = request.GET.get("q", "")
    number = _page_number(request.GET.get("page"))
    klass, error, page = None, "", None
    status = 200
    if request.GET.get("class"):
        try:
            klass = queries.trainable_class_or_error(request.GET["class"])
        except queries.SearchUnavailable as e:
            error, status = str(e), 400
    if q.strip() and not error:
        try:
            page = queries.text_search(dataset=dataset, q=q, k=queries.PAGE,
                                       offset=number * queries.PAGE, klass=klass)
        except queries.SearchUnavailable as e:
            error, status = str(e), 400
    elif "q" in request.GET and not error:
        error = "Type a sound description to search for, e.g. \u201cdog barking\u201d."
    return render(request, "search/find.html", {
        "dataset": dataset, "q": q, "klass": klass, "page": page, "error": error,
        "number": number, "datasets": Dataset.objects.order_by("name"),
        "classes": Label.objects.filter(index__isnull=False).order_by("name"),
        "first_shown": page.offset + 1 if page and page.rows else 0,
        "last_shown": page.offset + len(page.rows) if page else 0,
    }, status=status)


def _safe_next(request: HttpRequest, fallback: str) -> str:
    # A path on this site only (as the Autoplay form): redirect() would read a bare word as
    # a view name, and a host, even ours, comes from the client.
    nxt = request.POST.get("next", "")
    if nxt.startswith("/") and not nxt.startswith(("//", "/\\")) \
            and url_has_allowed_host_and_scheme(nxt, allowed_hosts=set()):
        return nxt
    return fallback


@reviewer_required
@require_POST
def add_to_selected(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """"Add <class> to selected": one accepted added-label decision per selected clip."""
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    back = _safe_next(request, reverse("search:find", kwargs={"dataset_id": dataset.pk}))
    try:
        label = queries.trainable_class_or_error(request.POST.get("class", ""))
    except queries.SearchUnavailable as e:
        messages.error(request, str(e))
        return redirect(back)
    raw = request.POST.getlist("clip")
    if not raw or not all(looks_like_id(r) for r in raw) or len(raw) > queries.MAX_K:
        messages.error(request, "Select one or more clips first (x selects, A selects the page).")
        return redirect(back)
    clips = list(Clip.objects.filter(dataset=dataset,
                                     pk__in=[parse_id(r, name="clip") for r in raw]))
    if len(clips) != len(set(raw)):
        return HttpResponseBadRequest("a selected clip is not in this dataset")
    try:
        done = services.search_add_label(clips=clips, label=label, reviewer=request.user)
    except LabelRefused as e:
        messages.error(request, str(e))
        return redirect(back)
    messages.success(request, f"{label.name} added to {len(done)} clip{'s' if len(done) != 1 else ''}.")
    return redirect(back)


@reviewer_required
@require_GET
@never_cache
def sweep(request: HttpRequest, dataset_id: int, mid: str) -> HttpResponse:
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    label = _label_from_mid(mid)
    tab = "missing" if request.GET.get("tab") == "missing" else "carrying"
    number = _page_number(request.GET.get("page"))
    error, page, total = "", None, 0
    status = 200
    if label.index is None:
        kind = "an abstract class" if label.abstract else "not one of the 527 trainable classes"
        error, status = f"{label.name} is {kind}, so it cannot be a label to sweep.", 400
    else:
        try:
            if tab == "missing":
                page = queries.sweep_likely_missing(dataset=dataset, label=label)
            else:
                page, total = queries.sweep_carrying(dataset=dataset, label=label,
                                                     offset=number * queries.PAGE)
        except queries.SearchUnavailable as e:
            error = str(e)
    mine = {}
    if page:
        mine = dict(Decision.objects.filter(
            reviewer=request.user, label=label, clip_id__in=[r.clip.pk for r in page.rows])
            .values_list("clip_id", "verdict"))
        for r in page.rows:
            r.verdict = mine.get(r.clip.pk, "")
    return render(request, "search/sweep.html", {
        "dataset": dataset, "label": label, "tab": tab, "page": page, "total": total,
        "error": error, "number": number, "one": request.GET.get("view") == "one",
        "carrying_url": sweep_url(dataset, label), "missing_url": sweep_url(dataset, label, "missing"),
    }, status=status)


@reviewer_required
@require_POST
def sweep_decide(request: HttpRequest, dataset_id: int, mid: str) -> HttpResponse:
    """One key of a sweep (a / r / u): the reviewer's verdict on the class for one clip, a
    normal decision (source `search` when new). Answers 204 to fetch, else redirects back."""
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    label = _label_from_mid(mid)
    verdict = request.POST.get("verdict", "")
    clip_ref = request.POST.get("clip", "")
    if verdict not in Verdict.values or not looks_like_id(clip_ref):
        return HttpResponseBadRequest("verdict must be accept, reject or unsure, with a clip id")
    if label.index is None:
        return HttpResponseBadRequest(f"{label.name} cannot be a label")
    clip = get_object_or_404(Clip, pk=parse_id(clip_ref, name="clip"), dataset=dataset)
    d, created = decision_upsert(clip=clip, label=label, reviewer=request.user, verdict=verdict)
    if created:
        Decision.objects.filter(pk=d.pk).update(source=Decision.Source.SEARCH)
    if request.headers.get("X-Requested-With") == "fetch":
        return HttpResponse(status=204)
    return redirect(_safe_next(request, sweep_url(dataset, label)))


@reviewer_required
@require_GET
@never_cache
def index_state(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """The dataset's index state (clips indexed, built at, building…); polls while a build
    is queued or running, then stops (htmx status 286)."""
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    indexes = queries.index_state(dataset=dataset)
    busy = any(i.status in (SearchIndex.Status.QUEUED, SearchIndex.Status.BUILDING) for i in indexes)
    response = render(request, "search/_index_state.html", {
        "dataset": dataset, "indexes": indexes, "busy": busy,
        "embedded": sum(queries.embedding_counts(dataset=dataset).values()),
        "faiss": services.vector_index.faiss_available(),
        "link": request.GET.get("link") == "1",  # the dataset page's card links to the find page
    })
    if request.htmx and not busy:
        response.status_code = 286
    return response
