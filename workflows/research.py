"""The research workflow: plan queries → parallel arXiv/web searches → cited report.

plan_queries → (one search_arxiv / search_web task per query, in parallel, via ``Send``) →
collect_sources → synthesize → verify_citations → [critique → revise → verify_citations] → finalize.

A search that fails comes back as a source error, not a failed run. With no source retrieved
the run completes with ``abstained: true`` and never asks a model to write an unsourced report.
Every node that writes report text (synthesize, revise) is followed by verify_citations: the
report keeps only ``[S#]`` citations of retrieved sources, anything else is removed and listed in
``removed_citations``, and sentences left with no citation are listed in ``unsupported_claims``
(and dropped from the report if the request asks for it).

Its graph (state, nodes, builder) is ``workflows.graphs.research``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from agents.citation_policy import UnsupportedPolicy
from agents.errors import ProviderNotConfigured
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

__all__ = ["SOURCES", "SPEC", "ResearchModels", "ResearchRequest", "SourceList", "build_result"]

Source = Literal["arxiv", "web"]
SOURCES: tuple[Source, ...] = ("arxiv", "web")  # also the order source ids are handed out in
#: The agent roles this workflow calls models for, with their default model (None: AGENTFLOW_MODEL).
ROLES: dict[str, str | None] = dict.fromkeys(("plan", "synthesize", "critique", "revise"))


def _distinct(sources: list[Source]) -> list[Source]:
    if len(set(sources)) != len(sources):
        raise ValueError("sources must not repeat")
    return sources


#: Where a request searches: each source at most once (shared by every workflow that searches).
SourceList = Annotated[list[Source], AfterValidator(_distinct)]


class ResearchModels(BaseModel):
    """Optional model per agent role (defaults: ``AGENTFLOW_MODEL_<ROLE>``, then ``AGENTFLOW_MODEL``)."""

    model_config = ConfigDict(extra="forbid")
    plan: ModelName | None = None
    synthesize: ModelName | None = None
    critique: ModelName | None = None
    revise: ModelName | None = None


class ResearchRequest(BaseModel):
    """Body of ``POST /workflows/research``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"topic": "Retrieval-augmented generation for code", "sources": ["arxiv", "web"]}]
        },
    )
    topic: Topic = Field(description="What to research (1 to 4000 characters after trimming).")
    sources: SourceList = Field(
        default_factory=lambda: list(SOURCES),
        min_length=1,
        max_length=len(SOURCES),
        description='Where to search: "arxiv" and/or "web" (web needs TAVILY_API_KEY).',
    )
    max_queries: int = Field(default=3, ge=1, le=8, description="Most search queries per source.")
    max_results_per_query: int = Field(default=5, ge=1, le=20, description="Most results per search query.")
    reflect: bool = Field(default=False, description="Critique the report once and revise it if needed.")
    unsupported_claims: UnsupportedPolicy = Field(
        default="flag",
        description=(
            "What to do with a sentence of the report whose only citations were removed because they were not "
            'retrieved sources: "flag" keeps it, "drop" removes it from the report. Either way it is listed in '
            "the result's unsupported_claims."
        ),
    )
    models: ResearchModels | None = Field(default=None, description="Model per role, overriding the defaults.")
    max_tokens_budget: TokenBudget = None
    cache: CacheOption = "use"
    webhook: WebhookOption = None


def _abstention(state: Mapping[str, Any]) -> str:
    errors = state.get("source_errors") or []
    reason = "every search failed" if errors and not state.get("search_results") else "no search returned a result"
    failed = sorted({f"{error['source']} ({error['code']})" for error in errors})
    detail = f" Failed sources: {', '.join(failed)}." if failed else ""
    return f"No report was written: {reason}, and a report without sources would be unsupported.{detail}"


def build_result(state: Mapping[str, Any]) -> dict[str, Any]:
    """The public result; also the best-so-far result of a run stopped by its token budget."""
    sources = state.get("sources") or []
    abstained = not sources
    explanation = _abstention(state) if abstained else None
    return {
        "report_markdown": explanation if abstained else state.get("report", ""),
        "sources": sources,
        "citations": state.get("citations") or {},
        "removed_citations": list(dict.fromkeys(state.get("removed_citations") or [])),
        "unsupported_claims": state.get("unsupported_claims") or [],
        "queries": state.get("queries") or [],
        "abstained": abstained,
        "explanation": explanation,
        "source_errors": state.get("source_errors") or [],
        "critique": state.get("critique"),
        "revised": bool(state.get("revised")),
    }


# --- the spec the executor runs -----------------------------------------------------------------


def _partial_result(state: Mapping[str, Any]) -> dict[str, Any] | None:
    return build_result(state) if state.get("report") else None


def _progress(node: str, state: Mapping[str, Any]) -> dict[str, Any]:
    return {"node": node, "iteration": 1 if state.get("revised") else 0, "sources": len(state.get("sources") or [])}


def _required(request: BaseModel, providers: Providers) -> None:
    assert isinstance(request, ResearchRequest)
    providers.chat.require_configured()
    if "web" in request.sources:
        if providers.web is None:
            raise ProviderNotConfigured("The web source is not configured on this server.", variable="TAVILY_API_KEY")
        providers.web.require_configured()
    if "arxiv" in request.sources and providers.arxiv is None:
        raise ProviderNotConfigured("The arXiv source is not configured on this server.", variable="ARXIV_API_URL")


SPEC = WorkflowSpec(
    name="research",
    roles=ROLES,
    request_model=ResearchRequest,
    graph_module="workflows.graphs.research",
    initial_state=topic_input,
    result=result_in_state,
    partial_result=_partial_result,
    progress=_progress,
    required_providers=_required,
)
