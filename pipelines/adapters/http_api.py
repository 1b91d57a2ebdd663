"""HTTP extractors: ``httpApi`` (REST/JSON with pagination) and ``graphql``. [pure]

Both read page by page and yield each page as a batch (cut to ``ctx.batch_size``), so a long API is never
held in memory; both stop at ``ctx.record_limit`` and when the step is cancelled. Requests go through
``ctx.http`` (the guarded client) with the retries, rate limit and auth of
:mod:`pipelines.adapters.http_auth`.

Failures are step errors (:class:`~pipelines.errors.StepError`) that name the method, the URL (sensitive
query values hidden), the status and the start of the body: ``HTTP 404 from GET
https://api.example.com/items?page=3: {"error": "not found"}``. They are retryable (the step's
``retries`` apply) for network errors, 408, 429 and 5xx, which have already been retried here
``retry.maxAttempts`` times.

Differences from the plugin, on purpose:

* ``auth`` may be set on the step (the plugin's httpApi takes it only from the connection); the
  plugin's flat secret-code fields are accepted too.
* A 4xx is never retried; the plugin retries what its status list says.
* GraphQL ``errors`` in a 200 response fail the step (the plugin logs them and goes on with partial data).
* CURSOR pagination stops when the next cursor is missing, repeats, or the page is empty — not on a short
  page, as the cursor is what the API says about the rest.
* Pagination type names are accepted in the plugin's upper-case enum form and its lower-case UI form
  (``link-header``).
* ``incremental`` keeps a cursor in the step checkpoint (the plugin only records when it ran).

Why one module of some 680 lines: both extractors share one request source (:class:`_HttpSource`), the
data-path and record rules and the pagination schemas; most of the length is their JSON schemas, which
the editor and the API show.

Why one module of this size: the two extractors share the HTTP source, the pager protocol and the incremental
cursor; each adds only its own pager and record lookup.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

from requests.utils import parse_header_links

from pipelines.adapters.base import Extractor
from pipelines.adapters.http_auth import (
    CONNECTION_CODE_SCHEMA,
    HEADERS_SCHEMA,
    PLUGIN_AUTH_PROPERTIES,
    RATE_LIMIT_SCHEMA,
    RETRY_SCHEMA,
    TIMEOUT_SCHEMA,
    apply_auth,
    auth_schema,
    display_url,
    excerpt,
    http_client,
    resolve_target,
)
from pipelines.errors import ConfigError, StepCancelled, StepError
from pipelines.http import HttpError, HttpResponse
from pipelines.http_policy import Backoff, RateLimiter, is_retryable_status, request_with_retry
from pipelines.records import MISSING, Batch, PathError, chunked, dumps, path
from pipelines.registry import extractors

DEFAULT_PAGE_LIMIT = 100
DEFAULT_MAX_PAGES = 100


def _norm(value: Any) -> str:
    return str(value or "NONE").upper().replace("-", "_")


def _compile_path(text: Any, field: str):
    if text in (None, ""):
        return None
    try:
        return path(text)
    except PathError as exc:
        raise ConfigError(str(exc), field=field) from None


def _scalar_params(query: Any, field: str = "query") -> dict[str, Any]:
    if not query:
        return {}
    if not isinstance(query, dict):
        raise ConfigError("query must be an object of parameter -> value", field=field)
    out: dict[str, Any] = {}
    for name, value in query.items():
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, list):
            out[name] = [str(v) for v in value]
        elif value is None:
            continue
        else:
            out[name] = str(value)
    return out


def _as_records(value: Any) -> Batch:
    """Records from a JSON value: a list of objects, or one object (wrapped). Scalars become {"value": x}."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [item if isinstance(item, dict) else {"value": item} for item in value]
    return [{"value": value}]


