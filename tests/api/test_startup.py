"""Start-up: a ready server has not loaded the workflow stack (nor, on SQLite, PostgreSQL's driver);
the first run loads the stack and completes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from backend.config import Settings
from tests.helpers import reflection_responder, wait_terminal
from tests.standins import OpenAIConfig, StandinServer

#: What only running a workflow needs (``backend.runs.stack``): none of it may load before that.
STACK_MODULES = (
    "langgraph",
    "langchain_core",
    "langchain_openai",
    "langsmith",
    "openai",
    "aiohttp",
    "arxiv",
    "tavily",
    "workflows.graphs",
    "backend.runs.runner",
)
#: What only a PostgreSQL database needs: a server on SQLite never loads it.
POSTGRES_MODULES = ("psycopg", "psycopg_pool", "procrastinate")

_READY_WITHOUT_STACK = """
import asyncio, json, sys

import httpx

from backend.api.app import create_app
from backend.config import Settings


async def main() -> None:
    settings = Settings(_env_file=None, env="test", database_url=sys.argv[1], openai_api_key="sk-test-key")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            ready = (await client.get("/readyz")).status_code
            listed = (await client.get("/workflows")).status_code
            schema = (await client.get("/openapi.json")).status_code
    loaded = sorted({name for name in sys.modules for stack in json.loads(sys.argv[2])
                     if name == stack or name.startswith(stack + ".")})
    print(json.dumps({"ready": ready, "listed": listed, "schema": schema, "loaded": loaded}))


asyncio.run(main())
"""


def test_a_ready_server_has_not_imported_the_workflow_stack_nor_postgres(tmp_path: Path) -> None:
    # A fresh interpreter: this test process has long imported all of it.
    script = textwrap.dedent(_READY_WITHOUT_STACK)
    database_url = f"sqlite+aiosqlite:///{tmp_path}/startup.db"
    done = subprocess.run(
        [sys.executable, "-c", script, database_url, json.dumps(STACK_MODULES + POSTGRES_MODULES)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert (outcome["ready"], outcome["listed"], outcome["schema"]) == (200, 200, 200)
    assert outcome["loaded"] == []


async def test_a_run_submitted_before_the_stack_loads_completes(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(responder=reflection_responder([9.0])))
    client: httpx.AsyncClient = await app_factory(make_settings())
    runner = client.app.state.runs.executor.runner  # type: ignore[attr-defined]
    assert runner.loaded is None  # ready, and nothing loaded yet
    assert (await client.get("/readyz")).status_code == 200

    accepted = await client.post("/workflows/reflection", json={"topic": "Tides", "cache": "bypass"})
    assert accepted.status_code == 202, accepted.text
    record = await wait_terminal(client, accepted.json()["workflow_id"], timeout=120)
    assert record["status"] == "completed"
    assert record["result"]["final"]
    assert runner.loaded is not None
