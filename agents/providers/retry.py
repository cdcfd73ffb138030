"""The one retry layer for every upstream call.

Client libraries are configured never to retry on their own (``max_retries=0`` for the OpenAI SDK,
arXiv's ``num_retries=0``), so retries never stack. ``call_with_retries`` retries what is worth
retrying (429, 408, 409, 5xx, connection errors, timeouts, truncated bodies), waits as the upstream
asked (``Retry-After`` / ``retry-after-ms``) or with capped exponential backoff and full jitter,
stops at a per-call deadline, and fails fast on other 4xx. Which library exception is which of
those is decided in one place, the table in ``error_map``. Every retry logs
``event=upstream_retry`` with provider, status, attempt and wait.

It is also where every upstream call is observed: one timeline entry (and, with tracing, one
span with the retries as events) per call, and per attempt the Prometheus counters
``agentflow_upstream_requests_total{provider,outcome}``, the attempt latency and
``agentflow_upstream_retries_total``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from agents import telemetry
from agents.errors import UpstreamError, UpstreamTimeout
from agents.metrics import metrics
from agents.providers.error_map import classify_upstream_error, parse_retry_after
from agents.providers.gate import ProviderGate

__all__ = ["RetryPolicy", "call_with_retries", "parse_retry_after"]

logger = logging.getLogger("agentflow.upstream")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one upstream call.

    Attributes:
        max_attempts: total attempts, the first included.
        base_delay: first backoff step in seconds (doubled each retry, then jittered).
        max_delay: cap on any single wait, Retry-After included.
        deadline: total seconds one call may take across all attempts and waits.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    deadline: float = 180.0

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for retry number ``attempt`` (1-based)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * (2 ** (attempt - 1))))


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    gate: ProviderGate,
    policy: RetryPolicy,
    classify: Callable[[BaseException], UpstreamError | None] | None = None,
    attributes: Mapping[str, Any] | None = None,
    describe: Callable[[T], Mapping[str, Any]] | None = None,
) -> T:
    """Run ``call`` inside ``gate`` with the retry policy; raise a classified UpstreamError.

    ``classify`` maps a library exception to our error (``None`` means: not an upstream problem,
    re-raise as is); by default it is the one table in ``error_map``, for the provider the gate
    is named after. A 429 pauses the whole gate for the advised time.

    The deadline bounds the time spent in attempts and in the waits between them. Time queued
    behind the gate's own concurrency cap does not count (the workflow deadline bounds that), so
    a busy process never fails a call it has not yet sent.

    ``attributes`` describe the call (e.g. ``gen_ai.request.model``) and ``describe`` its answer
    (e.g. token counts), for the call's timeline entry and span.
    """
    if classify is None:
        classify = functools.partial(classify_upstream_error, provider=gate.name)
    with telemetry.upstream_call(gate.name, attributes) as observed:
        result = await _attempts(call, gate=gate, policy=policy, classify=classify, observed=observed)
        if describe is not None:
            observed.record(describe(result))
        return result


def _attempt_finished(provider: str, outcome: str, started: float) -> None:
    instruments = metrics()
    instruments.child(instruments.upstream_requests, provider, outcome).inc()
    instruments.child(instruments.upstream_duration, provider).observe(time.monotonic() - started)


async def _attempts(
    call: Callable[[], Awaitable[T]],
    *,
    gate: ProviderGate,
    policy: RetryPolicy,
    classify: Callable[[BaseException], UpstreamError | None],
    observed: telemetry.Call,
) -> T:
    spent = 0.0
    attempt = 0
    while True:
        attempt += 1
        attempt_started: float | None = None
        try:
            async with gate.slot():
                attempt_started = time.monotonic()
                try:
                    async with asyncio.timeout(max(policy.deadline - spent, 0.001)):
                        result = await call()
                finally:
                    spent += time.monotonic() - attempt_started
            gate.on_success()
            _attempt_finished(gate.name, "ok", attempt_started)
            return result
        except TimeoutError as exc:
            timeout = UpstreamTimeout(f"{gate.name} did not answer within {policy.deadline:.0f} s", provider=gate.name)
            if attempt_started is not None:
                _attempt_finished(gate.name, timeout.code, attempt_started)
            if spent >= policy.deadline:
                raise timeout from exc
            error: UpstreamError | None = timeout
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = classify(exc)
            if attempt_started is not None:
                _attempt_finished(gate.name, error.code if error is not None else "error", attempt_started)
            if error is None:
                raise
            if not error.retryable or attempt >= policy.max_attempts:
                raise error from exc
        assert error is not None
        if error.code == "upstream_rate_limited":
            gate.on_rate_limited(None if error.retry_after is None else min(error.retry_after, policy.max_delay))
        wait = min(error.retry_after if error.retry_after is not None else policy.backoff(attempt), policy.max_delay)
        if attempt >= policy.max_attempts or spent + wait >= policy.deadline:
            raise error
        instruments = metrics()
        instruments.child(instruments.upstream_retries, gate.name, error.code).inc()
        observed.retry(reason=error.code, status=error.http_status, attempt=attempt, wait_s=round(wait, 3))
        logger.warning(
            "retrying %s after %s",
            gate.name,
            error.code,
            extra={
                "event": "upstream_retry",
                "provider": gate.name,
                "status": error.http_status,
                "error_code": error.code,
                "attempt": attempt,
                "wait_s": round(wait, 3),
            },
        )
        await asyncio.sleep(wait)
        spent += wait
