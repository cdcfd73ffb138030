"""The planner workflow: plan → [human approval] → supervisor ⇄ parallel step agents → cited deliverable.

plan (structured output: steps with id, kind, instruction, depends_on) → review_plan (with
``approve_plan: true`` the run stops here with LangGraph's ``interrupt`` and waits for a human to
approve, edit or reject the plan) → supervise → (one ``Send`` per ready step, all in the same
superstep, so independent steps run in parallel) research_step | write_step | critique_step →
supervise → … → synthesize → finalize.

- The supervisor routes each step by its ``kind`` to that kind's agent: no model call decides the
  route, the plan already did. A step is ready once every step it depends on has an output; a
  step that is not in the (possibly edited) plan never runs.
- ``research`` steps run the research workflow's graph (arXiv/web searches in parallel, a cited
  summary with citations verified) inside the step; ``write`` steps draft text from their inputs;
  ``critique`` steps are reviewed by the reflection workflow's critic.
- Each research step cites its own sources as ``[S#]``; the supervisor gives every newly retrieved
  source a run-wide id (the same source found twice keeps one id) and rewrites the step's output
  to those ids before any later step reads it. ``synthesize`` writes the deliverable from every
  output and ``verify_citations`` keeps only citations of retrieved sources, as in research.
- Limits: ``max_steps`` (a longer plan from the model is cut, an edited one is refused), the
  token budget and the deadline (the run's, restarted when it resumes after waiting).

Its graph (state, nodes, builder) is ``workflows.graphs.planner``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from agents.citation_policy import UnsupportedPolicy
from agents.plans import MAX_PLAN_STEPS, Plan
from workflows import research
from workflows.base import (
    CacheOption,
    EditProblem,
    InterruptPoint,
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

__all__ = ["PLAN_APPROVAL", "SPEC", "PlannerModels", "PlannerRequest", "build_result", "check_plan"]

#: The agent roles this workflow calls models for, with their default model (None: AGENTFLOW_MODEL).
ROLES: dict[str, str | None] = dict.fromkeys(("plan", "research", "write", "critique", "synthesize"))
#: The ``pending.kind`` of the plan-approval question.
PLAN_APPROVAL = "plan_approval"


class PlannerModels(BaseModel):
    """Optional model per agent role (defaults: ``AGENTFLOW_MODEL_<ROLE>``, then ``AGENTFLOW_MODEL``)."""

    model_config = ConfigDict(extra="forbid")
    plan: ModelName | None = None
    research: ModelName | None = None
    write: ModelName | None = None
    critique: ModelName | None = None
    synthesize: ModelName | None = None


class PlannerRequest(BaseModel):
    """Body of ``POST /workflows/planner``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"topic": "A briefing on retrieval-augmented generation for code assistants", "approve_plan": True}
            ]
        },
    )
    topic: Topic = Field(description="The goal to plan for and deliver (1–4000 characters after trimming).")
    approve_plan: bool = Field(
        default=False,
        description=(
            "Stop after planning (status waiting, the plan under pending) until POST /workflows/{id}/resume "
            "approves, edits or rejects it."
        ),
    )
    max_steps: int = Field(default=8, ge=1, le=MAX_PLAN_STEPS, description="Most steps the plan may have.")
    sources: research.SourceList = Field(
        default_factory=lambda: list(research.SOURCES),
        min_length=1,
        max_length=len(research.SOURCES),
        description='Where research steps search: "arxiv" and/or "web" (web needs TAVILY_API_KEY).',
    )
    max_queries: int = Field(default=2, ge=1, le=8, description="Most search queries per source and research step.")
    max_results_per_query: int = Field(default=5, ge=1, le=20, description="Most results per search query.")
    unsupported_claims: UnsupportedPolicy = Field(
        default="flag",
        description='A sentence whose only citations were removed: "flag" keeps it, "drop" removes it.',
    )
    models: PlannerModels | None = Field(default=None, description="Model per role, overriding the defaults.")
    max_tokens_budget: TokenBudget = None
    cache: CacheOption = "use"
    webhook: WebhookOption = None


# --- the plan -----------------------------------------------------------------------------------


def check_plan(request: BaseModel, plan: BaseModel) -> None:
    """Refuse an edited plan the run cannot execute (the interrupt point's ``check_edit``).

    Raises:
        EditProblem: naming where inside the plan: more than ``max_steps`` steps, a repeated id, or
            a dependency that is not an earlier step (this also rules out cycles).
    """
    assert isinstance(request, PlannerRequest)
    assert isinstance(plan, Plan)
    if len(plan.steps) > request.max_steps:
        raise EditProblem(
            ("steps",), f"The plan has {len(plan.steps)} steps; this run allows {request.max_steps}.", "too_long"
        )
    earlier: set[str] = set()
    for index, step in enumerate(plan.steps):
        if step.id in earlier:
            raise EditProblem(("steps", index, "id"), f"Step id {step.id!r} is used twice.", "duplicate")
        for dependency in step.depends_on:
            if dependency not in earlier:
                raise EditProblem(
                    ("steps", index, "depends_on"),
                    f"Step {step.id!r} depends on {dependency!r}, which is not an earlier step of the plan.",
                    "unknown_step",
                )
        earlier.add(step.id)


def build_result(state: Mapping[str, Any]) -> dict[str, Any]:
    """The public result; also the best-so-far result of a run stopped by its token budget."""
    outputs = state.get("outputs") or {}
    steps = (state.get("plan") or {}).get("steps") or []
    return {
        "report_markdown": state.get("report", ""),
        "sources": state.get("sources") or [],
        "citations": state.get("citations") or {},
        "removed_citations": list(dict.fromkeys(state.get("removed_citations") or [])),
        "unsupported_claims": state.get("unsupported_claims") or [],
        "plan": {"steps": steps},
        "plan_source": state.get("plan_source"),
        "steps": [
            {**step, "status": "done" if step["id"] in outputs else "not_run", "output": outputs.get(step["id"])}
            for step in steps
        ],
    }


# --- the spec the executor runs -----------------------------------------------------------------


def _partial_result(state: Mapping[str, Any]) -> dict[str, Any] | None:
    return build_result(state) if state.get("outputs") else None


def _progress(node: str, state: Mapping[str, Any]) -> dict[str, Any]:
    return {"node": node, "iteration": len(state.get("outputs") or {}), "sources": len(state.get("sources") or [])}


def _required(request: BaseModel, providers: Providers) -> None:
    assert isinstance(request, PlannerRequest)
    # Research steps may search any requested source: check them now, not mid-run.
    research.SPEC.required_providers(research.ResearchRequest(topic=request.topic, sources=request.sources), providers)


def _asks_approval(request: BaseModel) -> bool:
    return isinstance(request, PlannerRequest) and request.approve_plan


SPEC = WorkflowSpec(
    name="planner",
    roles=ROLES,
    request_model=PlannerRequest,
    graph_module="workflows.graphs.planner",
    initial_state=topic_input,
    result=result_in_state,
    partial_result=_partial_result,
    progress=_progress,
    required_providers=_required,
    interrupts=(
        InterruptPoint(
            kind=PLAN_APPROVAL,
            node="review_plan",
            asks=_asks_approval,
            edit_field="plan",
            edit_model=Plan,
            check_edit=check_plan,
        ),
    ),
)
