"""The service foundation through an ASGI client: ids, errors, limits, CORS, health, docs."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from backend.config import Settings

ORIGIN = "http://ui.example"


async def test_safe_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


async def test_correlation_id_alias_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Correlation-ID": "legacy.id_1"})
    assert response.headers["X-Request-ID"] == "legacy.id_1"


@pytest.mark.parametrize("bad", ["x" * 300, 'has"quotes"', "has spaces", "semi;colon", ""])
async def test_unsafe_request_id_is_replaced(client: httpx.AsyncClient, bad: str, caplog: Any) -> None:
    with caplog.at_level(logging.WARNING, logger="agentflow.request"):
        response = await client.get("/healthz", headers={"X-Request-ID": bad})
    echoed = response.headers["X-Request-ID"]
    assert echoed != bad
    assert len(echoed) <= 64
    assert echoed.replace("-", "").isalnum()
    assert any(r.getMessage() == "replaced an unsafe request id" for r in caplog.records)


async def test_generated_request_id_when_absent(client: httpx.AsyncClient) -> None:
    first = (await client.get("/healthz")).headers["X-Request-ID"]
    second = (await client.get("/healthz")).headers["X-Request-ID"]
    assert first != second


async def test_request_logs_carry_the_request_id(client: httpx.AsyncClient, caplog: Any) -> None:
    with caplog.at_level(logging.INFO):
        await client.get("/workflows/unknown-id", headers={"X-Request-ID": "trace-me-1"})
    access = [r for r in caplog.records if r.name == "agentflow.access"]
    assert access, "no access line"
    line = access[-1]
    assert line.correlation_id == "trace-me-1"
    assert (line.method, line.path, line.status) == ("GET", "/workflows/unknown-id", 404)
    assert line.duration_ms >= 0
    assert line.client == "127.0.0.1"


async def rate_limited_client(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], **overrides: Any
) -> httpx.AsyncClient:
    settings = make_settings(rate_limit_submit="3/hour", cors_origins=[ORIGIN], **overrides)
    client: httpx.AsyncClient = await app_factory(settings)
    return client


async def test_fourth_submit_in_a_minute_gets_429(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], caplog: Any
) -> None:
    client = await rate_limited_client(make_settings, app_factory)
    headers = {"Origin": ORIGIN, "X-Request-ID": "rl-1"}
    for _ in range(3):
        ok = await client.post("/workflows/reflection", json={"topic": "t"}, headers=headers)
        assert ok.status_code == 202
        assert ok.headers["X-RateLimit-Limit"] == "3"
    with caplog.at_level(logging.WARNING, logger="agentflow.ratelimit"):
        limited = await client.post("/workflows/reflection", json={"topic": "t"}, headers=headers)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-Request-ID"] == "rl-1"
    assert limited.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.headers["content-type"] == "application/problem+json"
    body = limited.json()
    assert body["status"] == 429
    assert body["request_id"] == "rl-1"
    assert any(getattr(r, "event", None) == "rate_limited" for r in caplog.records)
    # reads use the default bucket and still work; health is exempt
    assert (await client.get("/workflows")).status_code == 200
    assert "X-RateLimit-Limit" not in (await client.get("/healthz")).headers


async def test_an_authenticated_key_gets_its_own_bucket_and_an_unchecked_header_does_not(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any]
) -> None:
    client = await rate_limited_client(make_settings, app_factory)
    issued = await client.app.state.keys.create(name="team-a")  # type: ignore[attr-defined]
    for _ in range(3):
        await client.post("/workflows/reflection", json={"topic": "t"})
    assert (await client.post("/workflows/reflection", json={"topic": "t"})).status_code == 429
    # A header value nobody verified is not a way out of the client's bucket...
    forged = await client.post("/workflows/reflection", json={"topic": "t"}, headers={"X-API-Key": "team-a"})
    assert forged.status_code == 429
    # ...a real key is: limits are keyed by the authenticated key id.
    keyed = await client.post("/workflows/reflection", json={"topic": "t"}, headers={"X-API-Key": issued.secret})
    assert keyed.status_code == 202


async def test_forwarded_for_is_ignored_from_untrusted_peers(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any]
) -> None:
    client = await rate_limited_client(make_settings, app_factory, forwarded_allow_ips="10.9.9.9")
    for n in range(3):
        response = await client.post(
            "/workflows/reflection", json={"topic": "t"}, headers={"X-Forwarded-For": f"198.51.100.{n}"}
        )
        assert response.status_code == 202
    spoofed = await client.post(
        "/workflows/reflection", json={"topic": "t"}, headers={"X-Forwarded-For": "203.0.113.7"}
    )
    assert spoofed.status_code == 429


async def test_forwarded_for_is_honoured_from_trusted_proxy(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any]
) -> None:
    client = await rate_limited_client(make_settings, app_factory, forwarded_allow_ips="127.0.0.1")
    for n in range(5):  # five different real clients behind our proxy: each has its own bucket
        response = await client.post(
            "/workflows/reflection", json={"topic": "t"}, headers={"X-Forwarded-For": f"198.51.100.{n}"}
        )
        assert response.status_code == 202


async def test_one_mebibyte_body_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/workflows/reflection",
        content=b'{"topic": "' + b"x" * (1 << 20) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"


async def test_chunked_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"topic": "'
        for _ in range(80):
            yield b"y" * 1024
        yield b'"}'

    response = await client.post(
        "/workflows/reflection", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_malformed_json_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/workflows/reflection", content=b'{"topic": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    body = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert body["code"] == "malformed_json"
    assert body["errors"][0]["field"].startswith("body")


async def test_unexpected_error_is_a_generic_500_without_traceback(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    store = client.app.state.runs.store  # type: ignore[attr-defined]

    async def explode(**_: Any) -> None:
        raise RuntimeError("database password is hunter2, key sk-abcdefghijklmnop")

    monkeypatch.setattr(store, "get", explode)
    with caplog.at_level(logging.ERROR):
        response = await client.get("/workflows/some-id", headers={"Origin": ORIGIN, "X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "boom-1"
    text = response.text
    assert "hunter2" not in text and "Traceback" not in text and "RuntimeError" not in text
    assert response.json()["request_id"] == "boom-1"
    logged = [r for r in caplog.records if r.exc_info]
    assert logged, "the traceback must be logged"


async def test_problem_shape_for_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    body = response.json()
    assert set(body) >= {"type", "title", "status", "detail", "instance", "request_id"}
    assert body["instance"] == "/no/such/route"


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["database"] == "ok"
    assert body["providers"]["openai"]["configured"] is True
    assert "sk-test-key" not in ready.text and "tvly-test-key" not in ready.text


async def test_docs_and_openapi(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["info"]["title"] == "agentflow"
    assert spec["info"]["version"]
    assert "/workflows/reflection" in spec["paths"]
    schema = spec["components"]["schemas"]["ReflectionRequest"]
    assert schema["examples"]
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/redoc")).status_code == 200


async def test_cors_preflight(
    client: httpx.AsyncClient, make_settings: Callable[..., Settings], app_factory: Any
) -> None:
    cors_client = await app_factory(make_settings(cors_origins=[ORIGIN]))
    response = await cors_client.options(
        "/workflows/reflection",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    other = await cors_client.get("/healthz", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_no_log_line_contains_an_api_key(capsys: Any) -> None:
    from backend.logs import configure_logging

    configure_logging("INFO", "json")
    try:
        logging.getLogger("agentflow.test").info(
            "calling with sk-live-1234567890abcdef and tvly-abcdef123456",
            extra={"headers": {"Authorization": "Bearer sk-live-1234567890abcdef", "X-API-Key": "k"}},
        )
    finally:
        logging.getLogger().handlers.clear()
    line = capsys.readouterr().out.strip()
    record = json.loads(line)
    assert "1234567890abcdef" not in line and "abcdef123456" not in line
    assert record["headers"]["Authorization"] == "***"
    assert {"timestamp", "level", "logger", "message"} <= set(record)


async def test_a_serving_app_settles_the_heap_once_started(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend import heap
    from backend.api.app import create_app

    settled: list[bool] = []
    monkeypatch.setattr(heap, "settle", lambda: settled.append(True))
    for serving in (False, True):  # create_app_from_env flags the app; a test's create_app does not
        app = create_app(make_settings())
        if serving:
            app.state.settle_heap = True
        async with app.router.lifespan_context(app):
            assert settled == ([True] if serving else [])
