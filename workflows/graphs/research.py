"""The research workflow's graph: plan queries → parallel arXiv/web searches → cited report.

What a run accepts and returns is declared in ``workflows.research``; this module is imported
when the first run needs it (it loads LangGraph and the agents).
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer, Command, Send
from pydantic import BaseModel

from agents import citations
from agents.citations import UnsupportedPolicy
from agents.errors import ProviderNotConfigured, UpstreamError
from agents.providers import Providers
from agents.providers.search import SearchProvider
from agents.reflection import CritiqueAgent
from agents.research import PlannerAgent, ReportReviserAgent, SynthesizerAgent
from workflows.base import WorkflowGraph, add_usage, instrumented, resolve_models
from workflows.research import SOURCES, ResearchRequest, build_result

__all__ = ["GRAPH", "ResearchContext", "ResearchState", "SearchTask", "build_graph", "make_context"]

logger = logging.getLogger("agentflow.workflow")


@dataclass(frozen=True, slots=True)
class ResearchContext:
    """Per-run knobs, agents and search providers; rebuilt from the stored request on resume."""

    planner: PlannerAgent
    synthesizer: SynthesizerAgent
    critic: CritiqueAgent
    reviser: ReportReviserAgent
    search: Mapping[str, SearchProvider | None]
    models: Mapping[str, str]
    sources: tuple[str, ...]
    max_queries: int
    max_results: int
    reflect: bool
    unsupported_claims: UnsupportedPolicy = "flag"


class SearchTask(TypedDict):
    """What one parallel search task receives through ``Send``."""

    source: str
    query: str
    index: int


class ResearchState(TypedDict, total=False):
    topic: str
    queries: list[dict[str, Any]]
    search_results: Annotated[list[dict[str, Any]], operator.add]
    source_errors: Annotated[list[dict[str, Any]], operator.add]
    sources: list[dict[str, Any]]
    draft: str
    report: str
    citations: dict[str, int]
    removed_citations: Annotated[list[str], operator.add]
    unsupported_claims: list[str]  # of the latest verified report only: a revision replaces them
    critique: dict[str, Any]
    revised: bool
    usage: Annotated[dict[str, Any], add_usage]
    result: dict[str, Any]


def _clean_queries(queries: list[str], limit: int) -> list[str]:
    kept: list[str] = []
    for query in queries:
        text = " ".join(query.split())
        if text and text.lower() not in {k.lower() for k in kept}:
            kept.append(text)
    return kept[:limit]


# --- nodes --------------------------------------------------------------------------------------


@instrumented("plan_queries")
async def plan_queries(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict[str, Any]:
    ctx = runtime.context
    outcome = await ctx.planner.execute(
        topic=state["topic"], sources=ctx.sources, max_queries=ctx.max_queries, model=ctx.models["plan"]
    )
    planned = outcome.plan.model_dump() if outcome.plan is not None else {}
    if outcome.plan is None:
        logger.warning(
            "plan unreadable; searching for the topic itself",
            extra={"event": "plan_fallback", "reason": outcome.parse_error},
        )
    queries = []
    for source in ctx.sources:
        chosen = _clean_queries(planned.get(f"{source}_queries") or [], ctx.max_queries)
        if not chosen:  # no usable plan for this source: the topic is still a fair query
            chosen = [state["topic"]]
        queries += [{"source": source, "query": query} for query in chosen]
    return {"queries": queries, "usage": outcome.usage.as_dict()}


async def _search(task: SearchTask, ctx: ResearchContext) -> dict[str, Any]:
    provider = ctx.search.get(task["source"])
    try:
        if provider is None:
            raise ProviderNotConfigured(f"the {task['source']} source is not configured")
        hits = await provider.search(task["query"], max_results=ctx.max_results)
    except (UpstreamError, ProviderNotConfigured) as error:
        # An observation, not a failure: the other searches may still carry the report.
        logger.warning(
            "search failed: %s",
            error.detail,
            extra={"event": "source_error", "source": task["source"], "error_code": error.code},
        )
        failure = {"source": task["source"], "query": task["query"], "code": error.code, "message": error.detail}
        return {"source_errors": [failure]}
    found = {"source": task["source"], "query": task["query"], "index": task["index"]}
    return {"search_results": [{**found, "hits": [hit.as_dict() for hit in hits]}]}


@instrumented("search_arxiv")
async def search_arxiv(state: SearchTask, runtime: Runtime[ResearchContext]) -> dict[str, Any]:
    return await _search(state, runtime.context)


@instrumented("search_web")
async def search_web(state: SearchTask, runtime: Runtime[ResearchContext]) -> dict[str, Any]:
    return await _search(state, runtime.context)


@instrumented("collect_sources")
async def collect_sources(
    state: ResearchState, runtime: Runtime[ResearchContext]
) -> Command[Literal["synthesize", "finalize"]]:
    # Tasks finish in any order; sorting first makes the S# ids the same on every run.
    results = sorted(
        state.get("search_results") or [], key=lambda found: (SOURCES.index(found["source"]), found["index"])
    )
    seen: set[str] = set()
    sources: list[dict[str, Any]] = []
    for found in results:
        for hit in found["hits"]:
            key = citations.source_key(hit["url"])  # an arXiv paper found on the web is the same source
            if key in seen:
                continue
            seen.add(key)
            sources.append({"id": f"S{len(sources) + 1}", **hit})
    return Command(update={"sources": sources}, goto="synthesize" if sources else "finalize")


@instrumented("synthesize")
async def synthesize(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict[str, Any]:
    ctx = runtime.context
    outcome = await ctx.synthesizer.execute(
        topic=state["topic"], sources=state["sources"], model=ctx.models["synthesize"]
    )
    return {"draft": outcome.text, "usage": outcome.usage.as_dict()}


@instrumented("verify_citations")
async def verify_citations(
    state: ResearchState, runtime: Runtime[ResearchContext]
) -> Command[Literal["critique", "finalize"]]:
    policy = runtime.context.unsupported_claims
    verified = citations.verify_citations(state["draft"], state["sources"], unsupported=policy)
    if verified.removed:
        logger.info("removed unretrieved citations", extra={"event": "citations_removed", "removed": verified.removed})
    if verified.unsupported:
        logger.info(
            "%s unsupported claims (%s)",
            len(verified.unsupported),
            "dropped" if policy == "drop" else "flagged",
            extra={"event": "unsupported_claims", "count": len(verified.unsupported)},
        )
    update = {
        "report": verified.text,
        "citations": verified.citations,
        "removed_citations": verified.removed,
        "unsupported_claims": verified.unsupported,
    }
    # One critique at most: a revised report goes straight to finalize.
    critiqued = runtime.context.reflect and "critique" not in state
    return Command(update=update, goto="critique" if critiqued else "finalize")


@instrumented("critique")
async def critique(state: ResearchState, runtime: Runtime[ResearchContext]) -> Command[Literal["revise", "finalize"]]:
    ctx = runtime.context
    outcome = await ctx.critic.execute(
        topic=state["topic"], draft=state["report"], version=1, model=ctx.models["critique"]
    )
    verdict = outcome.verdict()
    return Command(
        update={"critique": verdict, "usage": outcome.usage.as_dict()},
        goto="finalize" if verdict.get("approved") else "revise",
    )


@instrumented("revise")
async def revise(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict[str, Any]:
    ctx = runtime.context
    review = state["critique"]
    outcome = await ctx.reviser.execute(
        topic=state["topic"],
        report=state["report"],
        sources=state["sources"],
        score=review.get("score"),
        issues=review.get("issues") or [],
        model=ctx.models["revise"],
    )
    return {"draft": outcome.text, "revised": True, "usage": outcome.usage.as_dict()}


@instrumented("finalize")
async def finalize(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict[str, Any]:
    return {"result": build_result(state)}


# --- routing ------------------------------------------------------------------------------------
# collect_sources, verify_citations and critique name the next node themselves (see reflection);
# the fan-out stays a router, a coroutine: LangGraph runs a plain function in a worker thread.


async def fan_out(state: ResearchState) -> list[Send]:
    """One search task per planned query, all in the same step (so they run in parallel)."""
    return [
        Send(f"search_{query['source']}", SearchTask(source=query["source"], query=query["query"], index=index))
        for index, query in enumerate(state["queries"])
    ]


def build_graph(checkpointer: Checkpointer = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The research graph. Invoked inside another graph's node (the planner's research steps) with
    ``checkpointer`` None, it checkpoints into that run's thread as a subgraph."""
    graph = StateGraph(ResearchState, context_schema=ResearchContext)
    graph.add_node("plan_queries", plan_queries)
    graph.add_node("search_arxiv", search_arxiv)
    graph.add_node("search_web", search_web)
    graph.add_node("collect_sources", collect_sources)
    graph.add_node("synthesize", synthesize)
    graph.add_node("verify_citations", verify_citations)
    graph.add_node("critique", critique)
    graph.add_node("revise", revise)
    graph.add_node("finalize", finalize)
    graph.add_edge(START, "plan_queries")
    graph.add_conditional_edges("plan_queries", fan_out, ["search_arxiv", "search_web"])
    graph.add_edge("search_arxiv", "collect_sources")
    graph.add_edge("search_web", "collect_sources")
    graph.add_edge("synthesize", "verify_citations")
    graph.add_edge("revise", "verify_citations")
    graph.add_edge("finalize", END)
    return graph.compile(checkpointer=checkpointer)


# --- what the runner calls ---------------------------------------------------------------------


def make_context(request: BaseModel, providers: Providers, defaults: Mapping[str, str]) -> ResearchContext:
    assert isinstance(request, ResearchRequest)
    return ResearchContext(
        planner=PlannerAgent(providers.chat),
        synthesizer=SynthesizerAgent(providers.chat),
        critic=CritiqueAgent(providers.chat),
        reviser=ReportReviserAgent(providers.chat),
        search={"arxiv": providers.arxiv, "web": providers.web},
        models=resolve_models(request.models, defaults),
        sources=tuple(source for source in SOURCES if source in request.sources),
        max_queries=request.max_queries,
        max_results=request.max_results_per_query,
        reflect=request.reflect,
        unsupported_claims=request.unsupported_claims,
    )


GRAPH = WorkflowGraph(compile=build_graph, make_context=make_context)
