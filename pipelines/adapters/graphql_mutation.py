"""The ``graphqlMutation`` loader: each record is sent as a GraphQL mutation to an external API. [pure]

A step names the endpoint (``endpoint``, or a ``connectionCode`` whose ``endpoint``/``baseUrl`` it uses),
the mutation document and how a record becomes the mutation's variables (``variableMapping``; without it
the whole record is the ``$input`` variable). What the mutation returns can be written back into the
output record (``resultMapping``, e.g. the created id). The document is parsed when the step starts: it
must hold exactly one operation, a mutation (fragments may come with it).

**Batch mode sends aliased copies of the mutation in one document**, not a JSON array of operations::

    mutation Create($input_0: ProductInput!, $input_1: ProductInput!) {
      m0: createProduct(input: $input_0) { id }
      m1: createProduct(input: $input_1) { id }
    }

The copies are made on graphql-core's AST: each copy's variables are renamed ``<name>_<n>`` (the suffix
after the last underscore is all digits, so two copies never get the same name) and the variable
definitions are merged. A JSON array of ``{query, variables}`` objects would be simpler to build, but
array batching is an extension that the GraphQL-over-HTTP spec does not define and that servers keep
switched off unless told (Apollo Server 4+ ``allowBatchedHttpRequests``, GraphQL Yoga ``batching``,
graphene-django ``GraphQLView(batch=True)``; plain graphene/graphql-core has no HTTP layer at all),
while aliases are plain GraphQL that every server executes. They also keep the records apart: each
record's result is ``data["m<n>"]`` and an error whose ``path[0]`` is ``m<n>`` belongs to that record
alone, so one bad record fails alone. (Root mutation fields run one after another, so records are
written in order.)

What counts as a failure, per request:

* A response with an ``errors`` array is a failure for the records it concerns, whatever its HTTP status.
  In batch mode an error is matched to its record by the alias in ``path[0]``. An error without such a
  path concerns no record in particular: it fails the records the server returned no data for, while a
  record whose mutation returned data was executed (written there) and counts as written, so a replay
  of the record errors does not write it twice.
* An error before execution (no ``data``, no path), such as a record whose value does not fit the
  variable's type, means nothing was written; in batch mode the request's records are then sent again
  one by one, so the bad one fails alone and the others are written.
* A GraphQL validation error (``GRAPHQL_VALIDATION_FAILED``, "Cannot query field ...", a syntax error)
  is a fault of the document, not of a record: it is not retried, and as every later request would send
  the same document, the step's remaining records fail with the server's message without being sent.
* What is retried, how long it waits and when the endpoint counts as down is
  :mod:`pipelines.http_policy`'s, as for every outbound request: network errors, timeouts, 408, 429
  (``Retry-After`` honoured, up to two minutes) and 5xx but 501 are retried ``retries`` times with
  exponential backoff (``retryDelayMs`` × ``backoffMultiplier``^n, at most ``maxRetryDelayMs``); then the
  request's records fail with the last error ("... timed out after 5s"). One exception of this loader's
  own: a 5xx whose body carries ``data`` was executed and is read like a 200, not sent again.
  Requests that failed so feed the endpoint's circuit breaker (5 within 60 s open it for 30 s, the
  plugin's numbers): while it is open the records fail as "not sent" at once (they can be replayed from
  the record errors) instead of each waiting out its own retries. GraphQL errors do not feed it: they
  are the records' faults, not the endpoint's.
* 401, 403, 404 and 405 fail the step: no record can succeed against an endpoint that refuses the
  credentials or is not there. A refused private target (the HTTP guard) fails the step too.

A retried request may have been executed by the server before the connection broke: with ``retries``
above 0, write mutations that are safe to repeat (upserts keyed on the record), or set ``retries: 0``.

``variableMapping`` maps a record field path to a variable path (``{"price.amount": "input.price"}``).
The Vendure plugin's mapping goes the other way (variable path -> record path); a mapping whose
values do not start with a declared variable but whose keys all do is read in the plugin's direction,
with a warning, so a definition exported from the plugin runs unchanged.

Why one module of this size: the document compiler (aliases for batches), the sending and the
reading of per-record outcomes from GraphQL errors are one protocol; each part only makes sense with the
other two, and nothing else uses them.
The target and its auth are resolved as every HTTP adapter's are (:mod:`pipelines.adapters.http_auth`), the
retries by :mod:`pipelines.http_policy`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from copy import copy
from typing import Any
from urllib.parse import urlsplit

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLSyntaxError,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    Visitor,
    parse,
    print_ast,
    visit,
)

from pipelines.adapters.base import AdapterContext, Writer, WriteResult
from pipelines.adapters.http_auth import (
    DEFAULT_TIMEOUT_MS,
    MAX_TIMEOUT_MS,
    apply_auth,
    excerpt,
    resolve_target,
)
from pipelines.errors import ConfigError, StepCancelled, StepError
from pipelines.http import HttpError, HttpResponse
from pipelines.http_policy import (
    Backoff,
    CircuitBreaker,
    is_retryable_status,
    origin_of,
    request_with_retry,
)
from pipelines.records import Batch, PathError, Record, deep_copy, dumps, loads, path
from pipelines.registry import loaders

__all__ = ["GraphqlMutationLoader", "MutationPlan", "compile_mutation"]

_ALIAS = re.compile(r"^m(\d+)(?:_|$)")
_VALIDATION_CODES = frozenset({"GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED"})
# Messages of graphql-js / graphql-core validation rules (servers that set no extensions code, graphene
# among them). Only faults of the document: a record's bad variable value ("Variable '$x' got invalid
# value", "... was not provided") must not match, or one bad record would stop the whole step.
_VALIDATION_MESSAGE = re.compile(
    r"^(Syntax Error"
    r"|Cannot query field"
    r"|Unknown (argument|type|directive|fragment|operation)"
    r"|Field '[^']*' argument '[^']*' of type '[^']*' is required"
    r"|Field \"?[^ ]*\"? argument \"?[^ ]*\"? of type \"?[^ ]*\"? is required"
    r"|Field '[^']*' must (not )?have a selection"
    r"|Field \"[^\"]*\" (must not have|of type \"[^\"]*\" must have) a selection"
    r"|Variable '\$[^']*' (is never used|is not defined)"
    r"|Variable \"\$[^\"]*\" (is never used|is not defined)"
    r"|Variable '\$[^']*' of type '[^']*' used in position expecting"
    r"|Variable '\$[^']*' cannot be non-input type"
    r"|Expected value of type"
    r"|Fields '[^']*' conflict"
    r"|There can be only one"
    r"|Schema is not configured"
    r"|This anonymous operation must be the only defined operation)"
)
# The endpoint is wrong or refuses us: no record can succeed, so the step fails.
_STEP_FATAL_STATUSES = {
    401: "the server refused the credentials (check auth and the secret)",
    403: "the server refused access (check auth and the secret)",
    404: "there is no GraphQL endpoint at this URL",
    405: "the URL does not take POST requests (is it the GraphQL endpoint?)",
}

_INT_MS = {"type": "integer", "minimum": 0, "maximum": MAX_TIMEOUT_MS}


@loaders.register(
    "graphqlMutation",
    name="GraphQL mutation",
    category="api",
    builtin=True,
    description="Sends each record as a GraphQL mutation to an external API, one request per record or many "
    "records per request (aliased mutations); failures are per record; returned fields can be written back.",
    schema={
        "type": "object",
        "properties": {
            "endpoint": {"type": "string", "minLength": 1,
                         "description": "The GraphQL endpoint URL; with connectionCode, a path joined to the "
                         "connection's baseUrl (or an absolute URL on the connection's origin)."},
            "connectionCode": {"type": "string", "minLength": 1,
                               "description": "An HTTP or GraphQL connection: its endpoint (or baseUrl), headers "
                               "and auth are used unless this step sets its own."},
            "mutation": {"type": "string", "minLength": 1,
                         "description": "The GraphQL document: exactly one mutation operation (fragments "
                         "allowed), e.g. mutation($input: ProductInput!) { createProduct(input: $input) { id } }."},
            "variableMapping": {
                "type": "object",
                "description": "Record field path -> variable path, e.g. {\"sku\": \"input.sku\", \"price.amount\": "
                "\"input.price\"}. Without it the whole record is the $input variable.",
                "additionalProperties": {"type": "string", "minLength": 1},
            },
            "resultMapping": {
                "type": "object",
                "description": "Path in the mutation's result -> record field to write it to, e.g. {\"id\": "
                "\"productId\"}. The result is the mutation field's value (data.<field>); with several root "
                "fields, the data object.",
                "additionalProperties": {"type": "string", "minLength": 1},
            },
            "headers": {"type": "object",
                        "description": "Extra request headers (not secret). Authorization, Cookie, X-Api-Key and "
                        "other credential headers are refused: name a secret in bearerTokenSecretCode or "
                        "basicSecretCode instead.",
                        "additionalProperties": {"type": ["string", "number", "boolean"]}},
            "auth": {"enum": ["NONE", "BEARER", "BASIC"],
                     "description": "How to authenticate; the secret is named by bearerTokenSecretCode or "
                     "basicSecretCode. Without it, the secret code given chooses. NONE sends no credentials "
                     "(also not the connection's)."},
            "bearerTokenSecretCode": {"type": "string", "minLength": 1,
                                      "description": "Secret holding a bearer token (sent as Authorization: "
                                      "Bearer ...)."},
            "basicSecretCode": {"type": "string", "minLength": 1,
                                "description": "Secret holding 'user:password' for basic auth."},
            "batchMode": {"enum": ["single", "batch"], "default": "single",
                          "description": "single: one request per record. batch: up to maxBatchSize records per "
                          "request, as aliased copies of the mutation in one document (each result and error "
                          "is matched to its record)."},
            "maxBatchSize": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 50,
                             "description": "batch: records per request; 0 sends each incoming batch whole."},
            "retries": {"type": "integer", "minimum": 0, "maximum": 10, "default": 3,
                        "description": "Retries of a request after a network error, a timeout, 408, 429 or 5xx. "
                        "GraphQL errors and other 4xx are not retried."},
            "retryDelayMs": {**_INT_MS, "default": 1000,
                             "description": "Wait before the first retry; each later wait is multiplied by "
                             "backoffMultiplier."},
            "maxRetryDelayMs": {**_INT_MS, "default": 30_000,
                                "description": "The longest wait between retries (a Retry-After header is "
                                "honoured up to two minutes)."},
            "backoffMultiplier": {"type": "number", "minimum": 1, "maximum": 10, "default": 2,
                                  "description": "Factor between consecutive waits."},
            "timeoutMs": {"type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT_MS,
                          "default": DEFAULT_TIMEOUT_MS,
                          "description": "Timeout of one request in milliseconds (connect, each read and the "
                          "whole response)."},
        },
        "required": ["mutation"],
        "additionalProperties": False,
    },
)
class GraphqlMutationLoader(Writer):
    def __init__(self, config: dict, ctx: AdapterContext):
        super().__init__(config, ctx)
        self.batch_mode = config.get("batchMode", "single") == "batch"
        self.plan = compile_mutation(config.get("mutation"), batch=self.batch_mode)
        self.variable_mapping = _variable_mapping(config.get("variableMapping"), self.plan, ctx)
        self.result_mapping = _result_mapping(config.get("resultMapping"))
        self.url, self.headers = _resolve_target(config, ctx)
        self.where = _display(self.url)
        self.max_batch = int(config.get("maxBatchSize", 50)) if self.batch_mode else 1
        self.attempts = 1 + int(config.get("retries", 3))
        self.backoff = Backoff(attempts=self.attempts, initial_ms=float(config.get("retryDelayMs", 1000)),
                               max_ms=float(config.get("maxRetryDelayMs", 30_000)),
                               multiplier=float(config.get("backoffMultiplier", 2)))
        self.timeout_s = int(config.get("timeoutMs", DEFAULT_TIMEOUT_MS)) / 1000
        if ctx.http is None:
            raise ConfigError("outbound HTTP is not available here (no HTTP client)")
        # Set once the server rejected the document itself: every later request would get the same answer.
        self._refused: str | None = None
        self.breaker = CircuitBreaker()
        self.origin = origin_of(self.url)

    def write(self, batch: Batch) -> WriteResult:
        failed: list[tuple[Record, str]] = []
        output: Batch = []
        size = self.max_batch or len(batch) or 1
        for start in range(0, len(batch), size):
            if self.ctx.cancelled.is_set():
                raise StepCancelled()
            chunk = batch[start:start + size]
            for record, (result, error) in zip(chunk, self._send(chunk), strict=True):
                if error is not None:
                    failed.append((record, error))
                else:
                    output.append(self._write_back(record, result))
        return WriteResult(written=len(output), failed=failed, output=output)

    # -- one request -----------------------------------------------------------------------------

    def _send(self, chunk: Batch) -> list[tuple[Any, str | None]]:
        """(result, None) or (None, message) for each record of ``chunk``, in order."""
        if self._refused is not None:
            return [(None, self._refused)] * len(chunk)
        refusal = self.breaker.refusal(self.origin)
        if refusal is not None:
            return [(None, refusal)] * len(chunk)
        aliased = len(chunk) > 1
        variables = [self._variables(r) for r in chunk]
        query = self.plan.batch_document(len(chunk)) if aliased else self.plan.text
        try:
            if aliased:
                merged = {f"{k}_{i}": v for i, vs in enumerate(variables) for k, v in vs.items()}
                body = dumps({"query": query, "variables": merged})
            else:
                body = dumps({"query": query, "variables": variables[0]})
        except TypeError as exc:  # a value JSON cannot hold; find the records that have one
            if aliased:
                return [outcome for record in chunk for outcome in self._send([record])]
            return [(None, f"the record's variables cannot be sent as JSON: {exc}")]

        response = self._post(body)
        if isinstance(response, str):
            self.breaker.failure(self.origin, response)
            return [(None, response)] * len(chunk)
        self.breaker.success(self.origin)
        outcomes = self._interpret(response, len(chunk), aliased)
        if outcomes is None:  # an error before execution in a batch: nothing was written, so send one by one
            return [outcome for record in chunk for outcome in self._send([record])]
        return outcomes

    def _post(self, body: bytes) -> HttpResponse | str:
        """The server's answer, retrying what may pass on another try; a message when it never came."""
        tries = 0

        def retried(attempt: int, reason: str, wait: float) -> None:
            nonlocal tries
            tries = attempt
            self.ctx.warn(f"graphqlMutation {self.where}: {reason}; retry {attempt} of {self.attempts - 1} "
                          f"in {wait:g}s")

        try:
            response = request_with_retry(
                self.ctx.http, "POST", self.url, headers={**self.headers, "Content-Type": "application/json"},
                data=body, timeout=self.timeout_s, backoff=self.backoff, cancelled=self.ctx.cancelled,
                retry_response=_should_retry, on_retry=retried,
            )
        except HttpError as exc:
            if not exc.retryable:  # a refused private target, a TLS failure: the same on every try
                raise StepError(f"graphqlMutation {self.where}: {exc}", retryable=False) from None
            return f"{exc} ({_attempts(tries + 1)})"
        if _should_retry(response):
            return f"HTTP {response.status} from {self.where}: {excerpt(response)} ({_attempts(tries + 1)})"
        return response

    def _interpret(self, response: HttpResponse, n: int, aliased: bool) -> list[tuple[Any, str | None]] | None:
        """Per-record outcomes of a response; None when a batch must be sent again record by record."""
        status = response.status
        if status in _STEP_FATAL_STATUSES:
            raise StepError(f"graphqlMutation {self.where}: HTTP {status}: {_STEP_FATAL_STATUSES[status]}",
                            retryable=False)
        try:
            body = loads(response.body)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not ({"data", "errors"} & body.keys()):
            what = "not a GraphQL response" if 200 <= status < 300 else f"HTTP {status}"
            return [(None, f"{what} from {self.where}: {excerpt(response)}")] * n
        errors = [e if isinstance(e, dict) else {"message": str(e)} for e in (body.get("errors") or [])]
        data = body.get("data")
        if not isinstance(data, dict):
            data = None
        if data is None and errors and not any(_has_path(e) for e in errors):
            message = _messages(errors)
            if _is_validation(errors):
                self._refused = f"GraphQL validation failed: {message}"
                return [(None, self._refused)] * n
            if aliased:
                return None
            return [(None, f"GraphQL error: {message}")]
        if data is None and not errors:
            return [(None, f"HTTP {status} from {self.where}: the response has neither data nor errors")] * n

        mine: dict[int, list[dict]] = {}
        common: list[dict] = []
        for error in errors:
            index = _alias_index(error, n) if aliased else None
            (mine.setdefault(index, []) if index is not None else common).append(error)
        outcomes: list[tuple[Any, str | None]] = []
        for i in range(n):
            index = i if aliased else None
            own = mine.get(i, [])
            if own:
                outcomes.append((None, f"GraphQL error: {_messages(own + common)}"))
            elif data is None and not common:
                # A non-null root field failed and took the whole data with it; this record's result is lost.
                outcomes.append((None, f"no result: another mutation of the request failed ({_messages(errors)})"))
            elif common and (data is None or not self.plan.answered(data, index)):
                outcomes.append((None, f"GraphQL error: {_messages(common)}"))
            else:
                outcomes.append((self.plan.result(data, index), None))
        return outcomes

    # -- records ---------------------------------------------------------------------------------

    def _variables(self, record: Record) -> dict:
        if self.variable_mapping is None:
            return {"input": record}
        variables: dict = {}
        for source, target in self.variable_mapping:
            target.set(variables, source.get(record))  # a missing field leaves the variable unset
        return variables

    def _write_back(self, record: Record, result: Any) -> Record:
        if not self.result_mapping:
            return record
        # A copy: the input records may be another step's kept output.
        record = deep_copy(record)
        for source, target in self.result_mapping:
            target.set(record, source.get(result))
        return record


