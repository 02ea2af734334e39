"""Every URL pattern of the project, tried as every role, against a table of the role rules.

The rules (relabel_app.roles, and api.permissions for the API):

- anonymous: HTML pages redirect to the login page; the API answers 401 (with
  WWW-Authenticate). Only the login page, the API schema and its docs are public.
- no role (an account in no group): 403 everywhere a role is needed, UI and API alike.
- reviewer: the review pages, the run pages (read only), their own decisions (the API never
  shows another reviewer's); 403 on curation pages (adjudication, audits, exports), on
  every reviewer's decisions page, on starting / cancelling / resuming runs.
- curator: everything above plus curation. A superuser counts as admin (= curator).
- The Django admin site is for staff only: everyone else is sent to the admin login.

The table names every URL pattern; the test enumerates the resolver, so a URL added
without a row here fails ``test_every_url_pattern_has_a_row``.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from .conftest import ROLES
from .url_patterns import Pattern, all_patterns

pytestmark = pytest.mark.django_db

LOGIN = "login"  # 302 to /accounts/login/?next=...
ADMIN_LOGIN = "admin-login"  # 302 to /admin/login/?next=...
STOP_POLLING = 286  # htmx: the job or run is finished, stop polling

# Columns: anonymous, no role, reviewer, curator, superuser.
ANYONE = (200, 200, 200, 200, 200)
REVIEWERS = (LOGIN, 403, 200, 200, 200)
CURATORS = (LOGIN, 403, 403, 200, 200)
API_REVIEWERS = (401, 403, 200, 200, 200)
API_CURATORS = (401, 403, 403, 200, 200)

# key -> [(method, url kwargs, body, expected per role)]. Kwarg and body values that are
# names of World.ids() are replaced by the world's ids. Bodies of API requests go as JSON.
MATRIX: dict[str, list[tuple]] = {
    # --- accounts ---------------------------------------------------------------------
    "login": [
        ("get", {}, None, ANYONE),
        ("post", {}, {"username": "nobody", "password": "wrong"}, ANYONE),  # form errors
    ],
    "tokens": [  # the user's own API tokens: any account
        ("get", {}, None, (LOGIN, 200, 200, 200, 200)),
        ("post", {}, {"revoke_all": "1"}, (LOGIN, 302, 302, 302, 302)),
    ],
    "password_change": [  # one's own password: any account
        ("get", {}, None, (LOGIN, 200, 200, 200, 200)),
        ("post", {}, {"old_password": "wrong"}, (LOGIN, 200, 200, 200, 200)),  # form errors
    ],
    "password_change_done": [("get", {}, None, (LOGIN, 200, 200, 200, 200))],
    "lockouts": [  # admins, and curators for reviewers; a lift of nothing says so
        ("get", {}, None, CURATORS),
        ("post", {}, {"ip_address": "10.9.9.9", "username": "nobody"},
         (LOGIN, 403, 403, 302, 302)),
    ],
    "logout": [
        ("get", {}, None, (405,) * 5),  # Django 5: log out by POST only
        ("post", {}, {}, (302,) * 5),  # to the login page
    ],
    # --- runs (pipeline) --------------------------------------------------------------
    "pipeline:run_list": [("get", {}, None, REVIEWERS)],
    "pipeline:run_start": [
        ("get", {}, None, (LOGIN, 405, 405, 405, 405)),
        ("post", {}, {"dataset": "dataset", "profile": "tiny"}, (LOGIN, 403, 403, 302, 302)),
    ],
    "pipeline:run_detail": [("get", {"pk": "run"}, None, REVIEWERS)],
    "pipeline:run_cancel": [
        ("get", {"pk": "run"}, None, (LOGIN, 405, 405, 405, 405)),
        ("post", {"pk": "run"}, {}, (LOGIN, 403, 403, 302, 302)),
    ],
    "pipeline:run_resume": [
        ("get", {"pk": "run"}, None, (LOGIN, 405, 405, 405, 405)),
        ("post", {"pk": "run"}, {}, (LOGIN, 403, 403, 302, 302)),
    ],
    # --- curation ---------------------------------------------------------------------
    "curation:index": [("get", {}, None, CURATORS)],
    "curation:clip": [("get", {"clip_id": "clip"}, None, CURATORS)],
    "curation:adjudicate": [
        ("get", {"clip_id": "clip", "label_id": "label_bark"}, None,
         (LOGIN, 403, 403, 405, 405)),
        ("post", {"clip_id": "clip", "label_id": "label_bark"},
         {"verdict": "reject", "note": "no bark"}, (LOGIN, 403, 403, 302, 302)),
    ],
    "curation:audit": [("get", {"name": "dataset_name"}, None, CURATORS)],
    "curation:audit_refresh": [
        ("get", {"name": "dataset_name"}, None, (LOGIN, 403, 403, 405, 405)),
        ("post", {"name": "dataset_name"}, {}, (LOGIN, 403, 403, 302, 302)),
    ],
    "curation:audit_state": [
        ("get", {"name": "dataset_name"}, None, CURATORS),
        ("post", {"name": "dataset_name"}, {}, (LOGIN, 403, 403, 405, 405)),
    ],
    "curation:adjudication_queue": [("get", {"name": "dataset_name"}, None, CURATORS)],
    "curation:adjudicate_next": [
        ("get", {"name": "dataset_name"}, None, (LOGIN, 403, 403, 302, 302)),
    ],
    "curation:gold_make": [
        ("get", {"clip_id": "clip"}, None, (LOGIN, 403, 403, 405, 405)),
        ("post", {"clip_id": "clip"}, {"action": "make"}, (LOGIN, 403, 403, 302, 302)),
    ],
    "curation:reviewers": [
        ("get", {"name": "dataset_name"}, None, CURATORS),
        ("post", {"name": "dataset_name"}, {"gold_rate_percent": "5", "gold_floor_percent": "50"},
         (LOGIN, 403, 403, 302, 302)),
    ],
    # Quality studies: curators create and read reports; reviewers answer (any role may).
    "curation:quality_studies": [
        ("get", {"name": "dataset_name"}, None, CURATORS),
        ("post", {"name": "dataset_name"}, {}, (LOGIN, 403, 403, 400, 400)),  # form errors
    ],
    "curation:quality_report": [("get", {"name": "dataset_name", "study_id": "study"}, None,
                                 CURATORS)],
    "curation:quality_csv": [("get", {"name": "dataset_name", "study_id": "study"}, None,
                              CURATORS)],
    "curation:quality_answer": [("get", {"study_id": "study"}, None, REVIEWERS)],
    "curation:quality_units": [("get", {"study_id": "study"}, None, REVIEWERS)],
    "curation:quality_search": [("get", {"study_id": "study"}, None, REVIEWERS)],
    "curation:quality_answer_question": [
        ("get", {"study_id": "study", "question_id": "study_question"}, None,
         (LOGIN, 403, 405, 405, 405)),
        ("post", {"study_id": "study", "question_id": "study_question"}, {"verdict": "accept"},
         REVIEWERS),
    ],
    "curation:quality_clip_done": [
        ("get", {"study_id": "study", "clip_id": "clip"}, None, (LOGIN, 403, 405, 405, 405)),
        ("post", {"study_id": "study", "clip_id": "clip"}, {}, (LOGIN, 403, 302, 302, 302)),
    ],
    "curation:quality_class_add": [
        ("get", {"study_id": "study", "clip_id": "clip"}, None, (LOGIN, 403, 405, 405, 405)),
        ("post", {"study_id": "study", "clip_id": "clip"}, {"label": "label_bark"}, REVIEWERS),
    ],
    "curation:thresholds": [("get", {"name": "dataset_name"}, None, CURATORS)],
    "curation:thresholds_fit": [
        ("get", {"name": "dataset_name"}, None, (LOGIN, 403, 403, 405, 405)),
        ("post", {"name": "dataset_name"}, {"min_decisions": "5"}, (LOGIN, 403, 403, 302, 302)),
    ],
    "curation:exports": [
        ("get", {"name": "dataset_name"}, None, CURATORS),
        ("post", {"name": "dataset_name"}, {"format": "csv", "policy": "strict"},
         (LOGIN, 403, 403, 302, 302)),
        ("put", {"name": "dataset_name"}, {}, (LOGIN, 403, 403, 405, 405)),
    ],
    "curation:export_progress": [
        ("get", {"job_id": "export"}, None, (LOGIN, 403, 403, STOP_POLLING, STOP_POLLING)),
    ],
    "curation:export_download": [("get", {"job_id": "export"}, None, CURATORS)],
    "curation:export_retry": [
        ("get", {"job_id": "export"}, None, (LOGIN, 403, 403, 405, 405)),
        ("post", {"job_id": "export"}, {}, (LOGIN, 403, 403, 302, 302)),
    ],
    "curation:export_cancel": [
        ("get", {"job_id": "export"}, None, (LOGIN, 403, 403, 405, 405)),
        ("post", {"job_id": "export"}, {}, (LOGIN, 403, 403, 302, 302)),
    ],
    # --- review -----------------------------------------------------------------------
    "review:home": [("get", {}, None, REVIEWERS)],
    "review:start": [
        ("get", {"dataset_id": "dataset"}, None, (LOGIN, 403, 405, 405, 405)),
        ("post", {"dataset_id": "dataset"}, {}, (LOGIN, 403, 302, 302, 302)),
    ],
    "review:dataset_settings": [
        ("get", {"dataset_id": "dataset"}, None, (LOGIN, 403, 403, 405, 405)),
        ("post", {"dataset_id": "dataset"}, "settings_form", (LOGIN, 403, 403, 302, 302)),
    ],
    "review:clip": [("get", {"clip_id": "clip"}, None, REVIEWERS)],
    "review:clip_audio": [
        ("get", {"clip_id": "clip"}, None, REVIEWERS),
        ("head", {"clip_id": "clip"}, None, REVIEWERS),
        ("post", {"clip_id": "clip"}, {}, (LOGIN, 403, 405, 405, 405)),
    ],
    "review:clip_decisions": [("get", {"clip_id": "clip"}, None, CURATORS)],
    "review:decide": [
        ("get", {"clip_id": "clip", "label_id": "label_music"}, None,
         (LOGIN, 403, 405, 405, 405)),
        ("post", {"clip_id": "clip", "label_id": "label_music"}, {"verdict": "reject"},
         (LOGIN, 403, 302, 302, 302)),
    ],
    "review:category": [
        ("post", {"clip_id": "clip", "label_id": "label_music"},
         {"error_category": "", "note": "fine"}, (LOGIN, 403, 302, 302, 302)),
    ],
    "review:clip_note": [
        ("get", {"clip_id": "clip"}, None, (LOGIN, 403, 405, 405, 405)),
        ("post", {"clip_id": "clip"}, {"note": "two recordings"}, (LOGIN, 403, 302, 302, 302)),
    ],
    "review:undo": [
        ("get", {"clip_id": "clip", "label_id": "label_music"}, None,
         (LOGIN, 403, 405, 405, 405)),
        ("post", {"clip_id": "clip", "label_id": "label_music"}, {},
         (LOGIN, 403, 302, 302, 302)),
    ],
    "review:label_add": [
        ("get", {"clip_id": "clip1"}, None, (LOGIN, 403, 405, 405, 405)),
        ("post", {"clip_id": "clip1"}, {"label": "/m/01yrx"}, (LOGIN, 403, 302, 302, 302)),
    ],
    "review:label_search": [("get", {}, {"q": "dog"}, REVIEWERS)],
    "review:next": [
        ("get", {"clip_id": "clip2"}, None, (LOGIN, 403, 405, 405, 405)),
        ("post", {"clip_id": "clip2"}, {}, (LOGIN, 403, 302, 302, 302)),
    ],
    "review:counters": [("get", {"clip_id": "clip"}, None, REVIEWERS)],
    "review:recent_clips": [("get", {}, {"dataset": "1"}, REVIEWERS)],
    "review:autoplay": [
        ("get", {}, None, (LOGIN, 403, 405, 405, 405)),
        ("post", {}, {"autoplay": "1"}, (LOGIN, 403, 302, 302, 302)),
    ],
    "review:rapid_start": [
        ("get", {"dataset_id": "dataset"}, None, (LOGIN, 403, 405, 405, 405)),
        ("post", {"dataset_id": "dataset"}, {}, (LOGIN, 403, 302, 302, 302)),
    ],
    "review:rapid": [("get", {"clip_id": "clip"}, None, REVIEWERS)],
    "review:rapid_questions": [("get", {"clip_id": "clip"}, None, REVIEWERS)],
    "review:rapid_next": [
        ("get", {"clip_id": "clip2"}, None, (LOGIN, 403, 405, 405, 405)),
        # clip2 has no labels: nothing undecided, so it is finished (JSON with the next).
        ("post", {"clip_id": "clip2"}, {}, (LOGIN, 403, 200, 200, 200)),
    ],
    # --- search (the world has no embeddings: pages say so, the API answers 400) -------
    "search:find_start": [("get", {}, None, (LOGIN, 403, 302, 302, 302))],
    "search:find": [("get", {"dataset_id": "dataset"}, None, REVIEWERS)],
    "search:add_selected": [
        ("get", {"dataset_id": "dataset"}, None, (LOGIN, 403, 405, 405, 405)),
        ("post", {"dataset_id": "dataset"}, {"class": "/m/015p6", "clip": "clip2"},
         (LOGIN, 403, 302, 302, 302)),
    ],
    "search:index_state": [("get", {"dataset_id": "dataset"}, None, REVIEWERS)],
    "search:sweep": [("get", {"dataset_id": "dataset", "mid": "m/0bt9lr"}, None, REVIEWERS)],
    "search:sweep_decide": [
        ("get", {"dataset_id": "dataset", "mid": "m/0bt9lr"}, None, (LOGIN, 403, 405, 405, 405)),
        ("post", {"dataset_id": "dataset", "mid": "m/015p6"}, {"clip": "clip2", "verdict": "unsure"},
         (LOGIN, 403, 302, 302, 302)),
    ],
    "search:similar": [("get", {"clip_id": "clip"}, None, REVIEWERS)],
    "api:clip-similar": [("get", {"pk": "clip"}, None, (401, 403, 400, 400, 400))],
    "api:search": [("get", {}, {"dataset": "dataset", "q": "dog"}, (401, 403, 400, 400, 400))],
    # --- API --------------------------------------------------------------------------
    "api:schema": [("get", {}, None, ANYONE)],
    "api:docs": [("get", {}, None, ANYONE)],
    "api:token": [
        ("get", {}, None, (401, 405, 405, 405, 405)),
        ("post", {}, {"username": "rita", "password": "wrong"}, (400,) * 5),
        # Revokes the token the request carries; a session carries none.
        ("delete", {}, None, (401, 400, 400, 400, 400)),
    ],
    "api:tokens": [("get", {}, None, (401, 200, 200, 200, 200))],
    "api:token-detail": [
        ("delete", {"token_id": "no-such-token"}, None, (401, 404, 404, 404, 404)),
    ],
    "api:api-root": [("get", {}, None, API_REVIEWERS)],
    "api:api-root[format]": [("get", {"format": "json"}, None, API_REVIEWERS)],
    "api:dataset-list": [
        ("get", {}, None, API_REVIEWERS),
        ("post", {}, {"name": "x"}, (401, 403, 405, 405, 405)),
    ],
    "api:dataset-list[format]": [("get", {"format": "json"}, None, API_REVIEWERS)],
    "api:dataset-detail": [
        ("get", {"pk": "dataset"}, None, API_REVIEWERS),
        ("delete", {"pk": "dataset"}, None, (401, 403, 405, 405, 405)),
    ],
    "api:dataset-detail[format]": [
        ("get", {"pk": "dataset", "format": "json"}, None, API_REVIEWERS),
    ],
    "api:dataset-audit": [("get", {"pk": "dataset"}, None, API_CURATORS)],
    "api:quality-studies": [("get", {"pk": "dataset"}, None, API_CURATORS)],
    "api:quality-study-report": [("get", {"pk": "dataset", "study_id": "study"}, None,
                                  API_CURATORS)],
    "api:clip-list": [("get", {}, None, API_REVIEWERS)],
    "api:clip-list[format]": [("get", {"format": "json"}, None, API_REVIEWERS)],
    "api:clip-detail": [
        ("get", {"pk": "clip"}, None, API_REVIEWERS),
        ("patch", {"pk": "clip"}, {"ytid": "x"}, (401, 403, 405, 405, 405)),
    ],
    "api:clip-detail[format]": [("get", {"pk": "clip", "format": "json"}, None, API_REVIEWERS)],
    "api:label-list": [("get", {}, None, API_REVIEWERS)],
    "api:label-list[format]": [("get", {"format": "json"}, None, API_REVIEWERS)],
    "api:label-detail": [("get", {"pk": "label_dog"}, None, API_REVIEWERS)],
    "api:label-detail[format]": [
        ("get", {"pk": "label_dog", "format": "json"}, None, API_REVIEWERS),
    ],
    "api:run-list": [
        ("get", {}, None, API_REVIEWERS),
        # Continues the world's tiny run (200); reviewers may not start runs.
        ("post", {}, {"dataset": "dataset", "profile": "tiny"}, (401, 403, 403, 200, 200)),
    ],
    "api:run-list[format]": [
        ("get", {"format": "json"}, None, API_REVIEWERS),
        ("post", {"format": "json"}, {"dataset": "dataset", "profile": "tiny"},
         (401, 403, 403, 200, 200)),
    ],
    "api:run-detail": [
        ("get", {"pk": "run"}, None, API_REVIEWERS),
        ("delete", {"pk": "run"}, None, (401, 403, 403, 405, 405)),
    ],
    "api:run-detail[format]": [("get", {"pk": "run", "format": "json"}, None, API_REVIEWERS)],
    "api:run-progress": [("get", {"pk": "run"}, None, API_REVIEWERS)],
    "api:run-progress[format]": [
        ("get", {"pk": "run", "format": "json"}, None, API_REVIEWERS),
    ],
    "api:candidate-list": [("get", {}, None, API_REVIEWERS)],
    "api:candidate-list[format]": [("get", {"format": "json"}, None, API_REVIEWERS)],
    "api:candidate-detail": [("get", {"pk": "candidate"}, None, API_REVIEWERS)],
    "api:candidate-detail[format]": [
        ("get", {"pk": "candidate", "format": "json"}, None, API_REVIEWERS),
    ],
    "api:original-label-score-list": [("get", {}, None, API_REVIEWERS)],
    "api:original-label-score-list[format]": [
        ("get", {"format": "json"}, None, API_REVIEWERS),
    ],
    "api:original-label-score-detail": [("get", {"pk": "original_score"}, None, API_REVIEWERS)],
    "api:original-label-score-detail[format]": [
        ("get", {"pk": "original_score", "format": "json"}, None, API_REVIEWERS),
    ],
    "api:decision-list": [
        ("get", {}, None, API_REVIEWERS),
        ("post", {}, {"clip": "clip1", "mid": "/m/04rlf", "verdict": "reject"},
         (401, 403, 201, 201, 201)),
    ],
    "api:decision-list[format]": [
        ("get", {"format": "json"}, None, API_REVIEWERS),
        ("post", {"format": "json"}, {"clip": "clip1", "mid": "/m/0bt9lr", "verdict": "unsure"},
         (401, 403, 201, 201, 201)),
    ],
    "api:decision-detail": [
        # Rita's own decision; Rob's is invisible to her (404), visible to curators.
        ("get", {"pk": "d_rita"}, None, API_REVIEWERS),
        ("get", {"pk": "d_rob"}, None, (401, 403, 404, 200, 200)),
        ("put", {"pk": "d_rita"}, {"verdict": "reject"}, (401, 403, 405, 405, 405)),
        ("delete", {"pk": "d_rita"}, None, (401, 403, 405, 405, 405)),
    ],
    "api:decision-detail[format]": [
        ("get", {"pk": "d_rob", "format": "json"}, None, (401, 403, 404, 200, 200)),
    ],
    "api:error-category-list": [("get", {}, None, API_REVIEWERS)],
    "api:error-category-list[format]": [("get", {"format": "json"}, None, API_REVIEWERS)],
    "api:adjudication-list": [
        ("get", {}, None, API_CURATORS),
        ("post", {}, {"clip": "clip", "mid": "/m/09x0r", "verdict": "reject"},
         (401, 403, 403, 201, 201)),
    ],
    "api:adjudication-list[format]": [
        ("get", {"format": "json"}, None, API_CURATORS),
        ("post", {"format": "json"}, {"clip": "clip1", "mid": "/m/03kmc9", "verdict": "accept"},
         (401, 403, 403, 201, 201)),
    ],
    "api:adjudication-detail": [
        ("get", {"pk": "adjudication"}, None, API_CURATORS),
        ("delete", {"pk": "adjudication"}, None, (401, 403, 403, 204, 204)),
    ],
    "api:adjudication-detail[format]": [
        ("get", {"pk": "adjudication", "format": "json"}, None, API_CURATORS),
    ],
    "api:export-list": [
        ("get", {}, None, API_CURATORS),
        ("post", {}, {"dataset": "dataset", "format": "csv"}, (401, 403, 403, 202, 202)),
    ],
    "api:export-list[format]": [
        ("get", {"format": "json"}, None, API_CURATORS),
        ("post", {"format": "json"}, {"dataset": "dataset", "format": "json"},
         (401, 403, 403, 202, 202)),
    ],
    "api:export-detail": [("get", {"pk": "export"}, None, API_CURATORS)],
    "api:export-detail[format]": [
        ("get", {"pk": "export", "format": "json"}, None, API_CURATORS),
    ],
    "api:export-download": [("get", {"pk": "export"}, None, API_CURATORS)],
    "api:export-download[format]": [
        ("get", {"pk": "export", "format": "json"}, None, API_CURATORS),
    ],
}

# The Django admin site: staff only. Model pages are checked for every registered model;
# these model admins are read-only audit trails (no add, change or delete).
READ_ONLY_ADMINS = {"review.decisionlog", "curation.adjudicationlog"}
# django-axes' records of logins: nothing to add by hand (they can be deleted: an unlock).
NO_ADD_ADMINS = {"axes.accessattempt", "axes.accesslog", "axes.accessfailurelog"}
# Expected for a superuser, by the end of the URL name (model pages) or by the full name.
ADMIN_SUPERUSER_BY_SUFFIX = {
    "changelist": 200, "add": 200, "change": 200, "delete": 200, "history": 200,
}
ADMIN_SUPERUSER_BY_NAME = {
    "admin:index": 200,
    "admin:app_list": 200,
    "admin:login": 302,  # already logged in: to the admin index
    "admin:password_change": 200,
    "admin:password_change_done": 200,
    "admin:jsi18n": 200,
    "admin:autocomplete": 403,  # without a model and field to complete
    "admin:view_on_site": 404,  # users have no public page
    "admin:auth_user_password_change": 200,
}


def _admin_expected(p: Pattern) -> tuple:
    """Expected per role for an admin URL: non-staff are sent to the admin login (its
    own page excepted); the superuser gets the page."""
    if p.name == "admin:login":
        return (200, 200, 200, 200, 302)
    if p.name == "admin:logout":  # non-staff are sent to the admin index (then its login)
        return (302, 302, 302, 302, 405)
    others = (ADMIN_LOGIN,) * 4
    if p.name in ADMIN_SUPERUSER_BY_NAME:
        return (*others, ADMIN_SUPERUSER_BY_NAME[p.name])
    ma = p.model_admin
    if ma is not None:
        model = f"{ma.model._meta.app_label}.{ma.model._meta.model_name}"
        if p.name is None:  # <object_id>/ alone: redirects to the change page
            return (*others, 302)
        suffix = p.name.rsplit("_", 1)[1]
        want = ADMIN_SUPERUSER_BY_SUFFIX[suffix]
        if model in READ_ONLY_ADMINS and suffix in ("add", "delete"):
            want = 403
        if model in NO_ADD_ADMINS and suffix == "add":
            want = 403
        return (*others, want)
    if p.route.endswith("(?P<url>.*)$"):  # the catch-all: no such admin page
        return (*others, 404)
    raise AssertionError(f"no rule for admin URL {p.key} ({p.route})")


def _admin_url(p: Pattern, world) -> str:
    ids = world.ids()
    kwargs = {}
    obj = None
    ma = p.model_admin
    if ma is not None and "object_id" in p.kwargs:
        obj = ma.model._default_manager.order_by("pk").first()
        assert obj is not None, f"the world has no {ma.model.__name__} for {p.key}"
        kwargs["object_id"] = str(obj.pk)
    if "app_label" in p.kwargs:
        kwargs["app_label"] = "review"
    if "id" in p.kwargs:
        kwargs["id"] = ids["curator_user"]
    if "content_type_id" in p.kwargs:
        kwargs["content_type_id"] = ids["user_ct"]
        kwargs["object_id"] = str(ids["curator_user"])
    if p.name is not None:
        return reverse(p.name, kwargs=kwargs)
    if ma is not None:  # the unnamed <object_id>/ pattern of a model admin
        opts = ma.model._meta
        change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        return change.removesuffix("change/")
    return "/admin/no-such-page/"


def _fill(value, ids: dict):
    if isinstance(value, str) and value in ids:
        return ids[value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _client(world, role: str) -> Client:
    c = Client()
    if role != "anonymous":
        c.force_login(world.users[role])
    return c


def _check(resp, want, role: str) -> str | None:
    got = resp.status_code
    if want == LOGIN:
        if got == 302 and resp["Location"].startswith("/accounts/login/?next="):
            return None
        return f"{got} {resp.get('Location', '')}, expected a redirect to the login page"
    if want == ADMIN_LOGIN:
        if got == 302 and resp["Location"].startswith("/admin/login/?next="):
            return None
        return f"{got} {resp.get('Location', '')}, expected a redirect to the admin login"
    if got != want:
        return f"{got}, expected {want}"
    if got == 302 and "?next=" in resp["Location"]:
        return f"302 to {resp['Location']}: a login bounce, expected the page's own redirect"
    if got == 401:
        assert "WWW-Authenticate" in resp, "401 without WWW-Authenticate"
    return None


def _requests(world) -> list[tuple[str, str, str, object, tuple]]:
    """(key, method, url, body, expected) for every admin URL and every row of MATRIX (in
    its order), the ones that delete a row or end the session last."""
    ids = world.ids()
    out = []
    patterns = all_patterns()
    for p in patterns:
        if p.namespace == "admin":
            out.append((p.key, "get", _admin_url(p, world), None, _admin_expected(p)))
    by_key = {p.key: p for p in patterns}
    for key, rows in MATRIX.items():  # in the table's order: decide, categorize, undo
        p = by_key[key]
        for method, kwargs, body, expected in rows:
            url = reverse(p.name, kwargs=_fill(kwargs, ids))
            if body == "settings_form":
                prefix = f"ds{world.dataset.pk}"
                body = {f"{prefix}-review_priority": "order", f"{prefix}-required_reviews": 1}
            out.append((p.key, method, url, _fill(body, ids), expected))
    deletes = [r for r in out if r[1] == "delete"]
    logout = [r for r in out if r[0] == "logout"]
    return [r for r in out if r not in deletes and r not in logout] + deletes + logout


def test_every_url_pattern_has_a_row():
    patterns = all_patterns()
    keys = [p.key for p in patterns]
    assert len(keys) == len(set(keys)), "two URL patterns share a key"
    missing = [p.key for p in patterns if p.namespace != "admin" and p.key not in MATRIX]
    assert not missing, f"URL patterns without a row in MATRIX: {missing}"
    stale = set(MATRIX) - set(keys)
    assert not stale, f"rows in MATRIX for URLs that no longer exist: {stale}"
    for p in patterns:
        if p.namespace == "admin":
            _admin_expected(p)  # raises for an admin URL no rule covers
    for key, rows in MATRIX.items():
        for method, _kwargs, _body, expected in rows:
            assert len(expected) == len(ROLES), key
            assert method in ("get", "head", "post", "put", "patch", "delete"), key


@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(world, role):
    c = _client(world, role)
    failures = []
    for key, method, url, body, expected in _requests(world):
        want = expected[ROLES.index(role)]
        kwargs = {}
        if key.startswith("api:") and body is not None and method != "get":
            kwargs = {"data": body, "content_type": "application/json"}
        elif body is not None:
            kwargs = {"data": body}
        resp = getattr(c, method)(url, **kwargs)
        problem = _check(resp, want, role)
        if problem:
            failures.append(f"{role} {method.upper()} {url} [{key}]: {problem}")
    assert not failures, "\n".join(failures)


def test_reviewer_pages_show_only_their_own_decisions(world):
    """The reviewer's clip page and API show their decision and note, never another
    reviewer's (no anchoring); the curator sees both."""
    clip = world.clips[0]
    rita = _client(world, "reviewer")
    page = rita.get(reverse("review:clip", kwargs={"clip_id": clip.pk})).content.decode()
    assert "rita&#x27;s private note" in page
    assert "rob&#x27;s private note" not in page and "rob" not in page
    api = rita.get("/api/decisions/", {"clip": clip.pk}).json()["results"]
    assert [d["reviewer"] for d in api] == ["rita"]
    api = rita.get("/api/decisions/", {"reviewer": "rob"}).json()["results"]
    assert [d["reviewer"] for d in api] == ["rita"]
    cora = _client(world, "curator")
    page = cora.get(reverse("review:clip_decisions", kwargs={"clip_id": clip.pk}))
    text = page.content.decode()
    assert "rita&#x27;s private note" in text and "rob&#x27;s private note" in text
