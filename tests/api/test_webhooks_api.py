"""Webhook URLs at submit: refused ones are a 422 naming body.webhook and write nothing; the
webhook is part of an Idempotency-Key's request but not of the result-cache key.

No refused URL is ever connected to: the guard only parses and resolves (IP literals and
``localhost`` resolve without any traffic), and no outbox row is written for the dispatcher
to try later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from backend.config import Settings
from tests.helpers import reflection_responder
from tests.standins import OpenAIConfig, StandinServer
from tests.webhook_receiver import SECRET

REFUSED = [
    ("http://10.0.0.1/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
    ("http://[::ffff:10.0.0.1]/hook", "inside an IPv6 address"),
    ("http://[::ffff:169.254.169.254]/hook", "metadata"),
    ("http://100.64.0.1/hook", "not globally routable"),
    ("http://0.0.0.0:8000/hook", "unspecified"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://localhost:9/hook", "loopback"),  # resolves to loopback, and is not an allowed host
    ("http://2130706433/hook", "loopback"),  # 127.0.0.1 spelled as one number
    ("http://user:secret@127.0.0.1:9/hook", "credentials"),  # an allowed host, but credentials
    ("ftp://127.0.0.1/hook", "http or https"),
    ("not a url", "http or https"),
]


@pytest.fixture
async def client(make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any]) -> Any:
    return await app_factory(make_settings(webhook_secret=SECRET, webhook_allow_hosts=["127.0.0.1"]))


@pytest.mark.parametrize(("url", "reason"), REFUSED)
async def test_refused_webhooks_are_422_and_write_nothing(client: Any, url: str, reason: str) -> None:
    response = await client.post("/workflows/reflection", json={"topic": "hooked", "webhook": url})

    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [error["field"] for error in problem["errors"]] == ["body.webhook"]
    assert reason in problem["detail"]
    assert (await client.get("/workflows")).json()["items"] == []
    assert await client.app.state.runs.outbox.rows() == []


async def test_both_workflows_take_a_webhook(client: Any) -> None:
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]
    for model in ("ReflectionRequest", "ResearchRequest"):
        assert "webhook" in schema[model]["properties"]
    response = await client.post("/workflows/research", json={"topic": "hooked", "webhook": "gopher://127.0.0.1/"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body.webhook"


async def test_the_webhook_binds_an_idempotency_key(client: Any, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(responder=reflection_responder([9] * 10)))
    body = {"topic": "once", "webhook": "http://127.0.0.1:9/a"}
    first = await client.post("/workflows/reflection", json=body, headers={"Idempotency-Key": "k1"})
    again = await client.post("/workflows/reflection", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 202
    assert again.json()["workflow_id"] == first.json()["workflow_id"]
    assert "webhook" not in first.json()["input"]  # kept on the record apart: webhook.url

    other = await client.post(
        "/workflows/reflection", json={**body, "webhook": "http://127.0.0.1:9/b"}, headers={"Idempotency-Key": "k1"}
    )
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "header.idempotency-key"


async def test_prod_without_a_webhook_secret_refuses_webhooks(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any]
) -> None:
    settings = make_settings(env="prod", auth="off", secret_key="s" * 40, webhook_allow_hosts=["127.0.0.1"])
    client = await app_factory(settings)
    response = await client.post("/workflows/reflection", json={"topic": "t", "webhook": "http://127.0.0.1:9/"})
    assert response.status_code == 503
    assert response.json()["variable"] == "AGENTFLOW_WEBHOOK_SECRET"
    assert (await client.get("/workflows")).json()["items"] == []
