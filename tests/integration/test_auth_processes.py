"""Authentication across real server processes sharing one database."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from backend.runs.keys import KeyService
from backend.runs.store import create_engine
from backend.runs.store.keys import ApiKeyStore
from tests.integration.servers import ServerProcess
from tests.standins import StandinServer

pytestmark = pytest.mark.slow

SECRET = "test-secret-key-with-at-least-32-characters"


def _issue(database_url: str, **options: object) -> tuple[str, str]:
    async def issue() -> tuple[str, str]:
        engine = create_engine(database_url)
        try:
            issued = await KeyService(ApiKeyStore(engine), secret=SECRET.encode()).create(**options)  # type: ignore[arg-type]
        finally:
            await engine.dispose()
        return issued.key.id, issued.secret

    return asyncio.run(issue())


def test_a_revoked_key_is_refused_by_every_process_within_a_second(tmp_path: Path, standin: StandinServer) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/auth.db"
    env = {
        **standin.env(),
        "AGENTFLOW_DATABASE_URL": database_url,
        "AGENTFLOW_AUTH": "required",
        "AGENTFLOW_SECRET_KEY": SECRET,
    }
    first, second = ServerProcess(env), ServerProcess(env)
    try:
        first.start()  # migrates the shared database
        second.start()
        _, admin = _issue(database_url, name="ops", scopes=["admin"])
        key_id, secret = _issue(database_url, name="client")
        bearer = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(timeout=30) as http:
            assert http.get(f"{first.base_url}/workflows").status_code == 401
            for server in (first, second):
                assert http.get(f"{server.base_url}/workflows", headers=bearer).status_code == 200
            revoked = http.delete(f"{first.base_url}/keys/{key_id}", headers={"X-API-Key": admin})
            assert revoked.status_code == 200
            revoked_at = time.monotonic()
            # Every request the other process receives a second after the revocation is refused.
            while True:
                sent = time.monotonic()
                status = http.get(f"{second.base_url}/workflows", headers=bearer).status_code
                if sent - revoked_at >= 1.0:
                    assert status == 401
                    break
                assert status in (200, 401)
                time.sleep(0.02)
            assert http.get(f"{first.base_url}/workflows", headers=bearer).status_code == 401
        for server in (first, second):
            assert all(secret not in line and admin not in line for line in server.lines)
    finally:
        first.kill()
        second.kill()


def test_keys_cli_creates_lists_and_revokes(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    agentflow = Path(sys.executable).with_name("agentflow")
    env = {"PATH": "/usr/bin:/bin", "AGENTFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/keys.db"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(agentflow), "keys", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )

    created = run("create", "--name", "ops", "--scope", "admin", "--max-queued", "5", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["secret"].startswith(key["prefix"]) and key["scopes"] == ["admin"] and key["max_queued"] == 5
    assert key["secret"] not in created.stderr  # the audit line names the prefix only
    assert '"key_created"' in created.stderr

    listed = run("list", "--json")
    assert listed.returncode == 0 and key["secret"] not in listed.stdout
    assert [item["id"] for item in json.loads(listed.stdout)] == [key["id"]]
    assert run("revoke", key["id"]).returncode == 0
    assert json.loads(run("list", "--json").stdout)[0]["revoked_at"] is not None
    missing = run("revoke", "key_nothing")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == "agentflow: no API key with id 'key_nothing'"
    assert run("create", "--name", "x", "--scope", "root").returncode == 2
    assert key["secret"].encode() not in (tmp_path / "keys.db").read_bytes()
