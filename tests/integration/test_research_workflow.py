"""The research workflow end to end: real app and lifespan, stand-in upstreams over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from backend.config import Settings
from tests.standins import ArxivConfig as ArxivStandin
from tests.standins import ChatReply, ChatRequest, StandinServer, max_overlap, min_gap
from tests.standins import OpenAIConfig as OpenAIStandin
from tests.standins import TavilyConfig as TavilyStandin

TOPIC = "Tool use in language model agents"
SOURCE_FIELDS = {"id", "title", "url", "authors", "published", "snippet", "kind"}
AppFactory = Callable[[Settings], Any]


async def research(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """Submit a research workflow and wait for its end; returns the finished record."""
    response = await client.post("/workflows/research?wait=30", json={"topic": TOPIC, **body})
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    assert record["status"] == "completed", record
    return record


def is_plan(request: ChatRequest) -> bool:
    return request.schema_name == "ResearchPlan"


def is_synthesis(request: ChatRequest) -> bool:
    return (
        request.schema_name is None
        and "<sources>" in request.last_user_message
        and "<report>" not in (request.last_user_message)
    )


def is_revision(request: ChatRequest) -> bool:
    return request.schema_name is None and "<report>" in request.last_user_message


# --- the happy path -----------------------------------------------------------------------------


async def test_research_completes_with_arxiv_and_web_sources(client: httpx.AsyncClient, standin: StandinServer) -> None:
    record = await research(client)
    result = record["result"]

    assert result["abstained"] is False
    assert result["explanation"] is None
    assert result["source_errors"] == []
    assert {source["kind"] for source in result["sources"]} == {"arxiv", "web"}
    assert [source["id"] for source in result["sources"]] == [f"S{n}" for n in range(1, len(result["sources"]) + 1)]
    assert all(set(source) == SOURCE_FIELDS for source in result["sources"])
    assert len({source["url"] for source in result["sources"]}) == len(result["sources"])
    assert {query["source"] for query in result["queries"]} == {"arxiv", "web"}
    assert result["citations"]
    assert set(result["citations"]) <= {source["id"] for source in result["sources"]}
    for source_id, count in result["citations"].items():
        assert result["report_markdown"].count(source_id) >= count
    assert result["removed_citations"] == []
    assert record["usage"]["llm_calls"] == 2  # plan + synthesize
    # Every retrieved source came from a search the stand-ins journaled.
    searches = len(standin.requests("arxiv")) + len(standin.requests("tavily"))
    assert searches == len(result["queries"])


@pytest.mark.parametrize("source", ["arxiv", "web"])
async def test_only_the_requested_source_is_searched(
    client: httpx.AsyncClient, standin: StandinServer, source: str
) -> None:
    result = (await research(client, sources=[source]))["result"]

    assert result["sources"]
    assert {item["kind"] for item in result["sources"]} == {source}
    assert {query["source"] for query in result["queries"]} == {source}
    unused = "tavily" if source == "arxiv" else "arxiv"
    assert standin.requests(unused) == []


async def test_queries_respect_max_queries_and_results_per_query(
    client: httpx.AsyncClient, standin: StandinServer
) -> None:
    plan = {"arxiv_queries": ["a one", "a two", "a three"], "web_queries": ["w one", "w two", "w three"]}
    standin.configure(openai=OpenAIStandin(responder=lambda request: plan if is_plan(request) else None))

    result = (await research(client, max_queries=2, max_results_per_query=3))["result"]

    assert [query["query"] for query in result["queries"]] == ["a one", "a two", "w one", "w two"]
    assert len(result["sources"]) == 12
    assert {entry["max_results"] for entry in standin.requests("arxiv") + standin.requests("tavily")} == {3}


async def test_unreadable_plan_falls_back_to_the_topic(client: httpx.AsyncClient, standin: StandinServer) -> None:
    reply = ChatReply(content="Sorry, I will not answer in JSON.")
    standin.configure(openai=OpenAIStandin(responder=lambda request: reply if is_plan(request) else None))

    result = (await research(client))["result"]

    assert result["queries"] == [{"source": "arxiv", "query": TOPIC}, {"source": "web", "query": TOPIC}]
    assert result["sources"]


# --- citations ----------------------------------------------------------------------------------


async def test_unretrieved_citations_never_reach_the_report(client: httpx.AsyncClient, standin: StandinServer) -> None:
    made_up = "Agents call tools [S1] and never fail [S99]. Proof: https://evil.example.com/secret-paper."
    standin.configure(openai=OpenAIStandin(responder=lambda request: made_up if is_synthesis(request) else None))

    result = (await research(client))["result"]

    assert "S99" not in result["report_markdown"]
    assert "evil.example.com" not in result["report_markdown"]
    assert result["report_markdown"] == "Agents call tools [S1] and never fail. Proof:."
    assert "S99" in result["removed_citations"]
    assert "https://evil.example.com/secret-paper" in result["removed_citations"]
    assert all("evil.example.com" not in source["url"] for source in result["sources"])
    assert result["citations"] == {"S1": 1}


# --- partial and total failure ------------------------------------------------------------------


async def test_web_failing_entirely_still_completes_with_arxiv(
    client: httpx.AsyncClient, standin: StandinServer
) -> None:
    standin.configure(tavily=TavilyStandin(fault_rate=1.0, faults=["503"]))

    result = (await research(client))["result"]

    assert result["abstained"] is False
    assert result["sources"]
    assert {source["kind"] for source in result["sources"]} == {"arxiv"}
    web_queries = [query["query"] for query in result["queries"] if query["source"] == "web"]
    assert sorted(error["query"] for error in result["source_errors"]) == sorted(web_queries)
    for error in result["source_errors"]:
        assert error["source"] == "web"
        assert error["code"] == "upstream_unavailable"
        assert error["message"]


async def test_no_results_anywhere_abstains_without_writing(client: httpx.AsyncClient, standin: StandinServer) -> None:
    standin.configure(
        arxiv=ArxivStandin(fault_rate=1.0, faults=["empty"]), tavily=TavilyStandin(fault_rate=1.0, faults=["empty"])
    )

    record = await research(client)
    result = record["result"]

    assert result["abstained"] is True
    assert result["sources"] == []
    assert result["citations"] == {}
    assert result["source_errors"] == []
    assert result["explanation"]
    assert result["report_markdown"] == result["explanation"]
    assert record["usage"]["llm_calls"] == 1  # the plan; no synthesis without sources
    assert len(standin.requests("openai")) == 1


async def test_every_search_failing_abstains_with_the_errors(client: httpx.AsyncClient, standin: StandinServer) -> None:
    standin.configure(
        arxiv=ArxivStandin(fault_rate=1.0, faults=["400"]), tavily=TavilyStandin(fault_rate=1.0, faults=["400"])
    )

    result = (await research(client))["result"]

    assert result["abstained"] is True
    assert result["sources"] == []
    assert {error["source"] for error in result["source_errors"]} == {"arxiv", "web"}
    assert {error["code"] for error in result["source_errors"]} == {"upstream_bad_response"}
    assert "every search failed" in result["explanation"]


# --- configuration and validation ---------------------------------------------------------------


async def test_missing_tavily_key_is_a_503_naming_it(
    make_settings: Callable[..., Settings], app_factory: AppFactory
) -> None:
    client = await app_factory(make_settings(tavily_api_key=None))

    response = await client.post("/workflows/research", json={"topic": TOPIC})

    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "provider_not_configured"
    assert problem["variable"] == "TAVILY_API_KEY"
    assert "TAVILY_API_KEY" in problem["detail"]
    assert 'sources: ["arxiv"]' in problem["detail"]
    # arXiv alone needs no key.
    result = (await research(client, sources=["arxiv"]))["result"]
    assert result["sources"]


@pytest.mark.parametrize(
    "body",
    [
        {"sources": ["foo"]},
        {"sources": []},
        {"sources": ["arxiv", "arxiv"]},
        {"max_queries": 0},
        {"max_queries": 9},
        {"max_results_per_query": 0},
        {"max_results_per_query": 21},
        {"max_tokens_budget": 0},
        {"models": {"draft": "gpt-4o"}},
        {"unexpected": True},
        {"topic": "   "},
        {"topic": "x" * 4001},
    ],
)
async def test_invalid_requests_are_422(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post("/workflows/research", json={"topic": TOPIC, **body})

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


# --- reflection ---------------------------------------------------------------------------------


async def test_reflect_adds_one_critique_and_revision_and_reverifies(
    client: httpx.AsyncClient, standin: StandinServer
) -> None:
    revised = "Revised: agents call tools [S2] and read [S42] at https://made-up.example.org/x."
    standin.configure(openai=OpenAIStandin(responder=lambda request: revised if is_revision(request) else None))

    record = await research(client, reflect=True)
    result = record["result"]

    kinds = [entry.get("schema_name") or "text" for entry in standin.requests("openai")]
    assert kinds == ["ResearchPlan", "text", "Critique", "text"]  # plan, synthesize, critique, revise
    assert record["usage"]["llm_calls"] == 4
    assert result["critique"]["approved"] is False
    assert result["revised"] is True
    assert result["report_markdown"] == "Revised: agents call tools [S2] and read at."
    assert result["citations"] == {"S2": 1}
    assert {"S42", "https://made-up.example.org/x"} <= set(result["removed_citations"])


async def test_without_reflect_there_is_no_critique(client: httpx.AsyncClient, standin: StandinServer) -> None:
    result = (await research(client))["result"]

    assert len(standin.requests("openai")) == 2
    assert result["critique"] is None
    assert result["revised"] is False


# --- concurrency and timing ---------------------------------------------------------------------


async def test_arxiv_stays_polite_across_concurrent_workflows(
    make_settings: Callable[..., Settings], app_factory: AppFactory, standin: StandinServer
) -> None:
    client = await app_factory(make_settings(arxiv_min_interval=0.2))
    # Ten separate runs of one request: bypass the result cache, which would make them one.
    body = {"topic": TOPIC, "sources": ["arxiv"], "max_queries": 1, "max_results_per_query": 2, "cache": "bypass"}

    submitted = await asyncio.gather(*(client.post("/workflows/research", json=body) for _ in range(10)))
    ids = [response.json()["workflow_id"] for response in submitted]
    records = await asyncio.gather(*(client.get(f"/workflows/{workflow_id}?wait=30") for workflow_id in ids))

    assert all(record.json()["status"] == "completed" for record in records)
    entries = standin.requests("arxiv")
    assert len(entries) == 10
    assert max_overlap(entries) == 1
    gap = min_gap(entries)
    assert gap is not None
    assert gap >= 0.2


def three_queries_each(request: ChatRequest) -> dict[str, list[str]] | None:
    if not is_plan(request):
        return None
    return {
        "arxiv_queries": ["agent tool use", "agent planning", "agent benchmarks"],
        "web_queries": ["how agents use tools", "agent planning methods", "agent benchmark results"],
    }


async def warm_up(client: httpx.AsyncClient, standin: StandinServer) -> None:
    """One quick run first, so the timed run does not pay for building the model clients."""
    await research(client, max_queries=1)
    standin.reset()


async def test_searches_run_in_parallel(client: httpx.AsyncClient, standin: StandinServer) -> None:
    # Plan (L), then six searches at once, then synthesis (L). arXiv allows one request at a
    # time, so its three requests take S/3 each here: the arXiv chain and each web search last S.
    llm, search = 0.3, 0.5
    await warm_up(client, standin)
    standin.configure(
        openai=OpenAIStandin(latency=llm, responder=three_queries_each),
        tavily=TavilyStandin(latency=search),
        arxiv=ArxivStandin(latency=search / 3),
    )

    record = await research(client)

    assert len(record["result"]["queries"]) == 6
    assert max_overlap(standin.requests("tavily")) == 3
    assert max_overlap(standin.requests("arxiv")) == 1
    # The stand-ins' journal proves the fan-out (all four search chains in flight at once); a
    # wall-clock bound would only measure how busy the machine is (it failed once under load).
    assert max_overlap(standin.requests("arxiv") + standin.requests("tavily")) == 4


async def test_parallel_searches_with_slow_arxiv(client: httpx.AsyncClient, standin: StandinServer) -> None:
    # Same shape with S for every search: the web searches hide behind arXiv's serial chain.
    llm, search = 0.3, 0.5
    await warm_up(client, standin)
    standin.configure(
        openai=OpenAIStandin(latency=llm, responder=three_queries_each),
        tavily=TavilyStandin(latency=search),
        arxiv=ArxivStandin(latency=search),
    )

    record = await research(client)

    assert record["status"] == "completed"
    # arXiv's chain stays one request at a time while the three web searches run beside it (the
    # journal shows it; a wall-clock bound only measured how busy the machine was).
    assert max_overlap(standin.requests("arxiv")) == 1
    assert max_overlap(standin.requests("tavily")) == 3
    assert max_overlap(standin.requests("arxiv") + standin.requests("tavily")) == 4
