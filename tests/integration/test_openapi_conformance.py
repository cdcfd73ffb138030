"""The OpenAPI document tells the truth: schemathesis fuzzes every operation of a real ``agentflow serve``
and fails on any 5xx, or any response whose status, media type or body the document does not declare.

It runs schemathesis's CLI (its pytest plugin does not support pytest 9), bounded: a fixed seed, a
few examples per operation, the examples, coverage (boundary and invalid inputs) and fuzzing phases.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.servers import ROOT, ServerProcess
from tests.standins import StandinServer

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
# 501 is not a server error here: it is how the LangGraph Server features agentflow does not offer
# answer (crons, the store, assistant editing, ...), by design and documented.
CONFIG = """
[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "501"]
"""


def test_every_operation_answers_as_documented(tmp_path: Path, standin: StandinServer) -> None:
    server = ServerProcess(
        {
            **standin.env(),
            "AGENTFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/conformance.db",
            "AGENTFLOW_RATE_LIMIT_SUBMIT": "100000/minute",
            "AGENTFLOW_RATE_LIMIT_DEFAULT": "100000/minute",
            "AGENTFLOW_ARXIV_MIN_INTERVAL": "0",
            "AGENTFLOW_LOG_LEVEL": "WARNING",
        }
    ).start()
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    try:
        result = subprocess.run(
            [
                str(SCHEMATHESIS),
                "--no-color",
                f"--config-file={config}",
                "run",
                f"{server.base_url}/openapi.json",
                f"--checks={CHECKS}",
                "--phases=examples,coverage,fuzzing",
                # Fuzzing examples per operation; the coverage phase adds its boundary and invalid
                # inputs for every operation whatever this says (most of the ~3,000 requests).
                "--max-examples=4",
                "--seed=15",
                "--generation-deterministic",
                "--request-timeout=70",  # a submit may hold its reply for ?wait=60
                "--workers=1",  # parallel workers hit a CPython 3.11 compile() thread-safety bug
                "--suppress-health-check=all",
                # A planner submit runs a whole multi-step plan behind every ?wait: too slow to fuzz
                # here; its request and response shapes are checked in tests/api/test_planner_api.py.
                "--exclude-path=/workflows/planner",
            ],
            cwd=tmp_path,  # anything it writes stays out of the repo
            capture_output=True,
            text=True,
            timeout=600,  # each submit may run a whole workflow behind ?wait, on a loaded machine
        )
    finally:
        server.terminate()
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]
    assert "No issues found" in result.stdout or "passed" in result.stdout, result.stdout[-5_000:]
    assert "/workflows/{workflow_id}/cancel" in result.stdout  # every operation ran
    assert ROOT.exists()