class _HttpSource:
    """What both extractors share: the target, headers, auth, timing and one checked JSON request."""

    def __init__(self, config: dict, ctx, *, url_keys: tuple[str, ...]):
        self.ctx = ctx
        self.target = resolve_target(config, ctx, url_keys=url_keys)
        self.headers = {"Accept": "application/json", **self.target.headers}
        self.auth_params: dict[str, Any] = {}
        apply_auth(self.target.auth, ctx, self.headers, self.auth_params)
        self.hidden = (self.target.auth.query_param,) if self.target.auth and self.target.auth.query_param else ()
        self.timeout_s = int(config.get("timeoutMs", 30_000)) / 1000
        self.backoff = Backoff.from_retry_config(config.get("retry"))
        self.limiter = RateLimiter((config.get("rateLimit") or {}).get("requestsPerSecond"))

    def shown(self, url: str, params: dict | list | None) -> str:
        return display_url(url, params if isinstance(params, dict) else dict(params or []), self.hidden)

    def fetch(self, method: str, url: str, params: dict | list | None, data: bytes | None) -> tuple[Any, HttpResponse]:
        """The JSON body (None when empty) and the response; StepError for a failure or a non-JSON body."""
        shown = self.shown(url, params)
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = request_with_retry(
                http_client(self.ctx), method, url, headers=headers, params=params, data=data,
                timeout=self.timeout_s, backoff=self.backoff, limiter=self.limiter, cancelled=self.ctx.cancelled,
                on_retry=lambda n, why, _wait: self.ctx.warn(f"{method} {shown}: {why}; retrying (try {n + 1})"),
            )
        except HttpError as exc:
            raise StepError(f"{method} {shown}: {exc}", retryable=exc.retryable) from None
        if response.status >= 400:
            raise StepError(f"HTTP {response.status} from {method} {shown}: {excerpt(response)}",
                            retryable=is_retryable_status(response.status))
        if response.status == 204 or not response.body.strip():
            return None, response
        try:
            return response.json(), response
        except HttpError:
            kind = response.headers.get("Content-Type") or "no content type"
            raise StepError(f"response is not JSON: {method} {shown} answered {response.status} ({kind}): "
                            f"{excerpt(response, 120)}") from None


class _Pager:
    """What both pagers share: the checked pagination type and the rule for taking the next cursor."""

    TYPES: tuple[str, ...] = ()

    def __init__(self, cfg: Any, ctx):
        if not isinstance(cfg, dict):
            raise ConfigError("pagination must be an object", field="pagination")
        self.ctx = ctx
        self.type = _norm(cfg.get("type"))
        if self.type not in self.TYPES:
            raise ConfigError(f"unknown pagination type '{cfg.get('type')}' (one of {', '.join(self.TYPES)})",
                              field="pagination.type")
        self.cursor: str | None = None

    def _move_to(self, cursor: Any) -> bool:
        """Take ``cursor`` for the next page; False (paging ends) when it is missing, empty, not a scalar,
        or the one just used."""
        if cursor is MISSING or cursor is None or cursor == "" or isinstance(cursor, dict | list | bool):
            return False
        cursor = str(cursor)
        if cursor == self.cursor:
            self.ctx.warn(f"the API returned the cursor '{cursor}' twice; stopped paging")
            return False
        self.cursor = cursor
        return True


def _read_pages(ctx, read_page, max_pages: int, code: str) -> Generator[Batch, None, bool]:
    """The records of page after page, in batches of ``ctx.batch_size``; True when ``ctx.record_limit``
    ended it. ``read_page()`` gives a page's records and ``advance(count)``, which says whether there is
    another page."""
    limit = ctx.record_limit
    emitted = pages = 0
    while True:
        if ctx.cancelled.is_set():
            raise StepCancelled()
        records, advance = read_page()
        pages += 1
        count = len(records)
        if limit is not None:
            records = records[: max(0, limit - emitted)]
        yield from chunked(records, ctx.batch_size)
        emitted += len(records)
        if limit is not None and emitted >= limit:
            return True
        if not advance(count):
            return False
        if pages >= max_pages:
            ctx.warn(f"{code} stopped after maxPages={max_pages} pages; the API had more")
            return False


# -- httpApi -------------------------------------------------------------------------------------

_REST_PAGINATION = ("NONE", "OFFSET", "PAGE", "CURSOR", "LINK_HEADER")


