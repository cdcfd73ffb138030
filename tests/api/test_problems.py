"""One problem shape at the HTTP edge: validation, unparsable input, unstorable text, header limits,
and an OpenAPI document that declares every problem an operation can answer."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from agents.errors import AgentflowError, InvalidInput
from backend.api.app import create_app
from backend.api.errors import PROBLEM_MEDIA_TYPE
from backend.api.openapi import NOT_PER_OPERATION, RULES, RUN_ONLY, declared_errors
from backend.config import Settings

PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "code", "request_id"}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert set(body) >= PROBLEM_FIELDS
    assert body["status"] == status
    assert body["type"] == f"urn:agentflow:problem:{body['code']}"
    return body


def fields(body: dict[str, Any]) -> list[str]:
    assert all(set(error) == {"field", "message", "type"} for error in body["errors"])
    return [error["field"] for error in body["errors"]]


# --- one validation shape -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "field"),
    [
        ("POST", "/workflows/reflection", {"json": {}}, "body.topic"),
        ("POST", "/workflows/reflection?wait=99", {"json": {"topic": "t"}}, "query.wait"),
        ("GET", "/workflows?status=done", {}, "query.status"),
        ("GET", "/workflows?type=foo", {}, "query.type"),  # refused by the run service, not FastAPI
        ("GET", "/workflows?cursor=garbage!", {}, "query.cursor"),  # refused by the store
        ("GET", "/workflows/" + "x" * 65, {}, "path.workflow_id"),
        ("POST", "/workflows/reflection", {"json": {"topic": "t"}, "headers": {"Idempotency-Key": ""}}, "header.Idempotency-Key"),  # noqa: E501
    ],
)  # fmt: skip
async def test_every_validation_failure_has_one_shape(
    client: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any], field: str
) -> None:
    body = problem(await client.request(method, url, **kwargs), 422)
    assert body["code"] == "validation_error"
    assert fields(body) == [field]
    assert "field" not in body  # named once, in errors


# --- text no store can hold -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"topic": "before\u0000after"}, "body.topic"),
        ({"topic": "\ud800 unpaired"}, "body.topic"),
        ({"topic": "t", "models": {"draft": "gpt\u0000"}}, "body.models.draft"),
    ],
)
async def test_unstorable_text_in_a_body_is_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    content = json.dumps(body).encode()  # ensure_ascii: "\ud800" travels as an escape, as JSON allows
    response = await client.post("/workflows/reflection", content=content, headers={"Content-Type": "application/json"})
    assert fields(problem(response, 422)) == [field]
    assert (await client.get("/workflows")).json()["items"] == []


async def test_unstorable_text_in_a_query_is_422_naming_the_parameter(client: httpx.AsyncClient) -> None:
    body = problem(await client.get("/workflows?cursor=abc%00def"), 422)
    assert body["errors"] == [
        {"field": "query.cursor", "message": "Text must not contain NUL (U+0000).", "type": "string_unstorable"}
    ]


async def test_a_query_that_is_not_utf8_is_400_naming_the_parameter(client: httpx.AsyncClient) -> None:
    body = problem(await client.get("/workflows?cursor=%ff%fe"), 400)
    assert body["code"] == "malformed_query"
    assert fields(body) == ["query.cursor"]
    # Parameters the route does not declare are ignored, as FastAPI ignores them.
    assert (await client.get("/workflows?utm=%ff%00")).status_code == 200


@pytest.fixture
def backend_overrides(backend: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for an app on ``backend`` (for PostgreSQL, a fresh database)."""
    if backend == "postgres":
        return {"database_url": request.getfixturevalue("postgres_url"), "executor": "local"}
    return {}


@pytest.fixture
async def client_on_backend(
    backend_overrides: dict[str, Any], make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any]
) -> httpx.AsyncClient:
    """A client of an app on ``backend``. Its database is set up before the app and so torn down
    after it: a PostgreSQL database dropped under a running app hangs the app's shutdown."""
    client: httpx.AsyncClient = await app_factory(make_settings(**backend_overrides))
    return client


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_nul_in_a_path_or_cursor_never_reaches_the_store(client_on_backend: httpx.AsyncClient) -> None:
    client = client_on_backend
    for url in ("/workflows/abc%00def", "/workflows/abc%00def/events", "/workflows/abc%00def/cancel"):
        response = await client.request("POST" if url.endswith("cancel") else "GET", url)
        assert fields(problem(response, 422)) == ["path.workflow_id"]
    assert (await client.get("/workflows?cursor=abc%00def")).status_code == 422
    assert (await client.get("/workflows/abc%20def")).status_code == 404


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_crafted_cursor_holding_nul_is_a_422(client_on_backend: httpx.AsyncClient) -> None:
    client = client_on_backend
    # The cursor's own text is plain base64; the id inside it is not storable.
    crafted = base64.urlsafe_b64encode(json.dumps(["2026-01-01T00:00:00+00:00", "a\u0000b"]).encode()).decode()
    response = await client.get(f"/workflows?cursor={crafted.rstrip('=')}")
    assert fields(problem(response, 422)) == ["query.cursor"]


# --- every 400 says what was wrong ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b'{"topic": ', "json_invalid"),
        (b'{"topic": "caf\xe9"}', "json_invalid_encoding"),  # Latin-1, not UTF-8
        (b"[" * 100_000 + b"]" * 100_000, "json_too_deep"),
        (b'{"topic": "t", "max_iterations": ' + b"7" * 5000 + b"}", "json_number_too_large"),
    ],
    ids=["truncated", "not-utf8", "nesting", "5000-digits"],
)
async def test_an_unparsable_body_is_400_naming_body_and_the_reason(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], content: bytes, kind: str
) -> None:
    client = await app_factory(make_settings(max_body_bytes=1 << 20))
    response = await client.post("/workflows/reflection", content=content, headers={"Content-Type": "application/json"})
    body = problem(response, 400)
    assert body["code"] == "malformed_json"
    assert [(error["field"], error["type"]) for error in body["errors"]] == [("body", kind)]
    assert body["errors"][0]["message"]
    assert "sys.set_int_max_str_digits" not in response.text  # our words, not the parser's


