"""ProviderGate: a provider's shared concurrency cap, optional requests-per-minute cap, and the
back-off every caller honours after the provider answered 429.

One gate per provider per process: every workflow's calls to that provider pass through it, so
a 429 slows everyone down instead of letting each caller discover it on its own. Two
mechanisms work together:

- a shared pause: ``Retry-After`` from one 429 holds back every caller until it has passed;
- an adaptive concurrency limit, as TCP does it: a 429 drops the calls allowed in flight to
  one and remembers half the old limit as a threshold; each success then adds one call up to
  the threshold (a quick climb) and a fraction of one beyond it (a careful one). After a pause
  the gate probes the provider with one call instead of releasing a burst that earns another
  round of 429s.

What is per process and what is global: the concurrency cap, the pause and the adaptive limit
are per process (each process backs off on the 429s it sees). The RPM cap is per process too,
unless the gate is given ``redis_url``: then it also holds across every process sharing that
Redis (``shared_limits.SharedRateLimit``), with the per-process cap still in force, and
standing alone while Redis is unreachable.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from agents.providers._redis_keys import KEY_PREFIX

if TYPE_CHECKING:
    from agents.providers.shared_limits import SharedRateLimit

__all__ = ["ProviderGate"]


class ProviderGate:
    """The calls to one provider from one process: concurrency, RPM and 429 back-off.

    Args:
        name: the provider (``openai``, ``tavily``, ``arxiv``), also the Redis key namespace.
        max_concurrency: calls in flight at once in this process.
        rpm: optional cap on calls started per minute.
        redis_url: when given with ``rpm``, the cap also holds across processes sharing it.
        redis_key_prefix: first segment of every Redis key.
    """

    #: Seconds within which further 429s count as the same burst.
    DECREASE_SPACING = 1.0

    def __init__(
        self,
        name: str,
        *,
        max_concurrency: int,
        rpm: int | None = None,
        redis_url: str | None = None,
        redis_key_prefix: str = KEY_PREFIX,
    ) -> None:
        self.name = name
        self.max_concurrency = max_concurrency
        self.rpm = rpm
        self.shared_rpm: SharedRateLimit | None = None
        if rpm is not None and redis_url:
            from agents.providers.shared_limits import SharedRateLimit  # redis-py only when used

            self.shared_rpm = SharedRateLimit(name, rpm, redis_url=redis_url, window=60, key_prefix=redis_key_prefix)
        self._limit = float(max_concurrency)
        self._threshold = float(max_concurrency)
        self._in_flight = 0
        self._changed = asyncio.Condition()
        self._starts: deque[float] = deque()
        self._rpm_lock = asyncio.Lock()
        self._paused_until = 0.0
        self._last_decrease = -1e9

    @property
    def limit(self) -> int:
        """How many calls may be in flight right now (between 1 and ``max_concurrency``)."""
        return max(1, int(self._limit))

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    def pause(self, seconds: float) -> None:
        """Hold back every caller for ``seconds`` (the provider said so)."""
        self._paused_until = max(self._paused_until, time.monotonic() + max(0.0, seconds))

    def on_rate_limited(self, retry_after: float | None) -> None:
        """A call was answered 429: halve the concurrency and pause everyone as advised.

        The calls of one burst all come back 429 together; like TCP's once-per-round-trip
        rule, only the first 429 of a burst halves the threshold.
        """
        now = time.monotonic()
        if now - self._last_decrease >= self.DECREASE_SPACING:
            self._threshold = max(1.0, self._limit / 2)
            self._last_decrease = now
        self._limit = 1.0
        if retry_after is not None:
            self.pause(retry_after)

    def on_success(self) -> None:
        """A call succeeded: grow the concurrency back (fast below the threshold, slowly above)."""
        if self._limit < self.max_concurrency:
            step = 1.0 if self._limit < self._threshold else 1 / self._limit
            self._limit = min(float(self.max_concurrency), self._limit + step)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for the shared pause, a concurrency slot and an RPM token, then hold the slot."""
        await self._acquire()
        try:
            if self.rpm is not None:
                await self._take_rpm_token()
            yield
        finally:
            async with self._changed:
                self._in_flight -= 1
                # One slot freed: wake one waiter, not all of them (a queue of N calls would
                # otherwise cost N wake-ups per release, quadratic over the queue).
                self._changed.notify(1)

    async def _acquire(self) -> None:
        while True:
            if (wait := self.paused_for) > 0:
                await asyncio.sleep(wait)
                continue
            async with self._changed:
                if self._in_flight < self.limit:
                    self._in_flight += 1
                    # The limit may have grown (``on_success``) or a pause ended while others
                    # waited: pass the wake-up on while there is room, one waiter at a time.
                    if self._in_flight < self.limit:
                        self._changed.notify(1)
                    return
                try:
                    await self._changed.wait()
                except asyncio.CancelledError:
                    # A woken waiter that is cancelled must not swallow the wake-up it was given.
                    self._changed.notify(1)
                    raise

    async def _take_rpm_token(self) -> None:
        assert self.rpm is not None
        async with self._rpm_lock:
            while True:
                now = time.monotonic()
                while self._starts and now - self._starts[0] >= 60.0:
                    self._starts.popleft()
                if len(self._starts) < self.rpm:
                    break
                await asyncio.sleep(60.0 - (now - self._starts[0]) + 0.001)
            if self.shared_rpm is not None:
                await self.shared_rpm.acquire()  # False (Redis away): the local cap alone decides
            self._starts.append(time.monotonic())

    async def aclose(self) -> None:
        """Close the shared limit's Redis connections, if any."""
        if self.shared_rpm is not None:
            await self.shared_rpm.aclose()