class _RestPager(_Pager):
    """Where the next page is, and whether there is one."""

    TYPES = _REST_PAGINATION

    def __init__(self, cfg: Any, first_url: str, ctx):
        cfg = cfg or {}
        super().__init__(cfg, ctx)
        self.limit = int(cfg.get("limit") or cfg.get("pageSize") or DEFAULT_PAGE_LIMIT)
        self.limit_given = "limit" in cfg or "pageSize" in cfg
        self.max_pages = int(cfg.get("maxPages") or DEFAULT_MAX_PAGES)
        self.offset_param = cfg.get("offsetParam") or "offset"
        self.limit_param = cfg.get("limitParam") or "limit"
        self.page_param = cfg.get("pageParam") or "page"
        self.page_size_param = cfg.get("pageSizeParam") or self.limit_param
        self.cursor_param = cfg.get("cursorParam") or "cursor"
        self.cursor_path = _compile_path(cfg.get("cursorPath"), "pagination.cursorPath")
        self.has_more_path = _compile_path(cfg.get("hasMorePath"), "pagination.hasMorePath")
        if self.type == "CURSOR" and self.cursor_path is None:
            raise ConfigError("CURSOR pagination needs cursorPath: where the response holds the next cursor",
                              field="pagination.cursorPath")
        self.offset = 0
        self.page = int(cfg.get("startPage", 1))
        self.first_url = first_url
        self.next_url: str | None = None

    def request(self, base_params: dict[str, Any], auth_params: dict[str, Any]) -> tuple[str, Any]:
        """The URL and query parameters of the next request."""
        params = dict(base_params)
        if self.type == "OFFSET":
            params[self.offset_param] = str(self.offset)
            params[self.limit_param] = str(self.limit)
        elif self.type == "PAGE":
            params[self.page_param] = str(self.page)
            params[self.page_size_param] = str(self.limit)
        elif self.type == "CURSOR":
            params[self.limit_param] = str(self.limit)
            if self.cursor is not None:
                params[self.cursor_param] = self.cursor
        elif self.type == "LINK_HEADER":
            if self.next_url is None:
                if self.limit_given:
                    params[self.limit_param] = str(self.limit)
            else:
                # The link carries the query; only the API key (when it travels in the query) is re-added.
                parts = urlsplit(self.next_url)
                pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in auth_params]
                pairs.extend(auth_params.items())
                return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), pairs
        return self.first_url, params

    def advance(self, payload: Any, response: HttpResponse, count: int) -> bool:
        """Move to the next page; False when this one was the last."""
        if self.type == "NONE" or count == 0:
            return False
        if self.type in ("OFFSET", "PAGE"):
            if count < self.limit:
                return False
            self.offset += count
            self.page += 1
            return True
        if self.type == "CURSOR":
            if self.has_more_path is not None and self.has_more_path.get(payload) is False:
                return False
            return self._move_to(self.cursor_path.get(payload))
        # LINK_HEADER
        link = response.headers.get("Link")
        if not link:
            return False
        nxt = next((item.get("url") for item in parse_header_links(link)
                    if "next" in str(item.get("rel", "")).split()), None)
        if not nxt:
            return False
        target = urljoin(response.url, nxt)
        here, there = urlsplit(self.first_url), urlsplit(target)
        if (here.scheme, here.hostname, here.port) != (there.scheme, there.hostname, there.port):
            raise StepError(f"the next-page link leads to another origin ({there.scheme}://{there.netloc}); "
                            "not following it with this step's credentials")
        if target == self.next_url:
            self.ctx.warn("the API returned the same next link twice; stopped paging")
            return False
        self.next_url = target
        return True


def _greater(value: Any, than: Any) -> bool:
    numbers = (int, float)
    if isinstance(value, numbers) and isinstance(than, numbers) and not isinstance(value, bool):
        return value > than
    if isinstance(value, str) and isinstance(than, str):
        return value > than
    return True