# -- the mutation document ---------------------------------------------------------------------------

class MutationPlan:
    """A parsed mutation: the text sent for one record and the aliased documents sent for several."""

    def __init__(self, text: str, document: DocumentNode, operation: OperationDefinitionNode):
        self.text = text
        self.document = document
        self.operation = operation
        self.variables = frozenset(v.variable.name.value for v in operation.variable_definitions or ())
        selections = operation.selection_set.selections
        fields = [s for s in selections if isinstance(s, FieldNode)]
        # The response keys of the root fields; a record's result is data[key] when there is one field.
        self.root_keys = tuple((f.alias or f.name).value for f in fields)
        self.single_field = len(fields) == 1 and len(selections) == 1
        self._documents: dict[int, str] = {}

    def result(self, data: dict, index: int | None) -> Any:
        """What the mutation returned for record ``index`` of an aliased batch (None: a plain request)."""
        if index is None:
            return data.get(self.root_keys[0]) if self.single_field else data
        if self.single_field:
            return data.get(f"m{index}")
        return {key: data.get(f"m{index}_{key}") for key in self.root_keys}

    def answered(self, data: dict, index: int | None) -> bool:
        """Whether ``data`` holds a result for record ``index`` (None: a plain request): then its mutation
        was executed, whatever other errors the response carries."""
        if index is None:
            keys = self.root_keys
        elif self.single_field:
            keys = (f"m{index}",)
        else:
            keys = tuple(f"m{index}_{key}" for key in self.root_keys)
        return any(data.get(key) is not None for key in keys)

    def batch_document(self, n: int) -> str:
        """The document with ``n`` aliased copies of the operation's fields (cached per ``n``)."""
        text = self._documents.get(n)
        if text is None:
            text = self._documents[n] = print_ast(self._build(n))
        return text

    def _build(self, n: int) -> DocumentNode:
        definitions: list[Any] = []
        fields: list[FieldNode] = []
        for i in range(n):
            renamed = visit(self.operation, _RenameVariables(f"_{i}"))
            definitions.extend(renamed.variable_definitions or ())
            for field in renamed.selection_set.selections:
                field = copy(field)
                key = (field.alias or field.name).value
                field.alias = NameNode(value=f"m{i}" if self.single_field else f"m{i}_{key}")
                fields.append(field)
        operation = copy(self.operation)
        operation.variable_definitions = tuple(definitions)
        selection_set = copy(self.operation.selection_set)
        selection_set.selections = tuple(fields)
        operation.selection_set = selection_set
        others = tuple(d for d in self.document.definitions if d is not self.operation)
        return DocumentNode(definitions=(operation, *others))


