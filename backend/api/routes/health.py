"""Liveness and readiness probes (never rate limited, never reveal secrets)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from backend.api.deps import RunServiceDep, SettingsDep
from backend.api.schemas import ExecutorReadiness, ProviderReadiness, ReadinessPublic

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database reachable, accepting work; which providers are configured",
    responses={
        200: {"model": ReadinessPublic, "description": "Ready"},
        503: {"model": ReadinessPublic, "description": "Not ready (database unreachable or shutting down)"},
    },
)
async def readyz(settings: SettingsDep, runs: RunServiceDep) -> JSONResponse:
    try:
        await runs.store.ping()
        database_ok = True
    except Exception:
        database_ok = False
    executor = runs.executor
    ready = database_ok and executor.accepting
    openai, tavily = settings.openai_api_key is not None, settings.tavily_api_key is not None
    body = ReadinessPublic(
        status="ready" if ready else "not_ready",
        database="ok" if database_ok else "unreachable",
        executor=ExecutorReadiness(kind=executor.kind, accepting=executor.accepting, active_runs=executor.active_runs),
        providers={
            "openai": ProviderReadiness(configured=openai, base_url=settings.openai_base_url),
            "tavily": ProviderReadiness(configured=tavily, base_url=settings.tavily_base_url),
            "arxiv": ProviderReadiness(configured=True, base_url=settings.arxiv_api_url),
        },
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ready else 503)
