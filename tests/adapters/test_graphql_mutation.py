"""The graphqlMutation loader against a real GraphQL server (graphene) on 127.0.0.1: single and batch
mode, per-record failures, retries, auth, a server that hangs, and runs through the real executor."""

from __future__ import annotations

import json
import re
import threading
import time

import graphene
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.adapters.base import AdapterContext
from pipelines.adapters.graphql_mutation import GraphqlMutationLoader, compile_mutation
from pipelines.definition import parse
from pipelines.errors import ConfigError, StepError
from pipelines.http import HttpClient, HttpPolicy
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore
from tests.fixtures import credential_stores

LOCAL = HttpPolicy(allow=("127.0.0.1",))
CREATE = "mutation Create($input: ProductInput!) { createProduct(input: $input) { id sku } }"
TOKEN = "s3cret-token"


# -- the server ------------------------------------------------------------------------------------

class ProductInput(graphene.InputObjectType):
    sku = graphene.String(required=True)
    price = graphene.Float()
    name = graphene.String()


class Product(graphene.ObjectType):
    id = graphene.ID()
    sku = graphene.String()
    price = graphene.Float()
    note = graphene.String()


class Mutation(graphene.ObjectType):
    create_product = graphene.Field(Product, input=ProductInput(required=True), note=graphene.String())

    def resolve_create_product(root, info, input, note=None):
        backend: Backend = info.context["backend"]
        if backend.token and info.context["request"].headers.get("Authorization") != f"Bearer {backend.token}":
            raise PermissionError("not authenticated")
        if input.sku == "bad":
            raise ValueError(f"sku '{input.sku}' is refused")
        backend.created.append(input.sku)
        return Product(id=f"P-{input.sku}", sku=input.sku, price=input.price, note=note)


class Query(graphene.ObjectType):
    product = graphene.Field(Product, sku=graphene.String())


SCHEMA = graphene.Schema(query=Query, mutation=Mutation)


class Backend:
    """The server's state: what it created, what it was sent, and how it should misbehave."""

    def __init__(self):
        self.created: list[str] = []
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.token: str | None = None
        self.fail_times = 0  # answer 503 this many times first
        self.fail_status = 503
        self.retry_after: str | None = None
        self.hang = False
        self.released = threading.Event()
        # Errors without a `path` added to every executed response (a server's throttling or cost notice).
        self.pathless_errors: list[str] = []

    def __call__(self, request: Request) -> Response:
        self.headers.append(dict(request.headers))
        body = json.loads(request.get_data())
        self.bodies.append(body)
        if self.hang:
            self.released.wait(10)
            return Response("late", status=504)
        if self.fail_times > 0:
            self.fail_times -= 1
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return Response("busy", status=self.fail_status, headers=headers)
        result = SCHEMA.execute(body["query"], variables=body.get("variables"),
                                context_value={"backend": self, "request": request})
        formatted = result.formatted
        if self.pathless_errors:
            formatted["errors"] = formatted.get("errors", []) + [{"message": m} for m in self.pathless_errors]
        return Response(json.dumps(formatted), status=200, content_type="application/json")


@pytest.fixture(scope="module")
def server():
    # Threaded, so a hanging request does not hold up the next test's requests.
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    yield srv
    srv.clear()
    if srv.is_running():
        srv.stop()


@pytest.fixture
def backend(server):
    server.clear()
    state = Backend()
    server.expect_request("/graphql", method="POST").respond_with_handler(state)
    yield state
    state.released.set()


@pytest.fixture
def endpoint(server):
    return f"http://127.0.0.1:{server.port}/graphql"


def context(secrets=None, policy=LOCAL, connections=None):
    secret, connection = credential_stores(secrets or {}, connections or {})
    return AdapterContext(step_key="load", http=HttpClient(policy), secret=secret, connection=connection)


def loader(endpoint, ctx=None, **config):
    config = {"endpoint": endpoint, "mutation": CREATE, "retryDelayMs": 0, **config}
    return GraphqlMutationLoader(config, ctx or context())


# -- single and batch mode -------------------------------------------------------------------------

