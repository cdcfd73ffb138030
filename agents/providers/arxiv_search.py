"""The arXiv search provider: the ``arxiv`` package, off the event loop, one polite request at a time.

arXiv's terms of use ask for a single connection at a time and a pause between requests, so every
request in the process passes one ``RequestSpacing`` guard: at most one request in flight, and at
least ``min_interval`` seconds from the end of one request to the start of the next. The library's
own pacing and retries are switched off (``delay_seconds=0``, ``num_retries=0``); ``call_with_retries``
is the only retry layer, and every HTTP request carries a timeout (the library sets none).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import arxiv
import requests

from agents.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from agents.providers.gate import ProviderGate
from agents.providers.retry import RetryPolicy, call_with_retries, parse_retry_after
from agents.providers.search import SearchHit

__all__ = ["ArxivConfig", "ArxivSearch", "RequestSpacing", "classify_arxiv_error"]

logger = logging.getLogger("agentflow.upstream")
T = TypeVar("T")

MAX_QUERY_CHARS = 300
MAX_SNIPPET_CHARS = 1200
_VERSION = re.compile(r"v\d+$")
_RETRYABLE_STATUS = {408, 409}


@dataclass(frozen=True, slots=True)
class ArxivConfig:
    """How to reach arXiv and how politely.

    Attributes:
        api_url: the query endpoint (``ARXIV_API_URL``).
        timeout: seconds one HTTP request may wait for the server (connect and each read).
        min_interval: seconds between the end of one request and the start of the next.
        max_retries: retries after the first attempt, for retryable failures.
        call_deadline: total seconds one search may take, waiting in line included: with a
            3-second interval a busy process queues, so this is generous on purpose.
    """

    api_url: str = "https://export.arxiv.org/api/query"
    timeout: float = 20.0
    min_interval: float = 3.0
    max_retries: int = 2
    call_deadline: float = 600.0


class RequestSpacing:
    """Process-wide request etiquette: one request in flight, ``min_interval`` seconds apart.

    The lock is released when the worker thread finishes, not when the awaiting coroutine
    stops waiting: a caller cancelled by a timeout cannot let the next request start while
    its own is still on the wire.
    """

    def __init__(self, min_interval: float) -> None:
        self.min_interval = min_interval
        self._lock = asyncio.Lock()
        self._last_end: float | None = None

    async def run(self, fn: Callable[[], T]) -> T:
        """Run the blocking ``fn`` in a thread once it is this request's turn."""
        await self._lock.acquire()
        try:
            if self._last_end is not None:
                wait = self._last_end + self.min_interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            worker = asyncio.ensure_future(asyncio.to_thread(fn))
        except BaseException:
            self._lock.release()
            raise
        worker.add_done_callback(self._finished)
        return await asyncio.shield(worker)

    def _finished(self, worker: asyncio.Future[Any]) -> None:
        self._last_end = time.monotonic()
        self._lock.release()


class _MalformedFeed(Exception):
    """arXiv answered 200 with a body that is not an Atom feed."""


def _drain_and_raise(response: Any, *args: Any, **kwargs: Any) -> None:
    if not response.ok:
        _ = response.content  # read the body so the connection goes back to the pool
        response.raise_for_status()


