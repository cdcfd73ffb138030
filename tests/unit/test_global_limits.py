"""Provider limits shared across processes through Redis (real Redis on loopback).

Each "process" is an independent provider, gate or spacing object with its own Redis client;
they meet only in Redis, under a key prefix unique to the test.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from agents.providers import ArxivConfig, ArxivSearch
from agents.providers.arxiv_search import RequestSpacing
from agents.providers.gate import ProviderGate
from agents.providers.shared_limits import SharedRateLimit, SharedSpacing
from tests.conftest import REDIS_URL, require_service
from tests.standins import ArxivConfig as ArxivStandin
from tests.standins import StandinServer, max_overlap, min_gap


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    parts = urlsplit(REDIS_URL)
    require_service("Redis", parts.hostname or "127.0.0.1", parts.port or 6379)
    prefix = f"agentflow-test:{uuid.uuid4().hex[:12]}"
    yield prefix
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def dead_redis_url() -> str:
    """A loopback port nobody listens on: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
async def make_arxiv(standin: StandinServer) -> AsyncIterator[Callable[..., ArxivSearch]]:
    made: list[ArxivSearch] = []

    def make(**overrides: Any) -> ArxivSearch:
        provider = ArxivSearch(ArxivConfig(api_url=standin.arxiv_query_url, **overrides))
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


