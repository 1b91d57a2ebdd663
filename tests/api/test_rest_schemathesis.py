"""A property-based run of schemathesis, with every check it has, against /api/schema/: generated requests to
every operation, as alice with her token, over HTTP to a live server, must never get a 500, must get the
answers the schema documents, must be accepted when they keep to the schema and refused with a 4xx when
they break it; and the checks that send more requests (the same request without auth, with a method the
operation lacks, a deleted resource asked for again) must find the API doing what it says.

One documented exception: a pipeline definition means more than its JSON schema can say (step types,
adapter configs, operator args, a graph without cycles, text PostgreSQL can store), so the operations that
take one may answer a schema-valid request with 400 and the problems listed (it is the editor's and the
CLI's validation, not a refusal the schema hides).

Bounded: a few examples per operation and mode, no shrinking (a failure is reported as found), no deadline.
"""

import json

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.authtoken.models import Token
from schemathesis import checks
from schemathesis.config import SchemathesisConfig

from pipelines.services import save_definition
from runs import services
from tests.fixtures import simple_definition

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
    checks.positive_data_acceptance,
    checks.missing_required_header,
    checks.unsupported_method,
    checks.use_after_free,
    checks.ensure_resource_availability,
    checks.ignored_auth,
]
DEFINITION_OPERATIONS = ["pipelines_create", "pipelines_update", "pipelines_import", "pipelines_validate"]
CONFIG = SchemathesisConfig.from_str(f"""
[[operations]]
include-operation-id = {json.dumps(DEFINITION_OPERATIONS)}
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]
""")

# What /api/schema/ serves (test_it_fuzzes_the_schema_the_api_serves checks that it is the same).
SCHEMA = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
OPERATIONS = {op.label: op for op in (r.ok() for r in schemathesis.openapi.from_dict(SCHEMA, config=CONFIG)
                                      .get_all_operations())}
MODES = {"valid": (schemathesis.GenerationMode.POSITIVE, 8), "invalid": (schemathesis.GenerationMode.NEGATIVE, 6)}


def test_it_fuzzes_the_schema_the_api_serves(anonymous):
    assert anonymous.get("/api/schema/", {"format": "json"}).json() == SCHEMA
    assert len(OPERATIONS) >= 20


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("label", OPERATIONS)
def test_it_does_what_its_schema_says(label, mode, alice, live_server):
    services.create_run(save_definition(simple_definition(code="simple")))  # something for requests to find
    headers = {"Authorization": f"Token {Token.objects.create(user=alice).key}"}
    generation, examples = MODES[mode]

    @given(case=OPERATIONS[label].as_strategy(generation_mode=generation))
    @settings(max_examples=examples, phases=[Phase.explicit, Phase.generate], deadline=None, derandomize=True,
              database=None, suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(base_url=live_server.url, headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers,
                               transport_kwargs={"base_url": live_server.url})

    check()
