"""The LangGraph-API mappings: run statuses, the submit rate-limit bucket, the values a run leaves on its thread."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.api.middleware.rate_limit import _SUBMIT_PATH
from backend.runs.assistants import assistant_id_of, resolve_assistant
from backend.runs.records import WorkflowRecord, WorkflowStatus
from backend.runs.threads import RUN_STATUS, final_values
from workflows.registry import WORKFLOWS


def test_every_status_of_ours_has_a_langgraph_run_status() -> None:
    assert set(RUN_STATUS) == set(WorkflowStatus)
    assert RUN_STATUS[WorkflowStatus.CANCELLED] == "interrupted"
    assert set(RUN_STATUS.values()) <= {"pending", "running", "error", "success", "timeout", "interrupted"}


@pytest.mark.parametrize(
    ("path", "is_submit"),
    [
        ("/workflows/research", True),
        ("/threads/t1/runs", True),
        ("/threads/t1/runs/wait", True),
        ("/threads/t1/runs/stream", True),
        ("/runs", True),
        ("/runs/wait", True),
        ("/runs/stream", True),
        ("/workflows/w1/cancel", False),
        ("/threads/t1/runs/r1/cancel", False),
        ("/runs/crons", False),
        ("/threads", False),
    ],
)
def test_run_creating_routes_share_the_submit_bucket(path: str, is_submit: bool) -> None:
    assert bool(_SUBMIT_PATH.match(path)) is is_submit


def test_assistant_ids_are_langgraph_servers_and_graph_ids_resolve() -> None:
    # LangGraph Server's id for the default assistant of a graph named "agent".
    assert assistant_id_of("agent") == "fe096781-5601-53d2-b2f6-0d3403f7e9ca"
    for name in WORKFLOWS:
        assert resolve_assistant(name).assistant_id == assistant_id_of(name)
        assert resolve_assistant(assistant_id_of(name)).graph_id == name


def test_a_run_answered_from_the_cache_leaves_its_input_and_result() -> None:
    spec = WORKFLOWS["reflection"]
    record = WorkflowRecord(
        id="r1",
        workflow_type="reflection",
        status=WorkflowStatus.COMPLETED,
        created_at=datetime.now(UTC),
        input={"topic": "Tides", "max_iterations": 1},
    )
    assert final_values(spec, record, None, {"final": "text"}) == {"topic": "Tides", "result": {"final": "text"}}
    assert final_values(spec, record, {"topic": "Tides", "n": (1, 2)}, None) == {"topic": "Tides", "n": [1, 2]}
    assert final_values(spec, record, None, None) is None
