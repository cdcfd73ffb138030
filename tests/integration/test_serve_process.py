"""A real ``agentflow serve`` process: start-up, JSON-only output, request ids in logs, SIGTERM."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.integration.servers import AGENTFLOW, ROOT, ServerProcess
from tests.standins import StandinServer

pytestmark = pytest.mark.slow


def test_served_output_is_json_and_carries_request_ids(tmp_path: Path, standin: StandinServer) -> None:
    server = ServerProcess(
        {
            **standin.env(),
            "AGENTFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/serve.db",
            "OPENAI_API_KEY": "sk-secret-serve-test-123456",
        }
    ).start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            assert http.get("/docs").status_code == 200
            response = http.post(
                "/workflows/reflection?wait=20",
                json={"topic": "Why do stars twinkle?", "max_iterations": 1},
                headers={"X-Request-ID": "serve-trace-1", "Authorization": "Bearer sk-client-key-abcdef123456"},
            )
            assert response.status_code == 200, response.text
            workflow_id = response.json()["workflow_id"]
            http.get("/healthz", headers={"X-Request-ID": 'bad "id" with spaces'})
    finally:
        code = server.terminate()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells the signal.
    assert code in (0, -15)
    records = server.json_lines()  # every line must parse
    assert any(r["message"] == "Application shutdown complete." for r in records)
    for record in records:
        assert {"timestamp", "level", "logger", "message"} <= set(record)
    traced = [r for r in records if r.get("correlation_id") == "serve-trace-1"]
    assert any(r.get("event") == "http_request" for r in traced)
    workflow_lines = [r for r in traced if r.get("workflow_id") == workflow_id]
    assert {r.get("event") for r in workflow_lines} >= {
        "workflow_started",
        "node_finished",
        "llm_call",
        "workflow_completed",
    }
    assert all(r["workflow_type"] == "reflection" for r in workflow_lines)
    node_lines = [r for r in workflow_lines if r.get("event") == "node_finished"]
    assert {r["node"] for r in node_lines} >= {"draft", "critique", "revise", "finalize"}
    assert all(isinstance(r["duration_ms"], float | int) for r in node_lines)
    llm_lines = [r for r in workflow_lines if r.get("event") == "llm_call"]
    assert all({"model", "input_tokens", "output_tokens", "duration_ms"} <= set(r) for r in llm_lines)
    assert any(r.get("event") == "request_id_replaced" for r in records)
    everything = "\n".join(server.lines)
    assert "sk-secret-serve-test-123456" not in everything
    assert "sk-client-key-abcdef123456" not in everything


def test_bad_setting_stops_startup_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(AGENTFLOW), "serve"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "AGENTFLOW_MAX_CONCURRENT_WORKFLOWS": "lots", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "AGENTFLOW_MAX_CONCURRENT_WORKFLOWS" in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_migrate_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(AGENTFLOW), "migrate"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "AGENTFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/m.db"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert all(json.loads(line) for line in result.stdout.splitlines() if line)
    assert (tmp_path / "m.db").exists()