class _RenameVariables(Visitor):
    def __init__(self, suffix: str):
        super().__init__()
        self.suffix = suffix

    def enter_variable(self, node: VariableNode, *_args: Any) -> VariableNode:
        return VariableNode(name=NameNode(value=node.name.value + self.suffix))


class _FindVariables(Visitor):
    def __init__(self):
        super().__init__()
        self.found = False

    def enter_variable(self, node: VariableNode, *_args: Any) -> None:
        self.found = True


def compile_mutation(text: Any, *, batch: bool = False) -> MutationPlan:
    """Parse ``text`` and check that it is one mutation (and, for ``batch``, that it can be copied)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("a mutation document is required", field="mutation")
    try:
        document = parse(text, no_location=False)
    except GraphQLSyntaxError as exc:
        where = f" (line {exc.locations[0].line}, column {exc.locations[0].column})" if exc.locations else ""
        raise ConfigError(f"the mutation does not parse: {exc.message}{where}", field="mutation") from None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = [d for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
    if len(operations) + len(fragments) != len(document.definitions):
        raise ConfigError("the mutation document may hold one mutation and fragments, not type definitions",
                          field="mutation")
    if not operations:
        raise ConfigError("the document holds no operation; give one mutation", field="mutation")
    if len(operations) > 1:
        names = ", ".join(o.name.value if o.name else "(anonymous)" for o in operations)
        raise ConfigError(f"the document holds {len(operations)} operations ({names}); give exactly one mutation",
                          field="mutation")
    operation = operations[0]
    if operation.operation != OperationType.MUTATION:
        raise ConfigError(f"the operation is a {operation.operation.value}, not a mutation; this loader sends "
                          "mutations", field="mutation")
    plan = MutationPlan(text, document, operation)
    if batch:
        selections = operation.selection_set.selections
        if any(not isinstance(s, FieldNode) for s in selections):
            raise ConfigError("batchMode batch copies the mutation's root fields under aliases; spread no "
                              "fragments at the root (or use batchMode single)", field="mutation")
        if len(set(plan.root_keys)) != len(plan.root_keys):
            raise ConfigError("batchMode batch needs distinct response names for the root fields",
                              field="mutation")
        for fragment in fragments:
            finder = _FindVariables()
            visit(fragment, finder)
            if finder.found:
                raise ConfigError(f"fragment {fragment.name.value} uses variables, which cannot be renamed per "
                                  "record in batchMode batch; write its fields inline (or use batchMode single)",
                                  field="mutation")
    return plan


# -- config ----------------------------------------------------------------------------------------

def _compiled(text: Any, field: str):
    try:
        return path(text)
    except (PathError, TypeError) as exc:
        raise ConfigError(str(exc), field=field) from None


def _variable_mapping(raw: Any, plan: MutationPlan, ctx: AdapterContext) -> list | None:
    declared = plan.variables
    if not raw:
        if "input" not in declared:
            have = ", ".join(f"${v}" for v in sorted(declared)) or "none"
            raise ConfigError(f"without variableMapping the record is sent as $input, but the mutation does not "
                              f"declare $input (it declares {have}); declare it or give variableMapping",
                              field="variableMapping")
        return None
    pairs = [(_compiled(k, f"variableMapping.{k}"), _compiled(v, f"variableMapping.{k}")) for k, v in raw.items()]

    def declares(p) -> bool:
        return isinstance(p.parts[0], str) and p.parts[0] in declared

    if all(declares(target) for _, target in pairs):
        return pairs
    if all(declares(source) for source, _ in pairs):
        ctx.warn("graphqlMutation: variableMapping read as variable path -> record path (the Vendure plugin's "
                 "direction), as its keys name the mutation's variables; this loader's own form is record "
                 "field path -> variable path")
        return [(target, source) for source, target in pairs]
    source, target = next((s, t) for s, t in pairs if not declares(t))
    have = ", ".join(f"${v}" for v in sorted(declared)) or "none"
    raise ConfigError(f"variableMapping maps record field paths to variable paths; '{target.text}' does not "
                      f"start with a variable the mutation declares ({have})",
                      field=f"variableMapping.{source.text}")


def _result_mapping(raw: Any) -> list:
    return [(_compiled(k, f"resultMapping.{k}"), _compiled(v, f"resultMapping.{k}")) for k, v in (raw or {}).items()]


def _resolve_target(config: Mapping, ctx: AdapterContext) -> tuple[str, dict[str, str]]:
    """The endpoint URL and the headers of every request (connection's, then the step's, then auth): a GraphQL
    connection names its ``endpoint`` before a ``baseUrl``, and only BEARER and BASIC auth apply."""
    target = resolve_target(config, ctx, url_keys=("endpoint",), auth_types=("NONE", "BEARER", "BASIC"),
                            base_keys=("endpoint", "baseUrl", "url"))
    headers = {"Accept": "application/graphql-response+json, application/json", **target.headers}
    apply_auth(target.auth, ctx, headers, {})  # BEARER and BASIC set a header, never a query parameter
    return target.url, headers


def _display(url: str) -> str:
    """The URL for messages: no query string (it may hold a key)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


