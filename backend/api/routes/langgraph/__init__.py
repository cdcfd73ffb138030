"""The LangGraph Server API subset ``langgraph-sdk`` uses: assistants, threads and runs, beside ``/workflows``."""

from fastapi import APIRouter

from backend.api.routes.langgraph import assistants, runs, threads, unsupported

__all__ = ["routers"]

#: Included into the app one by one, in this order: the 501 routes go last, so a path they share
#: with an implemented route (by method) never shadows it. Not nested under one router: FastAPI
#: builds every route of a router that holds routers again when that router is included (~20 ms
#: of start-up); included directly, each router's routes are built on the first request to reach it.
routers: tuple[APIRouter, ...] = (assistants.router, threads.router, runs.router, unsupported.router)
