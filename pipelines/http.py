"""The one guarded helper for outbound HTTP. [pure]

Every request Datahub makes to a URL a user typed (httpLookup, the HTTP extractors and loaders, webhooks)
goes through :class:`HttpClient`. What it guarantees:

* Only ``http`` and ``https`` URLs.
* **No private targets.** The address check runs inside the socket connect of every new connection (a
  urllib3 connection subclass, below): the host is resolved there, *every* resolved address is checked,
  and the socket is opened to one of the checked addresses. There is no second resolution between
  check and connect, so a DNS answer that changes between the two (DNS rebinding) cannot slip a private
  address through. Refused: loopback, private, link-local (169.254.169.254, the cloud metadata address,
  included), multicast, reserved, unspecified and any other non-global range (100.64.0.0/10, ...),
  also when hidden in an IPv4-mapped, 6to4 or Teredo IPv6 address, unless the host name or the address
  matches an entry of :attr:`HttpPolicy.allow`.
* **Redirects are followed by hand** (``allow_redirects=False``), at most ``max_redirects`` hops; each hop
  is a new request whose connection goes through the same check, and credentials headers are dropped
  when a redirect leaves the origin.
* **Bounded bodies.** A ``Content-Length`` over ``max_bytes`` is refused before reading; otherwise the
  body is streamed (decoded) and cut off with an :class:`HttpError` once it passes ``max_bytes``.
* **Bounded time.** ``timeout`` bounds the connect and each read, and the whole request including
  redirects and the body download (a server that drips bytes is cut off too).
* Environment proxies and ``.netrc`` are ignored (``trust_env=False``): a proxy would make the address
  check look at the proxy instead of the target.

Status codes are *not* errors here: callers decide (``HttpResponse.raise_for_status()`` is there when a
non-2xx should be one). Timeouts and connection failures raise ``HttpError(retryable=True)``.

Sessions are kept per thread (``requests.Session`` is not documented as thread-safe), so one client can
be shared by the worker threads of a batch operator.
"""

from __future__ import annotations

import ipaddress
import json as jsonlib
import re
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
from urllib3.util import connection as urllib3_connection

from pipelines.errors import HttpError
from pipelines.http_policy import is_retryable_status, retry_after_seconds

__all__ = ["HttpClient", "HttpError", "HttpPolicy", "HttpResponse"]

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
USER_AGENT = "Datahub/0.1 (+https://github.com/datahub)"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# On a redirect to another origin only these headers go along: any other may carry a credential (an API
# key under a custom name, a header filled from a secret), and we cannot tell which.
_CROSS_ORIGIN_HEADERS = frozenset({"accept", "accept-encoding", "accept-language", "content-type", "user-agent"})
_CHUNK = 64 * 1024
_CONN_PREFIX = re.compile(r"^(?:<[^>]*>|\w+\(host=[^)]*\)): ")


