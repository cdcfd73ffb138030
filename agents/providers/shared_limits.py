"""Provider limits that hold across processes and machines, kept in a shared Redis.

Two limits must hold however many server and worker processes run:

- arXiv's etiquette (``SharedSpacing``): one request at a time, and ``min_interval`` seconds from
  the end of one request to the start of the next, anywhere. A redis-py lock
  (``redis.asyncio.lock.Lock``, SET NX PX) is the turn; it is held for the whole request and
  expires on its own, so a killed process gives the turn back after ``hold_for`` seconds. While a
  request is still running the holder renews it, so a slow answer never lets a second request
  start. Before handing the turn on, the holder sets a cooldown key that expires (PX) after
  ``min_interval``; the next holder waits out that key's remaining TTL. Both times are measured
  by Redis and by each process's monotonic clock, never compared across machines. The lock is
  polled (every ``POLL_INTERVAL``), so the turn goes to whichever process asks first after it
  is free, not strictly in arrival order; each process sends one waiter at a time.
- the optional requests-per-minute caps (``SharedRateLimit``): the ``limits`` library's moving
  window (``MovingWindowRateLimiter`` over ``limits.aio.storage.RedisStorage``, on redis-py):
  at most ``rpm`` starts in any 60 seconds across every process, exactly as the per-process
  cap counts them. Its entries are wall-clock timestamps, so the machines' clocks should be
  NTP-synchronised; a skew of a second shifts one process's window by a second.

The spacing is composed by hand from redis-py's lock and one expiring key because rate limiters
(``limits`` included) count request *starts*, while arXiv's rule runs from the *end* of the
previous request and forbids overlap outright.

Both are used in addition to the per-process limits, never instead of them: the per-process
concurrency caps and back-off (``ProviderGate``) stay per process on purpose.

If Redis cannot be reached, a call does not fail: it logs one warning
(``event=shared_limits_unavailable``) and goes ahead under the per-process limits only, asking
Redis again after ``RETRY_AFTER`` seconds (``event=shared_limits_restored`` once it answers).
That small breaker (``_Outage``) is hand-written because neither library has a fallback, and it
only decides when to try Redis again; it makes no admission decision of its own. The clients
retry nothing themselves and time out in ``REDIS_TIMEOUT`` seconds, so an outage costs a call
one quick failure, not a stall. Keys are namespaced ``<prefix>:<provider>:...``, prefix
``agentflow`` unless told otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import LockError, RedisError

from agents.providers._redis_keys import KEY_PREFIX

__all__ = ["KEY_PREFIX", "SharedRateLimit", "SharedSpacing", "SharedTurn", "redis_client"]

logger = logging.getLogger("agentflow.upstream")

#: Seconds any one Redis command may take (connect included) before we fall back.
REDIS_TIMEOUT = 2.0
#: Seconds an unreachable Redis is left alone before the next call tries it again.
RETRY_AFTER = 5.0
#: Seconds between two tries for a turn another process holds.
POLL_INTERVAL = 0.02

_REDIS_FAULTS = (RedisError, OSError)


def redis_client(url: str) -> Redis:
    """An asyncio Redis client that fails fast: short timeouts, no retries of its own."""
    return Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )


class _Outage:
    """Whether Redis is worth asking right now; one warning per outage, one notice when it is back."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._down_until: float | None = None

    @property
    def usable(self) -> bool:
        return self._down_until is None or time.monotonic() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        if self._down_until is None:
            logger.warning(
                "Redis unreachable for the shared %s: falling back to per-process limits",
                self.what,
                extra={"event": "shared_limits_unavailable", "limit": self.what, "error": repr(exc)},
            )
        self._down_until = time.monotonic() + RETRY_AFTER

    def ok(self) -> None:
        if self._down_until is not None:
            self._down_until = None
            logger.info(
                "Redis reachable again for the shared %s",
                self.what,
                extra={"event": "shared_limits_restored", "limit": self.what},
            )