# --- header limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{"X-Pad": "a" * 20_000}, {f"X-Pad-{n}": "a" for n in range(120)}],
    ids=["16-KiB-total", "100-fields"],
)
async def test_headers_over_the_limits_are_431(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.post(
        "/workflows/reflection", json={"topic": "t"}, headers={**headers, "X-Request-ID": "big-headers-1"}
    )
    body = problem(response, 431)
    assert body["code"] == "headers_too_large"
    assert response.headers["X-Request-ID"] == body["request_id"] == "big-headers-1"
    assert (await client.get("/workflows")).json()["items"] == []  # refused before any work


async def test_header_limits_are_settings(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any]
) -> None:
    client = await app_factory(make_settings(max_header_bytes=32_768, max_header_count=200))
    padded = {f"X-Pad-{n}": "a" * 100 for n in range(150)}  # ~17 KiB in 150 fields
    assert (await client.get("/healthz", headers=padded)).status_code == 200


# --- the OpenAPI document --------------------------------------------------------------------------


async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/openapi.json")).json()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in document["paths"].items() for method, op in ops.items()]


async def test_every_error_response_is_a_problem(client: httpx.AsyncClient) -> None:
    document = await openapi(client)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "ProblemDetails" in document["components"]["schemas"]
    for method, path, op in operations(document):
        for status, response in op["responses"].items():
            assert response["headers"]["X-Request-ID"], (method, path, status)
            if status.startswith(("4", "5")) and not (path == "/readyz" and status == "503"):
                content = response["content"]
                assert list(content) == [PROBLEM_MEDIA_TYPE], (method, path, status)
                assert content[PROBLEM_MEDIA_TYPE]["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}


async def test_each_operation_declares_what_it_can_answer(client: httpx.AsyncClient) -> None:
    document = await openapi(client)
    declared = {(method, path): set(op["responses"]) for method, path, op in operations(document)}
    everywhere = {"431", "500"}
    assert declared[("get", "/healthz")] == {"200"} | everywhere
    assert declared[("post", "/workflows/reflection")] >= {"200", "202", "400", "413", "422", "429", "503"}
    assert declared[("get", "/workflows")] >= {"200", "400", "422", "429"}
    assert declared[("get", "/workflows/{workflow_id}")] >= {"200", "404", "422", "429"}
    assert declared[("post", "/workflows/{workflow_id}/cancel")] >= {"200", "202", "404", "409", "422"}
    assert "409" not in declared[("get", "/workflows/{workflow_id}")]
    assert "503" not in declared[("get", "/workflows/{workflow_id}")]
    assert all(statuses >= everywhere for statuses in declared.values())
    events = document["paths"]["/workflows/{workflow_id}/events"]["get"]["responses"]["200"]["content"]
    assert list(events) == ["text/event-stream"]
    limited = document["paths"]["/workflows/reflection"]["post"]["responses"]["429"]["headers"]
    rate_headers = {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
    assert set(limited) == {"X-Request-ID", *rate_headers}
    assert set(document["components"]["headers"]) >= set(limited)


async def test_problem_examples_carry_the_codes_of_the_error_classes(client: httpx.AsyncClient) -> None:
    responses = (await openapi(client))["paths"]["/workflows/research"]["post"]["responses"]
    examples = responses["503"]["content"][PROBLEM_MEDIA_TYPE]["examples"]
    assert set(examples) == {"provider_not_configured", "service_unavailable"}
    assert {e["value"]["status"] for e in examples.values()} == {503}
    assert set(responses["422"]["content"][PROBLEM_MEDIA_TYPE]["examples"]) == {"validation_error"}


def _subclasses(cls: type[AgentflowError]) -> set[type[AgentflowError]]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_no_error_class_is_left_out_of_the_docs(make_settings: Callable[..., Settings]) -> None:
    """A new error is answered by a rule, declared with ``@raises`` on a dependency, ends runs only,
    or is answered outside operations: otherwise this fails and names it."""
    app = create_app(make_settings())
    app.openapi()  # every route in: the LangGraph API's join the app with its first document (or request)
    declared = {error for errors in declared_errors(app.routes).values() for error in errors}
    classified = {error for rule in RULES for error in rule.errors} | declared | set(NOT_PER_OPERATION)
    unclassified = {
        error
        for error in _subclasses(AgentflowError)
        if error is not InvalidInput  # always rendered as its subclass ValidationFailed (validation_error)
        and not error.__name__.startswith("_")
        and not issubclass(error, RUN_ONLY)
        and not any(issubclass(error, known) for known in classified)
        and error.__module__.split(".")[0] in ("agents", "backend")
    }
    names = sorted(error.__name__ for error in unclassified)
    assert not unclassified, (
        f"no operation documents {names}: add a rule in backend/api/openapi.py, or decorate the dependency that "
        "raises it with @raises(...) (backend/api/errors.py) and use it in the routes"
    )


# --- docs served from the package -------------------------------------------------------------------


async def test_docs_assets_are_served_from_the_package(client: httpx.AsyncClient) -> None:
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"):
        response = await client.get(f"/docs/static/{asset}")
        assert response.status_code == 200, asset
        assert len(response.content) > 1000
