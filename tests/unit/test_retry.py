"""The retry layer and the provider gate, on their own."""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate

import pytest

from agents.errors import UpstreamBadResponse, UpstreamRateLimited, UpstreamTimeout, UpstreamUnavailable
from agents.providers.gate import ProviderGate
from agents.providers.retry import RetryPolicy, call_with_retries, parse_retry_after


class Flaky:
    """A call that fails with the given errors first, then answers ``"ok"``."""

    def __init__(self, *errors: Exception, delay: float = 0.0) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.delay = delay

    async def __call__(self) -> str:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def classify(exc: BaseException) -> UpstreamRateLimited | UpstreamUnavailable | UpstreamBadResponse | None:
    return exc if isinstance(exc, UpstreamRateLimited | UpstreamUnavailable | UpstreamBadResponse) else None


FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=2.0, deadline=5.0)


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    date = formatdate(time.time() + 10, usegmt=True)
    assert 8 <= (parse_retry_after({"retry-after": date}) or 0) <= 10
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0)
    waits = [policy.backoff(attempt) for attempt in range(1, 12) for _ in range(20)]
    assert max(waits) <= 4.0
    assert len({round(w, 3) for w in waits}) > 10


async def test_retryable_errors_are_retried_until_success() -> None:
    call = Flaky(UpstreamUnavailable("503", http_status=503), UpstreamUnavailable("502", http_status=502))
    assert (
        await call_with_retries(call, gate=ProviderGate("t", max_concurrency=2), policy=FAST, classify=classify) == "ok"
    )
    assert call.calls == 3


async def test_other_4xx_fail_fast() -> None:
    call = Flaky(UpstreamBadResponse("400", http_status=400))
    with pytest.raises(UpstreamBadResponse):
        await call_with_retries(call, gate=ProviderGate("t", max_concurrency=2), policy=FAST, classify=classify)
    assert call.calls == 1


async def test_attempts_are_bounded() -> None:
    call = Flaky(*[UpstreamUnavailable("503", http_status=503) for _ in range(10)])
    with pytest.raises(UpstreamUnavailable):
        await call_with_retries(call, gate=ProviderGate("t", max_concurrency=2), policy=FAST, classify=classify)
    assert call.calls == FAST.max_attempts


async def test_retry_after_is_honoured_and_pauses_the_whole_gate() -> None:
    gate = ProviderGate("t", max_concurrency=4)
    call = Flaky(UpstreamRateLimited("429", http_status=429, retry_after=0.4))
    started = time.monotonic()
    other_started: list[float] = []

    async def other() -> str:
        other_started.append(time.monotonic())
        return "ok"

    async def bystander() -> str:
        await asyncio.sleep(0.05)  # arrives while the gate is paused
        return await call_with_retries(other, gate=gate, policy=FAST, classify=classify)

    results = await asyncio.gather(call_with_retries(call, gate=gate, policy=FAST, classify=classify), bystander())
    assert results == ["ok", "ok"]
    assert time.monotonic() - started >= 0.4
    assert other_started[0] - started >= 0.35  # the bystander waited for the pause too
    assert gate.limit == 2  # the 429 dropped it to 1; two successes climbed back to half of 4


async def test_deadline_turns_a_hang_into_upstream_timeout() -> None:
    call = Flaky(delay=10)
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, deadline=0.3)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await call_with_retries(call, gate=ProviderGate("t", max_concurrency=1), policy=policy, classify=classify)
    assert time.monotonic() - started < 5.0  # the 0.3 s deadline, not the 10 s hang, ended it


async def test_gate_caps_concurrency_and_recovers_after_429s() -> None:
    gate = ProviderGate("t", max_concurrency=3)
    in_flight = peak = 0

    async def work() -> None:
        nonlocal in_flight, peak
        async with gate.slot():
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1

    await asyncio.gather(*[work() for _ in range(12)])
    assert peak == 3
    gate.on_rate_limited(None)
    assert gate.limit == 1
    for _ in range(10):
        gate.on_success()
    assert gate.limit == 3


async def test_rpm_cap_spaces_requests() -> None:
    gate = ProviderGate("t", max_concurrency=10, rpm=2)
    async with gate.slot():
        pass
    async with gate.slot():
        pass
    third = asyncio.create_task(gate.slot().__aenter__())
    await asyncio.sleep(0.05)
    assert not third.done()  # the third request of the minute waits
    third.cancel()
    with pytest.raises(asyncio.CancelledError):
        await third
