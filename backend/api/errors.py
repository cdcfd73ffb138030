"""RFC 9457 problem+json rendering: the one place errors become HTTP responses.

The hierarchy is drawn in ``agents.errors`` (so lower layers can raise it without the web
framework). The errors only the HTTP edge raises extend it here:

    AgentflowError                       code                    HTTP
    ├── InvalidInput                     (rendered as validation_error)
    │   └── ValidationFailed             validation_error        422
    ├── MalformedJson                    malformed_json          400
    ├── MalformedQuery                   malformed_query         400
    ├── MethodNotAllowed                 method_not_allowed      405
    ├── HeadersTooLarge                  headers_too_large       431
    └── InternalError                    internal_error          500

Every body has ``type``, ``title``, ``status``, ``detail``, ``instance``, ``code`` and
``request_id``. Every 400 and 422 also lists what was wrong under ``errors`` as
``{field, message, type}`` — FastAPI's validation errors, a service's ``InvalidInput(field=...)``
and an unparsable body or query alike. No exception text or traceback ever reaches a client:
unexpected errors are logged and answered with a generic 500.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Callable
from typing import Any, TypedDict, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from agents import context
from agents.errors import (
    AgentflowError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
)

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "FieldError",
    "HeadersTooLarge",
    "InternalError",
    "MalformedJson",
    "MalformedQuery",
    "MethodNotAllowed",
    "ValidationFailed",
    "install_error_handlers",
    "problem_for",
    "problem_response",
    "problem_type",
    "raised_by",
    "raises",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
logger = logging.getLogger("agentflow.errors")


class FieldError(TypedDict):
    """One entry of a problem's ``errors``: where (``body.topic``, ``query.wait``), what, and its kind."""

    field: str
    message: str
    type: str


class _FieldErrors(AgentflowError):
    """An error that lists each bad part of the request under ``errors``."""

    def __init__(self, errors: list[FieldError], detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or f"Invalid value for: {_fields(errors)}", errors=errors, **extra)


class ValidationFailed(_FieldErrors, InvalidInput):
    code = "validation_error"
    status = 422
    title = "Validation error"

    @classmethod
    def from_invalid_input(cls, error: InvalidInput) -> ValidationFailed:
        """A service's ``InvalidInput(detail, field=...)`` in the shape FastAPI's failures have."""
        extra = dict(error.extra)
        field = str(extra.pop("field", "request"))
        kind = str(extra.pop("type", "value_error"))
        return cls([FieldError(field=field, message=error.detail, type=kind)], error.detail, **extra)


class MalformedJson(_FieldErrors):
    code = "malformed_json"
    status = 400
    title = "Malformed JSON body"


class MalformedQuery(_FieldErrors):
    code = "malformed_query"
    status = 400
    title = "Malformed query string"


class MethodNotAllowed(AgentflowError):
    code = "method_not_allowed"
    status = 405
    title = "Method not allowed"


class HeadersTooLarge(AgentflowError):
    code = "headers_too_large"
    status = 431
    title = "Request header fields too large"


class InternalError(AgentflowError):
    code = "internal_error"
    status = 500
    title = "Internal server error"


_Callable = TypeVar("_Callable", bound=Callable[..., Any])
_RAISES: dict[Callable[..., Any], tuple[type[AgentflowError], ...]] = {}


def raises(*errors: type[AgentflowError]) -> Callable[[_Callable], _Callable]:
    """Declare the errors a dependency (or endpoint) raises, so every route using it documents them.

    For errors the shape of an operation does not tell (``backend.api.openapi`` infers the rest)::

        @raises(Unauthorized, Forbidden)
        async def admin_caller(...) -> Caller: ...
    """

    def declare(function: _Callable) -> _Callable:
        _RAISES[function] = errors
        return function

    return declare


def raised_by(function: Callable[..., Any]) -> tuple[type[AgentflowError], ...]:
    """What ``@raises`` declared for ``function`` (nothing if undecorated)."""
    return _RAISES.get(function, ())


def _fields(errors: list[FieldError]) -> str:
    return ", ".join(sorted({e["field"] for e in errors})) or "request"


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


