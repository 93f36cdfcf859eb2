"""The OpenAPI description of /api/v1 (GET /api/v1/openapi.json) against the live API.

schemathesis generates requests for every operation from the schema (valid and invalid
bodies, query strings and path values) and sends them with a management key, or the
operator token for the operator's endpoints: no answer may be a 5xx, every error must be
the envelope, and every answer must match the schema. docs/api.md must name every
operation, so the two cannot drift apart.
"""

import json
import os
from collections import Counter
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.routing.catalog import forget_routes
from gateway.routing.catalog_loader import load_catalog

pytestmark = pytest.mark.django_db(transaction=True)

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
MAX_EXAMPLES = int(os.environ.get("OPENAPI_FUZZ_EXAMPLES", "12"))
RANDOM = os.environ.get("OPENAPI_FUZZ_RANDOM") == "1"
OPERATIONS = {
    "GET /api/v1/organization", "PATCH /api/v1/organization", "GET /api/v1/keys", "POST /api/v1/keys",
    "GET /api/v1/keys/{id}", "PATCH /api/v1/keys/{id}", "DELETE /api/v1/keys/{id}", "GET /api/v1/usage",
    "GET /api/v1/usage/summary", "GET /api/v1/ledger", "POST /api/v1/admin/organizations",
    "POST /api/v1/admin/organizations/{slug}/credits",
}


@pytest.fixture
def demo_only(db):
    load_catalog('providers:\n  demo:\n    protocol: mock\n    models:\n'
                 '      echo: {input_per_mtok: "0.10", output_per_mtok: "0.20"}\n')
    forget_routes()


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_the_schema_is_public_and_describes_the_management_api(live_server):
    r = requests.get(f"{live_server.url}/api/v1/openapi.json", timeout=20)  # no Authorization
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    schema = r.json()
    assert schema["openapi"].startswith("3.") and {label for label, _ in _operations(schema)} == OPERATIONS
    schemes = schema["components"]["securitySchemes"]
    assert schemes["managementKey"]["bearerFormat"] == "mk-..." and schemes["operatorToken"]["scheme"] == "bearer"
    for label, operation in _operations(schema):
        wanted = "operatorToken" if "/admin/" in label else "managementKey"
        assert operation["security"] == [{wanted: []}], label
        assert {"401", "404", "429"} <= set(operation["responses"]), label
        if label.startswith("POST"):
            assert {"409", "422"} <= set(operation["responses"]), label
            assert any(p["name"] == "Idempotency-Key" for p in operation["parameters"]), label
    money = schema["components"]["schemas"]["Organization"]["properties"]["balance_usd"]
    assert money["type"] == "string" and money["pattern"]
    page = schema["paths"]["/api/v1/usage"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(schema["components"]["schemas"][page["$ref"].rsplit("/", 1)[1]]["required"]) == {"results", "next"}
    # The /v1 schema stays about /v1.
    v1 = requests.get(f"{live_server.url}/v1/openapi.json", timeout=20).json()
    assert not any(path.startswith("/api/") for path in v1["paths"])


def test_the_api_reference_names_every_operation(live_server):
    doc = API_DOC.read_text()
    for label in OPERATIONS:
        assert f"{label.split()[0]} {label.split()[1]}" in doc, f"docs/api.md does not document {label}"
    for code in ("invalid_api_key", "not_found", "unknown_parameter", "idempotency_key_reused",
                 "rate_limit_exceeded", "Idempotency-Key", "Idempotent-Replayed", "budget_period"):
        assert code in doc, code


@schemathesis.check
def management_error_envelope(ctx, response, case):
    request_id = response.headers.get("x-request-id", [None])[0]
    assert request_id, "no x-request-id header"
    if response.status_code >= 400:
        body = json.loads(response.content)
        assert set(body) == {"error", "request_id"} and body["request_id"] == request_id, body
        assert set(body["error"]) == {"message", "type", "param", "code"} and body["error"]["message"], body
        assert "Traceback" not in body["error"]["message"]


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          management_error_envelope]


def _run(strategy, max_examples, call):
    @given(strategy)
    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=not RANDOM, print_blob=False,
              phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    def run(case):
        call(case)

    try:
        run()
    except Exception as exc:  # the failing case, shrunk, with schemathesis' report
        return str(exc)
    return None


@pytest.mark.slow
def test_the_live_api_conforms_to_its_schema(live_server, api, operator_token, org, demo_only, settings):
    settings.MANAGEMENT_API_RATE_LIMIT = "100000/minute"
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/openapi.json")
    session = requests.Session()
    seen, failures = Counter(), []
    management = {"Authorization": api.session.headers["Authorization"]}
    operator = {"Authorization": f"Bearer {operator_token}"}

    def caller(case):
        return operator if "/admin/" in case.operation.path else management

    def call(case):
        if case.path_parameters and "slug" in case.path_parameters and case.path_parameters["slug"] == "":
            return
        response = case.call_and_validate(base_url=live_server.url, session=session, headers=caller(case),
                                          checks=CHECKS, timeout=20)
        seen[(case.operation.label, response.status_code)] += 1

    def call_without_credentials(case):
        response = case.call_and_validate(base_url=live_server.url, session=session, checks=CHECKS, timeout=20)
        assert response.status_code == 401, response.status_code

    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == OPERATIONS
    for operation in operations:
        runs = [(operation.as_strategy(GenerationMode.POSITIVE), MAX_EXAMPLES, call),
                (operation.as_strategy(GenerationMode.NEGATIVE), MAX_EXAMPLES, call),
                (operation.as_strategy(GenerationMode.POSITIVE), 2, call_without_credentials)]
        for strategy, max_examples, how in runs:
            failure = _run(strategy, max_examples, how)
            if failure:
                failures.append(f"{operation.label}:\n{failure}")
    assert not failures, "\n\n".join(failures)
    # The fuzzing reached real answers, not only refusals.
    answered = {label for (label, status) in seen if status < 300}
    assert {"GET /api/v1/organization", "GET /api/v1/keys", "POST /api/v1/keys", "GET /api/v1/usage",
            "GET /api/v1/ledger", "POST /api/v1/admin/organizations"} <= answered, answered
