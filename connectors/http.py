"""The one HTTP client every connector uses: session, auth, timeouts, retries, pacing, error mapping.

One retry point (STYLE.md #2): a single attempt sends, classifies the status
and raises a typed error; tenacity wraps that attempt and retries only
:class:`RetriableAPIError` (429, 5xx, dropped connections, timeouts). A 429
waits exactly what the vendor says (``Retry-After``, seconds or an HTTP date,
clamped; else Intercom's ``X-RateLimit-Reset``); everything else backs off
exponentially with jitter. The :class:`~connectors.ratelimit.Pacer` runs
before each attempt so a long sync rarely meets a 429 at all.

Secrets stay out by construction: messages are built from the method and the
redacted URL *path* only, vendor error labels are short and scrubbed of known
credential values, and transport exceptions (whose text quotes the full URL)
are never chained into ours.

No hangs (DESIGN.md, sync contract 7): a read timeout bounds each socket read,
not the request, so a server that trickles a byte every few seconds would hold
a sync forever. Every attempt therefore has an overall deadline
(``request_deadline``), and a stop handle (``watch_stop``) ends every wait
(back-off, Retry-After, pacing) and every request in flight. Both are enforced by
one watcher per attempt that shuts the attempt's socket down, which is the only
way to wake a thread blocked in ``recv`` (the approach psf/requests#4201 settles
on: stream the body, bound the whole, close the connection when the time is up).
A deadline overrun is retried like a timeout; a stop raises :class:`Stopped`.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import functools
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
import requests.adapters
import requests.auth
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from config.errors import ConfigError
from connectors.errors import (
    APIError,
    AuthenticationError,
    BadResponseError,
    FatalAPIError,
    RetriableAPIError,
    SkippableAPIError,
    Stopped,
)
from connectors.ratelimit import (
    Budget,
    Pacer,
    RateHeaderParser,
    RateLimitInfo,
    parse_retry_after,
)
from connectors.redact import install_log_redaction, is_sensitive_name, redact_path, redact_text, redact_url, scrub

__all__ = ["Budget", "HttpClient", "RateHeaderParser", "RateLimitInfo", "classify_status", "counting_as", "http_counts",
           "in_current_context", "redact_url", "vendor_code"]

logger = logging.getLogger("deskpulse.http")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = {301, 302, 303, 307, 308}
_MAX_REDIRECTS = 5
_STOP_POLL_S = 0.1  # how often an attempt in flight looks at the stop handle
DEFAULT_REQUEST_DEADLINE_S = 300.0
#: Process-wide counts per (source name, stream label) since the process started: requests sent, 429 answers,
#: retries. The daemon's /metrics reads them (sync.health); kept here, the one place every request and retry
#: passes. The client knows its source; the stream is whatever :func:`counting_as` says while the request runs.
_COUNTS: dict[tuple[str, str], dict[str, int]] = {}
_COUNTS_LOCK = threading.Lock()
#: The label requests are counted under; "" outside any :func:`counting_as` (e.g. ``deskpulse check``).
_COUNTING_AS: contextvars.ContextVar[str] = contextvars.ContextVar("deskpulse_http_counting_as", default="")

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _count(source: str, what: str) -> None:
    key = (source, _COUNTING_AS.get())
    with _COUNTS_LOCK:
        bucket = _COUNTS.setdefault(key, {"requests": 0, "throttled": 0, "retries": 0})
        bucket[what] += 1


def http_counts() -> dict[tuple[str, str], dict[str, int]]:
    """A copy of the counts (``requests``, ``throttled`` = 429 answers, ``retries``) of this process, keyed by
    (source, stream label): the stream a request was made for (:func:`counting_as`), "" when none was said."""
    with _COUNTS_LOCK:
        return {key: dict(counts) for key, counts in _COUNTS.items()}


@contextlib.contextmanager
def counting_as(stream: str) -> Iterator[None]:
    """Count the HTTP requests, 429s and retries made meanwhile (in this thread or context) under ``stream``.

    The client cannot know which stream a request serves, only whoever drives the stream can: the sync engine
    wraps each stream's run in it, the daemon its write-back (``writeback``) and digest (``digest``) jobs. A
    context variable, so concurrent runs in other threads keep their own label; work handed to a thread pool
    carries it only when wrapped by :func:`in_current_context`.
    """
    token = _COUNTING_AS.set(stream)
    try:
        yield
    finally:
        _COUNTING_AS.reset(token)


def in_current_context(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """``fn`` bound to the caller's context (:func:`counting_as` included), for ``pool.map``/``pool.submit``.

    An executor's thread runs work in its own context, so a request made there would otherwise count under
    no stream. Each call runs in a fresh copy of the captured context: one ``Context`` cannot be entered by
    two threads at once, and a copy keeps what a task sets from leaking into the next.
    """
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        return captured.copy().run(fn, *args, **kwargs)

    return run


def source_options(source: Any) -> dict[str, Any]:
    """The HttpClient options every helpdesk source configures the same way (name, timeouts, deadline, retries).

    Each vendor's ``build_http`` adds what is its own (base URL, auth, rate-limit headers, budgets); one place
    for the shared part, so a new per-source setting reaches every connector (a vendor that missed
    ``request_deadline`` once would have hung on a trickling server).
    """
    return {"source": source.name, "timeout": (source.timeout_connect, source.timeout_read),
            "request_deadline": source.request_deadline, "max_retries": source.max_retries,
            "max_retry_wait": source.max_retry_wait}


def classify_status(status: int) -> type[APIError] | None:
    """The error class for an HTTP status (None for 2xx): the whole retry/skip/stop policy in one table."""
    if 200 <= status < 300:
        return None
    if status in (401, 403):
        return AuthenticationError
    if status in (404, 409, 422):
        return SkippableAPIError
    if status == 429 or status >= 500:
        return RetriableAPIError
    return FatalAPIError


def vendor_code(exc: BaseException) -> str | None:
    """The short vendor error label an :class:`APIError` from this module carries (e.g. ``channel_is_archived``)."""
    code = getattr(exc, "vendor_code", None)
    return code if isinstance(code, str) else None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


class _TransportError(RetriableAPIError):
    """No HTTP status: the connection failed or timed out. ``cause`` names the requests exception class."""

    def __init__(self, message: str, *, cause: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.cause = cause


_JSON_TYPES = {"list": "array", "str": "string", "int": "number", "float": "number", "bool": "boolean",
               "NoneType": "null"}


class _AttemptWatch:
    """Bounds one attempt: at its deadline, or when the stop handle is set, shut its socket down.

    ``shutdown`` (not ``close``) is what wakes a thread blocked in ``recv`` on Linux; the blocked read
    then fails and :meth:`HttpClient._send_once` reports why from ``fired``. The socket is learnt from
    the connection pool (:class:`_WatchedAdapter`, so the status line and headers are covered too) or,
    failing that, from the response once its headers are in.
    """

    _current = threading.local()  # the attempt the calling thread is making, for the pool to report to

    def __init__(self, deadline: float, stop: threading.Event | None) -> None:
        self.deadline = deadline  # time.monotonic() value
        self.stop = stop
        self.conn: Any = None
        self.fired: str | None = None  # "deadline" or "stopped"
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="deskpulse-http-deadline", daemon=True)

    def __enter__(self) -> _AttemptWatch:
        _AttemptWatch._current.watch = self
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        _AttemptWatch._current.watch = None
        with self._lock:
            self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self._fire("deadline")
                return
            wait = min(left, _STOP_POLL_S) if self.stop is not None else (None if math.isinf(left) else left)
            if self._done.wait(wait):
                return
            if self.stop is not None and self.stop.is_set():
                self._fire("stopped")
                return

    def _fire(self, why: str) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.fired = why
            sock = getattr(self.conn, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def expired(self) -> str | None:
        """``fired``, or what the clock and the stop handle say now (checked between steps)."""
        if self.fired is None and self.stop is not None and self.stop.is_set():
            return "stopped"
        if self.fired is None and time.monotonic() >= self.deadline:
            return "deadline"
        return self.fired

    def learn(self, conn: Any) -> None:
        with self._lock:
            if conn is not None and self.conn is None:
                self.conn = conn
                if self.fired is not None:  # fired before the socket was known: shut it now
                    with contextlib.suppress(OSError):
                        sock = getattr(conn, "sock", None)
                        if sock is not None:
                            sock.shutdown(socket.SHUT_RDWR)


def _watched_pool(base: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
    class WatchedPool(base):  # type: ignore[valid-type,misc]
        """Reports the connection an attempt uses to the attempt's watcher, before anything is sent."""

        def _get_conn(self, timeout: float | None = None) -> Any:
            conn = super()._get_conn(timeout)
            watch = getattr(_AttemptWatch._current, "watch", None)
            if watch is not None:
                watch.learn(conn)
            return conn

    WatchedPool.__name__ = f"Watched{base.__name__}"
    return WatchedPool


