"""Fuzz the REST API from its own OpenAPI schema (/api/schema/) with schemathesis: every
operation, schema-conforming and schema-violating requests, as a curator with a token,
through the project's WSGI application in-process. No request may produce a 5xx.

Path ids are generated (mostly unknown ids) and, in a second pass, fixed to the world's
real objects so detail endpoints, actions and deletes run their code on real rows; in a
third pass the references in generated bodies (clip, dataset, mid, clips) are pointed at
real objects, so writes get past "no such clip" and run the services."""

from __future__ import annotations

import re

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from knox.models import AuthToken
from schemathesis import GenerationMode

from review.models import ErrorCategory

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15}
FIXED_EXAMPLES = 8  # path ids of real objects
REAL_BODY_EXAMPLES = 15  # bodies whose references name real objects
# Path ids of the world's objects, by the collection the operation's path starts with.
REAL_IDS = {
    "datasets": "dataset", "clips": "clip", "labels": "label_dog", "runs": "run",
    "candidates": "candidate", "original-label-scores": "original_score", "decisions": "d_rob", "adjudications": "adjudication",
    "exports": "export", "auth": "token",
}


@pytest.fixture
def wsgi_app():
    """The WSGI app called in this thread, inside the test's transaction: Django closes
    "old" connections at the start and end of each request, which inside a test
    transaction would break it (the test Client unhooks this the same way)."""
    from relabel_app.wsgi import application

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield application
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def server_errors():
    """Exceptions the handler turned into 500 responses, with their tracebacks."""
    import traceback

    seen: list[str] = []

    def record(sender, request=None, **kwargs):
        seen.append(f"{request.method} {request.get_full_path()}\n{traceback.format_exc()}")

    signals.got_request_exception.connect(record)
    yield seen
    signals.got_request_exception.disconnect(record)


def _with_real_references(case, ids: dict) -> None:
    """Point a generated body's references at real objects (the rest stays generated)."""
    body = case.body
    if not isinstance(body, dict):
        return
    if "clip" in body:
        body["clip"] = ids["clip1"]
    if "dataset" in body:
        body["dataset"] = ids["dataset"]
    if "label" in body:  # exactly one of label (id) and mid
        body["label"] = ids["label_music"]
        body.pop("mid", None)
    elif "mid" in body:
        body["mid"] = "/m/04rlf"
    if "clips" in body:
        body["clips"] = [ids["clip"], ids["clip1"]]
    if isinstance(body.get("error_category"), str):
        body["error_category"] = ids["error_category"]


def _run(strategy, n: int, call, failures: list[str]) -> None:
    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def fuzz(case):
        resp = call(case)
        if resp.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} query={case.query} "
                            f"body={str(case.body)[:300]!r}: {resp.status_code}")

    fuzz()


def test_no_generated_request_gets_a_server_error(world, wsgi_app, server_errors):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    auth = {"Authorization": f"Token {world.tokens['curator']}"}
    ids = world.ids()
    ids["error_category"] = ErrorCategory.objects.filter(active=True).first().slug
    curator = world.users["curator"]
    ids["token"] = AuthToken.objects.create(user=curator)[0].digest  # one to revoke by id
    failures: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 20, [op.label for op in operations]

    def call(case):
        headers = auth
        if case.method.upper() == "DELETE" and case.path.startswith("/api/auth/token"):
            # Revoking: a throwaway token, so the curator's stays for the other operations.
            headers = {"Authorization": f"Token {AuthToken.objects.create(user=curator)[1]}"}
        return case.call(headers=headers)

    for op in operations:
        for mode, n in EXAMPLES.items():
            try:
                _run(op.as_strategy(generation_mode=mode), n, call, failures)
            except Unsatisfiable:
                # An operation with no parameters and no body has nothing to make invalid.
                assert mode == GenerationMode.NEGATIVE, op.label
        names = re.findall(r"{(\w+)}", op.path)
        if names:
            collection = op.path.removeprefix("/api/").split("/")[0]
            real = {names[0]: ids[REAL_IDS[collection]]}
            _run(op.as_strategy(path_parameters=real), FIXED_EXAMPLES, call, failures)
        if op.method.upper() == "POST":

            def call_real(case):
                _with_real_references(case, ids)
                return call(case)

            _run(op.as_strategy(), REAL_BODY_EXAMPLES, call_real, failures)
    assert not failures and not server_errors, "\n".join(failures + server_errors[:5])
