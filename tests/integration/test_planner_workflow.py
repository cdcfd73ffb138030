"""The planner workflow end to end: plan, parallel steps, approval round trips, over both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.standins import ChatRequest, StandinServer, max_overlap
from tests.standins import OpenAIConfig as OpenAIStandin

TOPIC = "Tool use in language model agents"
Start = Callable[..., Any]


def is_research_plan(request: ChatRequest) -> bool:
    return request.schema_name == "ResearchPlan"


async def submit(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/workflows/planner", json={"topic": TOPIC, **body})
    assert response.status_code in (200, 202), response.text
    record: dict[str, Any] = response.json()
    return record


async def until(client: httpx.AsyncClient, workflow_id: str, statuses: set[str], seconds: float = 60) -> dict[str, Any]:
    """Poll (with ``?wait``) until the run reaches one of ``statuses``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        response = await client.get(f"/workflows/{workflow_id}?wait=5")
        assert response.status_code == 200, response.text
        record: dict[str, Any] = response.json()
        if record["status"] in statuses:
            return record
        assert record["status"] not in {"completed", "failed", "cancelled"}, record
        assert asyncio.get_running_loop().time() < deadline, f"still {record['status']}"
        await asyncio.sleep(0.05)


async def test_four_step_plan_runs_independent_steps_in_parallel_and_cites(
    client: httpx.AsyncClient, standin: StandinServer
) -> None:
    # Each model call takes a while, so the two independent research steps are seen in flight together.
    standin.configure(openai=OpenAIStandin(latency=0.3))
    record = await submit(client)
    done = await until(client, record["workflow_id"], {"completed", "failed"})

    assert done["status"] == "completed", done
    result = done["result"]
    assert [step["id"] for step in result["plan"]["steps"]] == ["s1", "s2", "s3", "s4"]
    assert [step["kind"] for step in result["plan"]["steps"]] == ["research", "research", "write", "critique"]
    assert all(step["status"] == "done" for step in result["steps"])
    # The two research steps each plan their searches; those two calls overlapped.
    research_plans = [entry for entry in standin.requests("openai") if entry.get("schema_name") == "ResearchPlan"]
    assert len(research_plans) == 2
    assert max_overlap(research_plans) == 2
    # A cited deliverable: every citation names a retrieved source with a run-wide id.
    assert result["citations"]
    ids = [source["id"] for source in result["sources"]]
    assert ids == [f"S{n}" for n in range(1, len(ids) + 1)]
    assert set(result["citations"]) <= set(ids)
    for source_id in result["citations"]:
        assert f"{source_id}]" in result["report_markdown"]


# --- human approval: interrupt and resume, on both backends -------------------------------------


