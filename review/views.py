"""The review screens. Thin: check the role, validate, call one service, render.

htmx requests get partials (a label row, the rows of the table, search results); the same
URLs answer plain form posts with a redirect, so the page works without JavaScript."""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import http_date, url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, trigger_client_event

from relabel_app.ids import BadNumber, looks_like_id, optional_id, parse_id
from relabel_app.label_info import ontology
from relabel_app.models import Clip, Dataset, Label
from relabel_app.roles import curator_required, reviewer_required, user_is_curator

from . import clip_notes, decisions, finishing, queue, reviewer_settings
from .audio_serving import (
    AudioPathRefused,
    RangeNotSatisfiable,
    audio_download_name,
    audio_file_type,
    clip_audio_file,
    file_etag,
    iter_file_range,
    parse_range,
)
from .counters import review_counters
from .forms import CategoryForm, ClipNoteForm, DatasetReviewSettingsForm, DecisionForm
from .label_search import label_search
from .models import Decision, ErrorCategory, Verdict
from .recent_clips import reviewer_recent_clips
from .selectors import (
    ClipPage,
    clip_decisions_all,
    clip_page_data,
    dataset_progress_list,
    rapid_questions,
)
from .youtube import youtube_segment_url

# The clip page and every partial it fetches: never from a cache, so Back and Forward show
# what is saved rather than the page as it was first sent (Cache-Control: no-store, ...).
no_store = never_cache

_SESSION_KEY = "review_session_started"


def _session_start(request: HttpRequest, dataset: Dataset) -> None:
    """Remember when the reviewer started on this dataset (the "clip k of N" counter)."""
    started = dict(request.session.get(_SESSION_KEY, {}))
    started[str(dataset.pk)] = timezone.now().isoformat()
    request.session[_SESSION_KEY] = started


def _session_started(request: HttpRequest, dataset_id: int) -> datetime | None:
    value = request.session.get(_SESSION_KEY, {}).get(str(dataset_id))
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def _clip_or_404(clip_id: int) -> Clip:
    return get_object_or_404(Clip.objects.select_related("dataset"), pk=clip_id)


def _decided_clip_or_404(clip_id: int) -> Clip:
    """The clip of a decision: its dataset is not needed to record and redraw one."""
    return get_object_or_404(Clip, pk=clip_id)


@reviewer_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    is_curator = user_is_curator(request.user)
    progress = dataset_progress_list(user=request.user)
    forms = {}
    if is_curator:
        forms = {p.dataset.pk: DatasetReviewSettingsForm(instance=p.dataset, prefix=f"ds{p.dataset.pk}")
                 for p in progress}
    for p in progress:
        p.settings_form = forms.get(p.dataset.pk)
    return render(request, "review/home.html", {"progress": progress, "is_curator": is_curator})


