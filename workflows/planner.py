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
"""

from __future__ import annotations

import logging
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer, Send, interrupt
from pydantic import BaseModel, ConfigDict, Field

from agents import citations
from agents.citations import UnsupportedPolicy
from agents.planner import MAX_PLAN_STEPS, Plan, PlannerAgent, SynthesizerAgent, WriterAgent
from agents.providers import Providers
from agents.reflection import CritiqueAgent
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
    add_usage,
    instrumented,
    resolve_models,
    result_in_state,
    topic_input,
)

__all__ = ["SPEC", "PlannerModels", "PlannerRequest", "build_graph", "check_plan"]

logger = logging.getLogger("agentflow.workflow")

#: The agent roles this workflow calls models for, with their default model (None: AGENTFLOW_MODEL).
ROLES: dict[str, str | None] = dict.fromkeys(("plan", "research", "write", "critique", "synthesize"))
#: The ``pending.kind`` of the plan-approval question.
PLAN_APPROVAL = "plan_approval"
_CITATION_GROUP = re.compile(r"\[(S\d+(?:[ \t]*[,;][ \t]*S\d+)*)\]")
_ID_SEPARATOR = re.compile(r"[ \t]*[,;][ \t]*")
#: The research graph, compiled to run inside a step node (it uses the run's checkpointer).
_RESEARCH = research.build_graph()


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


@dataclass(frozen=True, slots=True)
class PlannerContext:
    """Per-run knobs and agents; rebuilt from the stored request when a run resumes."""

    planner: PlannerAgent
    writer: WriterAgent
    critic: CritiqueAgent
    synthesizer: SynthesizerAgent
    research: research.ResearchContext
    models: Mapping[str, str]
    max_steps: int
    approve_plan: bool
    unsupported_claims: UnsupportedPolicy


class StepTask(TypedDict):
    """What one step agent receives through ``Send``: its step and its dependencies' outputs."""

    goal: str
    step: dict[str, Any]
    inputs: list[dict[str, Any]]


class PlannerState(TypedDict, total=False):
    topic: str
    plan: dict[str, Any]
    plan_source: str  # model, fallback, approved or edited
    step_results: Annotated[list[dict[str, Any]], operator.add]  # as the step agents returned them
    outputs: dict[str, dict[str, Any]]  # step id → output, citations in run-wide ids (the supervisor's)
    sources: list[dict[str, Any]]  # every retrieved source, run-wide ids S1, S2, ...
    rounds: Annotated[int, operator.add]
    draft: str
    report: str
    citations: dict[str, int]
    removed_citations: list[str]
    unsupported_claims: list[str]
    usage: Annotated[dict[str, Any], add_usage]
    result: dict[str, Any]


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


def _usable(plan: Plan, max_steps: int) -> dict[str, Any]:
    """The model's plan made executable: cut to ``max_steps``, ids unique, dependencies only on
    earlier steps (anything else is dropped and logged, never guessed at)."""
    steps: list[dict[str, Any]] = []
    seen: set[str] = set()
    for step in plan.steps[:max_steps]:
        step_id = step.id
        while step_id in seen:
            step_id = f"{step_id}_"[-32:] if len(step_id) < 32 else f"s{len(steps) + 1}"
        depends_on = [dependency for dependency in dict.fromkeys(step.depends_on) if dependency in seen]
        if len(depends_on) != len(step.depends_on):
            logger.info("dropped dependencies on unknown or later steps", extra={"event": "plan_repaired"})
        seen.add(step_id)
        steps.append({**step.model_dump(), "id": step_id, "depends_on": depends_on})
    return {"steps": steps}


def _fallback_plan(goal: str) -> dict[str, Any]:
    """When the plan is unreadable: research the goal, then write the deliverable from it."""
    return {
        "steps": [
            {"id": "s1", "kind": "research", "instruction": goal, "depends_on": []},
            {"id": "s2", "kind": "write", "instruction": f"Write the deliverable for: {goal}", "depends_on": ["s1"]},
        ]
    }


# --- nodes --------------------------------------------------------------------------------------


