"""ProviderGate: a provider's shared concurrency cap, optional requests-per-minute cap, and a
shared pause that every caller honours after the provider answered 429 + Retry-After.

One gate per provider per process: every workflow's calls to that provider pass through it, so
a 429 slows everyone down instead of letting each caller discover it on its own.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["ProviderGate"]


class ProviderGate:
    def __init__(self, name: str, *, max_concurrency: int, rpm: int | None = None) -> None:
        self.name = name
        self.max_concurrency = max_concurrency
        self.rpm = rpm
        self._slots = asyncio.Semaphore(max_concurrency)
        self._starts: deque[float] = deque()
        self._rpm_lock = asyncio.Lock()
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """Hold back every caller for ``seconds`` (the provider said so)."""
        self._paused_until = max(self._paused_until, time.monotonic() + max(0.0, seconds))

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for the shared pause, a concurrency slot and an RPM token, then hold the slot."""
        async with self._slots:
            while (wait := self.paused_for) > 0:
                await asyncio.sleep(wait)
            if self.rpm is not None:
                await self._take_rpm_token()
            yield

    async def _take_rpm_token(self) -> None:
        assert self.rpm is not None
        async with self._rpm_lock:
            while True:
                now = time.monotonic()
                while self._starts and now - self._starts[0] >= 60.0:
                    self._starts.popleft()
                if len(self._starts) < self.rpm:
                    self._starts.append(now)
                    return
                await asyncio.sleep(60.0 - (now - self._starts[0]) + 0.001)
