"""The planner over the API: waiting runs and the resume endpoint (owner scoping, cache, quota, docs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from backend.config import Settings
from tests.standins import StandinServer

BODY = {"topic": "Tool use in language model agents", "approve_plan": True}
AppFactory = Callable[[Settings], Any]


async def _waiting(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> dict[str, Any]:
    submitted = await client.post("/workflows/planner?wait=30", json=BODY, headers=headers or {})
    assert submitted.status_code == 202, submitted.text  # ?wait returns as soon as the run waits
    record: dict[str, Any] = submitted.json()
    assert record["status"] == "waiting", record
    return record


def _as(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_waiting_shows_the_plan_and_wait_returns_at_once(client: httpx.AsyncClient) -> None:
    record = await _waiting(client)

    fetched = (await client.get(f"/workflows/{record['workflow_id']}?wait=30")).json()

    assert fetched["status"] == "waiting"
    assert fetched["pending"]["kind"] == "plan_approval"
    assert len(fetched["pending"]["plan"]["steps"]) == 4
    assert fetched["pending"]["waiting_since"] <= fetched["pending"]["expires_at"]
    listed = (await client.get("/workflows?status=waiting")).json()["items"]
    assert [item["workflow_id"] for item in listed] == [record["workflow_id"]]
    timeline = (await client.get(f"/workflows/{record['workflow_id']}/timeline")).json()["entries"]
    assert {"name": "review_plan", "status": "interrupted"}.items() <= timeline[-1].items()


async def test_runs_that_ask_for_approval_never_use_the_result_cache(client: httpx.AsyncClient) -> None:
    first = await _waiting(client)
    second = await _waiting(client)

    assert first["workflow_id"] != second["workflow_id"]
    assert first["cache_outcome"] == second["cache_outcome"] == "bypass"


async def test_another_key_cannot_resume_or_see_a_waiting_run(
    make_settings: Callable[..., Settings], app_factory: AppFactory, standin: StandinServer
) -> None:
    client: httpx.AsyncClient = await app_factory(make_settings(auth="required"))
    keys = client.app.state.keys  # type: ignore[attr-defined]
    owner = (await keys.create(name="owner")).secret
    stranger = (await keys.create(name="stranger", max_queued=1)).secret
    record = await _waiting(client, _as(owner))
    url = f"/workflows/{record['workflow_id']}/resume"

    refused = await client.post(url, json={"action": "reject"}, headers=_as(stranger))
    assert refused.status_code == 404
    assert (await client.get(f"/workflows/{record['workflow_id']}", headers=_as(owner))).json()["status"] == "waiting"
    # Waiting runs hold no quota: a key with max_queued=1 can have one waiting and submit another.
    await _waiting(client, _as(stranger))
    assert (await client.post("/workflows/planner", json=BODY, headers=_as(stranger))).status_code == 202
    accepted = await client.post(url, json={"action": "reject"}, headers=_as(owner))
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "cancelled"


async def test_resume_of_an_unknown_run_is_404(client: httpx.AsyncClient) -> None:
    answered = await client.post("/workflows/nope/resume", json={"action": "approve"})

    assert answered.status_code == 404
    assert answered.json()["code"] == "not_found"


async def test_the_docs_show_waiting_and_the_resume_body(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    assert "waiting" in schema["components"]["schemas"]["WorkflowStatus"]["enum"]
    operation = schema["paths"]["/workflows/{workflow_id}/resume"]["post"]
    assert {"404", "409", "422"} <= set(operation["responses"])
    body = schema["components"]["schemas"]["ResumeRequest"]
    assert body["properties"]["action"]["enum"] == ["approve", "edit", "reject"]
    assert "Plan" in schema["components"]["schemas"]
    assert "/workflows/planner" in schema["paths"]
