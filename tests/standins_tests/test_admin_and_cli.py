"""The ``/_standin`` admin API, the async handle, and ``python -m tests.standins``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.standins import StandinServer, serve_standins

REPO_ROOT = Path(__file__).resolve().parents[2]


def _chat(base_url: str, text: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/v1/chat/completions",
        headers={"Authorization": "Bearer sk-test"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]},
    )


def test_admin_api_journal_stats_config_and_reset(standins: StandinServer) -> None:
    base = standins.base_url
    rule = {"when_contains": "marco", "content": "polo"}
    config = httpx.post(f"{base}/_standin/config", json={"openai": {"rules": [rule], "rpm": 5}})
    assert config.status_code == 200
    assert config.json()["openai"]["rules"] == [rule]
    assert _chat(base, "Marco?").json()["choices"][0]["message"]["content"] == "polo"
    httpx.post(f"{base}/search", json={"query": "x"}, headers={"Authorization": "Bearer bad"})
    journal = httpx.get(f"{base}/_standin/requests", params={"upstream": "openai"}).json()
    assert [(e["upstream"], e["status"], e["last_user_message"]) for e in journal] == [("openai", 200, "Marco?")]
    stats = httpx.get(f"{base}/_standin/stats").json()
    assert stats["total"] == 2
    assert stats["upstreams"]["tavily"]["by_status"] == {"401": 1}
    assert stats["upstreams"]["openai"]["max_in_flight"] == 1
    assert httpx.post(f"{base}/_standin/reset").json() == {"ok": True}
    assert standins.requests() == []
    bad = httpx.post(f"{base}/_standin/config", json={"openai": {"faults": ["teapot"]}})
    assert bad.status_code == 400
    assert httpx.get(f"{base}/_standin/config").json()["openai"]["rpm"] == 5


@pytest.mark.asyncio
async def test_async_context_manager_serves_and_stops() -> None:
    async with serve_standins(openai={"latency": 0.01}) as s:
        async with openai.AsyncOpenAI(base_url=s.openai_base_url, api_key="sk-test") as client:
            models = await client.models.list()
        assert models.data
        port = s.port
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/_standin/health")


def _read_line(stream: Any, timeout: float) -> str:
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not line:
        raise TimeoutError("no ready line from the stand-in process")
    return line[0]


def test_cli_prints_ready_line_serves_and_exits_cleanly_on_sigterm() -> None:
    config = json.dumps({"openai": {"rules": [{"when_contains": "hello", "content": "hi!"}]}})
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.standins", "--port", "0", "--seed", "7", "--config", config],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = json.loads(_read_line(proc.stdout, timeout=60))
        assert ready["event"] == "standins_ready"
        assert ready["port"] > 0
        assert ready["openai_base_url"] == f"http://127.0.0.1:{ready['port']}/v1"
        assert ready["arxiv_query_url"].endswith("/api/query")
        response = _chat(ready["base_url"], "hello there")
        assert response.json()["choices"][0]["message"]["content"] == "hi!"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
