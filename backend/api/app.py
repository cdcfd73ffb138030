"""The FastAPI application: ``create_app(settings)`` wires middleware, routes and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from importlib.metadata import version

from fastapi import Depends, FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from backend import heap
from backend.api.deps import storable_parameters
from backend.api.errors import install_error_handlers
from backend.api.middleware import EdgeMiddleware
from backend.api.openapi import install_openapi
from backend.api.routes import cache, exports, health, keys, langgraph, metrics, ui, workflows
from backend.api.routes.docs import install_docs
from backend.config import Settings, get_settings
from backend.logs import configure_logging, write_synchronously
from backend.observability import instrument_app, prepare_metrics_dir, tracing_requested
from backend.runs import open_runtime
from backend.runs.keys import KeyService
from backend.runs.store.keys import ApiKeyStore

__all__ = ["create_app", "create_app_from_env"]

DESCRIPTION = """
agentflow runs durable **LangGraph** agent workflows behind a small HTTP API.

Submit a workflow (`POST /workflows/{type}`) and get its `workflow_id` at once (**202**); poll
`GET /workflows/{id}` (or pass `?wait=N`) for status, progress, usage and result. Runs are
checkpointed after every node and resume after a crash. Every response carries `X-Request-ID`;
errors are RFC 9457 `application/problem+json`.
"""
ALLOWED_HEADERS = [
    "Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID", "X-API-Key", "X-Request-ID",
    "X-Correlation-ID",
]  # fmt: skip
EXPOSED_HEADERS = [
    "Content-Location", "Location", "Retry-After", "X-Pagination-Next", "X-Request-ID", "X-RateLimit-Limit",
    "X-RateLimit-Remaining", "X-RateLimit-Reset",
]  # fmt: skip


def _lifespan(settings: Settings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with open_runtime(settings) as runs:
                app.state.runs = runs
                app.state.keys = KeyService(ApiKeyStore(runs.store.engine), secret=settings.key_secret)
                if getattr(app.state, "settle_heap", False):
                    heap.settle()  # everything start-up built stays out of every later collection
                yield
        finally:
            write_synchronously()  # the server's last lines must not wait in a queue (see there)

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for ``settings`` (defaults to the environment)."""
    settings = settings or get_settings()
    allow_any_origin = "*" in settings.cors_origins
    # CORS only when some origin is allowed: with none, the middleware answers nothing differently
    # (a preflight is refused either way) but wraps every response (~6 % of a submit's CPU).
    cors = partial(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=not allow_any_origin,  # never "*" together with credentials
        allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
    )
    middleware = [  # outermost first
        Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips),
        # Request id, access log, CORS, header limits, auth, rate limit, body limit, last-resort 500:
        # one layer (see backend.api.middleware.edge for the order and why).
        Middleware(
            EdgeMiddleware,
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
            max_body_bytes=settings.max_body_bytes,
            rate_limit_storage=settings.redis_url or "memory://",
            submit_limit=settings.rate_limit_submit,
            default_limit=settings.rate_limit_default,
            cors=cors if settings.cors_origins else None,
        ),
    ]
    app = FastAPI(
        title="agentflow",
        version=version("agentflow"),
        description=DESCRIPTION,
        lifespan=_lifespan(settings),
        middleware=middleware,
        debug=False,  # never render tracebacks to clients
        docs_url=None,  # served from the package by install_docs: no CDN
        redoc_url=None,
        # Path and query values no store can hold are a 422 naming the parameter, for every route.
        dependencies=[Depends(storable_parameters)],
        # FastAPI's native OpenTelemetry asks the global providers (and os.environ) on every
        # request whether it is on: ~10 % of a submit's CPU. Off unless tracing is (see
        # backend.observability, which instruments the app itself then).
        telemetry=None if tracing_requested() else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    install_error_handlers(app)
    # First: routes are matched in order, and a submit is the request a server answers most.
    workflows.include(app)
    install_openapi(app)
    install_docs(app)
    app.include_router(health.router)
    app.include_router(exports.router)
    app.include_router(ui.router)
    app.include_router(metrics.router)
    app.include_router(cache.router)
    app.include_router(keys.router)
    langgraph.defer(app)  # last: its routes go after every other (included on first use, see there)
    instrument_app(app)  # OpenTelemetry, only when the OTEL_* environment asks for it
    return app


def create_app_from_env() -> FastAPI:
    """uvicorn factory for ``agentflow serve`` workers: settings and logging from the environment."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format, background=True)
    prepare_metrics_dir(settings.workers)  # before the first metric: workers share one directory
    app = create_app(settings)
    app.state.settle_heap = True  # a serving process: freeze the heap after start-up (backend.heap)
    return app
