"""Definitions shared by the Django-level tests, and where the plugin's examples lie."""

from pathlib import Path

# shared/ lies beside the project (../shared from its root), in a checkout as in CI's clone.
PLUGIN_EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "compat" / "plugin-examples"


def simple_definition(code="simple", records=None, **context):
    return {
        "version": 1,
        "code": code,
        "name": f"Pipeline {code}",
        "steps": [
            {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory",
             "config": {"data": records if records is not None else [{"sku": " a "}, {"sku": "b"}]}},
            {"key": "clean", "type": "TRANSFORM", "config": {"operators": [{"op": "trim", "args": {"path": "sku"}}]}},
            {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
        ],
        "edges": [],
        "context": context,
    }


def credential_stores(secrets: dict, connections: dict):
    """``(secret, connection)`` lookups over plain dicts, as the run gives adapters and operators: a value or
    a connection's settings by code, ConfigError for an unknown code."""
    from pipelines.errors import ConfigError

    def secret(code):
        if code not in secrets:
            raise ConfigError(f"unknown secret '{code}'")
        return secrets[code]

    def connection(code):
        if code not in connections:
            raise ConfigError(f"unknown connection '{code}'")
        return {"code": code, **connections[code]}

    return secret, connection
