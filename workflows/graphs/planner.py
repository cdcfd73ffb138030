"""The planner workflow's graph: plan → [human approval] → supervisor ⇄ parallel step agents → deliverable.

What a run accepts and returns is declared in ``workflows.planner``; this module is imported
when the first run needs it (it loads LangGraph and the agents).
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
from pydantic import BaseModel

from agents import citations
from agents.citations import UnsupportedPolicy
from agents.planner import Plan, PlannerAgent, SynthesizerAgent, WriterAgent
from agents.providers import Providers
from agents.reflection import CritiqueAgent
from workflows import research
from workflows.base import WorkflowGraph, add_usage, instrumented, resolve_models
from workflows.graphs import research as research_graph
from workflows.planner import PLAN_APPROVAL, PlannerRequest, build_result

__all__ = ["GRAPH", "PlannerContext", "PlannerState", "StepTask", "build_graph", "make_context"]

logger = logging.getLogger("agentflow.workflow")

_CITATION_GROUP = re.compile(r"\[(S\d+(?:[ \t]*[,;][ \t]*S\d+)*)\]")
_ID_SEPARATOR = re.compile(r"[ \t]*[,;][ \t]*")
#: The research graph, compiled to run inside a step node (it uses the run's checkpointer).
_RESEARCH = research_graph.build_graph()


@dataclass(frozen=True, slots=True)
class PlannerContext:
    """Per-run knobs and agents; rebuilt from the stored request when a run resumes."""

    planner: PlannerAgent
    writer: WriterAgent
    critic: CritiqueAgent
    synthesizer: SynthesizerAgent
    research: research_graph.ResearchContext
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


# --- the plan ---------------------------------------------------------------------------------


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


# --- routing ------------------------------------------------------------------------------------
# Coroutines, though they only compare: LangGraph runs a plain function in a thread (see reflection).


async def dispatch(state: PlannerState) -> list[Send] | Literal["synthesize"]:
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


# --- what the runner calls ---------------------------------------------------------------------


def make_context(request: BaseModel, providers: Providers, defaults: Mapping[str, str]) -> PlannerContext:
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
    research_context = research_graph.make_context(research_request, providers, research_models)
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


GRAPH = WorkflowGraph(compile=build_graph, make_context=make_context)