@curator_required
@require_POST
def dataset_settings(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    form = DatasetReviewSettingsForm(request.POST, instance=dataset, prefix=f"ds{dataset.pk}")
    if form.is_valid():
        queue.dataset_review_settings_update(
            dataset=dataset,
            review_priority=form.cleaned_data["review_priority"],
            required_reviews=form.cleaned_data["required_reviews"],
        )
        messages.success(request, f"{dataset.name}: review settings saved.")
    else:
        messages.error(request, f"{dataset.name}: {form.errors.as_text()}")
    return redirect("review:home")


@reviewer_required
@require_POST
def review_start(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    clip = queue.queue_next_clip(dataset=dataset, reviewer=request.user)
    if clip is None:
        messages.info(request, f"Nothing left for you to review in {dataset.name}.")
        return redirect("review:home")
    _session_start(request, dataset)
    return redirect("review:clip", clip_id=clip.pk)


# A finished clip that did not count (its open slots are held by others): the full screen
# and rapid mode say the same.
NOT_COUNTED = ("Your decisions on that clip are saved. It did not count as finished by you: "
               "another reviewer holds it now.")


@reviewer_required
@require_POST
def review_next(request: HttpRequest, clip_id: int) -> HttpResponse:
    """Finish this clip and go to the next one of its dataset."""
    clip = _clip_or_404(clip_id)
    # The clip screen's in-place next clip (static/js/review.js) asks for the next clip's
    # address as JSON and swaps the page itself; a message it shows as a toast.
    in_place = request.headers.get("X-Review-In-Place") == "1"
    note = ""
    if finishing.clip_finish(clip=clip, reviewer=request.user) is None:
        if in_place:
            note = NOT_COUNTED
        else:
            messages.info(request, NOT_COUNTED)
    nxt = queue.queue_next_clip(dataset=clip.dataset, reviewer=request.user)
    if nxt is None:
        # Shown by the datasets page, which the script loads in full.
        messages.success(request, f"You have reviewed every clip of {clip.dataset.name} "
                                  "that needed you. Thank you!")
        if in_place:
            return JsonResponse({"url": reverse("review:home"), "clip": None, "message": note})
        return redirect("review:home")
    if in_place:
        return JsonResponse({"url": reverse("review:clip", args=[nxt.pk]), "clip": nxt.pk,
                             "message": note})
    return redirect("review:clip", clip_id=nxt.pk)


def _page(request: HttpRequest, clip: Clip) -> ClipPage:
    return clip_page_data(clip=clip, reviewer=request.user, show_all=user_is_curator(request.user))


@reviewer_required
@require_GET
@no_store
def clip_detail(request: HttpRequest, clip_id: int) -> HttpResponse:
    clip = _clip_or_404(clip_id)
    page = _page(request, clip)
    page.next_clip_id = queue.queue_peek_next_clip_id(
        dataset=clip.dataset, reviewer=request.user, exclude_clip_id=clip.pk
    )
    audio_refused = False
    try:
        audio_file = clip_audio_file(clip)
    except AudioPathRefused:
        audio_file, audio_refused = None, True
    return render(request, "review/clip.html", {
        "page": page, "clip": clip, "audio_available": audio_file is not None,
        "audio_refused": audio_refused, "verdicts": Verdict,
        "youtube_url": youtube_segment_url(clip),
        "clip_note": clip_notes.clip_note_text(clip=clip, reviewer=request.user),
    })


def _row_response(request: HttpRequest, clip: Clip, label_id: int) -> HttpResponse:
    """The decided row (swapped in place) and, out of band, the hierarchy flags of the rows
    a decision on this label can change: its ancestors (see selectors._hierarchy_flags)."""
    if not request.htmx:
        return redirect(reverse("review:clip", kwargs={"clip_id": clip.pk}) + f"#label-{label_id}")
    page = clip_page_data(clip=clip, reviewer=request.user,
                          show_all=user_is_curator(request.user), with_outputs=False)
    row = page.row(label_id)
    # An undone added label has no row any more; its ancestors' flags may still change.
    info = row.info if row else ontology(need_ids=[label_id]).get(label_id)
    ancestors = info.ancestor_ids if info else frozenset()
    response = render(request, "review/_decision_response.html", {
        "page": page, "row": row, "others": [r for r in page.rows if r.label_id in ancestors],
    })
    if row is None:  # an added label undone: its row goes away
        reswap(response, "delete")
    return response


@reviewer_required
@require_POST
@no_store
def decision_set(request: HttpRequest, clip_id: int, label_id: int) -> HttpResponse:
    clip = _decided_clip_or_404(clip_id)
    label = get_object_or_404(Label, pk=label_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("verdict must be accept, reject or unsure")
    try:
        decisions.decision_record(
            clip=clip, label=label, reviewer=request.user, verdict=form.cleaned_data["verdict"]
        )
    except decisions.LabelRefused as e:  # the trainable rule (review.label_rules)
        return HttpResponseBadRequest(str(e))
    return _row_response(request, clip, label.pk)


@reviewer_required
@require_POST
@no_store
def decision_undo(request: HttpRequest, clip_id: int, label_id: int) -> HttpResponse:
    clip = _decided_clip_or_404(clip_id)
    label = get_object_or_404(Label, pk=label_id)
    decisions.decision_undo(clip=clip, label=label, reviewer=request.user)
    return _row_response(request, clip, label.pk)


@reviewer_required
@require_POST
@no_store
def decision_category(request: HttpRequest, clip_id: int, label_id: int) -> HttpResponse:
    clip = _decided_clip_or_404(clip_id)
    label = get_object_or_404(Label, pk=label_id)
    form = CategoryForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_text())
    try:
        decisions.decision_categorize(
            clip=clip, label=label, reviewer=request.user,
            error_category=form.cleaned_data["error_category"], note=form.cleaned_data["note"],
        )
    except Decision.DoesNotExist:
        return HttpResponseBadRequest("Decide on the label before giving an error category.")
    return _row_response(request, clip, label.pk)


@reviewer_required
@require_POST
@no_store
def clip_note_set(request: HttpRequest, clip_id: int) -> HttpResponse:
    """The reviewer's note on the clip as a whole; an empty note removes it."""
    clip = _decided_clip_or_404(clip_id)
    form = ClipNoteForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_text())
    note = clip_notes.clip_note_save(clip=clip, reviewer=request.user,
                                     text=form.cleaned_data["note"])
    if not request.htmx:
        messages.success(request, "Note on the clip saved." if note else "Note on the clip removed.")
        return redirect(reverse("review:clip", kwargs={"clip_id": clip.pk}) + "#clip-note-form")
    return render(request, "review/_clip_note.html", {
        "clip": clip, "clip_note": note.text if note else "", "saved": True,
    })


@reviewer_required
@require_POST
@no_store
def label_add(request: HttpRequest, clip_id: int) -> HttpResponse:
    """Add a label the clip lacks: it is accepted by this reviewer."""
    clip = _clip_or_404(clip_id)
    ref = request.POST.get("label", "").strip()
    if looks_like_id(ref):
        label = get_object_or_404(Label, pk=parse_id(ref, name="label"))
    elif ref.startswith("/"):  # a MID: /m/..., /t/..., /g/...
        label = get_object_or_404(Label, mid=ref[:64])
    else:
        raise BadNumber("label must be a label id or a MID such as /m/09x0r")
    try:
        decisions.decision_add_label(clip=clip, label=label, reviewer=request.user)
    except decisions.LabelRefused as e:
        if not request.htmx:
            messages.error(request, str(e))
            return redirect("review:clip", clip_id=clip.pk)
        # Nothing to swap: the rows stay, the page says why (review.js shows the message).
        response = reswap(HttpResponse(status=200), "none")
        return trigger_client_event(response, "review:label-refused",
                                    {"mid": label.mid, "message": str(e)})
    if not request.htmx:
        return redirect(reverse("review:clip", kwargs={"clip_id": clip.pk}) + f"#label-{label.pk}")
    page = _page(request, clip)
    response = render(request, "review/_label_rows.html", {"page": page})
    return trigger_client_event(response, "review:label-added", {"mid": label.mid})


@reviewer_required
@require_GET
@no_store
def label_search_view(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:100]
    hits = label_search(query=query)
    return render(request, "review/_search_results.html", {
        "hits": hits, "query": query, "clip_id": optional_id(request.GET.get("clip"), name="clip"),
    })


@curator_required
@require_GET
@no_store
def clip_decisions(request: HttpRequest, clip_id: int) -> HttpResponse:
    """Adjudication view: every reviewer's decision on each label of a clip."""
    clip = _clip_or_404(clip_id)
    page = clip_page_data(clip=clip, reviewer=request.user, show_all=True)
    by_label: dict[int, list[Decision]] = {}
    for d in clip_decisions_all(clip=clip):
        by_label.setdefault(d.label_id, []).append(d)
    rows = [(r, by_label.get(r.label_id, [])) for r in page.rows]
    return render(request, "review/clip_decisions.html", {"clip": clip, "page": page, "rows": rows})


@reviewer_required
@require_http_methods(["GET", "HEAD"])
def clip_audio(request: HttpRequest, clip_id: int) -> HttpResponse:
    """The clip's audio file with HTTP Range support (seeking). Only the file the clip
    names, and only inside its dataset's audio root."""
    clip = _clip_or_404(clip_id)
    try:
        path = clip_audio_file(clip)
    except AudioPathRefused:
        raise Http404("No audio file for this clip.") from None
    if path is None:
        raise Http404("No audio file for this clip.")
    size = path.stat().st_size
    # By content, never by name (clip_audio_file already refused anything not audio).
    content_type = audio_file_type(path)
    if content_type is None:
        raise Http404("No audio file for this clip.")
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=3600",
        "ETag": file_etag(path),
        "Last-Modified": http_date(path.stat().st_mtime),
    }
    try:
        byte_range = parse_range(request.headers.get("Range"), size)
    except RangeNotSatisfiable:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    if byte_range is not None and request.headers.get("If-Range") not in (None, headers["ETag"]):
        byte_range = None  # the file changed since the client's first part: send it whole
    if byte_range is None:
        # FileResponse closes the file when the response is done.
        response = FileResponse(open(path, "rb"), content_type=content_type)  # noqa: SIM115
    else:
        start, end = byte_range
        length = end - start + 1
        response = StreamingHttpResponse(
            iter_file_range(path, start, length), status=206, content_type=content_type
        )
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(length)
    for k, v in headers.items():
        response[k] = v
    # The download name comes from the clip id: the stored file name is a server detail
    # (FileResponse would send its base name).
    response["Content-Disposition"] = (
        f'inline; filename="{audio_download_name(clip.pk, content_type)}"')
    return response


