"""The result cache's admin route: forget cached results."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.deps import AdminDep, RunServiceDep
from backend.api.schemas import CacheClearedPublic

__all__ = ["router"]

router = APIRouter(prefix="/cache", tags=["cache"])


@router.delete("", response_model=CacheClearedPublic, summary="Drop cached results (admin)", dependencies=[AdminDep])
async def clear_cache(
    runs: RunServiceDep,
    type: Annotated[str | None, Query(description="Only this workflow type's results.")] = None,
) -> CacheClearedPublic:
    """Every later submit runs afresh (runs in flight are not affected). Admin-only once API
    keys exist (``backend.api.auth.require_admin``)."""
    return CacheClearedPublic(deleted=await runs.clear_cache(workflow_type=type))
