"""A property-based run of schemathesis against /graphql/: generated queries and mutations for every
field, as alice with her token, never get a 500 nor an INTERNAL error (an unexpected exception in a
resolver). Bounded: 10 examples per field, no deadline."""

import datetime as dt

import graphql
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datahub_project.schema import schema as graphene_schema
from tests.fixtures import simple_definition

nodes = schemathesis.graphql.nodes


def to_node(value) -> graphql.ValueNode:
    if value is None:
        return nodes.Null
    if isinstance(value, bool):
        return nodes.Boolean(value)
    if isinstance(value, int):
        return nodes.Int(value)
    if isinstance(value, str):
        return nodes.String(value)
    if isinstance(value, list):
        return nodes.List([to_node(v) for v in value])
    return nodes.Object([graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=to_node(v))
                         for k, v in value.items()])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31 - 1) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["code", "name", "steps", "edges", "key", "type", "config", "version"]) | st.text(
            alphabet="abcxyz_", min_size=1, max_size=5), children, max_size=4),
    max_leaves=12,
)
schemathesis.graphql.scalar(
    "GenericScalar", (st.just(simple_definition(code="fuzzed")) | JSON).map(to_node))
schemathesis.graphql.scalar("DateTime", (
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                 timezones=st.just(dt.UTC)).map(lambda d: d.isoformat()) | st.text(max_size=12)).map(nodes.String))

SCHEMA = schemathesis.graphql.from_file(str(graphene_schema))
OPERATIONS = {op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations())}


def test_it_fuzzes_every_query_and_mutation():
    names = {label.split(".")[-1] for label in OPERATIONS}
    assert {"pipelines", "pipeline", "runs", "run", "adapters", "pendingGates", "savePipeline", "startRun",
            "cancelRun", "approveGate", "rejectGate"} <= names


@pytest.mark.parametrize("label", OPERATIONS)
def test_it_never_fails_inside(label, alice_token, wsgi_app):
    headers = {"Authorization": f"Token {alice_token}"}

    @given(case=OPERATIONS[label].as_strategy())
    @settings(max_examples=10, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(app=wsgi_app, base_url="http://localhost/graphql/", headers=headers)
        assert response.status_code < 500, response.text
        body = response.json()
        internal = [e for e in body.get("errors", []) if (e.get("extensions") or {}).get("code") == "INTERNAL"]
        assert not internal, (case.body, body)

    check()
