"""The client of the real TMDB API: credentials, a client-side rate limit, retries with backoff
and jitter on 429/5xx/timeouts (honouring ``Retry-After``), and typed errors.

The credential is attached per request and never logged: httpx logs request URLs, so a filter
scrubs the ``api_key`` value from its log records (see :func:`install_key_scrubber`).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from pydantic import SecretStr

from prefshift_common.errors import Unavailable, UpstreamError

log = structlog.get_logger(__name__)


class TmdbCredentialsRejected(UpstreamError):
    """TMDB answered 401: the configured key or token is wrong. 502, because the proxy is up but
    its upstream refuses it, and retrying will not help until an operator fixes the setting."""

    code = "tmdb_credentials_rejected"
    description = "TMDB rejected the proxy's TMDB_API_KEY / TMDB_READ_TOKEN."


class TmdbUnavailable(Unavailable):
    """TMDB did not answer usefully within the retry budget (down, 5xx, 429, timeouts)."""

    code = "tmdb_unavailable"
    description = "TMDB is unreachable or rate limiting, and no cached copy exists."


class TmdbRejected(UpstreamError):
    """TMDB refused the request for a reason retrying cannot fix (4xx other than 401/404/429)."""

    code = "tmdb_rejected"
    description = "TMDB refused the request."


@dataclass
class UpstreamCounters:
    """What the proxy asked of TMDB, since the process started."""

    calls: int = 0
    errors: int = 0
    rate_limit_waits: int = 0
    retries: int = 0
    #: answers 429 (rate limited), counted among the errors too
    throttled: int = 0


class RateLimiter:
    """At most ``rate`` upstream requests in any one-second window, spaced ``1/rate`` apart, and
    everyone held while TMDB asks us to back off.

    Checked against the times requests were actually let through (not times reserved in
    advance), so an event loop that falls behind cannot release a catch-up burst. Waiters queue
    on a FIFO lock: one sleeps for the next slot, the others wait their turn without polling.
    """

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._per_window = max(1, math.floor(rate))
        self._sent: deque[float] = deque()
        self._next = 0.0
        self._paused_until = 0.0
        self._turn = asyncio.Lock()

    def pause_until(self, moment: float) -> None:
        """Hold every request until ``moment`` (``time.monotonic()`` clock)."""
        self._paused_until = max(self._paused_until, moment)

    async def acquire(self) -> bool:
        """Wait for this request's slot; return whether it had to wait."""
        waited = False
        async with self._turn:
            while True:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= 1.0:
                    self._sent.popleft()
                earliest = max(self._next, self._paused_until)
                if len(self._sent) >= self._per_window:
                    earliest = max(earliest, self._sent[0] + 1.0)
                if earliest <= now:
                    self._sent.append(now)
                    self._next = now + self._interval
                    return waited
                waited = True
                await asyncio.sleep(earliest - now)


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (it may be a number or an HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class _ScrubSecret(logging.Filter):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._secret in message:
            record.msg = message.replace(self._secret, "***")
            record.args = ()
        return True


def install_key_scrubber(secret: SecretStr | None) -> logging.Filter | None:
    """Redact ``secret`` from httpx's and httpcore's request logs (they log full URLs)."""
    if secret is None:
        return None
    scrubber = _ScrubSecret(secret.get_secret_value())
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).addFilter(scrubber)
    return scrubber


def remove_key_scrubber(scrubber: logging.Filter | None) -> None:
    if scrubber is not None:
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).removeFilter(scrubber)