def test_it_sends_one_request_per_record_in_single_mode_and_writes_back_the_result(backend, endpoint):
    records = [{"sku": "A-1", "price": 9.5}, {"sku": "A-2"}]
    result = loader(endpoint, resultMapping={"id": "productId"}).write(records)
    assert result.failed == []
    assert result.written == 2
    assert result.output == [{"sku": "A-1", "price": 9.5, "productId": "P-A-1"},
                             {"sku": "A-2", "productId": "P-A-2"}]
    assert records[0] == {"sku": "A-1", "price": 9.5}  # the input records are not changed
    assert [b["variables"] for b in backend.bodies] == [{"input": {"sku": "A-1", "price": 9.5}},
                                                        {"input": {"sku": "A-2"}}]
    assert backend.bodies[0]["query"] == CREATE
    assert backend.created == ["A-1", "A-2"]


def test_it_sends_aliased_copies_in_batch_mode_and_fails_the_bad_record_alone(backend, endpoint):
    records = [{"sku": "A-1"}, {"sku": "bad"}, {"sku": "A-3"}]
    result = loader(endpoint, batchMode="batch", resultMapping={"id": "productId"}).write(records)
    assert len(backend.bodies) == 1
    query = backend.bodies[0]["query"]
    assert "m0: createProduct(input: $input_0)" in query and "m2: createProduct(input: $input_2)" in query
    assert backend.bodies[0]["variables"] == {"input_0": {"sku": "A-1"}, "input_1": {"sku": "bad"},
                                              "input_2": {"sku": "A-3"}}
    assert result.failed == [({"sku": "bad"}, "GraphQL error: sku 'bad' is refused")]
    assert result.failed[0][0] is records[1]
    assert result.output == [{"sku": "A-1", "productId": "P-A-1"}, {"sku": "A-3", "productId": "P-A-3"}]
    assert result.written == 2
    assert backend.created == ["A-1", "A-3"]


def test_it_splits_batches_at_max_batch_size(backend, endpoint):
    records = [{"sku": f"S-{i}"} for i in range(5)]
    result = loader(endpoint, batchMode="batch", maxBatchSize=2, resultMapping={"id": "id"}).write(records)
    assert [len(b["variables"]) for b in backend.bodies] == [2, 2, 1]
    assert [r["id"] for r in result.output] == [f"P-S-{i}" for i in range(5)]


def test_it_renames_every_variable_per_copy_in_batch_mode(backend, endpoint):
    mutation = ("mutation($input: ProductInput!, $note: String = \"none\") "
                "{ created: createProduct(input: $input, note: $note) { id note } }")
    records = [{"sku": "A-1", "note": "first"}, {"sku": "A-2"}]
    result = loader(endpoint, mutation=mutation, batchMode="batch",
                    variableMapping={"sku": "input.sku", "note": "note"},
                    resultMapping={"id": "id", "note": "savedNote"}).write(records)
    assert backend.bodies[0]["variables"] == {"input_0": {"sku": "A-1"}, "note_0": "first",
                                              "input_1": {"sku": "A-2"}}
    assert [(r["id"], r["savedNote"]) for r in result.output] == [("P-A-1", "first"), ("P-A-2", "none")]


def test_it_maps_record_fields_to_variables(backend, endpoint):
    records = [{"code": "A-1", "price": {"amount": 12.5, "currency": "EUR"}}]
    result = loader(endpoint, variableMapping={"code": "input.sku", "price.amount": "input.price"}).write(records)
    assert backend.bodies[0]["variables"] == {"input": {"sku": "A-1", "price": 12.5}}
    assert result.failed == []


def test_it_reads_the_plugins_mapping_direction_with_a_warning(backend, endpoint):
    ctx = context()
    result = loader(endpoint, ctx, variableMapping={"input.sku": "code"}).write([{"code": "A-1"}])
    assert backend.bodies[0]["variables"] == {"input": {"sku": "A-1"}}
    assert result.written == 1
    assert any("the Vendure plugin's direction" in w for w in ctx.warnings)


def test_it_sends_a_record_that_does_not_fit_the_variable_type_alone_and_writes_the_rest(backend, endpoint):
    # The server refuses the whole batch before executing (variable coercion); nothing was written, so the
    # records go again one by one and only the bad one fails.
    records = [{"sku": "A-1"}, {"sku": "A-2", "price": "not a number"}, {"sku": "A-3"}]
    result = loader(endpoint, batchMode="batch").write(records)
    assert len(backend.bodies) == 4
    assert [r["sku"] for r, _ in result.failed] == ["A-2"]
    assert "Float cannot represent non numeric value" in result.failed[0][1]
    assert backend.created == ["A-1", "A-3"]


# -- GraphQL errors --------------------------------------------------------------------------------

