"""The reflection graph on its own (no HTTP server of ours), the chat model faked at the HTTP edge."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agents.providers import ChatProvider, OpenAIConfig, Providers
from tests.helpers import reflection_responder
from tests.standins import OpenAIConfig as StandinOpenAI
from tests.standins import StandinServer
from workflows.graphs.reflection import build_graph
from workflows.reflection import SPEC, ReflectionRequest, build_result, stop_reason

DEFAULTS = {"draft": "gpt-4o-mini", "critique": "gpt-4o-mini", "revise": "gpt-4o-mini"}


async def run_reflection(standin: StandinServer, **request: Any) -> dict[str, Any]:
    chat = ChatProvider(OpenAIConfig(api_key="sk-test", base_url=standin.openai_base_url, max_retries=0))
    try:
        body = ReflectionRequest(topic="Why is the sky blue?", **request)
        graph = build_graph(InMemorySaver())
        state = await graph.ainvoke(
            SPEC.initial_state(body),
            {"configurable": {"thread_id": "t1"}},
            context=SPEC.make_context(body, Providers(chat=chat), DEFAULTS),
        )
        return dict(state)
    finally:
        await chat.aclose()


async def test_stops_when_score_reaches_threshold(standin: StandinServer) -> None:
    standin.configure(openai=StandinOpenAI(responder=reflection_responder([5, 7, 9])))
    state = await run_reflection(standin, max_iterations=5, score_threshold=8)
    result = state["result"]
    assert result["stop_reason"] == "score_threshold"
    assert [d["critique"]["score"] for d in result["drafts"]] == [5, 7, 9]
    assert result["iterations"] == 2
    assert result["final"].startswith("Draft 3")
    assert state["usage"]["llm_calls"] == 6  # draft + 3 critiques + 2 revisions


async def test_stops_when_approved_below_threshold(standin: StandinServer) -> None:
    standin.configure(openai=StandinOpenAI(responder=reflection_responder([6, 7], approved_at=7)))
    result = (await run_reflection(standin, max_iterations=5, score_threshold=9))["result"]
    assert result["stop_reason"] == "approved"
    assert result["best_score"] == 7


async def test_max_iterations_keeps_best_not_last(standin: StandinServer) -> None:
    standin.configure(openai=StandinOpenAI(responder=reflection_responder([6, 7.5, 4])))
    result = (await run_reflection(standin, max_iterations=2, score_threshold=9))["result"]
    assert result["stop_reason"] == "max_iterations"
    assert len(result["drafts"]) == 3
    assert result["best_score"] == 7.5
    assert result["best_version"] == 2
    assert result["final"] == result["drafts"][1]["text"]


async def test_identical_revision_stops_the_loop(standin: StandinServer) -> None:
    standin.configure(openai=StandinOpenAI(responder=reflection_responder([5, 5, 5], revise=lambda draft: draft)))
    state = await run_reflection(standin, max_iterations=3, score_threshold=9)
    assert state["result"]["stop_reason"] == "no_change"
    assert len(state["result"]["drafts"]) == 1
    assert state["usage"]["llm_calls"] == 3


async def test_unparseable_critique_counts_as_not_approved(standin: StandinServer) -> None:
    standin.configure(openai=StandinOpenAI(responder=reflection_responder([None, 9])))
    result = (await run_reflection(standin, max_iterations=3, score_threshold=8))["result"]
    first, second = result["drafts"]
    assert first["critique"]["approved"] is False
    assert first["critique"]["score"] is None
    assert first["critique"]["parse_error"]
    assert second["critique"]["score"] == 9
    assert result["stop_reason"] == "score_threshold"


async def test_models_per_role_reach_the_server(standin: StandinServer) -> None:
    standin.configure(openai=StandinOpenAI(responder=reflection_responder([9])))
    await run_reflection(standin, models={"draft": "gpt-4.1", "critique": "gpt-4o"})
    models = [entry["model"] for entry in standin.requests("openai")]
    assert models == ["gpt-4.1", "gpt-4o"]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"unchanged": True, "critiques": [{"score": 1}]}, "no_change"),
        ({"drafts": [{}], "critiques": [{"score": 2, "approved": True}]}, "approved"),
        ({"drafts": [{}], "critiques": [{"score": 8, "approved": False}]}, "score_threshold"),
        ({"drafts": [{}, {}, {}], "critiques": [{"score": 1}] * 3}, "max_iterations"),
        ({"drafts": [{}, {}], "critiques": [{"score": None}] * 2}, None),
        ({"drafts": [{}]}, None),
    ],
)
def test_stop_reason(state: dict[str, Any], expected: str | None) -> None:
    assert stop_reason(state, max_iterations=2, score_threshold=8) == expected


def test_build_result_breaks_ties_toward_the_later_draft() -> None:
    state = {
        "drafts": [{"version": 1, "text": "a"}, {"version": 2, "text": "b"}],
        "critiques": [{"version": 1, "score": 7}, {"version": 2, "score": 7}],
    }
    assert build_result(state, "max_iterations")["final"] == "b"