@dataclass(frozen=True)
class HttpPolicy:
    """What a client may do. ``allow`` holds host names (``api.internal``, ``*.corp.example``) or
    addresses / CIDRs (``127.0.0.1``, ``10.0.0.0/8``) that may be private or loopback."""

    allow: tuple[str, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout: float = 30.0
    max_redirects: int = 5

    def __post_init__(self):
        if isinstance(self.allow, str):  # allow="127.0.0.1" would otherwise allow "1", "2", "7", ...
            object.__setattr__(self, "allow", (self.allow,))
        else:
            object.__setattr__(self, "allow", tuple(self.allow))
        for entry in self.allow:
            if not isinstance(entry, str) or not entry.strip():
                raise ValueError("HttpPolicy.allow entries must be non-empty host names, addresses or CIDRs")
        if self.max_bytes < 1:
            raise ValueError("HttpPolicy.max_bytes must be positive")
        if self.timeout <= 0:
            raise ValueError("HttpPolicy.timeout must be positive")
        if self.max_redirects < 0:
            raise ValueError("HttpPolicy.max_redirects must not be negative")

    @cached_property
    def _allowed_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        nets = []
        for entry in self.allow:
            try:
                nets.append(ipaddress.ip_network(entry.strip().strip("[]"), strict=False))
            except ValueError:
                continue  # a host name
        return tuple(nets)

    @cached_property
    def _allowed_hosts(self) -> tuple[frozenset[str], tuple[str, ...]]:
        exact, suffixes = set(), []
        for entry in self.allow:
            text = entry.strip().lower().rstrip(".")
            try:
                ipaddress.ip_network(text.strip("[]"), strict=False)
                continue
            except ValueError:
                pass
            if text.startswith("*."):
                suffixes.append(text[1:])  # ".corp.example"
            else:
                exact.add(text)
        return frozenset(exact), tuple(suffixes)

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        exact, suffixes = self._allowed_hosts
        return host in exact or any(host.endswith(s) for s in suffixes)

    def address_allowed(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address.version == net.version and address in net for net in self._allowed_networks)


def _why_refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``address`` is not a public unicast address, or None when it is one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = (
            address.ipv4_mapped or (address.sixtofour) or (address.teredo[1] if address.teredo else None)
        )
        if embedded is not None:
            reason = _why_refused(embedded)
            if reason:
                return reason
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site-local"
    if not address.is_global:
        return "non-public"
    return None


def _resolve_checked(host: str, port: int, policy: HttpPolicy) -> list[str]:
    """Resolve ``host`` and return its addresses, refusing the request if any of them is forbidden.

    Every address must pass, not just the first: a name that resolves to one public and one private
    address could otherwise reach the private one on a retry or a fallback.
    """
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise HttpError(f"cannot resolve host '{host}': {exc.strerror or exc}", retryable=True) from None
    except UnicodeError:
        raise HttpError(f"invalid host name '{host}'") from None
    host_ok = policy.host_allowed(host)
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        text = sockaddr[0]
        if text in addresses:
            continue
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if not host_ok and not policy.address_allowed(address):
            reason = _why_refused(address)
            if reason:
                shown = host if host == text else f"{host} ({text})"
                raise HttpError(
                    f"refusing to connect to {shown}: {reason} address; add the host or address to the "
                    "HTTP allow-list if this target is intended"
                )
        addresses.append(text)
    if not addresses:
        raise HttpError(f"cannot resolve host '{host}'", retryable=True)
    return addresses


class _GuardedConnectionMixin:
    """Replaces urllib3's socket connect: resolve, check every address, connect to a checked one."""

    _datahub_policy: HttpPolicy

    def _new_conn(self) -> socket.socket:
        addresses = _resolve_checked(self._dns_host, self.port, self._datahub_policy)
        error: Exception | None = None
        for address in addresses:
            try:
                sock = urllib3_connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError:
                error = ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                )
            except OSError as exc:
                error = NewConnectionError(self, f"Failed to establish a new connection: {exc}")
            else:
                return sock
        assert error is not None
        raise error


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, policy: HttpPolicy, **kwargs):
        attrs = {"_datahub_policy": policy}
        http_conn = type("GuardedHTTPConnection", (_GuardedConnectionMixin, HTTPConnection), attrs)
        https_conn = type("GuardedHTTPSConnection", (_GuardedConnectionMixin, HTTPSConnection), attrs)
        self._pool_classes = {
            "http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type(
                "GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}
            ),
        }
        super().__init__(max_retries=0, **kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy, **proxy_kwargs):  # pragma: no cover - trust_env=False, no proxies
        raise HttpError("proxies are not supported by the guarded HTTP client")