@reviewer_required
@require_GET
@no_store
def clip_counters(request: HttpRequest, clip_id: int) -> HttpResponse:
    """The clip page's counters, loaded after the page (review.counters)."""
    clip = _decided_clip_or_404(clip_id)
    counters = review_counters(clip=clip, reviewer=request.user,
                               session_started=_session_started(request, clip.dataset_id))
    return render(request, "review/_counters.html", {"c": counters})


@reviewer_required
@require_POST
def autoplay_set(request: HttpRequest) -> HttpResponse:
    on = request.POST.get("autoplay") == "1"
    reviewer_settings.reviewer_settings_update(user=request.user, autoplay=on)
    messages.success(request, f"Autoplay {'on' if on else 'off'}.")
    nxt = request.POST.get("next", "")
    # A path on this site only: no scheme, no host (not even ours: the Host header is the
    # client's), no "//" or "/\\" that a browser reads as another host.
    if not (nxt.startswith("/") and not nxt.startswith(("//", "/\\"))
            and url_has_allowed_host_and_scheme(nxt, allowed_hosts=set())):
        nxt = reverse("review:home")
    return redirect(nxt)


# --- rapid mode -------------------------------------------------------------------------


@reviewer_required
@require_GET
@no_store
def recent_clips_view(request: HttpRequest) -> HttpResponse:
    """'Your recent clips' (last 50, verdict counts): a partial for both review screens."""
    clips = reviewer_recent_clips(reviewer=request.user,
                                  dataset_id=optional_id(request.GET.get("dataset"),
                                                         name="dataset"))
    return render(request, "review/_recent_clips.html",
                  {"clips": clips, "rapid": request.GET.get("mode") == "rapid"})


