"""Issue 16, break 1: reviewer input made 500s. Each attack with the issue's exact input:
digits of other scripts (``²`` where ``str.isdigit()`` is true and ``int()`` raises, ``٣``
which ``int()`` reads as 3), digit strings past Python's 4300-digit limit or PostgreSQL's
bigint, NUL bytes. One parser (relabel_app.ids) and one control-character rule
(relabel_app.text_input) answer each with a 400 and a message, never a 500, never a row
read from the wrong id."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import Client

from relabel_app.ids import BIGINT_MAX, BadNumber, page_number, parse_id, parse_int
from relabel_app.models import Label
from review.models import Decision

pytestmark = pytest.mark.django_db

SUPERSCRIPT_TWO = "²"
ARABIC_THREE = "٣"
NINES = "9" * 5000


def api_client(world, role: str) -> Client:
    return Client(raise_request_exception=False,
                  HTTP_AUTHORIZATION=f"Token {world.tokens[role]}")


def session_client(world, role: str) -> Client:
    c = Client(raise_request_exception=False)
    c.force_login(world.users[role])
    return c


def assert_json_400(resp) -> dict:
    assert resp.status_code == 400, (resp.status_code, resp.content[:300])
    assert resp["Content-Type"] == "application/json"
    return resp.json()


# --- the parser itself ----------------------------------------------------------------------


@pytest.mark.parametrize("text", [SUPERSCRIPT_TWO, ARABIC_THREE, "１", "3.0", "-1", "0", "",
                                  " ", "1e3", "0x10", NINES, str(BIGINT_MAX + 1), "1_000"])
def test_parse_id_refuses_everything_but_ascii_digits_in_range(text):
    with pytest.raises(BadNumber):
        parse_id(text)


def test_parse_id_reads_ascii_digits_and_ints():
    assert parse_id("42") == 42
    assert parse_id(" 7 ") == 7
    assert parse_id(str(BIGINT_MAX)) == BIGINT_MAX
    assert parse_id(5) == 5
    with pytest.raises(BadNumber):
        parse_id(True)
    with pytest.raises(BadNumber):
        parse_int("2147483648", max_value=2**31 - 1)


def test_page_number_reads_like_paginator_get_page():
    assert page_number(None) == 1
    assert page_number("x") == 1
    assert page_number(ARABIC_THREE) == 1
    assert page_number("3") == 3
    # 0 and numbers too large to be a page: the caller clamps them to the last page.
    assert page_number("0") == page_number("999999999999999999999999999999") == 2**31 - 1


# --- the API: query filters -----------------------------------------------------------------


@pytest.mark.parametrize("path,role", [
    ("/api/clips/", "reviewer"),
    ("/api/decisions/", "reviewer"),
    ("/api/candidates/", "reviewer"),
    ("/api/original-label-scores/", "reviewer"),
    ("/api/adjudications/", "curator"),
])
@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, ARABIC_THREE])
def test_label_filter_of_other_script_digits_is_a_400(world, path, role, value):
    body = assert_json_400(api_client(world, role).get(path, {"label": value}))
    assert "label" in body


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, ARABIC_THREE, "9" * 25])
def test_dataset_filter_of_clips_is_a_400(world, value):
    # The issue's request: GET /api/clips/?label=%C2%B2 and the same with ?dataset=.
    body = assert_json_400(api_client(world, "reviewer").get("/api/clips/", {"dataset": value}))
    assert "dataset" in body


def test_issue_query_string_verbatim(world):
    c = api_client(world, "reviewer")
    assert_json_400(c.get("/api/clips/?label=%C2%B2"))
    assert_json_400(c.get("/api/clips/?dataset=%C2%B2"))
    assert c.get(f"/api/clips/?dataset={world.dataset.pk}").status_code == 200


@pytest.mark.parametrize("param", ["clip", "run", "dataset"])
@pytest.mark.parametrize("value", [ARABIC_THREE, NINES, str(BIGINT_MAX + 1)])
def test_id_filters_read_only_ascii_ids_in_range(world, param, value):
    path = "/api/candidates/" if param != "dataset" else "/api/decisions/"
    param = "run" if param == "run" and path == "/api/candidates/" else param
    assert_json_400(api_client(world, "reviewer").get(path, {param: value}))


def test_label_filter_by_ascii_id_and_mid_still_works(world):
    c = api_client(world, "reviewer")
    dog = Label.objects.get(mid="/m/0bt9lr")
    by_id = c.get("/api/clips/", {"label": str(dog.pk), "label_source": "original"})
    by_mid = c.get("/api/clips/", {"label": dog.mid, "label_source": "original"})
    assert by_id.status_code == by_mid.status_code == 200
    assert [r["id"] for r in by_id.json()["results"]] == [world.clips[0].pk]
    assert by_mid.json()["results"] == by_id.json()["results"]


# --- the API: JSON bodies -------------------------------------------------------------------


def _post_decision(world, body: dict):
    return api_client(world, "reviewer").post("/api/decisions/", json.dumps(body),
                                              content_type="application/json")


@pytest.mark.parametrize("mid", [SUPERSCRIPT_TWO, ARABIC_THREE, "3", "/m/09x0r\x00"])
def test_decision_mid_that_is_not_a_mid_is_a_400_and_writes_nothing(world, mid):
    before = Decision.objects.count()
    resp = _post_decision(world, {"clip": world.clips[1].pk, "mid": mid, "verdict": "accept"})
    assert_json_400(resp)
    assert Decision.objects.count() == before


@pytest.mark.parametrize("field,value", [
    ("clip", ARABIC_THREE), ("clip", SUPERSCRIPT_TWO), ("clip", NINES),
    ("clip", 10**30), ("label", ARABIC_THREE), ("label", 2**63), ("clip", True),
])
def test_decision_ids_in_bodies_are_ascii_ids_in_range(world, field, value):
    body = {"clip": world.clips[1].pk, "label": Label.objects.get(mid="/m/04rlf").pk,
            "verdict": "accept", field: value}
    before = Decision.objects.count()
    assert_json_400(_post_decision(world, body))
    assert Decision.objects.count() == before


def test_decision_with_a_5000_digit_json_number_is_a_400(world):
    resp = api_client(world, "reviewer").post(
        "/api/decisions/", '{"clip": ' + NINES + ', "mid": "/m/04rlf", "verdict": "accept"}',
        content_type="application/json")
    assert_json_400(resp)


def test_decision_by_mid_still_works(world):
    resp = _post_decision(world, {"clip": world.clips[1].pk, "mid": "/m/04rlf",
                                  "verdict": "accept"})
    assert resp.status_code == 201
    assert resp.json()["label"]["mid"] == "/m/04rlf"


@pytest.mark.parametrize("note", ["a\x00b", "\x07bell", "\ud800"])
def test_control_characters_in_a_json_body_are_a_400(world, note):
    body = {"clip": world.clips[1].pk, "mid": "/m/04rlf", "verdict": "accept", "note": note}
    before = Decision.objects.count()
    assert_json_400(_post_decision(world, body))
    assert Decision.objects.count() == before


def test_newlines_and_tabs_in_a_note_are_kept(world):
    note = "line one\r\nline\ttwo"
    resp = _post_decision(world, {"clip": world.clips[1].pk, "mid": "/m/04rlf",
                                  "verdict": "accept", "note": note})
    assert resp.status_code == 201
    assert resp.json()["note"] == note


def test_nul_in_an_api_query_string_is_a_400(world):
    assert_json_400(api_client(world, "reviewer").get("/api/labels/", {"q": "dog\x00"}))
    assert_json_400(api_client(world, "reviewer").get("/api/clips/", {"ytid": "a\x00"}))


# --- HTML views -----------------------------------------------------------------------------


@pytest.mark.parametrize("clip", [SUPERSCRIPT_TWO, ARABIC_THREE, NINES])
def test_label_search_clip_parameter_is_an_id_or_a_400(world, clip):
    c = session_client(world, "reviewer")
    resp = c.get("/labels/search/", {"q": "dog", "clip": clip})
    assert resp.status_code == 400
    assert b"whole number" in resp.content  # the styled page says what is wrong
    assert c.get("/labels/search/", {"q": "dog", "clip": str(world.clips[0].pk)}) \
        .status_code == 200


@pytest.mark.parametrize("ref", [SUPERSCRIPT_TWO, ARABIC_THREE, NINES, "/m/09x0r\x00"])
def test_label_add_with_a_bad_reference_is_a_400_and_writes_nothing(world, ref):
    c = session_client(world, "reviewer")
    before = Decision.objects.count()
    resp = c.post(f"/clips/{world.clips[1].pk}/add/", {"label": ref})
    assert resp.status_code == 400, resp.status_code
    assert Decision.objects.count() == before


def test_label_add_by_id_still_works(world):
    c = session_client(world, "reviewer")
    music = Label.objects.get(mid="/m/04rlf")
    resp = c.post(f"/clips/{world.clips[1].pk}/add/", {"label": str(music.pk)})
    assert resp.status_code == 302
    assert Decision.objects.filter(clip=world.clips[1], label=music,
                                   reviewer=world.users["reviewer"]).exists()


def test_nul_in_a_path_is_a_400(world):
    # <str:token_id> takes anything: the NUL must not reach PostgreSQL as text.
    assert_json_400(api_client(world, "reviewer").delete("/api/auth/tokens/ab%00cd/"))
    resp = session_client(world, "curator").get("/curation/dataset/secds%00/adjudicate/")
    assert resp.status_code == 400
    assert b"control characters" in resp.content


@pytest.mark.parametrize("page", ["999999999999999999999999999999", NINES, "0", ARABIC_THREE,
                                  "-1", "x"])
def test_adjudication_queue_page_out_of_range_clamps(world, page):
    c = session_client(world, "curator")
    resp = c.get(f"/curation/dataset/{world.dataset.name}/adjudicate/", {"page": page})
    assert resp.status_code == 200
    first = c.get(f"/curation/dataset/{world.dataset.name}/adjudicate/")
    # One page of queue here: every out-of-range page is that (the last) page.
    assert resp.context["page_no"] == 1
    assert [r.clip_id for r in resp.context["q"].rows] == \
        [r.clip_id for r in first.context["q"].rows]


@pytest.mark.parametrize("query", [{"after": SUPERSCRIPT_TWO}, {"after": NINES},
                                   {"rank": ARABIC_THREE}, {"run": ARABIC_THREE},
                                   {"run": NINES}])
def test_curation_query_ids_are_ids_or_a_400(world, query):
    c = session_client(world, "curator")
    resp = c.get(f"/curation/dataset/{world.dataset.name}/adjudicate/next/", query)
    assert resp.status_code == 400


def test_threshold_fit_form_refuses_other_script_run_ids(world):
    c = session_client(world, "curator")
    resp = c.post(f"/curation/dataset/{world.dataset.name}/thresholds/fit/",
                  {"run": ARABIC_THREE, "min_decisions": "1"}, HTTP_HX_REQUEST="true")
    assert resp.status_code == 200  # the panel shows the form's error
    assert b"Enter a whole number" in resp.content


# --- management commands --------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["--set", "x@" + SUPERSCRIPT_TWO],
    ["--set", "x@" + "9" * 40],
    ["--set", "x"],
])
def test_apply_thresholds_bad_set_exits_1_with_one_line(world, args, capsys, monkeypatch):
    from curation.management.commands.apply_thresholds import Command

    monkeypatch.setattr(connections, "close_all", lambda: None)  # the test's transaction
    with pytest.raises(SystemExit) as exit_:
        Command().run_from_argv(["manage.py", "apply_thresholds", "--skip-checks",
                                 "--run", str(world.run.pk), *args])
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("CommandError: "), err


@pytest.mark.parametrize("run", [ARABIC_THREE, SUPERSCRIPT_TWO, NINES])
def test_threshold_commands_refuse_other_script_run_ids(world, run):
    with pytest.raises(CommandError, match="--run must be a whole number"):
        call_command("apply_thresholds", "--run", run, "--set", "x")
    with pytest.raises(CommandError, match="--run must be a whole number"):
        call_command("fit_thresholds", "--dataset", world.dataset.name, "--run", run)


# --- found by the HTML fuzzer (tests/security/test_form_fuzz.py) ------------------------------


@pytest.mark.parametrize("nxt", [SUPERSCRIPT_TWO, "review:home", "https://evil.example/"])
def test_autoplay_next_that_is_not_a_path_goes_home(world, nxt):
    resp = session_client(world, "reviewer").post("/settings/autoplay/",
                                                  {"autoplay": "1", "next": nxt})
    assert resp.status_code == 302
    assert resp["Location"] == "/"


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_a_5000_character_username_is_a_failed_login_not_a_500(world, path):
    resp = Client(raise_request_exception=False).post(
        path, {"username": NINES, "password": "wrong"})
    assert resp.status_code == 200  # the form again, with its error
