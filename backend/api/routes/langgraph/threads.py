"""LangGraph-API threads: create, get, patch, search, count, delete, state and history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from agents.errors import Conflict, NotSupported
from backend.api.deps import CallerDep, RunServiceDep
from backend.api.errors import raises
from backend.api.routes.langgraph.schemas import (
    HistoryRequest,
    ThreadCount,
    ThreadCreate,
    ThreadPatch,
    ThreadPublic,
    ThreadSearch,
    ThreadStatePublic,
)

__all__ = ["ThreadIdPath", "router"]

router = APIRouter(prefix="/threads", tags=["langgraph: threads"])

ThreadIdPath = Annotated[str, Path(min_length=1, max_length=36, description="The thread id (a UUID).")]


@router.post("", response_model=ThreadPublic, summary="Create a thread")
@raises(Conflict, NotSupported)  # the id is taken (if_exists=raise); supersteps or ttl
async def create_thread(payload: ThreadCreate, runs: RunServiceDep, caller: CallerDep) -> ThreadPublic:
    if payload.supersteps is not None:
        raise NotSupported("Creating a thread with `supersteps` is not supported: its state comes from its runs.")
    if payload.ttl is not None:
        raise NotSupported("Thread TTLs are not supported.")
    thread = await runs.threads.create(
        owner=caller.owner,
        thread_id=str(payload.thread_id) if payload.thread_id else None,
        metadata=payload.metadata,
        if_exists=payload.if_exists or "raise",
    )
    return ThreadPublic.of(thread)


@router.post("/search", response_model=list[ThreadPublic], summary="Search threads")
@raises(NotSupported)  # a filter on values
async def search_threads(payload: ThreadSearch, runs: RunServiceDep, caller: CallerDep) -> list[ThreadPublic]:
    """The caller's threads, most recently updated first (``sort_order: asc`` reverses it)."""
    if payload.values is not None:
        raise NotSupported("Searching threads by `values` is not supported; search by metadata, ids or status.")
    found = await runs.threads.search(
        owner=caller.scope_owner,
        metadata=payload.metadata,
        status=payload.status,
        ids=payload.ids,
        limit=payload.limit,
        offset=payload.offset,
        newest_first=payload.sort_order != "asc",
    )
    return [ThreadPublic.of(thread) for thread in found]


@router.post("/count", response_model=int, summary="Count threads")
@raises(NotSupported)
async def count_threads(payload: ThreadCount, runs: RunServiceDep, caller: CallerDep) -> int:
    if payload.values is not None:
        raise NotSupported("Counting threads by `values` is not supported.")
    if payload.metadata or payload.status:
        found = await runs.threads.search(
            owner=caller.scope_owner, metadata=payload.metadata, status=payload.status, limit=1_000_000
        )
        return len(found)
    return await runs.threads.count(owner=caller.scope_owner)


@router.get("/{thread_id}", response_model=ThreadPublic, summary="Get a thread")
async def get_thread(thread_id: ThreadIdPath, runs: RunServiceDep, caller: CallerDep) -> ThreadPublic:
    return ThreadPublic.of(await runs.threads.get(thread_id=thread_id, owner=caller.scope_owner))


@router.patch("/{thread_id}", response_model=ThreadPublic, summary="Update a thread's metadata")
@raises(NotSupported)
async def patch_thread(
    thread_id: ThreadIdPath, payload: ThreadPatch, runs: RunServiceDep, caller: CallerDep
) -> ThreadPublic:
    """Merges ``metadata`` into the thread's."""
    if payload.ttl is not None:
        raise NotSupported("Thread TTLs are not supported.")
    thread = await runs.threads.update_metadata(
        thread_id=thread_id, owner=caller.scope_owner, metadata=payload.metadata or {}
    )
    return ThreadPublic.of(thread)


@router.delete(
    "/{thread_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, summary="Delete a thread"
)
async def delete_thread(thread_id: ThreadIdPath, runs: RunServiceDep, caller: CallerDep) -> Response:
    """The thread goes; its runs stay, as workflows at ``/workflows/{run_id}``."""
    await runs.threads.delete(thread_id=thread_id, owner=caller.scope_owner)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{thread_id}/state", response_model=ThreadStatePublic, summary="Get a thread's state")
async def get_thread_state(
    thread_id: ThreadIdPath,
    runs: RunServiceDep,
    caller: CallerDep,
    subgraphs: Annotated[bool, Query(description="Accepted; there are no subgraphs.")] = False,
) -> ThreadStatePublic:
    """The values of the thread's last finished run (``next`` is always empty: the run is over)."""
    return ThreadStatePublic.of(await runs.threads.get(thread_id=thread_id, owner=caller.scope_owner))


async def _history(thread_id: str, limit: int, runs: RunServiceDep, caller: CallerDep) -> list[ThreadStatePublic]:
    thread = await runs.threads.get(thread_id=thread_id, owner=caller.scope_owner)
    # Checkpoints are dropped when a run ends, so the history holds the latest state only.
    return [ThreadStatePublic.of(thread)][:limit] if thread.values is not None else []


@router.get("/{thread_id}/history", response_model=list[ThreadStatePublic], summary="Get a thread's history")
async def get_thread_history(
    thread_id: ThreadIdPath,
    runs: RunServiceDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> list[ThreadStatePublic]:
    """The thread's states, newest first: the latest one only (checkpoints go when a run ends)."""
    return await _history(thread_id, limit, runs, caller)


@router.post("/{thread_id}/history", response_model=list[ThreadStatePublic], summary="Get a thread's history")
async def post_thread_history(
    thread_id: ThreadIdPath, payload: HistoryRequest, runs: RunServiceDep, caller: CallerDep
) -> list[ThreadStatePublic]:
    """As ``GET``, with the SDK's body (``before``, ``metadata`` and ``checkpoint`` filters match the one state)."""
    return await _history(thread_id, payload.limit, runs, caller)
