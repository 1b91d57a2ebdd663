"""Definitions shared by the Django-level tests."""


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
