"""The one retry layer for every upstream call.

Client libraries are configured never to retry on their own (``max_retries=0`` for the OpenAI SDK,
arXiv's ``num_retries=0``), so retries never stack. ``call_with_retries`` retries what is worth
retrying (429, 408, 409, 5xx, connection errors, timeouts, truncated bodies), waits as the upstream
asked (``Retry-After`` / ``retry-after-ms``) or with capped exponential backoff and full jitter,
stops at a per-call deadline, and fails fast on other 4xx. Every retry logs
``event=upstream_retry`` with provider, status, attempt and wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

from agents.errors import UpstreamError, UpstreamTimeout
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


def parse_retry_after(headers: object) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    milliseconds = get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    gate: ProviderGate,
    policy: RetryPolicy,
    classify: Callable[[BaseException], UpstreamError | None],
) -> T:
    """Run ``call`` inside ``gate`` with the retry policy; raise a classified UpstreamError.

    ``classify`` maps a library exception to our error (``None`` means: not an upstream problem,
    re-raise as is). A 429 pauses the whole gate for the advised time.

    The deadline bounds the time spent in attempts and in the waits between them. Time queued
    behind the gate's own concurrency cap does not count (the workflow deadline bounds that), so
    a busy process never fails a call it has not yet sent.
    """
    spent = 0.0
    attempt = 0
    while True:
        attempt += 1
        try:
            async with gate.slot():
                attempt_started = time.monotonic()
                try:
                    async with asyncio.timeout(max(policy.deadline - spent, 0.001)):
                        result = await call()
                finally:
                    spent += time.monotonic() - attempt_started
            gate.on_success()
            return result
        except TimeoutError as exc:
            timeout = UpstreamTimeout(f"{gate.name} did not answer within {policy.deadline:.0f} s", provider=gate.name)
            if spent >= policy.deadline:
                raise timeout from exc
            error: UpstreamError | None = timeout
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = classify(exc)
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