async def waiting_run(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    record = await submit(client, approve_plan=True, **body)
    waiting = await until(client, record["workflow_id"], {"waiting"})
    assert waiting["pending"]["kind"] == "plan_approval"
    return waiting


async def test_approve_continues_the_waiting_run(start: Start, standin: StandinServer) -> None:
    client = await start()
    waiting = await waiting_run(client)
    plan = waiting["pending"]["plan"]
    assert [step["id"] for step in plan["steps"]] == ["s1", "s2", "s3", "s4"]
    assert waiting["pending"]["expires_at"] is not None
    assert waiting["result"] is None
    calls_while_waiting = len(standin.requests("openai"))
    assert calls_while_waiting == 1  # the plan, nothing more

    answered = await client.post(f"/workflows/{waiting['workflow_id']}/resume", json={"action": "approve"})
    assert answered.status_code == 202, answered.text
    assert answered.json()["status"] in {"queued", "running"}
    done = await until(client, waiting["workflow_id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["result"]["plan_source"] == "approved"
    assert done["pending"] is None
    assert len(done["result"]["steps"]) == 4
    assert done["result"]["citations"]
    # The plan was not made twice: the run continued from its checkpoint.
    assert sum(entry.get("schema_name") == "Plan" for entry in standin.requests("openai")) == 1


async def test_edited_plan_runs_without_the_removed_step(start: Start, standin: StandinServer) -> None:
    client = await start()
    waiting = await waiting_run(client)
    steps = [step for step in waiting["pending"]["plan"]["steps"] if step["id"] != "s4"]  # drop the critique

    answered = await client.post(
        f"/workflows/{waiting['workflow_id']}/resume", json={"action": "edit", "plan": {"steps": steps}}
    )
    assert answered.status_code == 202, answered.text
    done = await until(client, waiting["workflow_id"], {"completed", "failed"})

    assert done["status"] == "completed", done
    assert done["result"]["plan_source"] == "edited"
    assert [step["id"] for step in done["result"]["steps"]] == ["s1", "s2", "s3"]
    assert not any(entry.get("schema_name") == "Critique" for entry in standin.requests("openai"))


async def test_reject_ends_the_run_cancelled(start: Start) -> None:
    client = await start()
    waiting = await waiting_run(client)

    answered = await client.post(f"/workflows/{waiting['workflow_id']}/resume", json={"action": "reject"})

    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "cancelled"
    assert answered.json()["error"]["code"] == "rejected"
    again = await client.post(f"/workflows/{waiting['workflow_id']}/resume", json={"action": "approve"})
    assert again.status_code == 409
    assert again.json()["current_status"] == "cancelled"


async def test_resume_of_a_completed_run_is_a_conflict(start: Start) -> None:
    client = await start()
    record = await submit(client, max_steps=2)
    done = await until(client, record["workflow_id"], {"completed"})

    answered = await client.post(f"/workflows/{done['workflow_id']}/resume", json={"action": "approve"})

    assert answered.status_code == 409
    assert answered.headers["content-type"].startswith("application/problem+json")
    assert answered.json()["code"] == "conflict"


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda steps: [steps[0], {**steps[1], "depends_on": ["nope"]}], "body.plan.steps.1.depends_on"),
        (lambda steps: [steps[0], {**steps[1], "depends_on": ["s2"]}], "body.plan.steps.1.depends_on"),
        (lambda steps: [steps[0], {**steps[1], "kind": "dance"}], "body.plan.steps.1.kind"),
        (lambda steps: [steps[0], {**steps[0]}], "body.plan.steps.1.id"),
        (lambda steps: [], "body.plan.steps"),
    ],
)
async def test_an_invalid_edited_plan_is_a_422_naming_the_field(
    client: httpx.AsyncClient, edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]], field: str
) -> None:
    waiting = await waiting_run(client)
    steps = waiting["pending"]["plan"]["steps"]

    answered = await client.post(
        f"/workflows/{waiting['workflow_id']}/resume", json={"action": "edit", "plan": {"steps": edit(steps)}}
    )

    assert answered.status_code == 422, answered.text
    assert answered.headers["content-type"].startswith("application/problem+json")
    assert [error["field"] for error in answered.json()["errors"]] == [field]
    still = (await client.get(f"/workflows/{waiting['workflow_id']}")).json()
    assert still["status"] == "waiting"  # nothing was half-written


async def test_edit_needs_a_plan_and_approve_takes_none(client: httpx.AsyncClient) -> None:
    waiting = await waiting_run(client)
    url = f"/workflows/{waiting['workflow_id']}/resume"

    missing = await client.post(url, json={"action": "edit"})
    stray = await client.post(url, json={"action": "approve", "plan": waiting["pending"]["plan"]})
    unknown = await client.post(url, json={"action": "maybe"})

    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "body.plan"
    assert stray.status_code == 422 and stray.json()["errors"][0]["field"] == "body.plan"
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "body.action"


async def test_cancel_of_a_waiting_run(client: httpx.AsyncClient) -> None:
    waiting = await waiting_run(client)

    cancelled = await client.post(f"/workflows/{waiting['workflow_id']}/cancel")

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["pending"] is None


async def test_forgotten_waiting_runs_end_as_approval_timeout(start: Start) -> None:
    client = await start(waiting_ttl=0.5)
    record = await submit(client, approve_plan=True)

    ended = await until(client, record["workflow_id"], {"cancelled"})

    assert ended["error"]["code"] == "approval_timeout"


async def test_waiting_runs_hold_no_executor_slots(start: Start) -> None:
    client = await start(max_concurrent_workflows=4, worker_concurrency=4)
    submitted = await asyncio.gather(*(submit(client, approve_plan=True, topic=f"{TOPIC} {n}") for n in range(100)))
    ids = [record["workflow_id"] for record in submitted]
    for workflow_id in ids:
        await until(client, workflow_id, {"waiting"}, seconds=120)
    runs = client.app.state.runs  # type: ignore[attr-defined]
    # A run is shown waiting once that is committed; its task ends a moment later (the event log's
    # last write): wait for that condition rather than assume it.
    deadline = asyncio.get_running_loop().time() + 60
    while runs.executor.active_runs and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    assert runs.executor.active_runs == 0

    normal = await client.post("/workflows/reflection?wait=30", json={"topic": "A normal run", "max_iterations": 1})

    assert normal.status_code == 200, normal.text
    assert normal.json()["status"] == "completed"
    waiting = (await client.get("/workflows?status=waiting&limit=100")).json()["items"]
    assert len(waiting) == 100
