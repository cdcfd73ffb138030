"""LangGraph-API assistants: search, get, graph and schemas (one read-only assistant per workflow type)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from backend.api.deps import CallerDep
from backend.api.routes.langgraph.schemas import AssistantCount, AssistantPublic, AssistantSearch, GraphSchemaPublic
from backend.runs.assistants import find_assistants, graph_of, resolve_assistant

__all__ = ["router"]

router = APIRouter(prefix="/assistants", tags=["langgraph: assistants"])

AssistantIdPath = Annotated[
    str, Path(min_length=1, max_length=64, description="An assistant id, or a graph id (the workflow type).")
]


@router.post("/search", response_model=list[AssistantPublic], summary="Search assistants")
async def search_assistants(payload: AssistantSearch, response: Response, _caller: CallerDep) -> list[AssistantPublic]:
    """Every registered workflow type is one assistant (``graph_id`` = the type)."""
    found = find_assistants(graph_id=payload.graph_id, name=payload.name, metadata=payload.metadata)
    if payload.sort_by is not None:
        field = "graph_id" if payload.sort_by in ("name", "updated_at") else payload.sort_by
        found.sort(key=lambda assistant: str(getattr(assistant, field)), reverse=payload.sort_order == "desc")
    page = found[payload.offset : payload.offset + payload.limit]
    if payload.offset + payload.limit < len(found):
        response.headers["X-Pagination-Next"] = str(payload.offset + payload.limit)
    return [AssistantPublic.of(assistant) for assistant in page]


@router.post("/count", response_model=int, summary="Count assistants")
async def count_assistants(payload: AssistantCount, _caller: CallerDep) -> int:
    return len(find_assistants(graph_id=payload.graph_id, name=payload.name, metadata=payload.metadata))


@router.get("/{assistant_id}", response_model=AssistantPublic, summary="Get an assistant")
async def get_assistant(assistant_id: AssistantIdPath, _caller: CallerDep) -> AssistantPublic:
    return AssistantPublic.of(resolve_assistant(assistant_id))


@router.get("/{assistant_id}/graph", response_model=dict[str, Any], summary="Get an assistant's graph")
async def get_assistant_graph(
    assistant_id: AssistantIdPath,
    _caller: CallerDep,
    xray: Annotated[bool | int, Query(description="Accepted; the workflows have no subgraphs.")] = False,
) -> dict[str, Any]:
    """The workflow's graph as LangGraph draws it: ``{"nodes": [...], "edges": [...]}``."""
    return graph_of(resolve_assistant(assistant_id).graph_id)


@router.get("/{assistant_id}/schemas", response_model=GraphSchemaPublic, summary="Get an assistant's schemas")
async def get_assistant_schemas(assistant_id: AssistantIdPath, _caller: CallerDep) -> GraphSchemaPublic:
    """``input_schema`` is the JSON schema of the workflow's request: what a run's ``input`` must be."""
    return GraphSchemaPublic.model_validate(resolve_assistant(assistant_id).schemas())


@router.get("/{assistant_id}/subgraphs", response_model=dict[str, Any], summary="Get an assistant's subgraphs")
async def get_assistant_subgraphs(
    assistant_id: AssistantIdPath,
    _caller: CallerDep,
    recurse: Annotated[bool, Query(description="Accepted; there are none to recurse into.")] = False,
) -> dict[str, Any]:
    """Always empty: agentflow's workflows have no subgraphs."""
    resolve_assistant(assistant_id)
    return {}
