"""A run waiting for plan approval survives SIGKILL: after a restart it is still waiting, and an
edited plan (one step removed) continues it from its checkpoint without ever running that step."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.integration.servers import ServerProcess
from tests.standins import StandinServer

pytestmark = pytest.mark.slow


def poll(http: httpx.Client, workflow_id: str, statuses: set[str], seconds: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        record: dict[str, Any] = http.get(f"/workflows/{workflow_id}?wait=5").json()
        if record["status"] in statuses:
            return record
        assert time.monotonic() < deadline, f"still {record['status']}"
        time.sleep(0.05)


def test_waiting_run_survives_sigkill_and_resumes_with_an_edited_plan(
    database_url: str, standin: StandinServer
) -> None:
    env = {**standin.env(), "AGENTFLOW_DATABASE_URL": database_url}
    first = ServerProcess(env).start()
    try:
        with httpx.Client(base_url=first.base_url, timeout=30) as http:
            submitted = http.post(
                "/workflows/planner", json={"topic": "Tool use in language model agents", "approve_plan": True}
            ).json()
            waiting = poll(http, submitted["workflow_id"], {"waiting"})
    finally:
        first.kill()  # SIGKILL: no shutdown hook runs
    plan = waiting["pending"]["plan"]
    assert [step["id"] for step in plan["steps"]] == ["s1", "s2", "s3", "s4"]
    removed = plan["steps"][1]  # the second research step, independent of the first
    kept = [step for step in plan["steps"] if step["id"] != removed["id"]]
    kept = [{**step, "depends_on": [d for d in step["depends_on"] if d != removed["id"]]} for step in kept]

    second = ServerProcess(env, port=first.port).start()
    try:
        with httpx.Client(base_url=second.base_url, timeout=30) as http:
            after_restart = http.get(f"/workflows/{waiting['workflow_id']}").json()
            assert after_restart["status"] == "waiting"
            assert after_restart["pending"]["plan"] == plan
            answered = http.post(
                f"/workflows/{waiting['workflow_id']}/resume", json={"action": "edit", "plan": {"steps": kept}}
            )
            assert answered.status_code == 202, answered.text
            done = poll(http, waiting["workflow_id"], {"completed", "failed", "cancelled"})
    finally:
        second.terminate()

    assert done["status"] == "completed", done
    result = done["result"]
    assert [step["id"] for step in result["steps"]] == [step["id"] for step in kept]
    assert result["citations"]
    # The removed step never ran: one research step planned its searches, not two, and nothing
    # was ever asked about its instruction.
    research_plans = [entry for entry in standin.requests("openai") if entry.get("schema_name") == "ResearchPlan"]
    assert len(research_plans) == 1
    assert not any(removed["instruction"] in entry["messages_text"] for entry in standin.requests("openai"))
    # The plan was made once, before the kill: the resumed run did not start over.
    assert sum(entry.get("schema_name") == "Plan" for entry in standin.requests("openai")) == 1