@reviewer_required
@require_POST
def rapid_start(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    clip = queue.queue_next_clip(dataset=dataset, reviewer=request.user)
    if clip is None:
        messages.info(request, f"Nothing left for you to review in {dataset.name}.")
        return redirect("review:home")
    _session_start(request, dataset)
    return redirect("review:rapid", clip_id=clip.pk)


def _rapid_context(request: HttpRequest, clip: Clip) -> dict:
    page = clip_page_data(clip=clip, reviewer=request.user, with_outputs=False)
    try:
        has_audio = clip_audio_file(clip) is not None
    except AudioPathRefused:
        has_audio = False
    return {
        "clip": clip, "page": page, "questions": rapid_questions(page=page),
        # Rapid mode's e (error category and note on the last answer) offers them.
        "categories": ErrorCategory.objects.filter(active=True),
        "audio_url": reverse("review:clip_audio", kwargs={"clip_id": clip.pk}) if has_audio else "",
    }


@reviewer_required
@require_GET
@no_store
def rapid_clip(request: HttpRequest, clip_id: int) -> HttpResponse:
    """Rapid mode on one clip: its undecided labels as yes / no questions. The next clip's
    questions and audio are fetched by rapid.js while this one is answered."""
    clip = _clip_or_404(clip_id)
    ctx = _rapid_context(request, clip)
    next_id = queue.queue_peek_next_clip_id(dataset=clip.dataset, reviewer=request.user,
                                      exclude_clip_id=clip.pk)
    ctx["next_questions_url"] = (reverse("review:rapid_questions", kwargs={"clip_id": next_id})
                                 if next_id else "")
    ctx["autoplay"] = ctx["page"].autoplay
    return render(request, "review/rapid.html", ctx)


@reviewer_required
@require_GET
@no_store
def rapid_questions_view(request: HttpRequest, clip_id: int) -> HttpResponse:
    clip = _clip_or_404(clip_id)
    # ?loaded=: the clips rapid.js holds already (the one answered is leased, those ahead
    # are not yet, so the peek must be told to pass over them).
    parts = [p for p in request.GET.get("loaded", "").split(",") if p]
    if len(parts) > 50 or not all(p.isdigit() and len(p) < 12 for p in parts):
        return HttpResponseBadRequest("loaded: at most 50 clip ids, separated by commas.")
    ctx = _rapid_context(request, clip)
    # The clip after this one, so rapid.js keeps ahead without waiting for the finish of
    # the clip before (queued behind its answers).
    after = queue.queue_peek_next_clip_id(dataset=clip.dataset, reviewer=request.user,
                                          exclude_clip_id=clip.pk,
                                          also_exclude=[int(p) for p in parts])
    ctx["after_questions_url"] = (reverse("review:rapid_questions", kwargs={"clip_id": after})
                                  if after else "")
    return render(request, "review/_rapid_clip.html", ctx)


@reviewer_required
@require_POST
@no_store
def rapid_next(request: HttpRequest, clip_id: int) -> HttpResponse:
    """Finish a clip whose every label is decided and lease the next one (JSON for
    rapid.js). A clip with undecided labels is not finished: 409 with how many. ``counted``
    false (with ``notice`` to show) when the finish did not count for this reviewer."""
    clip = _clip_or_404(clip_id)
    page = clip_page_data(clip=clip, reviewer=request.user, with_outputs=False)
    undecided = sum(1 for r in page.rows if not r.verdict)
    if undecided:
        return JsonResponse({"undecided": undecided}, status=409)
    counted = finishing.clip_finish(clip=clip, reviewer=request.user) is not None
    told = {"counted": counted, "notice": "" if counted else NOT_COUNTED}
    nxt = queue.queue_next_clip(dataset=clip.dataset, reviewer=request.user)
    if nxt is None:
        if not counted:  # shown by the page rapid.js goes to
            messages.info(request, NOT_COUNTED)
        messages.success(request, f"You have reviewed every clip of {clip.dataset.name} "
                                  "that needed you. Thank you!")
        return JsonResponse({"clip": None, "url": reverse("review:home"), **told})
    after = queue.queue_peek_next_clip_id(dataset=clip.dataset, reviewer=request.user,
                                    exclude_clip_id=nxt.pk)
    # The counters as they are after this finish, in the answer that changed them.
    counters = review_counters(clip=nxt, reviewer=request.user,
                               session_started=_session_started(request, clip.dataset_id))
    return JsonResponse({
        "clip": nxt.pk, "url": reverse("review:rapid", kwargs={"clip_id": nxt.pk}),
        # The next clip's own questions: the page normally has them already (preloaded two
        # ahead), unless that preload failed while the server was away.
        "questions_url": reverse("review:rapid_questions", kwargs={"clip_id": nxt.pk}),
        "next_questions_url": (reverse("review:rapid_questions", kwargs={"clip_id": after})
                               if after else ""),
        "counters_html": render_to_string("review/_counters.html", {"c": counters}, request),
        **told,
    })