@instrumented("plan")
async def plan(state: PlannerState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    ctx = runtime.context
    outcome = await ctx.planner.execute(goal=state["topic"], max_steps=ctx.max_steps, model=ctx.models["plan"])
    if outcome.plan is None:
        logger.warning(
            "plan unreadable; researching the goal and writing it up",
            extra={"event": "plan_fallback", "reason": outcome.parse_error},
        )
        return {"plan": _fallback_plan(state["topic"]), "plan_source": "fallback", "usage": outcome.usage.as_dict()}
    return {"plan": _usable(outcome.plan, ctx.max_steps), "plan_source": "model", "usage": outcome.usage.as_dict()}


@instrumented("review_plan")
async def review_plan(state: PlannerState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    if not runtime.context.approve_plan:
        return {}
    # The run waits here (status waiting) until the answer arrives; the answer was validated by
    # the run service against the plan schema and ``check_plan``. A reject never reaches here.
    answer = interrupt({"kind": PLAN_APPROVAL, "plan": state["plan"]})
    if answer.get("action") == "edit":
        logger.info("plan edited", extra={"event": "plan_edited", "steps": len(answer["plan"]["steps"])})
        return {"plan": answer["plan"], "plan_source": "edited"}
    return {"plan_source": "approved"}


def _globalise(result: Mapping[str, Any], registry: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """A research step's output rewritten to run-wide source ids, and the registry grown by its new sources."""
    known = {citations.source_key(source["url"]): source["id"] for source in registry}
    mapping: dict[str, str] = {}
    for source in result.get("sources") or []:
        key = citations.source_key(source["url"])
        if key not in known:
            known[key] = f"S{len(registry) + 1}"
            registry = [*registry, {**source, "id": known[key]}]
        mapping[source["id"]] = known[key]

    def rewrite(match: re.Match[str]) -> str:
        ids = [mapping.get(source_id, source_id) for source_id in _ID_SEPARATOR.split(match.group(1))]
        return "[" + ", ".join(dict.fromkeys(ids)) + "]"

    return _CITATION_GROUP.sub(rewrite, str(result.get("text") or "")), registry


@instrumented("supervise")
async def supervise(state: PlannerState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Take in the outputs of the steps that just finished (research sources get run-wide ids)."""
    outputs = dict(state.get("outputs") or {})
    registry = list(state.get("sources") or [])
    finished = {result["id"]: result for result in state.get("step_results") or [] if result["id"] not in outputs}
    for step in state["plan"]["steps"]:  # plan order, so ids do not depend on which step finished first
        result = finished.get(step["id"])
        if result is None:
            continue
        text = str(result.get("text") or "")
        if step["kind"] == "research":
            text, registry = _globalise(result, registry)
        outputs[step["id"]] = {
            "id": step["id"],
            "kind": step["kind"],
            "instruction": step["instruction"],
            "text": text,
            **{key: result[key] for key in ("critique", "abstained") if key in result},
        }
    return {"outputs": outputs, "sources": registry, "rounds": 1}


async def _research_step(task: StepTask, ctx: PlannerContext) -> dict[str, Any]:
    step = task["step"]
    # Invoked inside the step, the research graph is a subgraph of the run: it checkpoints into
    # the run's thread (its own namespace per step), so a crash resumes it where it was.
    final = await _RESEARCH.ainvoke({"topic": step["instruction"]}, context=ctx.research)
    report = final.get("result") or research.build_result(final)
    return {
        "step_results": [
            {
                "id": step["id"],
                "text": report["report_markdown"],
                "sources": report["sources"],
                "abstained": report["abstained"],
            }
        ],
        "usage": final.get("usage") or {},
    }


@instrumented("research_step")
async def research_step(state: StepTask, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    return await _research_step(state, runtime.context)


@instrumented("write_step")
async def write_step(state: StepTask, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    ctx, step = runtime.context, state["step"]
    outcome = await ctx.writer.execute(
        goal=state["goal"], instruction=step["instruction"], inputs=state["inputs"], model=ctx.models["write"]
    )
    return {"step_results": [{"id": step["id"], "text": outcome.text}], "usage": outcome.usage.as_dict()}


@instrumented("critique_step")
async def critique_step(state: StepTask, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    ctx, step = runtime.context, state["step"]
    reviewed = "\n\n".join(str(item.get("text") or "") for item in state["inputs"]) or "(nothing to review)"
    outcome = await ctx.critic.execute(
        topic=f"{state['goal']}\n\nReview focus: {step['instruction']}",
        draft=reviewed,
        version=1,
        model=ctx.models["critique"],
    )
    verdict = outcome.verdict()
    issues = "\n".join(f"- ({issue['severity']}) {issue['text']}" for issue in verdict["issues"]) or "- (none)"
    score = "unreadable" if verdict["score"] is None else f"{verdict['score']:g}/10"
    text = f"Review score: {score}. Approved: {'yes' if verdict['approved'] else 'no'}.\nIssues:\n{issues}"
    return {
        "step_results": [{"id": step["id"], "text": text, "critique": verdict}],
        "usage": outcome.usage.as_dict(),
    }


@instrumented("synthesize")
async def synthesize(state: PlannerState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    ctx = runtime.context
    outputs = state.get("outputs") or {}
    ordered = [outputs[step["id"]] for step in state["plan"]["steps"] if step["id"] in outputs]
    outcome = await ctx.synthesizer.execute(
        goal=state["topic"], outputs=ordered, sources=state.get("sources") or [], model=ctx.models["synthesize"]
    )
    return {"draft": outcome.text, "usage": outcome.usage.as_dict()}


@instrumented("verify_citations")
async def verify_citations(state: PlannerState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    verified = citations.verify_citations(
        state["draft"], state.get("sources") or [], unsupported=runtime.context.unsupported_claims
    )
    return {
        "report": verified.text,
        "citations": verified.citations,
        "removed_citations": verified.removed,
        "unsupported_claims": verified.unsupported,
    }


@instrumented("finalize")
async def finalize(state: PlannerState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    return {"result": build_result(state)}


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


# --- routing ------------------------------------------------------------------------------------


def dispatch(state: PlannerState) -> list[Send] | Literal["synthesize"]:
    """Every step whose dependencies all have an output, each to its kind's agent, in one superstep."""
    outputs = state.get("outputs") or {}
    ready = [
        step
        for step in state["plan"]["steps"]
        if step["id"] not in outputs and all(dependency in outputs for dependency in step["depends_on"])
    ]
    if not ready:  # every step ran (dependencies only point backwards, so nothing can be stuck)
        return "synthesize"
    return [
        Send(
            f"{step['kind']}_step",
            StepTask(goal=state["topic"], step=step, inputs=[outputs[dependency] for dependency in step["depends_on"]]),
        )
        for step in ready
    ]


def build_graph(checkpointer: Checkpointer = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(PlannerState, context_schema=PlannerContext)
    graph.add_node("plan", plan)
    graph.add_node("review_plan", review_plan)
    graph.add_node("supervise", supervise)
    graph.add_node("research_step", research_step)
    graph.add_node("write_step", write_step)
    graph.add_node("critique_step", critique_step)
    graph.add_node("synthesize", synthesize)
    graph.add_node("verify_citations", verify_citations)
    graph.add_node("finalize", finalize)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "review_plan")
    graph.add_edge("review_plan", "supervise")
    graph.add_conditional_edges("supervise", dispatch, ["research_step", "write_step", "critique_step", "synthesize"])
    graph.add_edge("research_step", "supervise")
    graph.add_edge("write_step", "supervise")
    graph.add_edge("critique_step", "supervise")
    graph.add_edge("synthesize", "verify_citations")
    graph.add_edge("verify_citations", "finalize")
    graph.add_edge("finalize", END)
    return graph.compile(checkpointer=checkpointer)


# --- the spec the executor runs -----------------------------------------------------------------


def _context(request: BaseModel, providers: Providers, defaults: Mapping[str, str]) -> PlannerContext:
    assert isinstance(request, PlannerRequest)
    models = resolve_models(request.models, defaults)
    # Research steps run the research workflow with this run's knobs; its roles use the
    # planner's research model (and the critique model for a critique it never asks for here).
    research_request = research.ResearchRequest(
        topic=request.topic,
        sources=request.sources,
        max_queries=request.max_queries,
        max_results_per_query=request.max_results_per_query,
        unsupported_claims=request.unsupported_claims,
    )
    research_models = {
        "plan": models["research"],
        "synthesize": models["research"],
        "critique": models["critique"],
        "revise": models["research"],
    }
    research_context = research.SPEC.make_context(research_request, providers, research_models)
    assert isinstance(research_context, research.ResearchContext)
    return PlannerContext(
        planner=PlannerAgent(providers.chat),
        writer=WriterAgent(providers.chat),
        critic=CritiqueAgent(providers.chat),
        synthesizer=SynthesizerAgent(providers.chat),
        research=research_context,
        models=models,
        max_steps=request.max_steps,
        approve_plan=request.approve_plan,
        unsupported_claims=request.unsupported_claims,
    )


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
    compile=build_graph,
    make_context=_context,
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
