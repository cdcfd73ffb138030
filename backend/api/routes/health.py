"""Liveness and readiness probes (never rate limited, never reveal secrets)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from backend.api.deps import RunServiceDep, SettingsDep

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database reachable, accepting work; which providers are configured")
async def readyz(settings: SettingsDep, runs: RunServiceDep) -> JSONResponse:
    checks: dict[str, Any] = {}
    ready = True
    try:
        await runs.store.ping()
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unreachable"
        ready = False
    executor = runs.executor
    checks["executor"] = {"kind": executor.kind, "accepting": executor.accepting, "active_runs": executor.active_runs}
    ready = ready and executor.accepting
    checks["providers"] = {
        "openai": {"configured": settings.openai_api_key is not None, "base_url": settings.openai_base_url},
        "tavily": {"configured": settings.tavily_api_key is not None, "base_url": settings.tavily_base_url},
        "arxiv": {"configured": True, "base_url": settings.arxiv_api_url},
    }
    body = {"status": "ready" if ready else "not_ready", **checks}
    return JSONResponse(body, status_code=200 if ready else 503)
