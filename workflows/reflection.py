"""The reflection workflow: draft → critique → (revise → critique)* → finalize.

Stops when the critique approves, the score reaches the threshold, ``max_iterations``
revisions were made, or a revision comes back identical to its draft. Every draft is kept
with its critique; the result's ``final`` is the best-scored draft, not merely the last.
Its graph (state, nodes, builder) is ``workflows.graphs.reflection``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workflows.base import (
    CacheOption,
    ModelName,
    TokenBudget,
    Topic,
    WebhookOption,
    WorkflowSpec,
    result_in_state,
    topic_input,
)

if TYPE_CHECKING:
    from agents.providers import Providers

__all__ = ["SPEC", "ReflectionModels", "ReflectionRequest", "StopReason", "build_result", "stop_reason"]

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


# --- the spec the executor runs -----------------------------------------------------------------


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
    graph_module="workflows.graphs.reflection",
    initial_state=topic_input,
    result=result_in_state,
    partial_result=_partial_result,
    progress=_progress,
    required_providers=_required,
)
