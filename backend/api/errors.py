"""RFC 9457 problem+json rendering: the one place errors become HTTP responses.

The hierarchy itself is drawn in ``agents.errors`` (so lower layers can raise it without the
web framework); this module maps it, FastAPI's validation errors and anything unexpected to
``application/problem+json`` bodies with ``type``, ``title``, ``status``, ``detail``,
``instance``, ``request_id`` (and ``errors`` for validation failures). No exception text or
traceback ever reaches a client: unexpected errors are logged and answered with a generic 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from agents import context
from agents.errors import AgentflowError, RateLimited

__all__ = ["PROBLEM_MEDIA_TYPE", "install_error_handlers", "problem_response", "problem_type"]

PROBLEM_MEDIA_TYPE = "application/problem+json"
logger = logging.getLogger("agentflow.errors")

_HTTP_TITLES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_error", "Validation error"),
    429: ("rate_limited", "Too many requests"),
    500: ("internal_error", "Internal server error"),
    503: ("service_unavailable", "Service unavailable"),
}


def problem_type(code: str) -> str:
    """The stable ``type`` URI of a problem code."""
    return f"urn:agentflow:problem:{code}"


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """Build one problem+json response; the request id comes from the current context."""
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        "request_id": context.correlation_id.get(),
    }
    body.update({k: v for k, v in extensions.items() if v is not None})
    return ProblemResponse(body, status_code=status, headers=headers)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    # FastAPI prefixes the location ("body", "query", "header"); keep it for clarity but
    # render as a dotted path: body.topic, query.wait, body.models.draft
    return ".".join(str(part) for part in loc)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for item in exc.errors():
        loc = item.get("loc", ())
        errors.append(
            {
                "field": _field_path(loc),
                "message": item.get("msg", "invalid value"),
                "type": item.get("type", "value_error"),
            }
        )
    return errors


async def _handle_agentflow_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AgentflowError)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited) and "retry_after" in exc.extra:
        headers["Retry-After"] = str(exc.extra["retry_after"])
    extensions = {k: v for k, v in exc.extra.items() if k != "retry_after"}
    if exc.status >= 500:
        logger.warning("request failed: %s", exc.detail, extra={"event": "request_error", "code": exc.code})
    return problem_response(
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        headers=headers or None,
        **extensions,
    )


async def _handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    fields = ", ".join(sorted({e["field"] for e in errors})) or "request"
    malformed = any(e["type"] == "json_invalid" for e in errors)
    return problem_response(
        status=422 if not malformed else 400,
        code="validation_error" if not malformed else "malformed_json",
        title="Validation error" if not malformed else "Malformed JSON body",
        detail=f"Invalid value for: {fields}" if not malformed else "The request body is not valid JSON.",
        instance=request.url.path,
        errors=errors,
    )


async def _handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, title = _HTTP_TITLES.get(exc.status_code, ("http_error", "HTTP error"))
    # Starlette's own details ("Not Found", "Method Not Allowed") are safe, generic strings.
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem_response(
        status=exc.status_code,
        code=code,
        title=title,
        detail=detail,
        instance=request.url.path,
        headers=dict(exc.headers) if exc.headers else None,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that render every error as problem+json."""
    app.add_exception_handler(AgentflowError, _handle_agentflow_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
