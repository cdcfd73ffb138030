"""How foreign exceptions become ours: one table for every provider, as httpx's ``HTTPCORE_EXC_MAP``.

``UPSTREAM_EXC_MAP`` lists each client library's exception types (OpenAI SDK and its httpx2
transport, tavily-python and httpx, arxiv and requests) with the ``agents.errors`` class it
becomes. Errors that carry an HTTP status go through the one status rule instead:

    429                 UpstreamRateLimited   retryable, after the server's Retry-After
    408, 409, 5xx       UpstreamUnavailable   retryable, after the server's Retry-After
    any other status    UpstreamBadResponse   fails fast

``call_with_retries`` classifies with this table unless told otherwise, so a provider only
names itself (its gate's name) and never writes its own ``classify_*`` function.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import arxiv
import httpx
import httpx2
import openai
import requests
from tavily.errors import BadRequestError, ForbiddenError, InvalidAPIKeyError, UsageLimitExceededError
from tavily.errors import TimeoutError as TavilyTimeout

from agents.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = [
    "RETRYABLE_STATUS",
    "UPSTREAM_EXC_MAP",
    "ByStatus",
    "MalformedResponse",
    "Rule",
    "classify_upstream_error",
    "error_for_status",
    "parse_retry_after",
]

#: Statuses besides 429 and 5xx that are worth another try (request timeout, conflict).
RETRYABLE_STATUS = frozenset({408, 409})

#: How each provider is named in a message a client may read.
_NAMES = {"openai": "the model server", "tavily": "Tavily", "arxiv": "arXiv"}


class MalformedResponse(Exception):
    """An upstream answered 2xx with a body we cannot read (e.g. arXiv's feed is not Atom)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """The error an exception type becomes.

    Attributes:
        error: our class.
        message: the detail; ``{who}`` is the provider's name, ``{exc}`` the foreign message.
        http_status: the status to report when the library dropped the response.
        retryable: overrides the class's default (a garbled body is worth another try).
    """

    error: type[UpstreamError]
    message: str
    http_status: int | None = None
    retryable: bool | None = None


@dataclass(frozen=True, slots=True)
class ByStatus:
    """The exception carries an HTTP status: ``status_of`` reads it (and the headers, for
    ``Retry-After``), and ``error_for_status`` decides. ``None`` means no status after all:
    the lookup goes on down the table."""

    status_of: Callable[[Any], tuple[int, object] | None]


_TIMEOUT = Rule(UpstreamTimeout, "{who} did not answer in time")
_UNREACHABLE = Rule(UpstreamUnavailable, "could not reach {who}")
# A truncated or garbled body is usually a transient transport fault: worth a retry.
_MALFORMED = Rule(UpstreamBadResponse, "{who} sent a malformed response", retryable=True)

#: Foreign exception type → what it becomes. The first ``isinstance`` match wins, so a subclass
#: comes before its base (``APITimeoutError`` before ``APIConnectionError``, requests' ``Timeout``
#: before ``ConnectionError`` so that a ``ConnectTimeout`` is a timeout). Types not listed are
#: not upstream problems and are re-raised as they are.
UPSTREAM_EXC_MAP: tuple[tuple[type[BaseException], Rule | ByStatus], ...] = (
    # OpenAI SDK (httpx2 underneath)
    (openai.APITimeoutError, _TIMEOUT),
    (openai.APIConnectionError, _UNREACHABLE),
    (openai.APIStatusError, ByStatus(lambda exc: (exc.status_code, exc.response.headers))),
    (openai.APIResponseValidationError, _MALFORMED),
    (httpx2.HTTPError, _MALFORMED),
    # tavily-python (httpx underneath); it drops the response, so its errors carry no Retry-After
    (UsageLimitExceededError, Rule(UpstreamRateLimited, "{who} rate-limited us: {exc}", http_status=429)),
    (TavilyTimeout, _TIMEOUT),
    (InvalidAPIKeyError, Rule(UpstreamBadResponse, "{who} rejected TAVILY_API_KEY", http_status=401)),
    (ForbiddenError, Rule(UpstreamBadResponse, "{who} refused the request: {exc}", http_status=403)),
    (BadRequestError, Rule(UpstreamBadResponse, "{who} refused the query: {exc}", http_status=400)),
    (httpx.TimeoutException, _TIMEOUT),
    (httpx.HTTPStatusError, ByStatus(lambda exc: (exc.response.status_code, exc.response.headers))),
    (httpx.ConnectError, _UNREACHABLE),
    (httpx.TransportError, _MALFORMED),
    # arxiv (requests underneath)
    (requests.exceptions.Timeout, _TIMEOUT),
    (
        requests.exceptions.HTTPError,
        ByStatus(lambda exc: None if exc.response is None else (exc.response.status_code, exc.response.headers)),
    ),
    (arxiv.HTTPError, ByStatus(lambda exc: (exc.status, None))),
    (requests.exceptions.ConnectionError, _UNREACHABLE),
    (requests.exceptions.RequestException, _MALFORMED),
    (arxiv.ArxivError, _MALFORMED),
    # any provider
    (MalformedResponse, _MALFORMED),
    (json.JSONDecodeError, _MALFORMED),
)


def parse_retry_after(headers: object) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    milliseconds = get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def error_for_status(status: int, *, provider: str, retry_after: float | None = None) -> UpstreamError:
    """The one HTTP status rule: 429 is a rate limit, 408/409/5xx are retryable, other 4xx fail fast."""
    who = _NAMES.get(provider, provider)
    if status == 429:
        return UpstreamRateLimited(
            f"{who} rate-limited us", provider=provider, http_status=status, retry_after=retry_after
        )
    if status in RETRYABLE_STATUS or status >= 500:
        return UpstreamUnavailable(
            f"{who} answered {status}", provider=provider, http_status=status, retry_after=retry_after
        )
    return UpstreamBadResponse(f"{who} refused the request ({status})", provider=provider, http_status=status)


def classify_upstream_error(exc: BaseException, *, provider: str) -> UpstreamError | None:
    """Our error for ``exc`` raised while calling ``provider``; None when it is not an upstream fault."""
    for exc_type, mapping in UPSTREAM_EXC_MAP:
        if not isinstance(exc, exc_type):
            continue
        if isinstance(mapping, ByStatus):
            found = mapping.status_of(exc)
            if found is None:
                continue
            status, headers = found
            return error_for_status(status, provider=provider, retry_after=parse_retry_after(headers))
        message = mapping.message.format(who=_NAMES.get(provider, provider), exc=exc)
        return mapping.error(message, provider=provider, http_status=mapping.http_status, retryable=mapping.retryable)
    return None
