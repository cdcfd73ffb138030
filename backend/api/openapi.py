"""The OpenAPI document, made truthful: every operation declares every problem it can answer.

FastAPI documents each route's successes and a generic ``HTTPValidationError`` (as
``application/json``, which we never send). ``install_openapi`` replaces that: it walks every
operation of the generated document and adds one ``application/problem+json`` response per status
the operation can answer, with the ``ProblemDetails`` schema, the codes that status can carry
(with an example each) and its headers. A status or code is stated once, on its error class
(``agents.errors``, ``backend.api.errors``); where an operation answers it comes from two places:

* its shape, by the ``RULES`` below (a body, a query, a path id, rate limiting), so a new route
  gets the HTTP edge's problems without anyone writing them down;
* ``@raises(...)`` (``backend.api.errors.raises``) on its endpoint or any dependency, for the domain
  refusals the shape cannot tell: ``@raises(Conflict)`` on cancel, ``@raises(Unauthorized, Forbidden)``
  on the admin dependency, which documents them on every operation that depends on it.

A test holds that every error class is answered somewhere, or listed in ``RUN_ONLY`` /
``NOT_PER_OPERATION``, so a new error cannot be forgotten; schemathesis holds the document to what
a real server answers.
"""

from __future__ import annotations

import http
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.routing import iter_route_contexts
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute

from agents.errors import (
    AgentflowError,
    BudgetExceeded,
    Conflict,
    NotFound,
    PayloadTooLarge,
    ProviderNotConfigured,
    RateLimited,
    UpstreamError,
    WorkflowTimeout,
)
from backend.api.auth import KEY_DEPENDENCIES, SECURITY_SCHEMES
from backend.api.errors import (
    PROBLEM_MEDIA_TYPE,
    FieldError,
    HeadersTooLarge,
    InternalError,
    MalformedJson,
    MalformedQuery,
    MethodNotAllowed,
    ValidationFailed,
    problem_type,
    raised_by,
)
from backend.api.middleware.rate_limit import is_exempt
from backend.api.schemas import ProblemDetails
from backend.api.sse import EVENT_SCHEMA

__all__ = [
    "NOT_PER_OPERATION",
    "RULES",
    "RUN_ONLY",
    "Operation",
    "Rule",
    "declared_errors",
    "install_openapi",
    "with_problems",
    "with_security",
]


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of the generated document: its method, path, OpenAPI object, and the errors
    its endpoint and dependencies declare with ``@raises``."""

    method: str
    path: str
    spec: dict[str, Any]
    declared: tuple[type[AgentflowError], ...] = field(default=())

    def has(self, where: str) -> bool:
        """Whether it takes a parameter ``in`` ``where`` (path, query, header, cookie)."""
        return any(parameter.get("in") == where for parameter in self.spec.get("parameters", []))

    @property
    def has_body(self) -> bool:
        return "requestBody" in self.spec


@dataclass(frozen=True, slots=True)
class Rule:
    """The errors an operation can answer when ``applies(operation)``."""

    applies: Callable[[Operation], bool]
    errors: tuple[type[AgentflowError], ...]


def _every(op: Operation) -> bool:
    return True


def _rate_limited(op: Operation) -> bool:
    return not is_exempt(op.path)


def _has_body(op: Operation) -> bool:
    return op.has_body


def _has_query(op: Operation) -> bool:
    return op.has("query")


def _has_path_or_header(op: Operation) -> bool:
    return op.has("path") or op.has("header")


def _names_a_resource(op: Operation) -> bool:
    return op.has("path")


RULES: tuple[Rule, ...] = (
    Rule(_every, (HeadersTooLarge, InternalError)),
    Rule(_rate_limited, (RateLimited,)),
    Rule(_has_body, (MalformedJson, PayloadTooLarge, ValidationFailed)),
    Rule(_has_query, (MalformedQuery, ValidationFailed)),
    Rule(_has_path_or_header, (ValidationFailed,)),
    Rule(_names_a_resource, (NotFound,)),  # an id that names nothing
)
#: Errors no request answers: they end a run, as ``error.code`` on its record.
RUN_ONLY: tuple[type[AgentflowError], ...] = (UpstreamError, BudgetExceeded, WorkflowTimeout)
#: Errors answered outside every documented operation (a method the path does not have).
NOT_PER_OPERATION: tuple[type[AgentflowError], ...] = (MethodNotAllowed,)

_PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDetails"}
_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {"description": "The request id: the client's safe value, or a generated one.", "type": "string"},
    "Retry-After": {"description": "Seconds to wait before retrying.", "type": "integer"},
    "X-RateLimit-Limit": {"description": "Requests allowed in the current window.", "type": "integer"},
    "X-RateLimit-Remaining": {"description": "Requests left in the current window.", "type": "integer"},
    "X-RateLimit-Reset": {"description": "When the window resets (Unix time, seconds).", "type": "integer"},
}
#: The headers a status always carries besides X-Request-ID.
_STATUS_HEADERS = {429: ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")}
#: What an example of each error carries besides the common members.
_EXAMPLE_EXTRAS: dict[type[AgentflowError], dict[str, Any]] = {
    ValidationFailed: {
        "detail": "Invalid value for: body.topic",
        "errors": [FieldError(field="body.topic", message="Field required", type="missing")],
    },
    MalformedJson: {
        "detail": "The JSON body is nested too deeply.",
        "errors": [FieldError(field="body", message="The JSON body is nested too deeply.", type="json_too_deep")],
    },
    MalformedQuery: {
        "detail": "Invalid value for: query.cursor",
        "errors": [FieldError(field="query.cursor", message="Not valid UTF-8.", type="query_invalid_encoding")],
    },
    ProviderNotConfigured: {"detail": "OPENAI_API_KEY is not set on this server.", "variable": "OPENAI_API_KEY"},
    Conflict: {"detail": "The workflow already ended as completed.", "current_status": "completed"},
}


def _errors_of(op: Operation) -> dict[int, list[type[AgentflowError]]]:
    by_status: dict[int, list[type[AgentflowError]]] = {}
    inferred = [error for rule in RULES if rule.applies(op) for error in rule.errors]
    for error in (*inferred, *op.declared):
        if error not in by_status.setdefault(error.status, []):
            by_status[error.status].append(error)
    return by_status


def _dependency_calls(routes: Sequence[BaseRoute]) -> dict[tuple[str, str], list[Callable[..., Any]]]:
    """(method, path) → the route's endpoint and every dependency it solves, outermost first."""
    calls: dict[tuple[str, str], list[Callable[..., Any]]] = {}
    for route in iter_route_contexts(routes):  # included routers too, with their dependencies
        root = getattr(route, "dependant", None)
        if root is None or route.path_format is None:
            continue
        found: list[Callable[..., Any]] = []
        dependants = [root]
        while dependants:
            dependant = dependants.pop()
            if dependant.call is not None:
                found.append(dependant.call)
            dependants.extend(dependant.dependencies)
        for method in route.methods or ():
            calls[(method.lower(), route.path_format)] = found
    return calls