class TmdbClient:
    """Asks TMDB for movies and searches, within the rate limit and the retry budget."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: SecretStr | None,
        read_token: SecretStr | None,
        limiter: RateLimiter,
        max_attempts: int,
        retry_budget_s: float,
        backoff_base_s: float,
        backoff_max_s: float,
        timeout_s: float,
        max_concurrency: int,
    ) -> None:
        self._http = http
        self._api_key = api_key
        self._read_token = read_token
        self._limiter = limiter
        self._max_attempts = max_attempts
        self._budget = retry_budget_s
        self._backoff_base = backoff_base_s
        self._backoff_max = backoff_max_s
        self._timeout = timeout_s
        self._slots = asyncio.Semaphore(max_concurrency)
        self.counters = UpstreamCounters()

    async def movie(self, tmdb_id: int) -> dict[str, Any] | None:
        """TMDB's details record of a movie, or None when TMDB does not know the id."""
        response = await self._get(f"/3/movie/{tmdb_id}", {})
        if response.status_code == 404:
            return None
        return _json_object(response)

    async def search(self, params: Mapping[str, str]) -> dict[str, Any]:
        """TMDB's ``/3/search/movie`` answer to these parameters, as TMDB sent it."""
        response = await self._get("/3/search/movie", {"include_adult": "false", **params})
        if response.status_code == 404:
            raise TmdbRejected("TMDB answered 404 to a search")
        return _json_object(response)

    async def get_json(self, path: str, params: Mapping[str, str]) -> dict[str, Any] | None:
        """TMDB's answer to ``GET path?params`` (the client's parameters passed through), or
        None when TMDB answers 404."""
        response = await self._get(path, dict(params))
        if response.status_code == 404:
            return None
        return _json_object(response)

    def _auth(self, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        if self._read_token is not None:
            return params, {"authorization": f"Bearer {self._read_token.get_secret_value()}"}
        assert self._api_key is not None
        return {**params, "api_key": self._api_key.get_secret_value()}, {}

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._backoff_max, self._backoff_base * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # "equal jitter"

    async def _get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        """GET with retries; returns a 200 or 404 response, raises a typed error otherwise."""
        deadline = time.monotonic() + self._budget
        query, headers = self._auth(params)
        last = "no attempt"
        for attempt in range(1, self._max_attempts + 1):
            async with self._slots:
                if await self._limiter.acquire():
                    self.counters.rate_limit_waits += 1
                self.counters.calls += 1
                remaining = max(0.1, deadline - time.monotonic())
                try:
                    response = await self._http.get(
                        path, params=query, headers=headers, timeout=min(self._timeout, remaining)
                    )
                except httpx.TimeoutException:
                    response, last = None, "timeout"
                except httpx.TransportError as exc:
                    response, last = None, f"connection error ({type(exc).__name__})"
            if response is not None:
                status = response.status_code
                if status in (200, 404):
                    return response
                last = f"HTTP {status}"
                if status == 401:
                    self.counters.errors += 1
                    raise TmdbCredentialsRejected(
                        "TMDB rejected the proxy's credentials (HTTP 401): TMDB_API_KEY or "
                        "TMDB_READ_TOKEN is wrong or revoked; fix the setting and restart"
                    )
                if status != 429 and status < 500:
                    self.counters.errors += 1
                    raise TmdbRejected(f"TMDB refused {path.split('?')[0]} with HTTP {status}")
            self.counters.errors += 1
            delay = self._backoff(attempt)
            if response is not None and response.status_code == 429:
                self.counters.throttled += 1
                wait = retry_after_seconds(response.headers.get("retry-after"))
                if wait is not None:
                    self._limiter.pause_until(time.monotonic() + wait)
                    delay = max(delay, wait + random.uniform(0, 0.1 * wait))
            if attempt == self._max_attempts or time.monotonic() + delay > deadline:
                break
            self.counters.retries += 1
            log.info("tmdb_retry", path=path, attempt=attempt, reason=last, delay_s=round(delay, 3))
            await asyncio.sleep(delay)
        raise TmdbUnavailable(f"TMDB did not answer after retrying (last: {last})")


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise TmdbRejected("TMDB answered with a body that is not JSON") from exc
    if not isinstance(body, dict):
        raise TmdbRejected("TMDB answered with JSON that is not an object")
    return body