def test_it_treats_an_errors_array_in_a_200_as_a_failure(backend, endpoint):
    result = loader(endpoint).write([{"sku": "bad"}, {"sku": "A-2"}])
    assert result.failed == [({"sku": "bad"}, "GraphQL error: sku 'bad' is refused")]
    assert result.output == [{"sku": "A-2"}]
    assert result.written == 1


def test_it_loads_the_records_answered_with_data_despite_an_error_without_a_path(backend, endpoint):
    backend.pathless_errors = ["query cost 980 of 1000"]
    records = [{"sku": "A-1"}, {"sku": "bad"}, {"sku": "A-3"}]
    result = loader(endpoint, batchMode="batch", resultMapping={"id": "productId"}).write(records)
    assert backend.created == ["A-1", "A-3"]
    assert result.written == 2
    assert result.output == [{"sku": "A-1", "productId": "P-A-1"}, {"sku": "A-3", "productId": "P-A-3"}]
    assert result.failed == [({"sku": "bad"}, "GraphQL error: sku 'bad' is refused; query cost 980 of 1000")]


def test_it_fails_only_the_records_without_data_when_an_error_has_no_path(server, endpoint):
    # A server that executed the first mutation, then stopped (throttled) before the second one.
    server.clear()
    answer = {"data": {"m0": {"id": "P-A-1", "sku": "A-1"}, "m1": None},
              "errors": [{"message": "throttled: try again in 2 s"}]}
    server.expect_request("/graphql", method="POST").respond_with_json(answer)
    result = loader(endpoint, batchMode="batch", resultMapping={"id": "productId"}).write(
        [{"sku": "A-1"}, {"sku": "A-2"}])
    assert result.written == 1
    assert result.output == [{"sku": "A-1", "productId": "P-A-1"}]
    assert result.failed == [({"sku": "A-2"}, "GraphQL error: throttled: try again in 2 s")]


def test_it_fails_a_single_record_without_data_on_an_error_without_a_path(server, endpoint):
    server.clear()
    server.expect_request("/graphql", method="POST").respond_with_json(
        {"data": {"createProduct": None}, "errors": [{"message": "throttled"}]})
    result = loader(endpoint).write([{"sku": "A-1"}])
    assert (result.written, result.failed) == (0, [({"sku": "A-1"}, "GraphQL error: throttled")])


def test_it_does_not_retry_a_validation_error_and_sends_no_more(backend, endpoint):
    mutation = "mutation($input: ProductInput!) { createProduct(input: $input) { id colour } }"
    result = loader(endpoint, mutation=mutation, retries=3).write([{"sku": "A-1"}, {"sku": "A-2"}])
    assert len(backend.bodies) == 1
    assert [m for _, m in result.failed] == [
        "GraphQL validation failed: Cannot query field 'colour' on type 'Product'."] * 2
    assert result.written == 0


def test_it_fails_a_record_whose_variable_is_missing_without_failing_the_step(backend, endpoint):
    result = loader(endpoint, variableMapping={"code": "input.sku"}).write([{"other": 1}, {"code": "A-2"}])
    assert result.failed == [({"other": 1}, "GraphQL error: Variable '$input' of required type 'ProductInput!' "
                                            "was not provided.")]
    assert result.written == 1


# -- retries ---------------------------------------------------------------------------------------

def test_it_retries_a_503_then_succeeds(backend, endpoint):
    backend.fail_times = 2
    ctx = context()
    result = loader(endpoint, ctx, retries=3, retryDelayMs=10).write([{"sku": "A-1"}])
    assert result.failed == []
    assert len(backend.bodies) == 3
    assert backend.created == ["A-1"]
    assert sum("HTTP 503" in w for w in ctx.warnings) == 2


def test_it_fails_the_records_after_the_last_retry(backend, endpoint):
    backend.fail_times = 10
    result = loader(endpoint, retries=1, retryDelayMs=10, batchMode="batch").write([{"sku": "A"}, {"sku": "B"}])
    assert len(backend.bodies) == 2
    assert [m for _, m in result.failed] == ["HTTP 503 from " + endpoint + ": busy (2 attempts)"] * 2


def test_it_honours_retry_after_on_a_429(backend, endpoint):
    backend.fail_times, backend.fail_status, backend.retry_after = 1, 429, "1"
    started = time.monotonic()
    result = loader(endpoint, retries=2, retryDelayMs=0).write([{"sku": "A-1"}])
    assert time.monotonic() - started >= 1.0
    assert result.written == 1
    assert len(backend.bodies) == 2