def declared_errors(routes: Sequence[BaseRoute]) -> dict[tuple[str, str], tuple[type[AgentflowError], ...]]:
    """(method, path) → what the route's endpoint and dependencies declare with ``@raises``."""
    return {
        operation: tuple(error for call in calls for error in raised_by(call))
        for operation, calls in _dependency_calls(routes).items()
    }


def with_security(document: dict[str, Any], routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """Document how a key is presented (``backend.api.auth.SECURITY_SCHEMES``) on every operation
    whose dependencies read the caller, as FastAPI would for security dependencies (in place; returned).

    The schemes are not dependencies: the edge reads the key once per request
    (``backend.api.auth.authenticate``), and each dependency would cost every request its solving.
    """
    secured = {
        operation
        for operation, calls in _dependency_calls(routes).items()
        if any(call is dependency for call in calls for dependency in KEY_DEPENDENCIES)
    }
    if not secured:
        return document
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    for scheme in SECURITY_SCHEMES:
        schemes[scheme.scheme_name] = jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
    for path, operations in document.get("paths", {}).items():
        for method, spec in operations.items():
            if (method, path) in secured:
                spec["security"] = [{scheme.scheme_name: []} for scheme in SECURITY_SCHEMES]
    return document


def _example(error: type[AgentflowError], path: str) -> dict[str, Any]:
    return {
        "type": problem_type(error.code),
        "title": error.title,
        "status": error.status,
        "detail": error.title,
        "instance": path,
        "code": error.code,
        "request_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        **_EXAMPLE_EXTRAS.get(error, {}),
    }


def _header(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/headers/{name}"}


def _problem_response(status: int, errors: list[type[AgentflowError]], path: str) -> dict[str, Any]:
    codes = "; ".join(f"`{error.code}`: {error.title}" for error in errors)
    return {
        "description": f"{http.HTTPStatus(status).phrase} — {codes}",
        "headers": {name: _header(name) for name in ("X-Request-ID", *_STATUS_HEADERS.get(status, ()))},
        "content": {
            PROBLEM_MEDIA_TYPE: {
                "schema": _PROBLEM_REF,
                "examples": {error.code: {"summary": error.title, "value": _example(error, path)} for error in errors},
            }
        },
    }


def with_problems(document: dict[str, Any], routes: Sequence[BaseRoute] = ()) -> dict[str, Any]:
    """Add the problem responses, schema and headers to a generated document (in place; returned).

    ``routes`` (the app's) contribute what their dependencies declare with ``@raises``.
    """
    declared = declared_errors(routes)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422, replaced below
        schemas.pop(unused, None)
    _, problem_schemas = models_json_schema(
        [(ProblemDetails, "serialization")], ref_template="#/components/schemas/{model}"
    )
    schemas.update(problem_schemas.get("$defs", {}))
    components["headers"] = {
        name: {"description": header["description"], "schema": {"type": header["type"]}}
        for name, header in _HEADERS.items()
    }
    for path, operations in document.get("paths", {}).items():
        for method, spec in operations.items():
            op = Operation(method=method, path=path, spec=spec, declared=declared.get((method, path), ()))
            responses: dict[str, Any] = spec.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's HTTPValidationError as application/json
            for key, response in responses.items():
                response.setdefault("headers", {})["X-Request-ID"] = _header("X-Request-ID")
                if key[0] in "45" and not response.get("content"):  # a route's own, described, error
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}
                stream = response.get("content", {}).get("text/event-stream")
                if stream is not None:  # every stream is framed by backend.api.sse
                    stream.setdefault("schema", EVENT_SCHEMA)
            for code, errors in sorted(_errors_of(op).items()):
                responses.setdefault(str(code), _problem_response(code, errors, path))
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve FastAPI's document with ``with_problems`` and ``with_security`` at ``/openapi.json``
    (built once, on first use)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            with_security(with_problems(generate(), app.routes), app.routes)  # FastAPI keeps the document it generates
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
