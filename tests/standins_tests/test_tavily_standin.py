"""The Tavily stand-in driven through ``tavily.AsyncTavilyClient``."""

from __future__ import annotations

import pytest
from tavily import AsyncTavilyClient, InvalidAPIKeyError, UsageLimitExceededError

from tests.standins import StandinServer, TavilyConfig


def _client(s: StandinServer, api_key: str = "tvly-test") -> AsyncTavilyClient:
    return AsyncTavilyClient(api_key=api_key, api_base_url=s.tavily_base_url)


@pytest.mark.asyncio
async def test_search_returns_the_real_shape(standins: StandinServer) -> None:
    async with _client(standins) as client:
        answer = await client.search("durable execution for LLM agents", max_results=3)
        again = await client.search("durable execution for LLM agents", max_results=3)
        other = await client.search("protein structure prediction")
    assert set(answer) >= {
        "query",
        "follow_up_questions",
        "answer",
        "images",
        "results",
        "response_time",
        "request_id",
    }
    assert answer["query"] == "durable execution for LLM agents"
    results = answer["results"]
    assert len(results) == 3
    assert len(other["results"]) == 5
    assert set(results[0]) == {"title", "url", "content", "score", "raw_content"}
    assert [r["url"] for r in results] == [r["url"] for r in again["results"]]
    assert len({r["url"].split("/")[2] for r in results}) > 1  # several domains
    assert "durable" in results[0]["url"]
    assert results[0]["score"] > results[-1]["score"]
    (entry, _, _) = standins.requests("tavily")
    assert entry["search_query"] == "durable execution for LLM agents"
    assert entry["max_results"] == 3


@pytest.mark.asyncio
async def test_invalid_key_is_401(standins: StandinServer) -> None:
    async with _client(standins, api_key="not-a-tavily-key") as client:
        with pytest.raises(InvalidAPIKeyError):
            await client.search("anything")


@pytest.mark.asyncio
async def test_faults_reach_the_client(standins: StandinServer) -> None:
    standins.configure(tavily=TavilyConfig(fail_first_n=1, fail_first_fault="429"))
    async with _client(standins) as client:
        with pytest.raises(UsageLimitExceededError):
            await client.search("first call fails")
        ok = await client.search("second call works")
    assert ok["results"]
    standins.configure(tavily=TavilyConfig(fault_rate=1.0, faults=["empty"]))
    async with _client(standins) as client:
        empty = await client.search("nothing comes back")
    assert empty["results"] == []
