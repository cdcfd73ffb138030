"""Webhooks end to end: a real loopback receiver gets one signed POST per finished run, retries
recover from a failing receiver, redirects are not followed, and a pending delivery survives a
SIGKILL of the server. Over SQLite (in-process executor) and PostgreSQL (queue executor).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import reflection_responder, wait_terminal
from tests.integration.servers import ServerProcess
from tests.standins import OpenAIConfig, StandinServer
from tests.webhook_receiver import SECRET, Received, WebhookReceiver

WEBHOOKS: dict[str, Any] = {
    "webhook_secret": SECRET,
    "webhook_allow_hosts": ["127.0.0.1"],
    "webhook_retry_base": 0.05,
    "webhook_retry_max": 0.5,
    "webhook_poll_interval": 0.1,
}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver().serving() as running:
        yield running


async def _delivery(
    client: httpx.AsyncClient, workflow_id: str, status: str = "delivered", timeout: float = 60.0
) -> dict[str, Any]:
    """The record once its webhook delivery reached ``status``."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = (await client.get(f"/workflows/{workflow_id}")).json()
        if body["webhook"] is not None and body["webhook"]["status"] == status:
            return body
        assert time.monotonic() < deadline, f"webhook of {workflow_id}: {body['webhook']}, never {status}"
        await asyncio.sleep(0.05)


def _verified(received: Received, record: dict[str, Any]) -> dict[str, Any]:
    """The payload, checked: signed per Standard Webhooks, and the record as GET shows it (minus ``webhook``)."""
    payload: dict[str, Any] = received.verify()
    assert received.headers["content-type"] == "application/json"
    assert received.headers["webhook-id"].startswith("msg_")
    assert received.headers["webhook-signature"].startswith("v1,")
    assert payload == {key: value for key, value in record.items() if key != "webhook"}
    return payload


async def test_one_signed_post_per_finished_run(
    start: Callable[..., Any], receiver: WebhookReceiver, standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(responder=reflection_responder([9] * 20)))
    client = await start(**WEBHOOKS)

    ran = await client.post("/workflows/reflection?wait=30", json={"topic": "hooked", "webhook": receiver.url("/ran")})
    assert ran.status_code == 200 and ran.json()["status"] == "completed"
    assert ran.json()["webhook"]["url"] == receiver.url("/ran")
    # The same request with another webhook: still a cache hit (the webhook is not in the key),
    # and it still delivers, to its own webhook.
    hit = await client.post("/workflows/reflection", json={"topic": "hooked", "webhook": receiver.url("/hit")})
    assert hit.json()["cache_outcome"] == "hit" and hit.json()["status"] == "completed"
    failed = await client.post(
        "/workflows/reflection?wait=30",
        json={"topic": "over budget", "max_tokens_budget": 1, "webhook": receiver.url("/failed")},
    )
    assert failed.json()["status"] == "failed"
    plain = await client.post("/workflows/reflection?wait=30", json={"topic": "no hook"})
    assert plain.json()["webhook"] is None

    cases = (("/ran", ran, "completed"), ("/hit", hit, "completed"), ("/failed", failed, "failed"))
    for path, response, status in cases:
        record = await _delivery(client, response.json()["workflow_id"])
        assert record["webhook"] == {"url": receiver.url(path), "status": "delivered", "attempts": 1}
        (received,) = receiver.at(path)  # exactly one POST
        assert _verified(received, record)["status"] == status
    assert receiver.at("/hit")[0].verify()["cached_from"] == ran.json()["workflow_id"]
    assert len(receiver.received) == 3
    listed = (await client.get("/workflows")).json()["items"]
    assert {item["workflow_id"]: item["webhook"] for item in listed}[hit.json()["workflow_id"]]["status"] == "delivered"


async def test_cancelled_runs_deliver_once(
    start: Callable[..., Any], receiver: WebhookReceiver, standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.4, responder=reflection_responder([5] * 20)))
    client = await start(max_concurrent_workflows=1, worker_concurrency=1, **WEBHOOKS)
    running = (
        await client.post(
            "/workflows/reflection",
            json={"topic": "stopped", "max_iterations": 5, "score_threshold": 10, "webhook": receiver.url("/running")},
        )
    ).json()["workflow_id"]
    deadline = time.monotonic() + 60
    while (await client.get(f"/workflows/{running}")).json()["status"] != "running":
        assert time.monotonic() < deadline, "the run never started"
        await asyncio.sleep(0.05)
    queued = (
        await client.post("/workflows/reflection", json={"topic": "never starts", "webhook": receiver.url("/queued")})
    ).json()["workflow_id"]

    assert (await client.post(f"/workflows/{queued}/cancel")).json()["status"] == "cancelled"  # outright
    assert (await client.post(f"/workflows/{running}/cancel")).status_code in (200, 202)
    assert (await wait_terminal(client, running))["status"] == "cancelled"

    for path, workflow_id in (("/queued", queued), ("/running", running)):
        record = await _delivery(client, workflow_id)
        (received,) = receiver.at(path)
        assert _verified(received, record)["status"] == "cancelled"