class _Session(requests.Session):
    """A session that times out every request and raises on non-2xx with the response attached.

    The library only reports a non-2xx status as a number; raising here keeps the headers,
    so a 429 or 503 can be retried after the server's ``Retry-After``.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout
        self.hooks["response"].append(_drain_and_raise)

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, url, *args, **kwargs)


class _Client(arxiv.Client):  # type: ignore[misc]  # arxiv ships no type hints
    """``arxiv.Client`` that fetches exactly one page with one HTTP request.

    The library's pager may follow up with more requests inside one call; one request per
    call keeps every request under the spacing guard, and lets a malformed feed surface as
    an error instead of a silent empty result.
    """

    _session: requests.Session

    def __init__(self, *, query_url_format: str, timeout: float) -> None:
        super().__init__(page_size=100, delay_seconds=0, num_retries=0)
        self.query_url_format = query_url_format
        self._session.close()  # the library's own session: it has no timeout
        self._session = _Session(timeout)

    def first_page(self, search: arxiv.Search, max_results: int) -> list[arxiv.Result]:
        feed = self._parse_feed(self._format_url(search, 0, max_results), first_page=True)
        if feed.malformed:
            raise _MalformedFeed(str(feed.error))
        return list(feed.results)

    def close(self) -> None:
        self._session.close()


def _by_status(status: int, retry_after: float | None) -> UpstreamError:
    if status == 429:
        return UpstreamRateLimited(
            "arXiv rate-limited us", provider="arxiv", http_status=status, retry_after=retry_after
        )
    if status in _RETRYABLE_STATUS or status >= 500:
        return UpstreamUnavailable(
            f"arXiv answered {status}", provider="arxiv", http_status=status, retry_after=retry_after
        )
    return UpstreamBadResponse(f"arXiv refused the query ({status})", provider="arxiv", http_status=status)


def classify_arxiv_error(exc: BaseException) -> UpstreamError | None:
    """Map a ``requests``/``arxiv`` exception to our upstream error classes."""
    if isinstance(exc, requests.exceptions.Timeout):
        return UpstreamTimeout("arXiv did not answer in time", provider="arxiv")
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        return _by_status(exc.response.status_code, parse_retry_after(exc.response.headers))
    if isinstance(exc, arxiv.HTTPError):
        return _by_status(exc.status, None)
    if isinstance(exc, requests.exceptions.ConnectionError):
        return UpstreamUnavailable("could not reach arXiv", provider="arxiv")
    if isinstance(exc, requests.exceptions.RequestException | arxiv.ArxivError | _MalformedFeed):
        # A truncated or garbled feed is usually a transient transport fault: worth a retry.
        return UpstreamBadResponse("arXiv sent a malformed response", provider="arxiv", retryable=True)
    return None


def _hit(result: arxiv.Result) -> SearchHit:
    arxiv_id = _VERSION.sub("", result.get_short_id())
    published = result.published.date().isoformat() if result.published else None
    return SearchHit(
        kind="arxiv",
        title=" ".join(result.title.split()),
        url=f"https://arxiv.org/abs/{arxiv_id}",
        snippet=" ".join(result.summary.split())[:MAX_SNIPPET_CHARS],
        authors=tuple(author.name for author in result.authors),
        published=published,
    )


class ArxivSearch:
    """arXiv search through one shared ``arxiv.Client`` and one spacing guard per process."""

    name = "arxiv"

    def __init__(self, config: ArxivConfig) -> None:
        self.config = config
        self.gate = ProviderGate("arxiv", max_concurrency=1)  # shares a 429 pause; spacing does the rest
        self.spacing = RequestSpacing(config.min_interval)
        self.policy = RetryPolicy(max_attempts=config.max_retries + 1, max_delay=10.0, deadline=config.call_deadline)
        self._client = _Client(query_url_format=f"{config.api_url}?{{}}", timeout=config.timeout)

    async def search(self, query: str, *, max_results: int) -> list[SearchHit]:
        """Papers matching ``query``, most relevant first; an empty answer is asked again once."""
        hits = await self._fetch(query, max_results)
        if not hits:
            # arXiv sporadically answers a valid query with an empty page; a second look is cheap.
            logger.info("arxiv returned no results; asking again", extra={"event": "arxiv_empty_retry"})
            hits = await self._fetch(query, max_results)
        return hits

    async def _fetch(self, query: str, max_results: int) -> list[SearchHit]:
        search = arxiv.Search(query=query.strip()[:MAX_QUERY_CHARS], max_results=max_results)
        results: list[arxiv.Result] = await call_with_retries(
            lambda: self.spacing.run(lambda: self._client.first_page(search, max_results)),
            gate=self.gate,
            policy=self.policy,
            classify=classify_arxiv_error,
        )
        return [_hit(result) for result in results]

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()
