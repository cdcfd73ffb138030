"""The web search provider: ``tavily.AsyncTavilyClient`` behind our gate and retry layer.

The client makes no retries of its own; ``call_with_retries`` retries rate limits (429), timeouts,
5xx and transport faults. Without ``TAVILY_API_KEY`` the provider exists but refuses to search
(``ProviderNotConfigured``), so a request for web sources fails at submit time with a clear 503.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
from tavily import AsyncTavilyClient
from tavily.errors import (
    BadRequestError,
    ForbiddenError,
    InvalidAPIKeyError,
    UsageLimitExceededError,
)
from tavily.errors import TimeoutError as TavilyTimeout

from agents.errors import (
    ProviderNotConfigured,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from agents.providers.gate import ProviderGate
from agents.providers.retry import RetryPolicy, call_with_retries, parse_retry_after
from agents.providers.search import SearchHit

__all__ = ["MAX_QUERY_CHARS", "TavilyConfig", "TavilySearch", "classify_tavily_error"]

MAX_QUERY_CHARS = 400  # Tavily refuses longer queries
MAX_SNIPPET_CHARS = 1200
_RETRYABLE_STATUS = {408, 409}
NOT_CONFIGURED = (
    'TAVILY_API_KEY is not set, so the web source is unavailable: set TAVILY_API_KEY or ask for sources: ["arxiv"].'
)


@dataclass(frozen=True, slots=True)
class TavilyConfig:
    """How to reach Tavily and how hard to push it.

    Attributes:
        api_key: ``TAVILY_API_KEY``; None leaves the web source unavailable.
        base_url: ``TAVILY_BASE_URL``.
        timeout: seconds one HTTP request may take.
        max_concurrency: requests in flight at once, across every workflow in the process.
        rpm: optional cap on requests started per minute.
        max_retries: retries after the first attempt, for retryable failures.
        call_deadline: total seconds one search may take across attempts and waits.
    """

    api_key: str | None
    base_url: str = "https://api.tavily.com"
    timeout: float = 20.0
    max_concurrency: int = 4
    rpm: int | None = None
    max_retries: int = 2
    call_deadline: float = 120.0


def classify_tavily_error(exc: BaseException) -> UpstreamError | None:
    """Map a tavily-python / httpx exception to our upstream error classes."""
    if isinstance(exc, UsageLimitExceededError):
        # tavily-python drops the response, so no Retry-After: backoff decides the wait.
        return UpstreamRateLimited(f"Tavily rate-limited us: {exc}", provider="tavily", http_status=429)
    if isinstance(exc, TavilyTimeout | httpx.TimeoutException):
        return UpstreamTimeout("Tavily did not answer in time", provider="tavily")
    if isinstance(exc, InvalidAPIKeyError):
        return UpstreamBadResponse("Tavily rejected TAVILY_API_KEY", provider="tavily", http_status=401)
    if isinstance(exc, ForbiddenError):
        return UpstreamBadResponse(f"Tavily refused the request: {exc}", provider="tavily", http_status=403)
    if isinstance(exc, BadRequestError):
        return UpstreamBadResponse(f"Tavily refused the query: {exc}", provider="tavily", http_status=400)
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        if status == 429:
            return UpstreamRateLimited(
                "Tavily rate-limited us",
                provider="tavily",
                http_status=status,
                retry_after=parse_retry_after(exc.response.headers),
            )
        if status in _RETRYABLE_STATUS or status >= 500:
            return UpstreamUnavailable(
                f"Tavily answered {status}",
                provider="tavily",
                http_status=status,
                retry_after=parse_retry_after(exc.response.headers),
            )
        return UpstreamBadResponse(f"Tavily refused the request ({status})", provider="tavily", http_status=status)
    if isinstance(exc, httpx.ConnectError):
        return UpstreamUnavailable("could not reach Tavily", provider="tavily")
    if isinstance(exc, httpx.TransportError | json.JSONDecodeError):
        # A truncated or garbled body is usually a transient transport fault: worth a retry.
        return UpstreamBadResponse("Tavily sent a malformed response", provider="tavily", retryable=True)
    return None


def _hit(result: dict[str, Any]) -> SearchHit:
    url = str(result.get("url") or "")
    title = " ".join(str(result.get("title") or url).split())
    published = result.get("published_date")
    return SearchHit(
        kind="web",
        title=title,
        url=url,
        snippet=" ".join(str(result.get("content") or "").split())[:MAX_SNIPPET_CHARS],
        published=str(published) if published else None,
    )


class TavilySearch:
    """Web search through one shared ``AsyncTavilyClient`` and one gate per process."""

    name = "tavily"

    def __init__(self, config: TavilyConfig) -> None:
        self.config = config
        self.gate = ProviderGate("tavily", max_concurrency=config.max_concurrency, rpm=config.rpm)
        self.policy = RetryPolicy(max_attempts=config.max_retries + 1, max_delay=10.0, deadline=config.call_deadline)
        # No key, no client: a keyless AsyncTavilyClient would silently switch to anonymous mode.
        self._client = (
            AsyncTavilyClient(api_key=config.api_key, api_base_url=config.base_url) if config.api_key else None
        )

    @property
    def configured(self) -> bool:
        return self._client is not None

    def require_configured(self) -> None:
        if not self.configured:
            raise ProviderNotConfigured(NOT_CONFIGURED, variable="TAVILY_API_KEY")

    async def search(self, query: str, *, max_results: int) -> list[SearchHit]:
        """Web pages matching ``query`` (cut to Tavily's 400 characters), best first."""
        self.require_configured()
        client = self._client
        assert client is not None
        text = query.strip()[:MAX_QUERY_CHARS]
        answer: dict[str, Any] = await call_with_retries(
            lambda: client.search(text, max_results=max_results, search_depth="basic", timeout=self.config.timeout),
            gate=self.gate,
            policy=self.policy,
            classify=classify_tavily_error,
        )
        results = answer.get("results") or []
        return [_hit(result) for result in results if isinstance(result, dict) and result.get("url")]

    async def aclose(self) -> None:
        """Close the client's HTTP connection pool."""
        if self._client is not None:
            await self._client.close()