async def test_a_coalesced_follower_delivers_its_own_webhook(
    start: Callable[..., Any], receiver: WebhookReceiver, standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.3, responder=reflection_responder([9] * 10)))
    client = await start(**WEBHOOKS)
    leader, follower = [
        await client.post("/workflows/reflection", json={"topic": "shared", "webhook": receiver.url(path)})
        for path in ("/leader", "/follower")
    ]
    assert follower.json()["cache_outcome"] == "coalesced"

    for path, response in (("/leader", leader), ("/follower", follower)):
        record = await _delivery(client, response.json()["workflow_id"])
        (received,) = receiver.at(path)
        assert _verified(received, record)["status"] == "completed"
    assert receiver.at("/follower")[0].verify()["cached_from"] == leader.json()["workflow_id"]


async def test_a_failing_receiver_gets_retries_until_it_answers(
    start: Callable[..., Any], receiver: WebhookReceiver, standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(responder=reflection_responder([9] * 10)))
    receiver.fail("/flaky", 500, 500, 500)
    client = await start(**WEBHOOKS)
    submitted = await client.post("/workflows/reflection", json={"topic": "flaky", "webhook": receiver.url("/flaky")})

    record = await _delivery(client, submitted.json()["workflow_id"])
    assert record["webhook"]["attempts"] == 4
    attempts = receiver.at("/flaky")
    assert [r.answered for r in attempts] == [500, 500, 500, 204]
    assert len({r.headers["webhook-id"] for r in attempts}) == 1  # one message, retried
    assert len({r.body for r in attempts}) == 1  # the same bytes every time
    for received in attempts:
        _verified(received, record)


async def test_redirects_are_not_followed(
    start: Callable[..., Any], receiver: WebhookReceiver, standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(responder=reflection_responder([9] * 10)))
    receiver.redirect("/moved", receiver.url("/elsewhere"))
    client = await start(webhook_max_attempts=2, **WEBHOOKS)
    submitted = await client.post("/workflows/reflection", json={"topic": "moved", "webhook": receiver.url("/moved")})

    record = await _delivery(client, submitted.json()["workflow_id"], status="failed")
    assert record["webhook"]["attempts"] == 2
    assert [r.answered for r in receiver.at("/moved")] == [302, 302]
    assert receiver.at("/elsewhere") == []


@pytest.mark.slow
def test_a_pending_delivery_survives_a_sigkill(
    tmp_path: Path, database_url: str, receiver: WebhookReceiver, standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(responder=reflection_responder([9] * 10)))
    receiver.fail("/down", always=503)
    env = {
        **standin.env(),
        "AGENTFLOW_DATABASE_URL": database_url,
        "AGENTFLOW_WEBHOOK_SECRET": SECRET,
        "AGENTFLOW_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
        "AGENTFLOW_WEBHOOK_RETRY_BASE": "0.2",
        "AGENTFLOW_WEBHOOK_RETRY_MAX": "1",
        "AGENTFLOW_WEBHOOK_TIMEOUT": "2",
        "AGENTFLOW_WEBHOOK_POLL_INTERVAL": "0.1",
    }
    first = ServerProcess(env).start()
    try:
        with httpx.Client(base_url=first.base_url, timeout=70) as http:
            workflow_id = http.post(
                "/workflows/reflection?wait=60", json={"topic": "outlives", "webhook": receiver.url("/down")}
            ).json()["workflow_id"]
            receiver.wait_for("/down", count=2)  # failing, and retried
    finally:
        first.kill()  # SIGKILL: the delivery is still pending in the outbox
    failed_attempts = len(receiver.at("/down"))
    receiver.fail("/down")  # the receiver recovers

    second = ServerProcess(env, port=first.port).start()
    try:
        (delivered,) = receiver.wait_for("/down", answered=204)
        with httpx.Client(base_url=second.base_url, timeout=10) as http:
            deadline = time.monotonic() + 60
            while (record := http.get(f"/workflows/{workflow_id}").json())["webhook"]["status"] != "delivered":
                assert time.monotonic() < deadline, record["webhook"]
                time.sleep(0.05)
    finally:
        second.terminate()
    assert delivered.verify()["workflow_id"] == workflow_id
    assert record["webhook"]["attempts"] >= failed_attempts + 1
    assert len({r.headers["webhook-id"] for r in receiver.at("/down")}) == 1
    # Every attempt was logged under the correlation id of the submit.
    attempts = [line for line in first.json_lines() + second.json_lines() if line.get("event") == "webhook_attempt"]
    assert attempts and all(line["workflow_id"] == workflow_id and line["correlation_id"] for line in attempts)
    assert len({line["correlation_id"] for line in attempts}) == 1
