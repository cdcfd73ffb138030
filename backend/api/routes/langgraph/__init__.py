"""The LangGraph Server API subset ``langgraph-sdk`` uses: assistants, threads and runs, beside ``/workflows``."""

from fastapi import APIRouter

from backend.api.routes.langgraph import assistants, runs, threads, unsupported

__all__ = ["router"]

router = APIRouter()
# The 501 routes go last: a path they share with an implemented route (by method) never shadows it.
for _module in (assistants, threads, runs, unsupported):
    router.include_router(_module.router)