class SharedRateLimit:
    """At most ``limit`` request starts in any ``window`` seconds, across every process sharing Redis.

    The gates use it as an RPM cap (``window=60``); the key carries the limit, so processes
    configured with different caps do not share a count.
    """

    def __init__(
        self, name: str, limit: int, *, redis_url: str, window: int = 60, key_prefix: str = KEY_PREFIX
    ) -> None:
        self.name = name
        self.limit = limit
        self.window = window
        self._redis = redis_client(redis_url)
        storage = RedisStorage(
            _limits_uri(redis_url),
            implementation="redispy",
            key_prefix=f"{key_prefix}:{name}:rate",
            # One pool for both, closed by aclose(); limits types its options for the URI case only.
            connection_pool=self._redis.connection_pool,  # type: ignore[arg-type]
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = RateLimitItemPerSecond(limit, window)
        self._outage = _Outage(f"{name} rate cap")

    async def acquire(self) -> bool:
        """Wait for a start within the shared window.

        Returns:
            True once this start is counted; False when Redis is unreachable, in which case the
            caller's per-process cap stands alone.
        """
        while True:
            if not self._outage.usable:
                return False
            try:
                if await self._limiter.hit(self._item, self.name):
                    self._outage.ok()
                    return True
                stats = await self._limiter.get_window_stats(self._item, self.name)
            except _REDIS_FAULTS as exc:
                self._outage.failed(exc)
                return False
            self._outage.ok()
            # reset_time is when the oldest start in the window leaves it (wall clock, as limits keeps it).
            await asyncio.sleep(min(max(stats.reset_time - time.time(), 0.0), self.window) + 0.005)

    async def aclose(self) -> None:
        """Close the Redis connection pool."""
        await self._redis.aclose()


class SharedSpacing:
    """One request at a time across every process sharing Redis, ``min_interval`` seconds apart.

    Attributes:
        hold_for: seconds a turn outlives a process that died holding it (the request's own
            timeout plus a margin); a live holder renews it every third of that.
    """

    def __init__(
        self, name: str, *, redis_url: str, min_interval: float, hold_for: float, key_prefix: str = KEY_PREFIX
    ) -> None:
        self.name = name
        self.min_interval = min_interval
        self.hold_for = hold_for
        self.lock_key = f"{key_prefix}:{name}:lock"
        self.cooldown_key = f"{key_prefix}:{name}:cooldown"
        self._redis = redis_client(redis_url)
        self._outage = _Outage(f"{name} request spacing")

    async def acquire(self) -> SharedTurn | None:
        """Wait for the turn and for the cooldown after the previous request anywhere.

        Returns:
            The turn, to be released once the request has ended; None when Redis is unreachable,
            in which case the caller's per-process spacing stands alone.
        """
        if not self._outage.usable:
            return None
        # The cooldown is waited out while holding the lock, so the lock must outlast it.
        lock = self._redis.lock(
            self.lock_key, timeout=self.min_interval + self.hold_for, sleep=POLL_INTERVAL, thread_local=False
        )
        token = uuid.uuid4().hex.encode()
        try:
            await lock.acquire(token=token)
            wait_ms = await self._redis.pttl(self.cooldown_key)  # -2: no key, -1: no expiry
            if wait_ms > 0:
                await asyncio.sleep(wait_ms / 1000)
        except _REDIS_FAULTS as exc:
            self._outage.failed(exc)
            await self._abandon(lock, token)
            return None
        except BaseException:
            # Cancelled, perhaps after Redis granted the lock but before we heard: give it back.
            await self._abandon(lock, token)
            raise
        self._outage.ok()
        return SharedTurn(self, lock)

    async def _abandon(self, lock: Lock, token: bytes) -> None:
        try:
            await lock.do_release(token)
        except (LockError, *_REDIS_FAULTS):
            pass  # not ours after all, or Redis is away: the lock expires on its own

    async def aclose(self) -> None:
        """Close the Redis connection pool."""
        await self._redis.aclose()


class SharedTurn:
    """A held turn: kept alive while the request runs, then handed on after a cooldown."""

    def __init__(self, spacing: SharedSpacing, lock: Lock) -> None:
        self._spacing = spacing
        self._lock = lock

    async def hold_while(self, work: asyncio.Future[Any]) -> None:
        """Renew the turn until ``work`` is done (``work`` itself is never cancelled from here)."""
        spacing = self._spacing
        while not work.done():
            await asyncio.wait({work}, timeout=spacing.hold_for / 3)
            if work.done():
                return
            try:
                await self._lock.extend(spacing.hold_for, replace_ttl=True)
            except LockError:
                logger.warning(
                    "the shared %s turn expired while the request was still running",
                    spacing.name,
                    extra={"event": "shared_turn_lost", "provider": spacing.name},
                )
                return
            except _REDIS_FAULTS as exc:
                spacing._outage.failed(exc)

    async def release(self) -> None:
        """Start the cooldown and give the turn back; never raises (the turn expires on its own)."""
        spacing = self._spacing
        try:
            if spacing.min_interval > 0:
                await spacing._redis.set(spacing.cooldown_key, b"1", px=max(1, round(spacing.min_interval * 1000)))
            await self._lock.release()
        except LockError:
            logger.warning(
                "the shared %s turn expired before the request ended",
                spacing.name,
                extra={"event": "shared_turn_lost", "provider": spacing.name},
            )
        except _REDIS_FAULTS as exc:
            spacing._outage.failed(exc)


def _limits_uri(redis_url: str) -> str:
    """The same server in the URI form ``limits`` expects (it connects through our pool anyway)."""
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url
