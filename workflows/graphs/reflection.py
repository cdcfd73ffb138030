"""The reflection workflow's graph: draft → critique → (revise → critique)* → finalize.

What a run accepts and returns is declared in ``workflows.reflection``; this module is imported
when the first run needs it (it loads LangGraph and the agents).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel

from agents.providers import Providers
from agents.reflection import CritiqueAgent, DraftAgent, ReviseAgent
from workflows.base import WorkflowGraph, add_usage, instrumented, resolve_models
from workflows.reflection import ReflectionRequest, build_result, stop_reason

__all__ = ["GRAPH", "ReflectionContext", "ReflectionState", "build_graph", "make_context"]


@dataclass(frozen=True, slots=True)
class ReflectionContext:
    """Per-run knobs and agents; rebuilt from the stored request when a run resumes."""

    drafter: DraftAgent
    critic: CritiqueAgent
    reviser: ReviseAgent
    models: Mapping[str, str]
    max_iterations: int
    score_threshold: float


class ReflectionState(TypedDict, total=False):
    topic: str
    drafts: Annotated[list[dict[str, Any]], operator.add]
    critiques: Annotated[list[dict[str, Any]], operator.add]
    unchanged: bool
    usage: Annotated[dict[str, Any], add_usage]
    result: dict[str, Any]


def _normalized(text: str) -> str:
    return " ".join(text.split())


# --- nodes --------------------------------------------------------------------------------------


@instrumented("draft")
async def draft(state: ReflectionState, runtime: Runtime[ReflectionContext]) -> dict[str, Any]:
    ctx = runtime.context
    outcome = await ctx.drafter.execute(topic=state["topic"], model=ctx.models["draft"])
    return {"drafts": [{"version": 1, "text": outcome.text}], "usage": outcome.usage.as_dict()}


@instrumented("critique")
async def critique(state: ReflectionState, runtime: Runtime[ReflectionContext]) -> dict[str, Any]:
    ctx = runtime.context
    latest = state["drafts"][-1]
    outcome = await ctx.critic.execute(
        topic=state["topic"], draft=latest["text"], version=latest["version"], model=ctx.models["critique"]
    )
    # An unreadable critique counts as "not approved": the loop goes on (or hits its cap).
    return {"critiques": [{"version": latest["version"], **outcome.verdict()}], "usage": outcome.usage.as_dict()}


@instrumented("revise")
async def revise(state: ReflectionState, runtime: Runtime[ReflectionContext]) -> dict[str, Any]:
    ctx = runtime.context
    latest, review = state["drafts"][-1], state["critiques"][-1]
    outcome = await ctx.reviser.execute(
        topic=state["topic"],
        draft=latest["text"],
        version=latest["version"],
        score=review.get("score"),
        issues=review.get("issues") or [],
        model=ctx.models["revise"],
    )
    unchanged = _normalized(outcome.text) == _normalized(latest["text"])
    update: dict[str, Any] = {"usage": outcome.usage.as_dict(), "unchanged": unchanged}
    if not unchanged:
        update["drafts"] = [{"version": latest["version"] + 1, "text": outcome.text}]
    return update


@instrumented("finalize")
async def finalize(state: ReflectionState, runtime: Runtime[ReflectionContext]) -> dict[str, Any]:
    ctx = runtime.context
    reason = stop_reason(state, ctx.max_iterations, ctx.score_threshold) or "max_iterations"
    return {"result": build_result(state, reason)}


# --- routing ------------------------------------------------------------------------------------
# Routers are coroutines, though they only compare: LangGraph runs a plain function in a worker
# thread (two thread hand-offs per call, ~0.2 ms of a run's CPU), a coroutine on the loop.


async def after_critique(state: ReflectionState, runtime: Runtime[ReflectionContext]) -> str:
    ctx = runtime.context
    return "finalize" if stop_reason(state, ctx.max_iterations, ctx.score_threshold) else "revise"


async def after_revise(state: ReflectionState) -> str:
    return "finalize" if state.get("unchanged") else "critique"


def build_graph(checkpointer: BaseCheckpointSaver[Any] | None = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(ReflectionState, context_schema=ReflectionContext)
    graph.add_node("draft", draft)
    graph.add_node("critique", critique)
    graph.add_node("revise", revise)
    graph.add_node("finalize", finalize)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "critique")
    graph.add_conditional_edges("critique", after_critique, ["revise", "finalize"])
    graph.add_conditional_edges("revise", after_revise, ["critique", "finalize"])
    graph.add_edge("finalize", END)
    return graph.compile(checkpointer=checkpointer)


# --- what the runner calls ---------------------------------------------------------------------


def make_context(request: BaseModel, providers: Providers, defaults: Mapping[str, str]) -> ReflectionContext:
    assert isinstance(request, ReflectionRequest)
    return ReflectionContext(
        drafter=DraftAgent(providers.chat),
        critic=CritiqueAgent(providers.chat),
        reviser=ReviseAgent(providers.chat),
        models=resolve_models(request.models, defaults),
        max_iterations=request.max_iterations,
        score_threshold=request.score_threshold,
    )


GRAPH = WorkflowGraph(compile=build_graph, make_context=make_context)