@dataclass
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    _text: str | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def encoding(self) -> str:
        content_type = self.headers.get("Content-Type", "") or ""
        for part in content_type.split(";")[1:]:
            name, _, value = part.strip().partition("=")
            if name.lower() == "charset" and value:
                return value.strip("\"' ")
        return "utf-8"

    @property
    def text(self) -> str:
        if self._text is None:
            try:
                self._text = self.body.decode(self.encoding, errors="replace")
            except LookupError:  # an unknown charset name
                self._text = self.body.decode("utf-8", errors="replace")
        return self._text

    def json(self) -> Any:
        try:
            return jsonlib.loads(self.body)
        except ValueError as exc:
            raise HttpError(f"response from {_origin(self.url)} is not valid JSON: {exc}") from None

    def raise_for_status(self) -> HttpResponse:
        """Raise :class:`HttpError` for a 4xx/5xx (retryable as :func:`is_retryable_status` says, with the
        server's Retry-After); return self otherwise."""
        if self.status >= 400:
            retryable = is_retryable_status(self.status)
            raise HttpError(
                f"HTTP {self.status} from {_origin(self.url)}",
                status=self.status,
                retryable=retryable,
                retry_after=retry_after_seconds(self.headers.get("Retry-After")) if retryable else None,
            )
        return self


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise HttpError(f"invalid URL '{url}': {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise HttpError(f"only http and https URLs are allowed, got '{parts.scheme or url}'")
    if not parts.hostname:
        raise HttpError(f"URL '{url}' has no host")


class HttpClient:
    """Outbound HTTP under an :class:`HttpPolicy`. Thread-safe; share one per run or worker."""

    def __init__(self, policy: HttpPolicy | None = None, *, redactor: Any = None):
        self.policy = policy or HttpPolicy()
        self._local = threading.local()
        # A pipelines.redaction.Redactor: learns the credentials each request sends, so that a server
        # echoing them in an error body cannot get them into a message.
        self.redactor = redactor

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no env proxies or .netrc credentials
            # Stateless: a cookie set by one response is never sent with a later, unrelated request.
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            adapter = _GuardedAdapter(self.policy)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = USER_AGENT
            self._local.session = session
        return session

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        timeout: float | None = None,
    ) -> HttpResponse:
        timeout = float(timeout if timeout is not None else self.policy.timeout)
        deadline = time.monotonic() + timeout
        method = method.upper()
        send_headers = CaseInsensitiveDict(headers or {})
        session = self._session()
        _check_url(url)
        if self.redactor is not None:
            self.redactor.sent(url, send_headers, params)
        for hop in range(self.policy.max_redirects + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HttpError(f"request to {_origin(url)} timed out after {timeout:g}s", retryable=True)
            response = self._send(session, method, url, send_headers, params, json, data, remaining, timeout)
            try:
                location = response.headers.get("Location")
                if response.status_code not in _REDIRECT_STATUSES or not location:
                    return self._read(response, url, deadline, timeout)
            finally:
                if response.status_code in _REDIRECT_STATUSES:
                    response.close()
            if hop == self.policy.max_redirects:
                break
            target = urljoin(response.url or url, location)
            _check_url(target)
            if _origin(target).lower() != _origin(url).lower():
                for name in [n for n in send_headers if n.lower() not in _CROSS_ORIGIN_HEADERS]:
                    send_headers.pop(name)
            status = response.status_code
            if (status in (302, 303) and method != "HEAD") or (status == 301 and method == "POST"):
                method, json, data = "GET", None, None
                send_headers.pop("Content-Type", None)
                send_headers.pop("Content-Length", None)
            url, params = target, None
        raise HttpError(
            f"too many redirects (more than {self.policy.max_redirects}), the last to {_origin(url)}"
        )

    def get(self, url: str, **kwargs) -> HttpResponse:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> HttpResponse:
        return self.request("POST", url, **kwargs)

    # -- internals -------------------------------------------------------------------------------

    def _send(self, session, method, url, headers, params, json, data, remaining, timeout):
        where = _origin(url)
        try:
            return session.request(
                method,
                url,
                headers=headers,
                params=params,
                json=json,
                data=data,
                timeout=(remaining, remaining),
                allow_redirects=False,
                stream=True,
            )
        except HttpError:
            raise
        except requests.exceptions.Timeout:
            raise HttpError(f"request to {where} timed out after {timeout:g}s", retryable=True) from None
        except requests.exceptions.SSLError as exc:
            raise HttpError(f"TLS error talking to {where}: {_reason(exc)}") from None
        except requests.exceptions.ConnectionError as exc:
            if _is_timeout(exc):
                raise HttpError(f"request to {where} timed out after {timeout:g}s", retryable=True) from None
            raise HttpError(f"cannot connect to {where}: {_reason(exc)}", retryable=True) from None
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidHeader,
            ValueError,
        ) as exc:
            raise HttpError(f"invalid request to {where}: {exc}") from None
        except requests.exceptions.RequestException as exc:
            raise HttpError(f"request to {where} failed: {_reason(exc)}", retryable=True) from None

    def _read(self, response: requests.Response, url: str, deadline: float, timeout: float) -> HttpResponse:
        where = _origin(url)
        limit = self.policy.max_bytes
        try:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.strip().isdigit() and int(declared) > limit:
                raise HttpError(
                    f"response from {where} is larger than the {limit}-byte limit ({declared} bytes)"
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise HttpError(f"response from {where} is larger than the {limit}-byte limit")
                if time.monotonic() > deadline:
                    raise HttpError(f"request to {where} timed out after {timeout:g}s", retryable=True)
                chunks.append(chunk)
        except HttpError:
            raise
        except requests.exceptions.ContentDecodingError as exc:
            raise HttpError(f"cannot decode the response from {where}: {_reason(exc)}") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            if _is_timeout(exc):
                raise HttpError(f"request to {where} timed out after {timeout:g}s", retryable=True) from None
            raise HttpError(
                f"connection to {where} broke while reading: {_reason(exc)}", retryable=True
            ) from None
        finally:
            response.close()
        return HttpResponse(
            status=response.status_code,
            headers=response.headers,
            body=b"".join(chunks),
            url=response.url or url,
        )


def _is_timeout(exc: BaseException) -> bool:
    """Whether a requests/urllib3 exception chain was caused by a timeout (not a refused connection)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        if isinstance(current, NewConnectionError):  # a subclass of ConnectTimeoutError, but a refusal
            return False
        if isinstance(current, ReadTimeoutError | ConnectTimeoutError | TimeoutError):
            return True
        inner = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        current = inner or current.__cause__ or current.__context__ or getattr(current, "reason", None)
        seen += 1
    return False


def _reason(exc: BaseException) -> str:
    """The innermost useful message of a requests/urllib3 exception chain, without object reprs."""
    current: BaseException = exc
    for _ in range(10):
        inner = getattr(current, "reason", None)
        if (
            not isinstance(inner, BaseException)
            and current.args
            and isinstance(current.args[0], BaseException)
        ):
            inner = current.args[0]
        if not isinstance(inner, BaseException):
            break
        current = inner
    # Drop urllib3's "<... object at 0x..>: " / "HTTPConnection(host=.., port=..): " prefixes.
    return _CONN_PREFIX.sub("", str(current))
