"""/api/schema/ is a valid OpenAPI 3 document naming every endpoint, and /api/docs/ shows it with assets
served from this server (drf-spectacular-sidecar), not from a CDN."""

import re

from django.urls import URLPattern
from drf_spectacular.validation import validate_schema

from datahub_project import api_urls

NOT_IN_SCHEMA = {"api-schema", "api-docs", "api-tokens"}


def schema_of(client) -> dict:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_it_serves_a_valid_openapi_3_document(anonymous):
    schema = schema_of(anonymous)
    assert schema["openapi"].startswith("3.")
    # The official OpenAPI 3.0 JSON schema that drf-spectacular ships (openapi-spec-validator is not installed).
    validate_schema(schema)
    assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "cookieAuth"}


def test_it_describes_every_api_endpoint(anonymous):
    paths = schema_of(anonymous)["paths"]
    for pattern in api_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        if pattern.name in NOT_IN_SCHEMA:
            continue
        route = "/api/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", pattern.pattern._route)
        assert route in paths, route


def test_it_documents_the_error_answers(anonymous):
    start = schema_of(anonymous)["paths"]["/api/runs/"]["post"]
    assert {"201", "400", "401", "403", "409", "413"} <= set(start["responses"])
    problem = schema_of(anonymous)["components"]["schemas"]["Problem"]
    assert set(problem["properties"]) == {"step", "field", "message", "code"}


def test_it_serves_the_docs_page_without_a_cdn(anonymous):
    response = anonymous.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    # the page's own script comes from a URL (no inline script: Content-Security-Policy) and loads the schema
    script = re.search(r'<script src="(/api/docs/\?script=[^"]*)"', html).group(1)
    assert "/api/schema/" in anonymous.get(script).content.decode()
    external = re.findall(r"""(?:src|href)=["'](https?:)?//""", html)
    assert external == []
