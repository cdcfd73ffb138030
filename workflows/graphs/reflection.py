"""The reflection workflow's graph: draft → critique → (revise → critique)* → finalize.

What a run accepts and returns is declared in ``workflows.reflection``; this module is imported
when the first run needs it (it loads LangGraph and the agents).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command
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
# critique and revise name the next node themselves (``Command(goto=...)``, drawn as the same
# conditional edges) rather than leaving it to a router: LangGraph runs a router as a traced run
# of its own after the node (callbacks, a task, the state read again), ~0.17 ms per decision.


@instrumented("draft")
async def draft(state: ReflectionState, runtime: Runtime[ReflectionContext]) -> dict[str, Any]:
    ctx = runtime.context
    outcome = await ctx.drafter.execute(topic=state["topic"], model=ctx.models["draft"])
    return {"drafts": [{"version": 1, "text": outcome.text}], "usage": outcome.usage.as_dict()}


@instrumented("critique")
async def critique(
    state: ReflectionState, runtime: Runtime[ReflectionContext]
) -> Command[Literal["revise", "finalize"]]:
    ctx = runtime.context
    latest = state["drafts"][-1]
    outcome = await ctx.critic.execute(
        topic=state["topic"], draft=latest["text"], version=latest["version"], model=ctx.models["critique"]
    )
    # An unreadable critique counts as "not approved": the loop goes on (or hits its cap).
    review = {"version": latest["version"], **outcome.verdict()}
    reviewed = {**state, "critiques": [*state.get("critiques", []), review]}  # the state after this update
    done = stop_reason(reviewed, ctx.max_iterations, ctx.score_threshold) is not None
    return Command(
        update={"critiques": [review], "usage": outcome.usage.as_dict()}, goto="finalize" if done else "revise"
    )


@instrumented("revise")
async def revise(
    state: ReflectionState, runtime: Runtime[ReflectionContext]
) -> Command[Literal["critique", "finalize"]]:
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
    return Command(update=update, goto="finalize" if unchanged else "critique")


@instrumented("finalize")
async def finalize(state: ReflectionState, runtime: Runtime[ReflectionContext]) -> dict[str, Any]:
    ctx = runtime.context
    reason = stop_reason(state, ctx.max_iterations, ctx.score_threshold) or "max_iterations"
    return {"result": build_result(state, reason)}


def build_graph(checkpointer: BaseCheckpointSaver[Any] | None = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(ReflectionState, context_schema=ReflectionContext)
    graph.add_node("draft", draft)
    graph.add_node("critique", critique)
    graph.add_node("revise", revise)
    graph.add_node("finalize", finalize)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "critique")
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