def test_it_stops_sending_when_the_endpoint_stays_down(backend, endpoint):
    backend.fail_times = 100
    records = [{"sku": f"S-{i}"} for i in range(7)]
    result = loader(endpoint, retries=0).write(records)
    # The circuit breaker of pipelines.http_policy: five failures within a minute open it for 30 s.
    assert len(backend.bodies) == 5
    messages = [m for _, m in result.failed]
    assert messages[:5] == ["HTTP 503 from " + endpoint + ": busy (1 attempt)"] * 5
    origin = endpoint.removesuffix("/graphql")
    assert all(m.startswith(f"not sent: {origin} failed 5 times within 60 s") for m in messages[5:])
    assert len(messages) == 7


def test_it_fails_the_records_with_timed_out_when_the_server_hangs(backend, endpoint):
    backend.hang = True
    started = time.monotonic()
    result = loader(endpoint, timeoutMs=200, retries=1, retryDelayMs=10).write([{"sku": "A"}, {"sku": "B"}])
    assert time.monotonic() - started < 5
    assert len(backend.bodies) == 4
    assert len(result.failed) == 2
    assert all("timed out after 0.2s" in m and "(2 attempts)" in m for _, m in result.failed)


# -- auth and targets ------------------------------------------------------------------------------

def test_it_sends_a_bearer_token_from_a_secret(backend, endpoint):
    backend.token = TOKEN
    ctx = context(secrets={"shop-token": TOKEN})
    result = loader(endpoint, ctx, bearerTokenSecretCode="shop-token", headers={"X-Channel": "eu"}).write(
        [{"sku": "A-1"}])
    assert result.written == 1
    assert backend.headers[0]["Authorization"] == f"Bearer {TOKEN}"
    assert backend.headers[0]["X-Channel"] == "eu"


def test_it_fails_the_records_the_server_refuses_without_the_token(backend, endpoint):
    backend.token = TOKEN
    result = loader(endpoint).write([{"sku": "A-1"}])
    assert result.failed == [({"sku": "A-1"}, "GraphQL error: not authenticated")]


def test_it_refuses_an_inline_authorization_header(endpoint):
    with pytest.raises(ConfigError, match="carries a credential") as info:
        loader(endpoint, headers={"Authorization": f"Bearer {TOKEN}"})
    assert info.value.field == "headers.Authorization"
    assert "bearerTokenSecretCode" in str(info.value)


def test_it_refuses_an_unknown_secret(endpoint):
    with pytest.raises(ConfigError, match="unknown secret 'nope'") as info:
        loader(endpoint, bearerTokenSecretCode="nope")
    assert info.value.field == "bearerTokenSecretCode"


def test_it_uses_a_connections_endpoint_and_auth(backend, endpoint):
    backend.token = TOKEN
    base = endpoint.rsplit("/", 1)[0]
    ctx = context(secrets={"t": TOKEN},
                  connections={"shop": {"type": "GRAPHQL", "baseUrl": base, "bearerTokenSecretCode": "t"}})
    result = GraphqlMutationLoader({"connectionCode": "shop", "endpoint": "/graphql", "mutation": CREATE},
                                   ctx).write([{"sku": "A-1"}])
    assert result.written == 1


def test_a_graphql_connections_endpoint_comes_before_its_base_url(backend, endpoint):
    # A GRAPHQL connection may name both: the site (baseUrl) and where its GraphQL answers (endpoint).
    ctx = context(connections={"shop": {"type": "GRAPHQL", "baseUrl": "http://127.0.0.1:9/", "endpoint": endpoint}})
    result = GraphqlMutationLoader({"connectionCode": "shop", "mutation": CREATE}, ctx).write([{"sku": "A-1"}])
    assert result.written == 1 and backend.created == ["A-1"]


def test_it_takes_only_bearer_and_basic_auth(endpoint):
    with pytest.raises(ConfigError, match=r"unknown auth type 'API_KEY' \(one of NONE, BEARER, BASIC\)") as info:
        loader(endpoint, auth="API_KEY", apiKeySecretCode="k")
    assert info.value.field == "auth"


def test_it_fails_the_step_on_a_401(server, endpoint):
    server.clear()
    server.expect_request("/graphql").respond_with_data("no", status=401)
    with pytest.raises(StepError, match="HTTP 401") as info:
        loader(endpoint).write([{"sku": "A-1"}])
    assert info.value.retryable is False