# -- responses ---------------------------------------------------------------------------------------

def _attempts(n: int) -> str:
    return f"{n} attempt{'s' if n > 1 else ''}"


def _should_retry(response: HttpResponse) -> bool:
    if not is_retryable_status(response.status):
        return False
    # A 5xx that carries data was executed (in part): sending it again would write twice.
    try:
        body = loads(response.body)
    except ValueError:
        return True
    return not (isinstance(body, dict) and isinstance(body.get("data"), dict))


def _has_path(error: dict) -> bool:
    return isinstance(error.get("path"), list) and bool(error["path"])


def _alias_index(error: dict, n: int) -> int | None:
    if not _has_path(error) or not isinstance(error["path"][0], str):
        return None
    m = _ALIAS.match(error["path"][0])
    if m is None:
        return None
    index = int(m.group(1))
    return index if index < n else None


def _is_validation(errors: list[dict]) -> bool:
    for error in errors:
        extensions = error.get("extensions")
        if isinstance(extensions, dict) and extensions.get("code") in _VALIDATION_CODES:
            return True
        if _VALIDATION_MESSAGE.match(str(error.get("message", ""))):
            return True
    return False


def _messages(errors: list[dict], limit: int = 2000) -> str:
    seen: list[str] = []
    for error in errors:
        message = str(error.get("message") or "(no message)")
        if message not in seen:
            seen.append(message)
    text = "; ".join(seen)
    return text if len(text) <= limit else text[:limit] + "…"