class _Incremental:
    """``incremental {param, cursorPath, initialValue}``: the greatest ``cursorPath`` value of the records
    read is kept in the step checkpoint and sent as ``param`` on the next run."""

    def __init__(self, cfg: dict, ctx):
        self.ctx = ctx
        self.param = cfg["param"]
        self.path = _compile_path(cfg["cursorPath"], "incremental.cursorPath")
        saved = ctx.checkpoint.get("incremental") if isinstance(ctx.checkpoint, dict) else None
        if isinstance(saved, dict) and saved.get("param") == self.param and saved.get("value") is not None:
            self.start = saved["value"]
        else:
            self.start = cfg.get("initialValue")
        self.best = self.start

    def observe(self, records: Batch) -> None:
        for record in records:
            value = self.path.get(record)
            if value is MISSING or value is None or isinstance(value, dict | list):
                continue
            if self.best is None or _greater(value, self.best):
                self.best = value

    def save(self) -> None:
        # A dry run or a preview (record limit) read a part only: the next real run must read it again.
        if self.ctx.dry_run or self.ctx.record_limit is not None or self.best is None:
            return
        self.ctx.checkpoint["incremental"] = {"param": self.param, "value": self.best}


def _records_at(payload: Any, data_path, shown: str) -> Batch:
    if data_path is None:
        return _as_records(payload)
    if payload is None:
        return []
    value = data_path.get(payload)
    if value is MISSING:
        keys = ", ".join(list(payload)[:10]) if isinstance(payload, dict) else type(payload).__name__
        raise StepError(f"dataPath '{data_path.text}' is not in the response from {shown} "
                        f"(the response has: {keys or 'nothing'})")
    return _as_records(value)


def _pagination_schema(types: list[str], properties: dict) -> dict:
    return {
        "type": "object",
        "description": "How to page through the results; each page becomes one batch.",
        "properties": {
            "type": {"enum": types, "default": "NONE",
                     "description": "The paging scheme (the plugin's lower-case names are accepted too)."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100_000, "default": DEFAULT_PAGE_LIMIT,
                      "description": "Records per page, sent as the limit parameter; a shorter page is the last "
                      "(OFFSET, PAGE)."},
            "maxPages": {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": DEFAULT_MAX_PAGES,
                         "description": "Stop after this many pages (a warning says when more were there)."},
            **properties,
        },
        "additionalProperties": False,
    }


HTTP_API_SCHEMA = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "description": "The endpoint: a full http(s) URL, or a path joined to the "
                "connection's baseUrl when connectionCode is set."},
        "connectionCode": CONNECTION_CODE_SCHEMA,
        "method": {"enum": ["GET", "POST", "PUT", "PATCH"], "default": "GET", "description": "HTTP method."},
        "headers": HEADERS_SCHEMA,
        "query": {"type": "object", "description": "Query parameters added to every request.",
                  "additionalProperties": {"type": ["string", "number", "boolean", "array", "null"]}},
        "body": {"type": ["object", "array"], "description": "JSON body, sent with POST, PUT or PATCH."},
        "graphqlQuery": {"type": "string", "description": "Plugin form: POST {query, variables} to a GraphQL "
                         "endpoint (prefer the graphql extractor)."},
        "graphqlVariables": {"type": "object", "description": "Variables for graphqlQuery."},
        "auth": auth_schema(),
        **PLUGIN_AUTH_PROPERTIES,
        "dataPath": {"type": "string", "description": "Dot path to the records array in the response "
                     "(data.items); a single object there is one record. Without it the whole response is "
                     "used. A dataPath absent from a response fails the step."},
        "pagination": _pagination_schema(
            ["NONE", "OFFSET", "PAGE", "CURSOR", "LINK_HEADER", "none", "offset", "page", "cursor", "link-header"],
            {
                "pageSize": {"type": "integer", "minimum": 1, "description": "Same as limit (plugin name)."},
                "offsetParam": {"type": "string", "minLength": 1, "default": "offset",
                                "description": "OFFSET: the query parameter of the offset (0, limit, 2*limit, ...)."},
                "limitParam": {"type": "string", "minLength": 1, "default": "limit",
                               "description": "The query parameter of the page size."},
                "pageParam": {"type": "string", "minLength": 1, "default": "page",
                              "description": "PAGE: the query parameter of the page number."},
                "pageSizeParam": {"type": "string", "minLength": 1,
                                  "description": "PAGE: the page-size parameter, when it is not limitParam."},
                "startPage": {"type": "integer", "minimum": 0, "default": 1,
                              "description": "PAGE: the number of the first page."},
                "cursorParam": {"type": "string", "minLength": 1, "default": "cursor",
                                "description": "CURSOR: the query parameter that carries the cursor."},
                "cursorPath": {"type": "string", "minLength": 1,
                               "description": "CURSOR: dot path to the next cursor in the response; paging "
                               "stops when it is missing, null, empty or repeats, or a page is empty."},
                "hasMorePath": {"type": "string", "minLength": 1,
                                "description": "CURSOR: dot path to a boolean; false ends paging."},
            },
        ),
        "rateLimit": RATE_LIMIT_SCHEMA,
        "retry": RETRY_SCHEMA,
        "timeoutMs": TIMEOUT_SCHEMA,
        "incremental": {
            "type": "object",
            "description": "Read only what is new: the greatest cursorPath value seen is kept in the step's "
            "checkpoint (not by dry runs or previews) and sent as the query parameter param next time.",
            "properties": {
                "param": {"type": "string", "minLength": 1,
                          "description": "Query parameter that takes the saved value (updated_since)."},
                "cursorPath": {"type": "string", "minLength": 1,
                               "description": "Dot path inside each record to the value to keep (updatedAt)."},
                "initialValue": {"type": ["string", "number"],
                                 "description": "Sent on the first run, before anything is saved."},
            },
            "required": ["param", "cursorPath"],
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}