def problem_for(error: AgentflowError, *, instance: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The problem+json response for one of our errors (also used by the pure ASGI middlewares)."""
    if isinstance(error, InvalidInput) and not isinstance(error, ValidationFailed):
        error = ValidationFailed.from_invalid_input(error)
    extensions = dict(error.extra)
    retry_after = extensions.pop("retry_after", None)
    if isinstance(error, RateLimited) and retry_after is not None:
        headers = {**(headers or {}), "Retry-After": str(retry_after)}
    if isinstance(error, Unauthorized):  # RFC 9110: a 401 names the scheme to authenticate with
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="agentflow"'}
    return problem_response(
        status=error.status,
        code=error.code,
        title=error.title,
        detail=error.detail,
        instance=instance,
        headers=headers,
        **extensions,
    )


# --- foreign errors mapped to ours, each by one table -------------------------------------------

#: Starlette's and FastAPI's HTTP errors by status (the router's 404 and 405, above all).
_HTTP_ERRORS: dict[int, type[AgentflowError]] = {
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    429: RateLimited,
    503: ServiceUnavailable,
}

#: Why FastAPI's body parsing failed ("There was an error parsing the body", a 400), by what
#: ``json.loads`` raised; ValueError last, because UnicodeDecodeError is one.
_BODY_PARSE_ERRORS: tuple[tuple[type[BaseException], str, str], ...] = (
    (RecursionError, "json_too_deep", "The JSON body is nested too deeply."),
    (UnicodeDecodeError, "json_invalid_encoding", "The body is not valid UTF-8."),
    (ValueError, "json_number_too_large", "A number in the JSON body has too many digits."),
)


def _body_parse_error(cause: BaseException | None) -> FieldError:
    for kind, name, message in _BODY_PARSE_ERRORS:
        if isinstance(cause, kind) and (kind is not ValueError or "digits" in str(cause)):
            return FieldError(field="body", message=message, type=name)
    return FieldError(field="body", message="The body could not be parsed as JSON.", type="json_invalid")


def _from_http_exception(exc: StarletteHTTPException) -> AgentflowError | None:
    if exc.status_code == 400:
        error = _body_parse_error(exc.__cause__)
        return MalformedJson([error], error["message"])
    known = _HTTP_ERRORS.get(exc.status_code)
    # Starlette's own details ("Not Found", "Method Not Allowed") are safe, generic strings.
    return known(exc.detail if isinstance(exc.detail, str) else None) if known else None


def _from_validation_error(exc: RequestValidationError) -> AgentflowError:
    errors: list[FieldError] = []
    malformed = False
    for item in exc.errors():
        if item.get("type") == "json_invalid":
            malformed = True
            reason = (item.get("ctx") or {}).get("error", "invalid JSON")
            position = item.get("loc", ("body", "?"))[-1]
            errors.append(FieldError(field="body", message=f"{reason} (at character {position}).", type="json_invalid"))
        else:
            errors.append(
                FieldError(
                    # FastAPI prefixes the location (body, query, path, header): body.models.draft
                    field=".".join(str(part) for part in item.get("loc", ())),
                    message=item.get("msg", "invalid value"),
                    type=item.get("type", "value_error"),
                )
            )
    if malformed:
        return MalformedJson(errors, "The request body is not valid JSON.")
    return ValidationFailed(errors)


# --- handlers ------------------------------------------------------------------------------------


def _render(request: Request, error: AgentflowError, headers: dict[str, str] | None = None) -> JSONResponse:
    if error.status >= 500:
        logger.warning("request failed: %s", error.detail, extra={"event": "request_error", "code": error.code})
    return problem_for(error, instance=request.url.path, headers=headers)


async def _handle_agentflow_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AgentflowError)
    return _render(request, exc)


async def _handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _render(request, _from_validation_error(exc))


async def _handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    error = _from_http_exception(exc)
    if error is not None:
        return _render(request, error, headers)
    phrase = http.HTTPStatus(exc.status_code).phrase  # a status we have no class for yet
    return problem_response(
        status=exc.status_code,
        code=phrase.lower().replace(" ", "_").replace("-", "_"),
        title=phrase,
        detail=exc.detail if isinstance(exc.detail, str) else phrase,
        instance=request.url.path,
        headers=headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that render every error as problem+json."""
    app.add_exception_handler(AgentflowError, _handle_agentflow_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