def test_it_refuses_a_private_target_unless_allowed(backend, endpoint):
    with pytest.raises(StepError, match="refusing to connect to 127.0.0.1") as info:
        loader(endpoint, context(policy=HttpPolicy())).write([{"sku": "A-1"}])
    assert info.value.retryable is False
    assert backend.bodies == []


# -- the document ----------------------------------------------------------------------------------

@pytest.mark.parametrize("document, message", [
    ("query { product(sku: \"a\") { id } }", "the operation is a query, not a mutation"),
    ("subscription { productAdded { id } }", "the operation is a subscription, not a mutation"),
    ("mutation A { a } mutation B { b }", "the document holds 2 operations (A, B)"),
    ("mutation { createProduct(input: {sku: \"a\"} { id } }", "the mutation does not parse: Syntax Error"),
    ("fragment F on Product { id }", "the document holds no operation"),
    ("type Product { id: ID }", "not type definitions"),
])
def test_it_rejects_a_document_that_is_not_one_mutation(document, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        compile_mutation(document)
    assert info.value.field == "mutation"


def test_it_refuses_a_mapping_to_an_undeclared_variable(endpoint):
    with pytest.raises(ConfigError, match=r"'product.sku' does not start with a variable the mutation declares "
                                          r"\(\$input\)"):
        loader(endpoint, variableMapping={"sku": "product.sku"})


def test_it_needs_an_input_variable_without_a_mapping(endpoint):
    with pytest.raises(ConfigError, match=r"does not declare \$input \(it declares \$data\)"):
        loader(endpoint, mutation="mutation($data: ProductInput!) { createProduct(input: $data) { id } }")


def test_it_refuses_fragments_with_variables_in_batch_mode():
    document = ("mutation($input: ProductInput!) { ...F } "
                "fragment F on Mutation { createProduct(input: $input) { id } }")
    compile_mutation(document)  # fine for single requests
    with pytest.raises(ConfigError, match="spread no fragments at the root"):
        compile_mutation(document, batch=True)


# -- through the executor --------------------------------------------------------------------------

def definition(endpoint, records, **config):
    return {
        "steps": [
            {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": records}},
            {"key": "load", "type": "LOAD", "adapterCode": "graphqlMutation",
             "config": {"endpoint": endpoint, "mutation": CREATE, "retryDelayMs": 0, **config}},
        ],
    }


def run(d, **options):
    store = InMemoryStore()
    result = execute(parse(d), store, RunOptions(keep_outputs=True, http=HttpClient(LOCAL), **options))
    return result, store


def test_it_runs_in_a_pipeline_and_sends_failures_to_the_record_errors(backend, endpoint):
    records = [{"sku": "A-1"}, {"sku": "bad"}, {"sku": "A-3"}]
    result, store = run(definition(endpoint, records, batchMode="batch", resultMapping={"id": "productId"}))
    assert result.status == "COMPLETED"
    assert result.output("load") == [{"sku": "A-1", "productId": "P-A-1"}, {"sku": "A-3", "productId": "P-A-3"}]
    errors = store.record_errors()
    assert [(e.step_key, e.record, e.message) for e in errors] == [
        ("load", {"sku": "bad"}, "GraphQL error: sku 'bad' is refused")]


def test_it_counts_records_answered_with_data_as_written_in_a_run(backend, endpoint):
    backend.pathless_errors = ["query cost 980 of 1000"]
    records = [{"sku": "A-1"}, {"sku": "bad"}, {"sku": "A-3"}]
    result, store = run(definition(endpoint, records, batchMode="batch"))
    assert result.status == "COMPLETED"
    counts = store.finished()["load"].counts
    assert (counts.records_in, counts.records_out, counts.errors) == (3, 2, 1)
    assert store.record_errors()[0].record == {"sku": "bad"}
    assert backend.created == ["A-1", "A-3"]


def test_a_dry_run_sends_nothing(backend, endpoint):
    result, store = run(definition(endpoint, [{"sku": "A-1"}, {"sku": "A-2"}]), dry_run=True)
    assert result.status == "COMPLETED"
    assert backend.bodies == []
    assert result.output("load") == [{"sku": "A-1"}, {"sku": "A-2"}]


def test_a_bad_mutation_fails_the_step_without_retries(backend, endpoint):
    d = definition(endpoint, [{"sku": "A-1"}], mutation="query { product { id } }")
    d["steps"][1]["retries"] = 2
    result, store = run(d)
    assert result.status == "FAILED"
    assert "the operation is a query, not a mutation" in result.error
    assert store.finished()["load"].attempts == 1
    assert backend.bodies == []