@extractors.register(
    "httpApi",
    name="HTTP API",
    category="api",
    builtin=True,
    description="Reads JSON records from a REST/HTTP API: auth from secrets, pagination (offset, page, cursor, "
    "Link header), a data path, rate limit, retries with backoff on 429 and 5xx, incremental cursor.",
    schema=HTTP_API_SCHEMA,
)
class HttpApiExtractor(Extractor):
    def batches(self) -> Iterator[Batch]:
        cfg, ctx = self.config, self.ctx
        source = _HttpSource(cfg, ctx, url_keys=("url",))
        method = str(cfg.get("method") or "GET").upper()
        body = cfg.get("body")
        if cfg.get("graphqlQuery"):
            if body is not None:
                raise ConfigError("give body or graphqlQuery, not both", field="graphqlQuery")
            body = {"query": cfg["graphqlQuery"], "variables": cfg.get("graphqlVariables") or {}}
            if "method" not in cfg:
                method = "POST"
        if body is not None and method == "GET":
            raise ConfigError("a body is sent only with POST, PUT or PATCH; set method", field="body")
        data = dumps(body) if body is not None else None
        data_path = _compile_path(cfg.get("dataPath"), "dataPath")
        pager = _RestPager(cfg.get("pagination"), source.target.url, ctx)
        incremental = _Incremental(cfg["incremental"], ctx) if cfg.get("incremental") else None
        base_params = _scalar_params(cfg.get("query"))
        if incremental is not None and incremental.start is not None:
            base_params[incremental.param] = str(incremental.start)
        base_params.update(source.auth_params)

        def read_page():
            url, params = pager.request(base_params, source.auth_params)
            payload, response = source.fetch(method, url, params, data)
            records = _records_at(payload, data_path, source.shown(url, params))
            if incremental is not None:
                incremental.observe(records)
            return records, lambda count: pager.advance(payload, response, count)

        stopped_at_limit = yield from _read_pages(ctx, read_page, pager.max_pages, "httpApi")
        if incremental is not None and not stopped_at_limit:
            incremental.save()


# -- graphql -------------------------------------------------------------------------------------

_GQL_PAGINATION = ("NONE", "OFFSET", "CURSOR", "RELAY")
_CONNECTION_KEYS = ("edges", "nodes", "items")


def _gql_lookup(payload: dict, text: str) -> Any:
    """A path in the response body, or (when absent there) inside its ``data``: both spellings work."""
    p = path(text)
    value = p.get(payload)
    if value is MISSING and isinstance(payload.get("data"), dict):
        value = p.get(payload["data"])
    return value


def _unwrap(value: Any) -> Any:
    """A connection object's list (edges, nodes or items); Relay edges become their nodes."""
    if isinstance(value, dict):
        for key in _CONNECTION_KEYS:
            if isinstance(value.get(key), list):
                value = value[key]
                break
    if isinstance(value, list):
        return [
            item["node"] if isinstance(item, dict) and isinstance(item.get("node"), dict)
            and set(item) <= {"node", "cursor"} else item
            for item in value
        ]
    return value


