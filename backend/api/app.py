"""The FastAPI application: ``create_app(settings)`` wires middleware, routes and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from backend.api.errors import install_error_handlers
from backend.api.middleware import (
    AccessLogMiddleware,
    BodyLimitMiddleware,
    CorrelationIdMiddleware,
    RateLimitMiddleware,
    UnhandledErrorMiddleware,
)
from backend.api.middleware.rate_limit import build_limiter
from backend.api.routes import health, workflows
from backend.config import Settings, get_settings
from backend.logs import configure_logging
from backend.runs import open_runtime

__all__ = ["create_app", "create_app_from_env"]

DESCRIPTION = """
agentflow runs durable **LangGraph** agent workflows behind a small HTTP API.

Submit a workflow (`POST /workflows/{type}`) and get its `workflow_id` at once (**202**); poll
`GET /workflows/{id}` (or pass `?wait=N`) for status, progress, usage and result. Runs are
checkpointed after every node and resume after a crash. Every response carries `X-Request-ID`;
errors are RFC 9457 `application/problem+json`.
"""
ALLOWED_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "X-API-Key", "X-Request-ID", "X-Correlation-ID"]
EXPOSED_HEADERS = [
    "Location", "Retry-After", "X-Request-ID", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
]  # fmt: skip


def _lifespan(settings: Settings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(settings) as runs:
            app.state.runs = runs
            yield

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for ``settings`` (defaults to the environment)."""
    settings = settings or get_settings()
    limiter = build_limiter(settings.redis_url or "memory://")
    allow_any_origin = "*" in settings.cors_origins
    middleware = [  # outermost first
        Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips),
        Middleware(CorrelationIdMiddleware),
        Middleware(AccessLogMiddleware),
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=not allow_any_origin,  # never "*" together with credentials
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
        ),
        Middleware(
            RateLimitMiddleware,
            limiter=limiter,
            submit_limit=settings.rate_limit_submit,
            default_limit=settings.rate_limit_default,
        ),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
        Middleware(UnhandledErrorMiddleware),
    ]
    app = FastAPI(
        title="agentflow",
        version=version("agentflow"),
        description=DESCRIPTION,
        lifespan=_lifespan(settings),
        middleware=middleware,
        debug=False,  # never render tracebacks to clients
    )
    app.state.settings = settings
    app.state.limiter = limiter
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(workflows.router)
    return app


def create_app_from_env() -> FastAPI:
    """uvicorn factory for ``agentflow serve`` workers: settings and logging from the environment."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
