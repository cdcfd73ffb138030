"""One variable switches engines: AGENTFLOW_DATABASE_URL picks the executor unless told otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from backend.config import Settings, config_error_message

POSTGRES = "postgresql://agentflow@db:5432/agentflow"


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_sqlite_runs_in_process_and_postgres_on_the_queue() -> None:
    assert _settings().resolved_executor == "local"
    assert _settings(database_url=POSTGRES).resolved_executor == "queue"
    assert _settings(database_url="postgresql+asyncpg://a@b/c").resolved_executor == "queue"
    assert _settings(database_url=POSTGRES, executor="local").resolved_executor == "local"


def test_the_queue_needs_postgres() -> None:
    with pytest.raises(ValidationError) as caught:
        _settings(executor="queue")
    assert "AGENTFLOW_EXECUTOR=queue needs a PostgreSQL AGENTFLOW_DATABASE_URL" in config_error_message(caught.value)


def test_worker_command_refuses_sqlite_with_one_line(tmp_path: Path) -> None:
    agentflow = Path(sys.executable).with_name("agentflow")
    env = {"PATH": "/usr/bin:/bin", "AGENTFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/w.db"}
    done = subprocess.run(
        [str(agentflow), "worker"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "AGENTFLOW_DATABASE_URL" in lines[0] and "worker" in lines[0]