class _GraphqlPager(_Pager):
    TYPES = _GQL_PAGINATION

    def __init__(self, cfg: Any, data_path: str | None, ctx):
        cfg = cfg or {}
        super().__init__(cfg, ctx)
        self.limit = int(cfg.get("limit") or DEFAULT_PAGE_LIMIT)
        self.max_pages = int(cfg.get("maxPages") or DEFAULT_MAX_PAGES)
        self.offset_var = cfg.get("offsetVariable") or "skip"
        self.limit_var = cfg.get("limitVariable") or ("take" if self.type == "OFFSET" else "first")
        self.cursor_var = cfg.get("cursorVariable") or "after"
        self.cursor_path = cfg.get("cursorPath")
        self.total_path = cfg.get("totalCountPath")
        self.has_next_key = (cfg.get("hasNextPagePath") or "hasNextPage").split(".")[-1]
        self.end_cursor_key = (cfg.get("endCursorPath") or "endCursor").split(".")[-1]
        for name in ("pageInfoPath", "cursorPath", "totalCountPath", "hasNextPagePath", "endCursorPath"):
            _compile_path(cfg.get(name), f"pagination.{name}")
        if cfg.get("pageInfoPath"):
            self.page_info_paths = [cfg["pageInfoPath"]]
        else:
            candidates = []
            if data_path:
                parent, _, last = data_path.rpartition(".")
                if last in _CONNECTION_KEYS and parent:
                    candidates.append(f"{parent}.pageInfo")
                candidates.append(f"{data_path}.pageInfo")
            candidates.append("pageInfo")
            self.page_info_paths = candidates
        self.offset = 0

    def variables(self, base: dict) -> dict:
        out = dict(base)
        if self.type == "OFFSET":
            out[self.offset_var] = self.offset
            out[self.limit_var] = self.limit
        elif self.type in ("CURSOR", "RELAY"):
            out[self.limit_var] = self.limit
            if self.cursor is not None:
                out[self.cursor_var] = self.cursor
        return out

    def _page_info(self, payload: dict) -> dict:
        for text in self.page_info_paths:
            value = _gql_lookup(payload, text)
            if isinstance(value, dict):
                return value
        if isinstance(payload.get("data"), dict) and len(payload["data"]) == 1:
            (only,) = payload["data"].values()
            if isinstance(only, dict) and isinstance(only.get("pageInfo"), dict):
                return only["pageInfo"]
        raise StepError(f"pageInfo not found in the response (looked at {', '.join(self.page_info_paths)}); "
                        "set pagination.pageInfoPath")

    def advance(self, payload: dict, count: int) -> bool:
        if self.type == "NONE" or count == 0:
            return False
        if self.type == "OFFSET":
            self.offset += count
            if self.total_path:
                total = _gql_lookup(payload, self.total_path)
                if isinstance(total, int | float) and not isinstance(total, bool) and self.offset >= total:
                    return False
            return count >= self.limit
        if self.type == "CURSOR" and self.cursor_path:
            cursor = _gql_lookup(payload, self.cursor_path)
        else:
            info = self._page_info(payload)
            if info.get(self.has_next_key) is not True:
                return False
            cursor = info.get(self.end_cursor_key)
        return self._move_to(cursor)


def _graphql_records(payload: dict, data_path: str | None, shown: str) -> Batch:
    if data_path:
        value = _gql_lookup(payload, data_path)
        if value is MISSING:
            data = payload.get("data")
            keys = ", ".join(list(data)[:10]) if isinstance(data, dict) else "no data"
            raise StepError(f"dataPath '{data_path}' is not in the response from {shown} (data has: {keys})")
    else:
        value = payload.get("data")
        if isinstance(value, dict) and len(value) == 1:
            (value,) = value.values()
    return _as_records(_unwrap(value))


