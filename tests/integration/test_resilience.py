"""Fault injection over real HTTP: the stand-in misbehaves, workflows succeed or fail classified."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from backend.config import Settings
from tests.helpers import reflection_responder, wait_terminal
from tests.standins import OpenAIConfig, StandinServer

CLASSIFIED = {
    "upstream_rate_limited",
    "upstream_timeout",
    "upstream_unavailable",
    "upstream_bad_response",
    "budget_exceeded",
    "workflow_timeout",
}


def settings_for_faults(make_settings: Callable[..., Settings], **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "llm_max_retries": 4,
        "llm_timeout": 0.5,
        "llm_call_deadline": 4.0,
        "retry_base_delay": 0.05,
        "openai_max_concurrency": 32,
        "max_concurrent_workflows": 200,
    }
    values.update(overrides)
    return make_settings(**values)


async def run_many(client: httpx.AsyncClient, count: int, **body: Any) -> list[dict[str, Any]]:
    responses = await asyncio.gather(
        *[client.post("/workflows/reflection", json={"topic": f"fault topic {n}", **body}) for n in range(count)]
    )
    assert {r.status_code for r in responses} == {202}
    return [await wait_terminal(client, r.json()["workflow_id"], timeout=90) for r in responses]


async def test_transient_503_is_retried_and_logged(
    make_settings: Callable[..., Settings], app_factory: Any, standin: StandinServer, caplog: Any
) -> None:
    standin.configure(openai=OpenAIConfig(fail_first_n=1, fail_first_fault="503", responder=reflection_responder([9])))
    client = await app_factory(settings_for_faults(make_settings))
    with caplog.at_level(logging.WARNING, logger="agentflow.upstream"):
        body = (await client.post("/workflows/reflection?wait=20", json={"topic": "t"})).json()
    assert body["status"] == "completed"
    retries = [r for r in caplog.records if getattr(r, "event", None) == "upstream_retry"]
    assert len(retries) == 1
    assert (retries[0].provider, retries[0].status, retries[0].attempt) == ("openai", 503, 1)
    assert retries[0].wait_s >= 0
    assert retries[0].workflow_id == body["workflow_id"]


async def test_429_waits_as_told(
    make_settings: Callable[..., Settings], app_factory: Any, standin: StandinServer
) -> None:
    standin.configure(
        openai=OpenAIConfig(
            fail_first_n=1, fail_first_fault="429", retry_after_seconds=0.8, responder=reflection_responder([9])
        )
    )
    client = await app_factory(settings_for_faults(make_settings))
    body = (await client.post("/workflows/reflection?wait=20", json={"topic": "t"})).json()
    assert body["status"] == "completed"
    first, second = standin.requests("openai")[:2]
    assert first["status"] == 429
    assert second["started_at"] - first["finished_at"] >= 0.75


@pytest.mark.parametrize(
    ("fault", "code", "calls"),
    [
        ("400", "upstream_bad_response", 1),  # other 4xx: fail fast, no retry
        ("503", "upstream_unavailable", 5),  # 1 + llm_max_retries
        ("429", "upstream_rate_limited", 5),
    ],
)
async def test_persistent_failures_end_classified(
    make_settings: Callable[..., Settings], app_factory: Any, standin: StandinServer, fault: str, code: str, calls: int
) -> None:
    standin.configure(openai=OpenAIConfig(fault_rate=1.0, faults=[fault], retry_after_seconds=0.05))
    client = await app_factory(settings_for_faults(make_settings))
    body = (await client.post("/workflows/reflection?wait=30", json={"topic": "t"})).json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert len(standin.requests("openai")) == calls


async def test_upstream_that_never_answers_fails_within_the_deadline(
    make_settings: Callable[..., Settings], app_factory: Any, standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(fault_rate=1.0, faults=["timeout"], hang_seconds=60))
    client = await app_factory(settings_for_faults(make_settings, llm_timeout=0.3, llm_call_deadline=1.5))
    started = time.monotonic()
    body = (await client.post("/workflows/reflection?wait=30", json={"topic": "t"})).json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "upstream_timeout"
    # Without the 1.5 s deadline the call would hang for the stand-in's 60 s (a bound with a wide margin).
    assert time.monotonic() - started < 30


async def test_truncated_body_is_retried(
    make_settings: Callable[..., Settings], app_factory: Any, standin: StandinServer
) -> None:
    standin.configure(
        openai=OpenAIConfig(fail_first_n=1, fail_first_fault="truncated", responder=reflection_responder([9]))
    )
    client = await app_factory(settings_for_faults(make_settings))
    body = (await client.post("/workflows/reflection?wait=20", json={"topic": "t"})).json()
    assert body["status"] == "completed"
    assert standin.requests("openai")[0]["fault"] == "truncated"


@pytest.mark.slow
async def test_hundred_workflows_with_ten_percent_503s(
    make_settings: Callable[..., Settings], app_factory: Any, standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(fault_rate=0.10, faults=["503"], seed=7))
    client = await app_factory(settings_for_faults(make_settings))
    finals = await run_many(client, 100, max_iterations=1)
    statuses = Counter(f["status"] for f in finals)
    assert statuses["completed"] >= 99, statuses
    assert sum(1 for e in standin.requests("openai") if e["status"] == 503) > 0


@pytest.mark.slow
async def test_hundred_workflows_with_thirty_percent_mixed_faults(
    make_settings: Callable[..., Settings], app_factory: Any, standin: StandinServer
) -> None:
    standin.configure(
        openai=OpenAIConfig(
            fault_rate=0.30,
            faults=["429", "500", "502", "503", "timeout", "truncated"],
            retry_after_seconds=0.1,
            hang_seconds=5,
            seed=11,
        )
    )
    client = await app_factory(settings_for_faults(make_settings, llm_timeout=0.4))
    finals = await run_many(client, 100, max_iterations=1)
    statuses = Counter(f["status"] for f in finals)
    assert statuses["completed"] >= 95, (statuses, Counter(f["error"]["code"] for f in finals if f["error"]))
    assert statuses["queued"] == statuses["running"] == 0
    for final in finals:
        if final["status"] == "failed":
            assert final["error"]["code"] in CLASSIFIED


@pytest.mark.slow
async def test_rate_limited_upstream_is_waited_for_not_hammered(
    make_settings: Callable[..., Settings], app_factory: Any, standin: StandinServer
) -> None:
    # R = 40 requests per 2 s window; 50 workflows x 2 calls = 100 calls need ~5 s.
    standin.configure(openai=OpenAIConfig(rpm=40, rpm_window_seconds=2.0, responder=reflection_responder([9] * 50)))
    client = await app_factory(settings_for_faults(make_settings, llm_call_deadline=30.0, llm_max_retries=8))
    finals = await run_many(client, 50, max_iterations=1)
    assert Counter(f["status"] for f in finals) == {"completed": 50}
    # How many 429s a burst earns depends on the machine's speed (how many calls were in flight
    # when the window filled); what the code guarantees is the wait: a call answered 429 is sent
    # again only after the Retry-After it was given. Its attempts share one message hash (every
    # run has its own topic), and the journal closes an entry before the answer's last byte
    # leaves, so the client's wait lies wholly inside the gap the journal shows.
    attempts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in standin.requests("openai"):
        attempts[entry["messages_sha256"]].append(entry)
    assert len(attempts) == 100  # draft and critique of each run: one call each, however often sent
    waits = 0
    for call in attempts.values():
        call.sort(key=lambda e: e["started_at"])
        assert call[-1]["status"] == 200, call
        for refused, retry in itertools.pairwise(call):
            if refused["status"] == 429:
                # 2 ms: the journal's clock is the wall clock, the client's the monotonic one.
                assert retry["started_at"] - refused["finished_at"] >= refused["retry_after"] - 0.002, (refused, retry)
                waits += 1
    assert waits == sum(1 for e in standin.requests("openai") if e["status"] == 429)  # each 429 was waited out
