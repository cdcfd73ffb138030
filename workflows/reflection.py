"""The reflection workflow: draft → critique → (revise → critique)* → finalize.

Stops when the critique approves, the score reaches the threshold, ``max_iterations``
revisions were made, or a revision comes back identical to its draft. Every draft is kept
with its critique; the result's ``final`` is the best-scored draft, not merely the last.
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
from pydantic import BaseModel, ConfigDict, Field

from agents.providers import Providers
from agents.reflection import CritiqueAgent, DraftAgent, ReviseAgent
from workflows.base import (
    CacheOption,
    ModelName,
    TokenBudget,
    Topic,
    WebhookOption,
    WorkflowSpec,
    add_usage,
    instrumented,
    resolve_models,
    result_in_state,
    topic_input,
)

__all__ = ["SPEC", "ReflectionModels", "ReflectionRequest", "StopReason", "build_graph"]

StopReason = Literal["approved", "score_threshold", "max_iterations", "no_change"]
#: The agent roles this workflow calls models for, with their default model (None: AGENTFLOW_MODEL).
ROLES: dict[str, str | None] = dict.fromkeys(("draft", "critique", "revise"))


class ReflectionModels(BaseModel):
    """Optional model per agent role (defaults: ``AGENTFLOW_MODEL_<ROLE>``, then ``AGENTFLOW_MODEL``)."""

    model_config = ConfigDict(extra="forbid")
    draft: ModelName | None = None
    critique: ModelName | None = None
    revise: ModelName | None = None


class ReflectionRequest(BaseModel):
    """Body of ``POST /workflows/reflection``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"topic": "Explain retrieval-augmented generation to a product manager", "max_iterations": 2}]
        },
    )
    topic: Topic = Field(description="What to write about (1–4000 characters after trimming).")
    max_iterations: int = Field(default=3, ge=1, le=5, description="Most revisions to make.")
    score_threshold: float = Field(default=8, ge=0, le=10, description="Stop once a critique scores this high.")
    models: ReflectionModels | None = Field(default=None, description="Model per role, overriding the defaults.")
    max_tokens_budget: TokenBudget = None
    cache: CacheOption = "use"
    webhook: WebhookOption = None


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


def stop_reason(state: Mapping[str, Any], max_iterations: int, score_threshold: float) -> StopReason | None:
    """Why the loop should stop after the latest step, or None to keep revising."""
    if state.get("unchanged"):
        return "no_change"
    critiques = state.get("critiques") or []
    if not critiques:
        return None
    latest = critiques[-1]
    if latest.get("approved"):
        return "approved"
    if latest.get("score") is not None and latest["score"] >= score_threshold:
        return "score_threshold"
    if len(state.get("drafts") or []) - 1 >= max_iterations:
        return "max_iterations"
    return None


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


def build_result(state: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """The public result; also used for the best-so-far result of a run stopped early."""
    critiques = {c["version"]: c for c in state.get("critiques") or []}
    drafts = [{**d, "critique": critiques.get(d["version"])} for d in state.get("drafts") or []]
    if not drafts:
        return {"final": None, "best_score": None, "iterations": 0, "stop_reason": reason, "drafts": []}

    def rank(item: dict[str, Any]) -> tuple[float, int]:
        score = (item["critique"] or {}).get("score")
        return (-1.0 if score is None else float(score), item["version"])  # ties go to the later draft

    best = max(drafts, key=rank)
    best_score = (best["critique"] or {}).get("score")
    return {
        "final": best["text"],
        "best_version": best["version"],
        "best_score": best_score,
        "iterations": len(drafts) - 1,
        "stop_reason": reason,
        "drafts": drafts,
    }


# --- routing ------------------------------------------------------------------------------------


def after_critique(state: ReflectionState, runtime: Runtime[ReflectionContext]) -> str:
    ctx = runtime.context
    return "finalize" if stop_reason(state, ctx.max_iterations, ctx.score_threshold) else "revise"


def after_revise(state: ReflectionState) -> str:
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


# --- the spec the executor runs -----------------------------------------------------------------


def _context(request: BaseModel, providers: Providers, defaults: Mapping[str, str]) -> ReflectionContext:
    assert isinstance(request, ReflectionRequest)
    return ReflectionContext(
        drafter=DraftAgent(providers.chat),
        critic=CritiqueAgent(providers.chat),
        reviser=ReviseAgent(providers.chat),
        models=resolve_models(request.models, defaults),
        max_iterations=request.max_iterations,
        score_threshold=request.score_threshold,
    )


def _partial_result(state: Mapping[str, Any]) -> dict[str, Any] | None:
    return build_result(state, "budget_exceeded") if state.get("drafts") else None


def _progress(node: str, state: Mapping[str, Any]) -> dict[str, Any]:
    return {"node": node, "iteration": max(0, len(state.get("drafts") or []) - 1)}


def _required(request: BaseModel, providers: Providers) -> None:
    providers.chat.require_configured()


SPEC = WorkflowSpec(
    name="reflection",
    roles=ROLES,
    request_model=ReflectionRequest,
    compile=build_graph,
    make_context=_context,
    initial_state=topic_input,
    result=result_in_state,
    partial_result=_partial_result,
    progress=_progress,
    required_providers=_required,
)