GRAPHQL_SCHEMA = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "description": "The GraphQL endpoint: a full http(s) URL, or a path joined "
                "to the connection's baseUrl when connectionCode is set."},
        "endpoint": {"type": "string", "description": "Same as url (an older plugin name)."},
        "connectionCode": CONNECTION_CODE_SCHEMA,
        "query": {"type": "string", "minLength": 1, "description": "The GraphQL query document."},
        "variables": {"type": "object", "description": "Variables of the query; pagination adds its own."},
        "operationName": {"type": "string", "minLength": 1,
                          "description": "The operation to run when the document holds several."},
        "headers": HEADERS_SCHEMA,
        "auth": auth_schema(),
        **PLUGIN_AUTH_PROPERTIES,
        "dataPath": {"type": "string", "description": "Dot path to the records (data.products.items, or "
                     "products.items: a path is tried in the body, then inside data). A connection object "
                     "there gives its edges' nodes, nodes or items. Without it the only field of data is used."},
        "pagination": _pagination_schema(
            ["NONE", "OFFSET", "CURSOR", "RELAY", "none", "offset", "cursor", "relay"],
            {
                "offsetVariable": {"type": "string", "minLength": 1, "default": "skip",
                                   "description": "OFFSET: the variable of the offset."},
                "limitVariable": {"type": "string", "minLength": 1,
                                  "description": "The variable of the page size (default take for OFFSET, "
                                  "first for CURSOR and RELAY)."},
                "cursorVariable": {"type": "string", "minLength": 1, "default": "after",
                                   "description": "CURSOR/RELAY: the variable that takes the end cursor."},
                "pageInfoPath": {"type": "string", "minLength": 1,
                                 "description": "CURSOR/RELAY: dot path to {hasNextPage, endCursor} (default: "
                                 "pageInfo beside the records)."},
                "hasNextPagePath": {"type": "string", "minLength": 1, "default": "hasNextPage",
                                    "description": "The field of pageInfo that says whether more pages exist."},
                "endCursorPath": {"type": "string", "minLength": 1, "default": "endCursor",
                                  "description": "The field of pageInfo with the cursor of the next page."},
                "cursorPath": {"type": "string", "minLength": 1,
                               "description": "CURSOR: dot path to the next cursor when the API has no pageInfo; "
                               "paging stops when it is null."},
                "totalCountPath": {"type": "string", "minLength": 1,
                                   "description": "OFFSET: dot path to the total count; paging stops there."},
            },
        ),
        "rateLimit": RATE_LIMIT_SCHEMA,
        "retry": RETRY_SCHEMA,
        "timeoutMs": TIMEOUT_SCHEMA,
    },
    "required": ["query"],
    "additionalProperties": False,
}


@extractors.register(
    "graphql",
    name="GraphQL API",
    category="api",
    builtin=True,
    description="Reads records with a GraphQL query: variables, offset or cursor/Relay pagination, auth from "
    "secrets; GraphQL errors fail the step with their messages.",
    schema=GRAPHQL_SCHEMA,
)
class GraphqlExtractor(Extractor):
    def batches(self) -> Iterator[Batch]:
        cfg, ctx = self.config, self.ctx
        if cfg.get("url") and cfg.get("endpoint"):
            raise ConfigError("give url or endpoint, not both", field="endpoint")
        source = _HttpSource(cfg, ctx, url_keys=("url", "endpoint"))
        variables = cfg.get("variables") or {}
        data_path = cfg.get("dataPath") or None
        _compile_path(data_path, "dataPath")
        pager = _GraphqlPager(cfg.get("pagination"), data_path, ctx)
        url = source.target.url
        params = source.auth_params or None
        shown = source.shown(url, params)

        def read_page():
            body: dict[str, Any] = {"query": cfg["query"], "variables": pager.variables(variables)}
            if cfg.get("operationName"):
                body["operationName"] = cfg["operationName"]
            payload, _response = source.fetch("POST", url, params, dumps(body))
            if not isinstance(payload, dict):
                raise StepError(f"response from POST {shown} is not a GraphQL result (an object with data)")
            errors = payload.get("errors")
            if errors:
                messages = [
                    str(e.get("message", e)) if isinstance(e, dict) else str(e)
                    for e in (errors if isinstance(errors, list) else [errors])
                ]
                raise StepError(f"GraphQL errors from POST {shown}: {'; '.join(messages)[:1000]}")
            return _graphql_records(payload, data_path, shown), lambda count: pager.advance(payload, count)

        yield from _read_pages(ctx, read_page, pager.max_pages, "graphql")
