"""The arXiv and Tavily search providers against the stand-in servers (real HTTP on loopback)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from agents.errors import ProviderNotConfigured, UpstreamRateLimited, UpstreamTimeout, UpstreamUnavailable
from agents.providers import ArxivConfig, ArxivSearch, TavilyConfig, TavilySearch
from tests.standins import ArxivConfig as ArxivStandin
from tests.standins import StandinServer, max_overlap, min_gap
from tests.standins import TavilyConfig as TavilyStandin


@pytest.fixture
async def make_arxiv(standin: StandinServer) -> AsyncIterator[Callable[..., ArxivSearch]]:
    """ArxivSearch instances pointed at the stand-in (no spacing unless asked), closed afterwards."""
    made: list[ArxivSearch] = []

    def make(**overrides: Any) -> ArxivSearch:
        values: dict[str, Any] = {"api_url": standin.arxiv_query_url, "min_interval": 0.0, **overrides}
        provider = ArxivSearch(ArxivConfig(**values))
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


@pytest.fixture
async def make_tavily(standin: StandinServer) -> AsyncIterator[Callable[..., TavilySearch]]:
    """TavilySearch instances pointed at the stand-in, closed afterwards."""
    made: list[TavilySearch] = []

    def make(**overrides: Any) -> TavilySearch:
        values: dict[str, Any] = {"api_key": "tvly-test-key", "base_url": standin.tavily_base_url, **overrides}
        provider = TavilySearch(TavilyConfig(**values))
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


# --- arXiv --------------------------------------------------------------------------------------


async def test_arxiv_results_are_parsed(standin: StandinServer, make_arxiv: Callable[..., ArxivSearch]) -> None:
    hits = await make_arxiv().search("tool use agents", max_results=3)

    assert len(hits) == 3
    for hit in hits:
        assert hit.kind == "arxiv"
        assert hit.url.startswith("https://arxiv.org/abs/24")
        assert not hit.url.endswith("v1")  # versionless, so any version matches it
        assert "Tool Use Agents" in hit.title
        assert hit.authors
        assert hit.published is not None
        assert hit.published.startswith("2024-")
        assert hit.snippet.startswith("We study tool use agents")
    (entry,) = standin.requests("arxiv")  # one request for one page
    assert entry["search_query"] == "tool use agents"
    assert entry["max_results"] == 3


async def test_arxiv_requests_never_overlap_and_keep_their_distance(
    standin: StandinServer, make_arxiv: Callable[..., ArxivSearch]
) -> None:
    provider = make_arxiv(min_interval=0.3)
    queries = [f"topic number {n}" for n in range(5)]

    results = await asyncio.gather(*(provider.search(query, max_results=2) for query in queries))

    assert all(len(hits) == 2 for hits in results)
    entries = standin.requests("arxiv")
    assert len(entries) == 5
    assert max_overlap(entries) == 1
    gap = min_gap(entries)
    assert gap is not None
    assert gap >= 0.3


async def test_arxiv_request_holds_its_turn_until_the_thread_ends(
    standin: StandinServer, make_arxiv: Callable[..., ArxivSearch]
) -> None:
    # A caller that gives up must not let the next request start while its own is on the wire.
    standin.configure(arxiv=ArxivStandin(latency=0.4))
    provider = make_arxiv()

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(provider.search("impatient caller", max_results=1), timeout=0.1)
    hits = await provider.search("patient caller", max_results=1)

    assert len(hits) == 1
    entries = standin.requests("arxiv")
    assert len(entries) == 2
    assert max_overlap(entries) == 1


async def test_arxiv_empty_feed_is_asked_again_once(
    standin: StandinServer, make_arxiv: Callable[..., ArxivSearch]
) -> None:
    standin.configure(arxiv=ArxivStandin(fail_first_n=1, fail_first_fault="empty"))

    hits = await make_arxiv().search("sporadic emptiness", max_results=2)

    assert len(hits) == 2
    assert [entry["fault"] for entry in standin.requests("arxiv")] == ["empty", None]


async def test_arxiv_empty_twice_counts_as_empty(
    standin: StandinServer, make_arxiv: Callable[..., ArxivSearch]
) -> None:
    standin.configure(arxiv=ArxivStandin(fault_rate=1.0, faults=["empty"]))

    assert await make_arxiv().search("nothing here", max_results=2) == []
    assert len(standin.requests("arxiv")) == 2


async def test_arxiv_503_is_retried(standin: StandinServer, make_arxiv: Callable[..., ArxivSearch]) -> None:
    standin.configure(arxiv=ArxivStandin(fail_first_n=1, fail_first_fault="503"))

    hits = await make_arxiv().search("flaky upstream", max_results=2)

    assert len(hits) == 2
    assert [entry["status"] for entry in standin.requests("arxiv")] == [503, 200]


async def test_arxiv_429_waits_as_the_server_asked(
    standin: StandinServer, make_arxiv: Callable[..., ArxivSearch]
) -> None:
    standin.configure(arxiv=ArxivStandin(fail_first_n=1, fail_first_fault="429", retry_after_seconds=0.4))

    hits = await make_arxiv().search("slow down", max_results=1)

    assert len(hits) == 1
    first, second = standin.requests("arxiv")
    assert first["status"] == 429
    assert second["started_at"] - first["finished_at"] >= 0.4


async def test_arxiv_503_every_time_is_unavailable(
    standin: StandinServer, make_arxiv: Callable[..., ArxivSearch]
) -> None:
    standin.configure(arxiv=ArxivStandin(fault_rate=1.0, faults=["503"]))

    with pytest.raises(UpstreamUnavailable) as caught:
        await make_arxiv(max_retries=1).search("down for good", max_results=1)

    assert caught.value.provider == "arxiv"
    assert caught.value.http_status == 503
    assert len(standin.requests("arxiv")) == 2


async def test_arxiv_request_timeout_is_enforced(
    standin: StandinServer, make_arxiv: Callable[..., ArxivSearch]
) -> None:
    standin.configure(arxiv=ArxivStandin(fail_first_n=1, fail_first_fault="timeout", hang_seconds=30))
    started = time.monotonic()

    with pytest.raises(UpstreamTimeout) as caught:
        await make_arxiv(timeout=0.3, max_retries=0).search("hanging server", max_results=1)

    assert time.monotonic() - started < 15  # the 0.3 s timeout, not the 30 s hang, ended it
    assert caught.value.provider == "arxiv"
    assert caught.value.retryable


async def test_arxiv_timeout_is_retried(standin: StandinServer, make_arxiv: Callable[..., ArxivSearch]) -> None:
    standin.configure(arxiv=ArxivStandin(fail_first_n=1, fail_first_fault="timeout", hang_seconds=5))

    hits = await make_arxiv(timeout=0.3, max_retries=1).search("hanging once", max_results=1)

    assert len(hits) == 1
    assert len(standin.requests("arxiv")) == 2


# --- Tavily -------------------------------------------------------------------------------------


async def test_tavily_results_are_parsed(standin: StandinServer, make_tavily: Callable[..., TavilySearch]) -> None:
    hits = await make_tavily().search("retrieval augmented generation", max_results=4)

    assert len(hits) == 4
    for hit in hits:
        assert hit.kind == "web"
        assert hit.url.startswith("https://")
        assert "Retrieval Augmented Generation" in hit.title
        assert "retrieval augmented generation" in hit.snippet
        assert hit.authors == ()
    assert len({hit.url for hit in hits}) == 4
    (entry,) = standin.requests("tavily")
    assert entry["max_results"] == 4


async def test_tavily_query_is_cut_to_400_characters(
    standin: StandinServer, make_tavily: Callable[..., TavilySearch]
) -> None:
    long_query = " ".join(f"word{n}" for n in range(200))  # about 1,300 characters
    assert len(long_query) > 400

    await make_tavily().search(long_query, max_results=1)

    (entry,) = standin.requests("tavily")
    assert entry["search_query"] == long_query[:400]


async def test_tavily_429_is_rate_limited_and_retried(
    standin: StandinServer, make_tavily: Callable[..., TavilySearch]
) -> None:
    standin.configure(tavily=TavilyStandin(fail_first_n=1, fail_first_fault="429"))

    hits = await make_tavily().search("busy api", max_results=2)

    assert len(hits) == 2
    assert [entry["status"] for entry in standin.requests("tavily")] == [429, 200]


async def test_tavily_429_every_time_raises_upstream_rate_limited(
    standin: StandinServer, make_tavily: Callable[..., TavilySearch]
) -> None:
    standin.configure(tavily=TavilyStandin(fault_rate=1.0, faults=["429"]))

    with pytest.raises(UpstreamRateLimited) as caught:
        await make_tavily(max_retries=1).search("very busy api", max_results=2)

    assert caught.value.provider == "tavily"
    assert caught.value.retryable
    assert len(standin.requests("tavily")) == 2


async def test_tavily_timeout_is_classified(standin: StandinServer, make_tavily: Callable[..., TavilySearch]) -> None:
    standin.configure(tavily=TavilyStandin(fail_first_n=1, fail_first_fault="timeout", hang_seconds=5))

    with pytest.raises(UpstreamTimeout) as caught:
        await make_tavily(timeout=0.3, max_retries=0).search("hanging api", max_results=1)

    assert caught.value.provider == "tavily"


async def test_tavily_concurrency_is_capped(standin: StandinServer, make_tavily: Callable[..., TavilySearch]) -> None:
    standin.configure(tavily=TavilyStandin(latency=0.2))
    provider = make_tavily(max_concurrency=2)

    await asyncio.gather(*(provider.search(f"query {n}", max_results=1) for n in range(5)))

    assert max_overlap(standin.requests("tavily")) == 2


async def test_tavily_without_key_is_not_configured(
    standin: StandinServer, make_tavily: Callable[..., TavilySearch]
) -> None:
    provider = make_tavily(api_key=None)

    assert not provider.configured
    with pytest.raises(ProviderNotConfigured) as caught:
        await provider.search("anything", max_results=1)

    assert caught.value.extra["variable"] == "TAVILY_API_KEY"
    assert 'sources: ["arxiv"]' in caught.value.detail
    assert standin.requests("tavily") == []
