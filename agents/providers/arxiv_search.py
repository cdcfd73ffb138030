"""The arXiv search provider: the ``arxiv`` package, off the event loop, one polite request at a time.

arXiv's terms of use ask for a single connection at a time and a pause between requests, so every
request passes one ``RequestSpacing`` guard: at most one request in flight, and at least
``min_interval`` seconds from the end of one request to the start of the next. Without
``redis_url`` that holds within the process; with it, also across every process sharing that
Redis (``shared_limits.SharedSpacing``: a lock held for the request, then a cooldown key), with
the per-process guard still in force and standing alone while Redis is unreachable. The gate's
429 pause is per process either way. The library's own pacing and retries are switched off
(``delay_seconds=0``, ``num_retries=0``); ``call_with_retries`` is the only retry layer, and
every HTTP request carries a timeout (the library sets none).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import arxiv
import requests

from agents.providers._redis_keys import KEY_PREFIX
from agents.providers.error_map import MalformedResponse
from agents.providers.gate import ProviderGate
from agents.providers.retry import RetryPolicy, call_with_retries
from agents.providers.search import SearchHit

if TYPE_CHECKING:
    from agents.providers.shared_limits import SharedSpacing, SharedTurn

__all__ = ["ArxivConfig", "ArxivSearch", "RequestSpacing"]

logger = logging.getLogger("agentflow.upstream")
T = TypeVar("T")

MAX_QUERY_CHARS = 300
MAX_SNIPPET_CHARS = 1200
_VERSION = re.compile(r"v\d+$")
#: Seconds a turn outlives a dead holder, beyond the request's own timeout.
HOLD_MARGIN = 10.0


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
        redis_url: the Redis that makes the spacing hold across processes; None keeps it
            per process.
        redis_key_prefix: first segment of every Redis key (``agentflow:arxiv:lock``, ...).
    """

    api_url: str = "https://export.arxiv.org/api/query"
    timeout: float = 20.0
    min_interval: float = 3.0
    max_retries: int = 2
    call_deadline: float = 600.0
    redis_url: str | None = None
    redis_key_prefix: str = KEY_PREFIX


class RequestSpacing:
    """Request etiquette: one request in flight, ``min_interval`` seconds apart.

    Within the process always; across processes too when given a ``SharedSpacing``. The turn
    is handed on when the worker thread finishes, not when the awaiting coroutine stops
    waiting: a caller cancelled by a timeout cannot let the next request start, here or
    elsewhere, while its own is still on the wire.
    """

    def __init__(self, min_interval: float, *, shared: SharedSpacing | None = None) -> None:
        self.min_interval = min_interval
        self.shared = shared
        self._lock = asyncio.Lock()
        self._last_end: float | None = None
        self._holders: set[asyncio.Task[None]] = set()

    async def run(self, fn: Callable[[], T]) -> T:
        """Run the blocking ``fn`` in a thread once it is this request's turn."""
        await self._lock.acquire()
        try:
            if self._last_end is not None:
                wait = self._last_end + self.min_interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            turn = await self.shared.acquire() if self.shared is not None else None
        except BaseException:
            self._lock.release()
            raise
        worker = asyncio.ensure_future(asyncio.to_thread(fn))
        holder = asyncio.ensure_future(self._hold(worker, turn))
        self._holders.add(holder)
        holder.add_done_callback(self._holders.discard)
        return await asyncio.shield(worker)

    async def _hold(self, worker: asyncio.Future[Any], turn: SharedTurn | None) -> None:
        """Keep the turn until the thread ends, then hand it on."""
        try:
            if turn is not None:
                await turn.hold_while(worker)
            await asyncio.wait({worker})
        finally:
            self._last_end = time.monotonic()
            if worker.done() and not worker.cancelled():
                worker.exception()  # its caller may have gone: the error is theirs, not the loop's
            try:
                if turn is not None:
                    await turn.release()
            finally:
                self._lock.release()

    async def aclose(self) -> None:
        """Wait for requests still on the wire to hand their turn on, then close Redis."""
        if self._holders:
            await asyncio.gather(*self._holders, return_exceptions=True)
        if self.shared is not None:
            await self.shared.aclose()


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
            raise MalformedResponse(str(feed.error))  # 200, but not an Atom feed
        return list(feed.results)

    def close(self) -> None:
        self._session.close()


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
    """arXiv search through one shared ``arxiv.Client`` and one spacing guard per process
    (joined with every other process's when ``redis_url`` is set)."""

    name = "arxiv"

    def __init__(self, config: ArxivConfig) -> None:
        self.config = config
        self.gate = ProviderGate("arxiv", max_concurrency=1)  # shares a 429 pause; spacing does the rest
        shared: SharedSpacing | None = None
        if config.redis_url:
            from agents.providers.shared_limits import SharedSpacing  # redis-py only when used

            shared = SharedSpacing(
                "arxiv",
                redis_url=config.redis_url,
                min_interval=config.min_interval,
                hold_for=config.timeout + HOLD_MARGIN,
                key_prefix=config.redis_key_prefix,
            )
        self.spacing = RequestSpacing(config.min_interval, shared=shared)
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
        )
        return [_hit(result) for result in results]

    async def aclose(self) -> None:
        """Let a request still on the wire finish, then close Redis and the HTTP connection pool."""
        try:
            await self.spacing.aclose()
        finally:
            self._client.close()
