"""A property-based run of schemathesis against /api/schema/: generated requests to every operation, as
alice with her token, must never get a 500 and must get the answers the schema documents; requests that
break the schema (wrong types, missing or unknown fields, values out of range) must get a 4xx.

Bounded: 15 valid and 10 invalid examples per operation, no deadline per example; the whole run takes
seconds. The requests
go through Django's WSGI handler in this process, inside the test's transaction. (Schemathesis's own
pytest fixture loader does not run on pytest 9, so the operations are parametrized here.)
"""

import json

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]

# What /api/schema/ serves (test_it_fuzzes_the_schema_the_api_serves checks that it is the same).
SCHEMA = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
OPERATIONS = {op.label: op for op in (r.ok() for r in schemathesis.openapi.from_dict(SCHEMA).get_all_operations())}


def test_it_fuzzes_the_schema_the_api_serves(anonymous):
    assert anonymous.get("/api/schema/", {"format": "json"}).json() == SCHEMA
    assert len(OPERATIONS) >= 20


@pytest.mark.parametrize("label", OPERATIONS)
def test_it_never_answers_500_and_keeps_to_its_schema(label, alice_token, wsgi_app):
    headers = {"Authorization": f"Token {alice_token}"}

    @given(case=OPERATIONS[label].as_strategy())
    @settings(max_examples=15, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(app=wsgi_app, headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    check()


@pytest.mark.parametrize("label", OPERATIONS)
def test_it_answers_bad_input_with_4xx(label, alice_token, wsgi_app):
    headers = {"Authorization": f"Token {alice_token}"}
    operation = OPERATIONS[label]

    @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE))
    @settings(max_examples=10, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(app=wsgi_app, headers=headers)
        case.validate_response(response, checks=[checks.not_a_server_error, checks.negative_data_rejection],
                               headers=headers)
        assert response.status_code < 500

    check()
