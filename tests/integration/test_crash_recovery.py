"""kill -9 the server mid-run, restart it, and every accepted workflow still finishes.

The stand-in counts upstream calls: a node that had finished before the crash is never
called again (its checkpoint was on disk), so each interrupted workflow repeats at most the
one call that was in flight.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.integration.servers import ServerProcess
from tests.standins import OpenAIConfig, StandinServer

pytestmark = pytest.mark.slow

WORKFLOWS = 30


def test_sigkill_mid_run_then_restart_completes_everything(tmp_path: Path, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.4))
    env = {**standin.env(), "AGENTFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/crash.db"}
    first = ServerProcess(env).start()
    try:
        with httpx.Client(base_url=first.base_url, timeout=10) as http:
            ids = [
                http.post(
                    "/workflows/reflection",
                    json={"topic": f"crash topic {n}", "max_iterations": 2, "score_threshold": 10},
                    headers={"X-Request-ID": f"crash-{n}"},
                ).json()["workflow_id"]
                for n in range(WORKFLOWS)
            ]
            # Wait until several runs are past their first node and none has finished: mid-flight.
            deadline = time.monotonic() + 60
            while True:
                bodies = [http.get(f"/workflows/{i}").json() for i in ids]
                if sum(b["progress"]["node"] is not None for b in bodies) >= 5:
                    break
                assert time.monotonic() < deadline, "no run got past its first node"
                time.sleep(0.05)
            assert Counter(b["status"] for b in bodies)["running"] > 0
    finally:
        first.kill()  # SIGKILL: no shutdown hook runs
    calls_before = len(standin.requests("openai"))

    second = ServerProcess(env, port=first.port).start()
    try:
        with httpx.Client(base_url=second.base_url, timeout=70) as http:
            finals = [http.get(f"/workflows/{i}?wait=60").json() for i in ids]
    finally:
        second.terminate()

    assert [f["status"] for f in finals] == ["completed"] * WORKFLOWS
    assert all(f["result"]["final"] for f in finals)
    assert all(f["correlation_id"] == f"crash-{n}" for n, f in enumerate(finals))
    # Resumed runs log under the correlation id of the request that created them.
    resumed = [r for r in second.json_lines() if r.get("event") == "workflow_resumed"]
    assert resumed
    assert all(r["correlation_id"].startswith("crash-") and r["workflow_id"] in ids for r in resumed)

    requests = standin.requests("openai")
    assert len(requests) > calls_before
    repeats: Counter[str] = Counter()
    seen: set[str] = set()
    for entry in requests:
        digest = entry["messages_sha256"]
        if digest in seen:
            repeats[entry["last_user_message"].split("crash topic ")[1].split()[0]] += 1
        seen.add(digest)
    assert all(count <= 1 for count in repeats.values()), repeats
    for final in finals:  # usage spans the restart: one call per draft and per critique
        drafts = final["result"]["drafts"]
        expected = len(drafts) + sum(1 for d in drafts if d["critique"])
        expected += final["result"]["stop_reason"] == "no_change"  # the discarded identical revision
        assert final["usage"]["llm_calls"] == expected
