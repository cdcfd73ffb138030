"""The web search provider: ``tavily.AsyncTavilyClient`` behind our gate and retry layer.

The client makes no retries of its own; ``call_with_retries`` retries rate limits (429), timeouts,
5xx and transport faults (as ``error_map`` classifies them). The concurrency cap is per process;
the optional RPM cap holds across processes when ``redis_url`` is set. Without ``TAVILY_API_KEY``
the provider exists but refuses to search (``ProviderNotConfigured``), so a request for web
sources fails at submit time with a clear 503.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tavily import AsyncTavilyClient

from agents.errors import ProviderNotConfigured
from agents.providers._redis_keys import KEY_PREFIX
from agents.providers.gate import ProviderGate
from agents.providers.retry import RetryPolicy, call_with_retries
from agents.providers.search import SearchHit

__all__ = ["MAX_QUERY_CHARS", "TavilyConfig", "TavilySearch"]

MAX_QUERY_CHARS = 400  # Tavily refuses longer queries
MAX_SNIPPET_CHARS = 1200
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
        max_concurrency: requests in flight at once, across every workflow in the process
            (always per process).
        rpm: optional cap on requests started per minute: per process, and across every
            process sharing ``redis_url`` when that is set.
        max_retries: retries after the first attempt, for retryable failures.
        call_deadline: total seconds one search may take across attempts and waits.
        redis_url: the Redis that makes ``rpm`` global; None keeps it per process.
        redis_key_prefix: first segment of every Redis key.
    """

    api_key: str | None
    base_url: str = "https://api.tavily.com"
    timeout: float = 20.0
    max_concurrency: int = 4
    rpm: int | None = None
    max_retries: int = 2
    call_deadline: float = 120.0
    redis_url: str | None = None
    redis_key_prefix: str = KEY_PREFIX


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
        self.gate = ProviderGate(
            "tavily",
            max_concurrency=config.max_concurrency,
            rpm=config.rpm,
            redis_url=config.redis_url,
            redis_key_prefix=config.redis_key_prefix,
        )
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
        )
        results = answer.get("results") or []
        return [_hit(result) for result in results if isinstance(result, dict) and result.get("url")]

    async def aclose(self) -> None:
        """Close the client's HTTP connection pool and the gate's Redis connections."""
        try:
            if self._client is not None:
                await self._client.close()
        finally:
            await self.gate.aclose()
