"""API keys: authentication, per-key ownership, idempotency scopes, quotas, key management, no secret kept."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.config import Settings
from tests.helpers import reflection_responder, wait_terminal
from tests.standins import OpenAIConfig, StandinServer


async def _auth_app(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], **overrides: Any
) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await app_factory(make_settings(auth="required", **overrides))
    return client


async def _key(client: httpx.AsyncClient, name: str, **options: Any) -> tuple[str, str]:
    issued = await client.app.state.keys.create(name=name, **options)  # type: ignore[attr-defined]
    return issued.key.id, issued.secret


def _as(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_missing_bad_and_revoked_keys_get_401_with_a_challenge(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], caplog: Any
) -> None:
    client = await _auth_app(make_settings, app_factory)
    key_id, secret = await _key(client, "reader")
    caplog.set_level(logging.INFO)

    missing = await client.get("/workflows")
    assert missing.status_code == 401
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.json()["code"] == "unauthorized"
    for bad in ("nonsense", secret[:-1] + ("x" if secret[-1] != "x" else "y"), "af_live_" + "0" * 40):
        assert (await client.get("/workflows", headers=_as(bad))).status_code == 401
    assert (await client.get("/workflows", headers={"X-API-Key": secret})).status_code == 200
    assert (await client.get("/workflows", headers=_as(secret))).status_code == 200

    await client.app.state.keys.revoke(key_id=key_id)  # type: ignore[attr-defined]
    revoked = await client.get("/workflows", headers=_as(secret))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    failures = [r for r in caplog.records if getattr(r, "event", None) == "auth_failed"]
    assert {getattr(r, "reason", None) for r in failures} >= {"missing", "malformed", "unknown", "revoked"}
    assert all(secret not in r.getMessage() and secret not in str(r.__dict__) for r in caplog.records)


async def test_health_and_docs_stay_open(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any]
) -> None:
    client = await _auth_app(make_settings, app_factory)
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs", "/redoc"):
        assert (await client.get(path)).status_code == 200, path
    document = (await client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert {scheme["type"] for scheme in schemes.values()} == {"http", "apiKey"}
    # Every operation that reads the caller says how to present a key; the open ones do not.
    both = [{"HTTPBearer": []}, {"APIKeyHeader": []}]
    assert document["paths"]["/workflows/reflection"]["post"]["security"] == both
    assert document["paths"]["/keys"]["post"]["security"] == both  # the admin dependency
    assert document["paths"]["/cache"]["delete"]["security"] == both  # require_admin
    assert "security" not in document["paths"]["/healthz"]["get"]


async def test_a_key_sees_only_its_own_workflows(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.3, responder=reflection_responder([9] * 20)))
    client = await _auth_app(make_settings, app_factory)
    a_id, a = await _key(client, "a")
    b_id, b = await _key(client, "b")
    _, admin = await _key(client, "ops", scopes=["admin"])

    async def submit(secret: str, n: int) -> str:
        response = await client.post("/workflows/reflection", json={"topic": f"t{n}"}, headers=_as(secret))
        assert response.status_code == 202
        workflow_id: str = response.json()["workflow_id"]
        return workflow_id

    a_ids = [await submit(a, n) for n in range(3)]
    b_ids = [await submit(b, n) for n in range(3)]

    listed = (await client.get("/workflows", headers=_as(b))).json()["items"]
    assert sorted(item["workflow_id"] for item in listed) == sorted(b_ids)
    sneaky = (await client.get(f"/workflows?owner={a_id}", headers=_as(b))).json()["items"]
    assert sorted(item["workflow_id"] for item in sneaky) == sorted(b_ids)  # a filter never widens the scope
    for workflow_id in a_ids:
        for method, path in (
            ("GET", f"/workflows/{workflow_id}"),
            ("GET", f"/workflows/{workflow_id}?wait=1"),
            ("GET", f"/workflows/{workflow_id}/events"),
            ("POST", f"/workflows/{workflow_id}/cancel"),
        ):
            response = await client.request(method, path, headers=_as(b))
            assert response.status_code == 404, (method, path)
            assert response.json()["code"] == "not_found"
        assert (await client.get(f"/workflows/{workflow_id}", headers=_as(a))).status_code == 200

    everything = (await client.get("/workflows?limit=100", headers=_as(admin))).json()["items"]
    assert sorted(item["workflow_id"] for item in everything) == sorted(a_ids + b_ids)
    only_a = (await client.get(f"/workflows?owner={a_id}", headers=_as(admin))).json()["items"]
    assert sorted(item["workflow_id"] for item in only_a) == sorted(a_ids)
    assert (await client.get(f"/workflows/{b_ids[0]}", headers=_as(admin))).status_code == 200
    for workflow_id in a_ids + b_ids:
        finished = await client.get(f"/workflows/{workflow_id}?wait=30", headers=_as(admin))
        assert finished.json()["status"] == "completed"
    assert b_id != a_id


async def test_idempotency_keys_are_scoped_per_api_key(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any]
) -> None:
    client = await _auth_app(make_settings, app_factory)
    _, a = await _key(client, "a")
    _, b = await _key(client, "b")
    body = {"topic": "same request"}
    first = await client.post("/workflows/reflection", json=body, headers={**_as(a), "Idempotency-Key": "k-1"})
    again = await client.post("/workflows/reflection", json=body, headers={**_as(a), "Idempotency-Key": "k-1"})
    other = await client.post("/workflows/reflection", json=body, headers={**_as(b), "Idempotency-Key": "k-1"})
    assert first.json()["workflow_id"] == again.json()["workflow_id"]
    assert other.status_code == 202
    assert other.json()["workflow_id"] != first.json()["workflow_id"]
    changed = await client.post(
        "/workflows/reflection", json={"topic": "x"}, headers={**_as(b), "Idempotency-Key": "k-1"}
    )
    assert changed.status_code == 422
    assert first.json()["workflow_id"] not in changed.text  # a conflict reveals no other workflow id


async def test_max_queued_refuses_the_next_submit_and_writes_nothing(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(latency=5.0))
    client = await _auth_app(make_settings, app_factory, max_concurrent_workflows=2)
    _, limited = await _key(client, "small", max_queued=5)
    _, other = await _key(client, "other")
    for n in range(5):
        accepted = await client.post("/workflows/reflection", json={"topic": f"q{n}"}, headers=_as(limited))
        assert accepted.status_code == 202
    refused = await client.post("/workflows/reflection", json={"topic": "sixth"}, headers=_as(limited))
    assert refused.status_code == 429
    assert refused.json()["code"] == "quota_exceeded"
    assert int(refused.headers["Retry-After"]) >= 1
    mine = (await client.get("/workflows?limit=100", headers=_as(limited))).json()["items"]
    assert len(mine) == 5 and all(item["input"]["topic"] != "sixth" for item in mine)
    assert (await client.post("/workflows/reflection", json={"topic": "fine"}, headers=_as(other))).status_code == 202


async def test_keys_are_managed_over_http_by_admin_keys_only(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], caplog: Any
) -> None:
    client = await app_factory(make_settings())  # even with auth off, key management needs an admin key
    _, admin = await _key(client, "root", scopes=["admin"])
    _, plain = await _key(client, "plain")
    caplog.set_level(logging.INFO)
    assert (await client.get("/keys")).status_code == 401
    forbidden = await client.get("/keys", headers=_as(plain))
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"

    created = await client.post("/keys", json={"name": "ci", "max_queued": 7}, headers=_as(admin))
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith(body["prefix"]) and body["prefix"].startswith("af_live_")
    listed = await client.get("/keys", headers=_as(admin))
    assert body["secret"] not in listed.text
    assert {item["name"] for item in listed.json()["items"]} == {"root", "plain", "ci"}
    assert (await client.get("/workflows", headers=_as(body["secret"]))).status_code == 200
    revoked = await client.delete(f"/keys/{body['id']}", headers=_as(admin))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert (await client.delete("/keys/key_nothere", headers=_as(admin))).status_code == 404
    assert (await client.post("/keys", json={"name": "x", "scopes": ["root"]}, headers=_as(admin))).status_code == 422
    events = {getattr(r, "event", None) for r in caplog.records}
    assert {"key_created", "key_revoked", "auth_failed"} <= events
    assert all(body["secret"] not in str(r.__dict__) for r in caplog.records)


async def test_no_key_secret_is_stored(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], tmp_path: Path
) -> None:
    client = await app_factory(make_settings())
    secrets = [(await _key(client, f"k{n}", scopes=["admin"] if n else []))[1] for n in range(3)]
    for secret in secrets:
        assert (await client.post("/keys", json={"name": "more"}, headers=_as(secrets[1]))).status_code == 201
        await client.get("/workflows", headers=_as(secret))
    await asyncio.sleep(0)  # nothing pending
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("agentflow.db*"))
    assert stored  # the database and its WAL
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret[len("af_live_") + 8 :].encode() not in stored  # not even the secret part


@pytest.mark.postgres
async def test_no_key_secret_is_stored_in_postgres(
    postgres_url: str, make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any]
) -> None:
    import psycopg

    client = await app_factory(make_settings(database_url=postgres_url, auth="required"))
    _, secret = await _key(client, "pg", scopes=["admin"])
    assert (await client.get("/keys", headers=_as(secret))).status_code == 200
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute("SELECT row_to_json(k)::text FROM api_keys k").fetchall()
    assert rows and all(secret not in row[0] and secret[16:] not in row[0] for row in rows)


async def test_auth_off_needs_no_key(client: httpx.AsyncClient, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(responder=reflection_responder([9])))
    response = await client.post("/workflows/reflection", json={"topic": "open"})
    assert response.status_code == 202
    assert (await wait_terminal(client, response.json()["workflow_id"]))["status"] == "completed"
