"""What the OpenAPI schema adds to drf-spectacular's, so that it says exactly what the API does.

drf-spectacular describes the serializers; the API's shared plumbing (pipelines.rest_plumbing: ``Body``, ``JSONBody``,
``query_of``) is stricter than a serializer alone, and a client generated from the schema should meet no
refusal it could not have read there:

* a request body is an object with only its declared fields (``Body`` refuses the others);
* no text in a body or a query holds a NUL character (PostgreSQL cannot store one; ``JSONBody`` and
  ``query_of`` refuse it);
* a query parameter is never sent empty (``?limit=`` is refused, not read as "use the default");
* the server in front may answer 414 to a request line longer than it reads (gunicorn: 4094 bytes).
"""

from __future__ import annotations

NO_NUL = "^[^\\x00]*$"
TOO_LONG = {"description": "The request line (path and query) is longer than the server reads."}


def postprocess(result: dict, generator, request, public) -> dict:
    """A drf-spectacular POSTPROCESSING_HOOK."""
    schemas = result.get("components", {}).get("schemas", {})
    bodies: set[str] = set()
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for media in operation.get("requestBody", {}).get("content", {}).values():
                ref = media.get("schema", {}).get("$ref", "")
                if ref:
                    bodies.add(ref.rsplit("/", 1)[-1])
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    parameter.pop("allowEmptyValue", None)
                    _no_empty_text(parameter.get("schema", {}))
            operation.setdefault("responses", {}).setdefault("414", TOO_LONG)
    for name in bodies:
        schema = schemas.get(name, {})
        schema["additionalProperties"] = False
        for prop in schema.get("properties", {}).values():
            _no_nul(prop)
    return result


def _no_nul(schema: dict) -> None:
    if schema.get("type") == "string" and not ({"pattern", "enum", "format"} & set(schema)):
        schema["pattern"] = NO_NUL


def _no_empty_text(schema: dict) -> None:
    if schema.get("type") == "string" and "enum" not in schema:
        schema.setdefault("minLength", 1)
        _no_nul(schema)