_WATCHED_POOLS = {"http": _watched_pool(HTTPConnectionPool), "https": _watched_pool(HTTPSConnectionPool)}


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """The default adapter, with pools that tell the attempt's watcher which socket to shut at its deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_WATCHED_POOLS)


def json_object(resp: requests.Response) -> dict[str, Any]:
    """A response body that should be a JSON object; anything else (empty, text, a list) reads as ``{}``.

    Write endpoints answer with the updated object, but a caller must not fail after the vendor has
    already applied the write just because the echo was unexpected.
    """
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class HttpClient:
    """One vendor account's HTTP client: one ``requests.Session``, thread-safe, never leaks a credential."""

    def __init__(self, *, source: str, base_url: str, auth: requests.auth.AuthBase | None = None,
                 headers: dict[str, str] | None = None, timeout: tuple[float, float] = (10.0, 60.0),
                 max_retries: int = 6, max_retry_wait: float = 300.0,
                 rate_headers: RateHeaderParser | None = None, budgets: Sequence[Budget] = (),
                 requests_per_minute: int | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
                 session: requests.Session | None = None,
                 request_deadline: float | None = DEFAULT_REQUEST_DEADLINE_S,
                 stop: threading.Event | None = None) -> None:
        scheme, host, _ = _origin(base_url)
        if scheme not in _DEFAULT_PORTS or not host:
            raise ConfigError(f"source {source}: base_url must be an http(s) URL, got {redact_url(base_url)}")
        self.source = source
        self.base_url = base_url.rstrip("/")
        self._origin = _origin(base_url)
        self._host = host
        self._auth = auth
        self._headers = {"Accept": "application/json", "User-Agent": "deskpulse/0.1", **(headers or {})}
        self._timeout = timeout
        self._max_retries = max_retries
        self._max_retry_wait = max_retry_wait
        self._rate_headers = rate_headers
        self._sleep, self._clock = sleep, clock
        self._deadline = request_deadline
        self._stop = stop
        self._session = session if session is not None else requests.Session()
        self._owns_session = session is None
        if self._owns_session:
            for prefix in ("https://", "http://"):
                self._session.mount(prefix, _WatchedAdapter())
        self._pacer = Pacer(budgets=budgets, requests_per_minute=requests_per_minute, clock=clock,
                            sleep=self._pause, on_wait=self._log_pacing)
        self._lock = threading.Lock()
        self._sent = 0
        self._secrets = self._collect_secrets()
        install_log_redaction()

    # -- public ---------------------------------------------------------------------------------------
    def watch_stop(self, stop: threading.Event | None) -> None:
        """Make every later wait and request of this client end (with :class:`Stopped`) once ``stop`` is set.

        The sync engine hands its stop event to each connector's client, so SIGTERM during a 300 s
        ``Retry-After`` ends the wait at once instead of after it.
        """
        self._stop = stop

    @property
    def requests_sent(self) -> int:
        """HTTP requests actually sent, retries and redirect hops included."""
        with self._lock:
            return self._sent

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
                json: Any = None, headers: Mapping[str, str] | None = None,
                no_retry: Collection[int] = (), repeatable: bool = True) -> requests.Response:
        """Send ``method path`` and return the 2xx response, retrying what is transient.

        ``path`` is joined to ``base_url`` or is an absolute URL on the same origin (next-page links); any
        other host is refused, so credentials never travel elsewhere. Statuses in ``no_retry`` (e.g. 504,
        so a connector can shrink its page size) raise :class:`RetriableAPIError` at once.
        ``repeatable=False`` (a post that must not happen twice): a transport failure after the request may
        have reached the server (read timeout, dropped response) is raised, not retried; only a connect
        timeout, which proves nothing was sent, is retried.
        """
        method = method.upper()
        url = self._resolve(method, path)
        shown = self._shown(url)
        secrets = self._secrets | self._param_secrets(params)
        attempts = self._max_retries + 1

        def should_retry(exc: BaseException) -> bool:
            if isinstance(exc, _TransportError) and not repeatable:
                return exc.cause == "ConnectTimeout"
            return isinstance(exc, RetriableAPIError) and exc.status not in no_retry

        retrying = Retrying(stop=stop_after_attempt(attempts), wait=self._wait, retry=retry_if_exception(should_retry),
                            sleep=self._pause, reraise=True,
                            before_sleep=lambda state: self._log_retry(state, method, shown, attempts))
        try:
            return retrying(self._send, method, url, params, json, headers, secrets)
        except RetriableAPIError as exc:
            tried = retrying.statistics.get("attempt_number", 1)
            if tried <= 1:
                raise
            final = RetriableAPIError(f"{exc} (gave up after {tried} attempts)", retry_after=exc.retry_after,
                                      vendor_code=vendor_code(exc),
                                      status=exc.status, source=self.source, endpoint=shown)
            raise final from None

    def get_json(self, path: str, params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None, *,
                 no_retry: Collection[int] = (), expect: type[dict[str, Any]] | type[list[Any]] | None = None) -> Any:
        """GET and decode JSON (see :meth:`decode`); None for an empty body unless ``expect`` is set."""
        resp = self.request("GET", path, params=params, no_retry=no_retry)
        return self.decode(resp, "GET", expect=expect)

    def decode(self, resp: requests.Response, method: str = "GET", *,
               expect: type[dict[str, Any]] | type[list[Any]] | None = None, empty: Any = None) -> Any:
        """The JSON body of a 2xx page a stream reads: the one JSON decoding path of every connector.

        An empty body (or 204) is ``empty`` (None by default; with ``expect`` and no ``empty``, an error).
        A body that is not JSON, or not of the ``expect``-ed type (a Freshdesk list that is not an array, an
        Intercom search that is not an object), breaks the vendor's contract: :class:`FatalAPIError` naming
        the source, method, endpoint and status (never the body, which may echo anything).
        """
        shown = self._shown(resp.url or "/")
        where = f"source {self.source}: response to {method.upper()} {shown}"
        if resp.status_code == 204 or not resp.content:
            if empty is not None or expect is None:
                return empty
            problem = "is empty"
        else:
            try:
                body = resp.json()
            except ValueError:
                body, problem = None, "is not valid JSON"  # raised below, outside the handler (no body echo)
            else:
                if expect is None or isinstance(body, expect):
                    return body
                wanted = "an array" if expect is list else "an object"
                problem = f"is a JSON {_JSON_TYPES.get(type(body).__name__, 'object')}, not {wanted}"
        raise FatalAPIError(f"{where} {problem} (HTTP {resp.status_code})", status=resp.status_code,
                            source=self.source, endpoint=shown)

    def json_answer(self, resp: requests.Response, method: str, *, need: Collection[str] = ()) -> dict[str, Any]:
        """The JSON object a 2xx answer carries when the caller cannot go on without it (a created tag's id,
        a ticket read before a tag merge); ``need`` lists keys that must be present and not null.

        Anything else (HTML from a proxy, garbage, a list, a missing key) raises :class:`BadResponseError`
        naming the source, method, endpoint and what came back, so one bad answer fails one call instead of
        crashing the run. An echo the caller can do without goes through :func:`json_object` instead.
        """
        shown = self._shown(resp.url or "/")
        where = f"source {self.source}: answer to {method.upper()} {shown}"
        try:
            body = resp.json()
        except ValueError:
            kind = (resp.headers.get("Content-Type") or "no content type").split(";")[0].strip()
            body = None
            problem = f"is not JSON (HTTP {resp.status_code}, {kind}, {len(resp.content)} bytes)"
        else:
            missing = [key for key in need if not isinstance(body, dict) or body.get(key) is None]
            json_type = _JSON_TYPES.get(type(body).__name__, "value")
            problem = (f"is a JSON {json_type}, not an object" if not isinstance(body, dict) else
                       f"lacks {', '.join(missing)}" if missing else "")
        if not problem:
            return body
        raise BadResponseError(f"{where} {problem}", status=resp.status_code, source=self.source, endpoint=shown)

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one attempt ----------------------------------------------------------------------------------
    def _send(self, method: str, url: str, params: Any, json: Any, headers: Mapping[str, str] | None,
              secrets: frozenset[str]) -> requests.Response:
        """One attempt, following same-origin redirects by hand (requests would forward custom auth headers)."""
        for _ in range(_MAX_REDIRECTS + 1):
            resp = self._send_once(method, url, params, json, headers, secrets)
            if resp.status_code not in _REDIRECTS:
                return resp
            location = resp.headers.get("Location")
            if not location or (method not in ("GET", "HEAD") and resp.status_code not in (307, 308)):
                break
            url, params = self._resolve(method, urljoin(url, location)), None
        shown = self._shown(url)
        raise FatalAPIError(f"source {self.source}: unexpected redirect (HTTP {resp.status_code}) on {method} {shown}",
                            status=resp.status_code, source=self.source, endpoint=shown)

    def _send_once(self, method: str, url: str, params: Any, json: Any, headers: Mapping[str, str] | None,
                   secrets: frozenset[str]) -> requests.Response:
        path = urlsplit(url).path
        shown = self._shown(url)
        self._check_stop(f"{method} {shown}")
        ticket = self._pacer.acquire(path)
        with self._lock:
            self._sent += 1
        _count(self.source, "requests")
        started = time.perf_counter()
        failure: type[APIError] | None = None
        cause = ""
        budget = self._deadline if self._deadline is not None else math.inf
        timeout = (min(self._timeout[0], budget), min(self._timeout[1], budget))
        watch = _AttemptWatch(time.monotonic() + budget, self._stop)
        try:
            with watch:
                resp = self._session.request(method, url, params=params, json=json, auth=self._auth,
                                             headers={**self._headers, **(headers or {})}, timeout=timeout,
                                             allow_redirects=False, stream=True)
                try:
                    watch.learn(getattr(resp.raw, "connection", None))
                    _ = resp.content  # the whole body, under the watcher (a trickling server fails here)
                except BaseException:
                    resp.close()
                    raise
            if watch.fired is not None:
                # The socket was shut under the response: what was read may look complete and be cut short
                # (headers ended by the EOF, a body without Content-Length), so it is never trusted.
                failure, cause = _TransportError, watch.fired
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            failure, cause = _TransportError, watch.expired() or type(exc).__name__
        except requests.RequestException as exc:
            why = watch.expired()
            failure, cause = (_TransportError, why) if why else (FatalAPIError, type(exc).__name__)
        except BaseException:  # an auth hook's bug, KeyboardInterrupt...: never leak a budget slot
            self._pacer.release(ticket, None)
            raise
        if cause == "stopped":
            self._pacer.release(ticket, None)
            raise Stopped(f"source {self.source}: stopped during {method} {shown}", in_flight=True)
        if cause == "deadline":
            self._pacer.release(ticket, None)
            logger.debug("source %s: %s %s -> no complete response within %gs", self.source, method, shown, budget)
            raise _TransportError(f"source {self.source}: no complete response within the {budget:g}s request "
                                  f"deadline on {method} {shown}", cause="DeadlineExceeded", source=self.source,
                                  endpoint=shown)
        if failure is not None:
            # Raised here, outside the except block, so not even __context__ holds the requests exception,
            # whose text quotes the full URL (query string included).
            self._pacer.release(ticket, None)
            logger.debug("source %s: %s %s -> %s", self.source, method, shown, cause)
            message = f"source {self.source}: {cause} on {method} {shown}"
            if failure is _TransportError:
                raise _TransportError(message, cause=cause, source=self.source, endpoint=shown)
            raise FatalAPIError(message, source=self.source, endpoint=shown)
        status = resp.status_code
        if status == 429:
            _count(self.source, "throttled")
        logger.debug("source %s: %s %s -> HTTP %d in %.0f ms", self.source, method, shown, status,
                     (time.perf_counter() - started) * 1000)
        info = self._parse_rate(resp)
        cls = classify_status(status)
        if cls is None or status in _REDIRECTS:
            self._pacer.release(ticket, info)
            return resp
        retry_after = self._retry_after(resp, info) if cls is RetriableAPIError else None
        self._pacer.release(ticket, info, hold_for=retry_after)
        raise self._error(cls, method, shown, resp, retry_after, secrets)

    def _error(self, cls: type[APIError], method: str, shown: str, resp: requests.Response,
               retry_after: float | None, secrets: frozenset[str]) -> APIError:
        status = resp.status_code
        label = _vendor_label(resp)
        label = redact_text(scrub(label, secrets)) if label else None
        if cls is AuthenticationError:
            message = f"authentication failed for source {self.source} (HTTP {status} on {shown})"
            message += f": {label}" if label else ""
        else:
            message = f"source {self.source}: HTTP {status} on {method} {shown}" + (f" ({label})" if label else "")
        kwargs: dict[str, Any] = {"status": status, "source": self.source, "endpoint": shown}
        exc = RetriableAPIError(message, retry_after=retry_after, **kwargs) if cls is RetriableAPIError \
            else cls(message, **kwargs)
        exc.vendor_code = label
        return exc

    # -- retry policy ---------------------------------------------------------------------------------
    def _retry_after(self, resp: requests.Response, info: RateLimitInfo | None) -> float | None:
        """Seconds the vendor asked us to wait (clamped), or None to fall back to exponential backoff."""
        now = self._clock()
        wait = parse_retry_after(resp.headers.get("Retry-After"), now)
        if wait is None and resp.status_code == 429 and info is not None:
            reset_at = info.reset_at if info.reset_at is not None else (
                now + info.reset_in if info.reset_in is not None else None)
            if reset_at is not None and reset_at > now:
                wait = reset_at - now
        return None if wait is None else min(wait, self._max_retry_wait)

    _backoff = wait_exponential_jitter(initial=1.0, max=60.0, jitter=1.0)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, RetriableAPIError) and exc.retry_after is not None:
            return exc.retry_after
        return min(self._backoff(state), self._max_retry_wait)

    def _log_retry(self, state: RetryCallState, method: str, shown: str, attempts: int) -> None:
        _count(self.source, "retries")  # tenacity calls this before each retry's wait, once per retry
        exc = state.outcome.exception() if state.outcome is not None else None
        what = exc.cause if isinstance(exc, _TransportError) else f"HTTP {getattr(exc, 'status', '?')}"
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        logger.warning("source %s: %s on %s %s, waiting %.1fs (attempt %d/%d)", self.source, what, method, shown,
                       wait, state.attempt_number + 1, attempts)

    def wait(self, seconds: float) -> None:
        """A connector-level wait (e.g. Intercom's busy company scroll) that the stop handle ends like any other."""
        self._pause(seconds)

    def _pause(self, seconds: float) -> None:
        """Every wait of this client (back-off, Retry-After, pacing): ended early by the stop handle.

        The real ``time.sleep`` becomes ``stop.wait``, which returns the instant the handle is set; an
        injected (fake) sleep is honoured as given, with the handle checked before and after it.
        """
        stop = self._stop
        if stop is None:
            self._sleep(seconds)
            return
        what = f"a {seconds:.1f}s wait"
        self._check_stop(what)
        if self._sleep is time.sleep:
            stop.wait(seconds)
        else:
            self._sleep(seconds)
        self._check_stop(what)

    def _check_stop(self, what: str) -> None:
        if self._stop is not None and self._stop.is_set():
            logger.info("source %s: stop requested; abandoning %s", self.source, what)
            raise Stopped(f"source {self.source}: stopped before {what}")

    def _log_pacing(self, wait: float, reason: str, path: str) -> None:
        logger.debug("source %s: pacing %s for %.2fs (%s)", self.source, redact_path(path, self._host), wait, reason)

    # -- helpers --------------------------------------------------------------------------------------
    def _resolve(self, method: str, path: str) -> str:
        parts = urlsplit(path)
        if not parts.scheme and not parts.netloc:
            return f"{self.base_url}/{path.lstrip('/')}"
        if _origin(path) != self._origin:
            raise FatalAPIError(f"source {self.source}: refusing {method} to another origin ({redact_url(path)}); "
                                f"credentials for {self._host} are never sent elsewhere", source=self.source,
                                endpoint=redact_path(parts.path, parts.hostname))
        return path

    def _shown(self, url: str) -> str:
        """The only form of a URL that goes into messages: its path, with secret-bearing parts masked."""
        parts = urlsplit(url)
        return redact_path(parts.path or "/", parts.hostname)

    def _parse_rate(self, resp: requests.Response) -> RateLimitInfo | None:
        if self._rate_headers is None:
            return None
        try:
            return self._rate_headers(resp)
        except (ValueError, TypeError, KeyError):
            logger.debug("source %s: unreadable rate-limit headers ignored", self.source)
            return None

    def _collect_secrets(self) -> frozenset[str]:
        found = {value for name, value in self._headers.items()
                 if name.lower() in ("authorization", "cookie") or is_sensitive_name(name)}
        if self._auth is not None:  # whatever the auth class, see what it would put on a request
            try:
                probe = self._auth(requests.Request("GET", self.base_url).prepare())
                for name in ("Authorization", "Cookie"):
                    header = probe.headers.get(name)  # requests allows bytes values: HTTP headers are latin-1
                    if header is not None:
                        found.add(header.decode("latin-1") if isinstance(header, bytes) else header)
            except Exception:  # noqa: BLE001 - a custom auth that cannot be probed just loses this extra net
                logger.debug("source %s: auth not probed for secret scrubbing", self.source)
        for value in list(found):
            scheme, _, credential = value.partition(" ")
            found.add(credential)
            if scheme.lower() == "basic":
                with contextlib.suppress(ValueError, UnicodeDecodeError):
                    found |= set(base64.b64decode(credential, validate=True).decode("utf-8").split(":", 1))
        return frozenset(s for s in found if len(s) >= 4)

    @staticmethod
    def _param_secrets(params: Any) -> frozenset[str]:
        items = params.items() if isinstance(params, Mapping) else (params or ())
        return frozenset(str(value) for name, value in items if is_sensitive_name(str(name)) and len(str(value)) >= 4)


def _vendor_label(resp: requests.Response) -> str | None:
    """A short vendor error label (Zendesk ``error``, Intercom/Freshdesk ``code``, Slack's plain text) or None."""
    content_type = resp.headers.get("Content-Type", "").lower()
    if "html" in content_type or len(resp.content) > 64_000:
        return None
    candidate: Any = None
    try:
        body = resp.json()
    except ValueError:
        body = None
        text = resp.text.strip()
        candidate = text if 0 < len(text) <= 200 else None
    if isinstance(body, dict):
        errors, error = body.get("errors"), body.get("error")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            candidate = errors[0].get("code") or errors[0].get("message")
        if not isinstance(candidate, str):
            candidate = error.get("title") if isinstance(error, dict) else error
        if not isinstance(candidate, str):
            candidate = body.get("code") or body.get("description") or body.get("message")
    if not isinstance(candidate, str):
        return None
    label = " ".join(candidate.split())
    return (label[:77] + "...") if len(label) > 80 else (label or None)
