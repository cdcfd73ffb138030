"""Liveness and readiness probes (never rate limited, never reveal secrets)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from backend.deps import SettingsDep, StoreDep

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database reachable, accepting work; which providers are configured")
async def readyz(request: Request, settings: SettingsDep, store: StoreDep) -> JSONResponse:
    checks: dict[str, Any] = {}
    ready = True
    try:
        await store.ping()
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unreachable"
        ready = False
    executor = request.app.state.executor
    checks["executor"] = {"accepting": executor.accepting, "active_runs": executor.active_runs}
    ready = ready and executor.accepting
    checks["providers"] = {
        "openai": {"configured": settings.openai_api_key is not None, "base_url": settings.openai_base_url},
        "tavily": {"configured": settings.tavily_api_key is not None, "base_url": settings.tavily_base_url},
        "arxiv": {"configured": True, "base_url": settings.arxiv_api_url},
    }
    body = {"status": "ready" if ready else "not_ready", **checks}
    return JSONResponse(body, status_code=200 if ready else 503)
