"""Issue 16, "a fuzzer in CI" (the HTML half): Hypothesis posts random unicode to every HTML
endpoint the URLconf has (read from the resolver, so a new view is fuzzed without anyone
listing it), as a reviewer and as a curator, and no answer may be a 500.

The values are what schemathesis' generators did not try: digits of other scripts
("²", "٣", "１"), NUL and other control characters, 10,000-character strings, integers far
past bigint, path-like and markup-like text, mixed with the world's real ids so requests
also get past "no such row". Field names are every name a view or form of the app reads,
plus arbitrary ones. Bounded: per endpoint, a sweep of explicit examples and a fixed number
of derandomized generated ones."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tests.security.url_patterns import all_patterns

pytestmark = [pytest.mark.django_db, pytest.mark.slow, pytest.mark.fuzz]

GENERATED_PER_ENDPOINT = 4
# Explicit examples, every endpoint and method: each field the app reads set to one of these
# (a view reading any of them meets it), then generated mixes.
SWEEP = ["²", "٣", "9" * 5000, "9" * 25, "a\x00b"]
# Kept out: logging out would end the session the other endpoints are fuzzed with.
SKIPPED = {"logout"}
# URL keyword -> the World.ids() name that fills it.
URL_KWARGS = {"clip_id": "clip", "label_id": "label_bark", "name": "dataset_name",
              "job_id": "export", "pk": "run", "dataset_id": "dataset", "study_id": "study",
              "question_id": "study_question", "mid": "mid_path"}
# Every name the app's views and forms read from a query string or a form.
FIELD_NAMES = [
    "label", "verdict", "note", "error_category", "run", "min_decisions", "next", "autoplay",
    "action", "format", "policy", "gold_rate_percent", "gold_floor", "gold_exclude_flagged",
    "dataset", "profile", "new", "token", "revoke_all", "q", "clip", "page", "rank", "after",
    "queue", "reason", "margin", "username", "password", "review_priority",
    "required_reviews", "mode",
]

NASTY = [
    "²", "٣", "١٢٣", "１", "৩", "Ⅻ", "\x00", "a\x00b", "/m/09x0r\x00", "\x1b[31m", "\u202e",
    "9" * 5000, "9" * 25, str(2**63), str(2**63 - 1), str(-(2**63)), "-1", "0", "1e309",
    "nan", "inf", "", " ", "../../../etc/passwd", "<script>alert(1)</script>", "=cmd|' /C calc'",
    "%00", "\ud7ff", "𝟘𝟙", "1" * 4301, "0" * 30 + "1",
]


def _text_values():
    # No surrogates: a client cannot encode them in a request (JSON bodies are the API's).
    chars = st.characters(exclude_categories=("Cs",))
    return st.one_of(
        st.sampled_from(NASTY),
        st.text(chars, max_size=40),
        st.integers(min_value=-(10**40), max_value=10**40).map(str),
        st.builds(lambda c, n: c * n, chars, st.sampled_from([4301, 10_000])),
    )


def _world_values(ids: dict):
    return st.sampled_from([str(v) for v in ids.values()] + ["/m/04rlf", "accept", "reject"])


def _url(pattern, ids: dict) -> str:
    return reverse(pattern.name, kwargs={k: ids[URL_KWARGS[k]] for k in pattern.kwargs})


def html_patterns():
    return [p for p in all_patterns()
            if p.name and not p.route.startswith(("/admin/", "/api/", "/static/"))
            and p.name not in SKIPPED]


def _fuzz_endpoint(client: Client, url: str, forms, role: str, failures: list[str]) -> None:
    @settings(max_examples=GENERATED_PER_ENDPOINT, deadline=None, database=None,
              derandomize=True, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(method=st.sampled_from(["get", "post"]), data=forms)
    def fuzz(method, data):
        resp = getattr(client, method)(url, data)
        if resp.status_code >= 500:
            failures.append(f"{role} {method.upper()} {url} {data!r:.300}: {resp.status_code}")

    for value in SWEEP:
        for method in ("get", "post"):
            fuzz = example(method=method, data=dict.fromkeys(FIELD_NAMES, value))(fuzz)
    fuzz()


@pytest.mark.parametrize("role", ["reviewer", "curator"])
def test_no_html_endpoint_answers_random_unicode_with_a_500(world, role, server_errors):
    ids = world.ids()
    client = Client(raise_request_exception=False)
    client.force_login(world.users[role])
    values = st.one_of(_text_values(), _world_values(ids))
    forms = st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8)),
                            values, max_size=6)
    failures: list[str] = []
    patterns = html_patterns()
    assert len(patterns) >= 40, [p.key for p in patterns]

    for pattern in patterns:
        _fuzz_endpoint(client, _url(pattern, ids), forms, role, failures)
    assert not failures and not server_errors, "\n".join(failures[:20] + server_errors[:5])
