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
