"""Fuzz the REST API from its own OpenAPI schema (/api/schema/) with schemathesis, over HTTP
against a live test server, as a reviewer and as a curator (each with a token), every
operation, with schema-conforming and schema-violating requests. Every response is checked:

- no 5xx (and no exception reached Django's handler),
- a documented status answers with a body that conforms to the published schema, and with
  a documented content type,
- every error (4xx) is application/json.

Path ids are generated (mostly unknown ids) and, in a second pass, fixed to the world's real
objects so detail endpoints, actions and deletes run their code on real rows; in a third
pass the references in generated bodies (clip, dataset, mid, clips) are pointed at real
objects, so writes get past "no such clip" and run the services.

Bounded for CI: a fixed number of derandomized examples per operation and pass (issue 16
asks for the fuzz stage to stay within a few minutes; README "Tests" gives its time)."""

from __future__ import annotations

import re

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from knox.models import AuthToken
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from review.models import ErrorCategory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.fuzz]

EXAMPLES = {GenerationMode.POSITIVE: 6, GenerationMode.NEGATIVE: 4}
FIXED_EXAMPLES = 3  # path ids of real objects
REAL_BODY_EXAMPLES = 5  # bodies whose references name real objects
# Path ids of the world's objects, by the collection the operation's path starts with.
REAL_IDS = {
    "datasets": "dataset", "clips": "clip", "labels": "label_dog", "runs": "run",
    "candidates": "candidate", "original-label-scores": "original_score", "decisions": "d_rob",
    "adjudications": "adjudication", "exports": "export", "auth": "token",
}


def errors_are_json(ctx, response, case) -> bool | None:
    """Issue 16: 400/403/404/405/429/500 under /api/ answer application/json."""
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith("application/json"), \
            f"{response.status_code} answered with {content_type!r}, not JSON"
    return None


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance,
          errors_are_json]


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
        try:
            case.validate_response(resp, checks=CHECKS)
        except FailureGroup as group:
            failures.append(f"{case.method} {case.formatted_path} query={case.query} "
                            f"body={str(case.body)[:200]!r}: {resp.status_code} "
                            + "; ".join(f.title for f in group.exceptions))

    fuzz()


@pytest.mark.parametrize("role", ["reviewer", "curator"])
def test_generated_requests_get_no_server_error_and_schema_conforming_answers(
        world, live_server, server_errors, role):
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")
    user = world.users[role]
    auth = {"Authorization": f"Token {world.tokens[role]}"}
    ids = world.ids()
    ids["error_category"] = ErrorCategory.objects.filter(active=True).first().slug
    ids["token"] = AuthToken.objects.create(user=user)[0].digest  # one to revoke by id
    failures: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 20, [op.label for op in operations]
    session = requests.Session()

    def call(case):
        headers = auth
        if case.method.upper() == "DELETE" and case.path.startswith("/api/auth/token"):
            # Revoking: a throwaway token, so the role's own stays for the other operations.
            headers = {"Authorization": f"Token {AuthToken.objects.create(user=user)[1]}"}
        return case.call(headers=headers, session=session)

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
    assert not failures and not server_errors, "\n".join(failures[:30] + server_errors[:5])