class Recorder:
    """A blocking fetch standing in for one HTTP request; records when each one ran."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.spans: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def __call__(self) -> str:
        started = time.monotonic()
        time.sleep(self.seconds)
        with self._lock:
            self.spans.append((started, time.monotonic()))
        return "ok"


def spacing(prefix: str, min_interval: float, *, hold_for: float = 5.0, url: str = REDIS_URL) -> RequestSpacing:
    shared = SharedSpacing("arxiv", redis_url=url, min_interval=min_interval, hold_for=hold_for, key_prefix=prefix)
    return RequestSpacing(min_interval, shared=shared)


# --- arXiv spacing ------------------------------------------------------------------------------


@pytest.mark.redis
async def test_two_arxiv_processes_take_turns_and_keep_their_distance(
    standin: StandinServer, make_arxiv: Callable[..., ArxivSearch], redis_prefix: str
) -> None:
    standin.configure(arxiv=ArxivStandin(latency=0.05))
    first, second = (make_arxiv(min_interval=0.3, redis_url=REDIS_URL, redis_key_prefix=redis_prefix) for _ in range(2))

    results = await asyncio.gather(
        *(provider.search(f"topic {n}", max_results=1) for n in range(2) for provider in (first, second))
    )

    assert all(len(hits) == 1 for hits in results)
    entries = standin.requests("arxiv")
    assert len(entries) == 4
    assert max_overlap(entries) == 1
    gap = min_gap(entries)
    assert gap is not None
    assert gap >= 0.3


async def test_without_redis_two_arxiv_processes_do_not_see_each_other(
    standin: StandinServer, make_arxiv: Callable[..., ArxivSearch]
) -> None:
    # The control for the test above: per-process spacing alone lets two processes collide.
    standin.configure(arxiv=ArxivStandin(latency=0.2))
    first, second = (make_arxiv(min_interval=0.3) for _ in range(2))

    await asyncio.gather(first.search("one", max_results=1), second.search("two", max_results=1))

    assert max_overlap(standin.requests("arxiv")) == 2


@pytest.mark.redis
async def test_a_cancelled_caller_keeps_the_shared_turn_until_its_request_ends(redis_prefix: str) -> None:
    slow, quick = Recorder(0.4), Recorder(0.0)
    here, there = spacing(redis_prefix, 0.2), spacing(redis_prefix, 0.2)
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(here.run(slow), timeout=0.1)
        assert await there.run(quick) == "ok"
    finally:
        await here.aclose()
        await there.aclose()

    (slow_span,) = slow.spans
    (quick_span,) = quick.spans
    assert quick_span[0] - slow_span[1] >= 0.2


@pytest.mark.redis
async def test_a_turn_left_by_a_dead_process_expires(redis_prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    await client.set(f"{redis_prefix}:arxiv:lock", b"a process that was killed", px=300)
    await client.aclose()
    fetch = Recorder(0.0)
    survivor = spacing(redis_prefix, 0.0)
    started = time.monotonic()
    try:
        assert await survivor.run(fetch) == "ok"
    finally:
        await survivor.aclose()

    assert 0.25 <= fetch.spans[0][0] - started < 1.0


@pytest.mark.redis
async def test_a_slow_request_keeps_its_turn_past_the_expiry(redis_prefix: str) -> None:
    # hold_for is the safety for a dead holder; a live one renews it while its request runs.
    slow, quick = Recorder(0.6), Recorder(0.0)
    here, there = spacing(redis_prefix, 0.0, hold_for=0.3), spacing(redis_prefix, 0.0, hold_for=0.3)
    try:
        first = asyncio.create_task(here.run(slow))
        await asyncio.sleep(0.05)
        await there.run(quick)
        await first
    finally:
        await here.aclose()
        await there.aclose()

    assert quick.spans[0][0] >= slow.spans[0][1]


async def test_arxiv_falls_back_to_local_spacing_when_redis_is_unreachable(
    standin: StandinServer,
    make_arxiv: Callable[..., ArxivSearch],
    dead_redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = make_arxiv(min_interval=0.2, redis_url=dead_redis_url)

    with caplog.at_level(logging.WARNING, logger="agentflow.upstream"):
        results = await asyncio.gather(*(provider.search(f"topic {n}", max_results=1) for n in range(3)))

    assert all(len(hits) == 1 for hits in results)
    entries = standin.requests("arxiv")
    assert max_overlap(entries) == 1
    gap = min_gap(entries)
    assert gap is not None
    assert gap >= 0.2
    warnings = [r for r in caplog.records if getattr(r, "event", None) == "shared_limits_unavailable"]
    assert len(warnings) == 1  # once per outage, not once per request


# --- RPM caps -----------------------------------------------------------------------------------


async def start_times(gates: list[ProviderGate], per_gate: int, *, settle: float) -> list[float]:
    """Ask every gate for ``per_gate`` slots at once; the start times admitted within ``settle``."""
    started: list[float] = []

    async def one(gate: ProviderGate) -> None:
        async with gate.slot():
            started.append(time.monotonic())

    tasks = [asyncio.create_task(one(gate)) for gate in gates for _ in range(per_gate)]
    await asyncio.sleep(settle)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return started


@pytest.mark.redis
async def test_two_gates_share_one_rpm_cap(redis_prefix: str) -> None:
    gates = [
        ProviderGate("tavily", max_concurrency=10, rpm=3, redis_url=REDIS_URL, redis_key_prefix=redis_prefix)
        for _ in range(2)
    ]
    try:
        started = await start_times(gates, 4, settle=0.3)
    finally:
        for gate in gates:
            await gate.aclose()

    assert len(started) == 3  # each gate alone would have let 3 through: 6 in all


@pytest.mark.redis
async def test_shared_rate_limit_admits_the_next_start_when_the_oldest_leaves_the_window(
    redis_prefix: str,
) -> None:
    limits = [SharedRateLimit("openai", 2, redis_url=REDIS_URL, window=1, key_prefix=redis_prefix) for _ in range(2)]
    started: list[float] = []

    async def one(limit: SharedRateLimit) -> None:
        assert await limit.acquire()
        started.append(time.monotonic())

    # Measured from before the first request: a loaded machine can only make the gaps look
    # longer, never shorter, so the lower bound below cannot fail by accident.
    began = time.monotonic()
    try:
        await asyncio.gather(*(one(limit) for limit in limits for _ in range(2)))
    finally:
        for limit in limits:
            await limit.aclose()

    started.sort()
    assert started[1] - began < 0.9  # two at once, without waiting for the 1 s window
    assert started[2] - began >= 0.9  # the third waits for the window to move on


async def test_gate_falls_back_to_its_local_rpm_cap_when_redis_is_unreachable(
    dead_redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    gate = ProviderGate("openai", max_concurrency=10, rpm=2, redis_url=dead_redis_url)
    try:
        with caplog.at_level(logging.WARNING, logger="agentflow.upstream"):
            started = await start_times([gate], 4, settle=0.2)
    finally:
        await gate.aclose()

    assert len(started) == 2
    warnings = [r for r in caplog.records if getattr(r, "event", None) == "shared_limits_unavailable"]
    assert len(warnings) == 1


async def test_gate_without_redis_url_has_no_shared_cap() -> None:
    assert ProviderGate("openai", max_concurrency=1, rpm=5).shared_rpm is None
    assert ProviderGate("openai", max_concurrency=1, redis_url=REDIS_URL).shared_rpm is None  # no cap to share
