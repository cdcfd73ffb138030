"""The rate limiter's storage and slowapi ``Limiter``: imported by the first rate-limited request.

Its own module because importing ``limits`` and ``slowapi`` (with the storage back-ends ``limits``
registers at import) is ~15 ms of a server's start-up that nothing before the first request needs
(``backend.api.middleware.rate_limit``).
"""

from __future__ import annotations

import threading

from limits.storage import MemoryStorage
from slowapi import Limiter

__all__ = ["SweptMemoryStorage", "build_limiter"]


class SweptMemoryStorage(MemoryStorage):
    """limits' in-memory storage, with its expired keys swept once a second instead of every 10 ms.

    ``MemoryStorage`` starts a ``threading.Timer`` of 10 ms from every hit that finds the last
    one finished: under steady traffic that is a new OS thread about 100 times a second, each
    ``start()`` blocking the event loop until the thread runs, and a sweep of every key on it.
    Expired counters are already dropped when read (``get``), so the sweep only returns the
    memory of keys nobody asks for again; once a second does that as well.
    """

    STORAGE_SCHEME = ["agentflow+memory"]
    SWEEP_SECONDS = 1.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # overrides the base class's name-mangled hook
        if not self.timer.is_alive():
            self.timer = threading.Timer(self.SWEEP_SECONDS, self._MemoryStorage__expire_events)  # type: ignore[attr-defined]
            self.timer.daemon = True  # a pending sweep never holds up the process's exit
            self.timer.start()


# limits' ``Storage.__init_subclass__`` wraps the storage methods (get, incr, ...) in its error
# translation for every subclass, so ours had MemoryStorage's wrapped methods wrapped once more:
# two more calls per counter read, ~16 of a submit's Python calls. MemoryStorage's own, wrapped once,
# translate the same errors.
for _name, _method in list(vars(SweptMemoryStorage).items()):
    if getattr(_method, "__wrapped__", None) is vars(MemoryStorage).get(_name, _method):
        setattr(SweptMemoryStorage, _name, vars(MemoryStorage)[_name])


def build_limiter(storage_uri: str) -> Limiter:
    """A slowapi limiter over ``storage_uri`` (``memory://`` or ``redis://...``).

    ``memory://`` is served by ``SweptMemoryStorage`` (same counters, no thread per 10 ms).
    """
    if storage_uri.startswith("memory://"):
        storage_uri = "agentflow+" + storage_uri
    return Limiter(
        key_func=lambda: "",  # keys are computed per ASGI scope by this module
        storage_uri=storage_uri,
        # O(1) per request in memory and in Redis; the moving window keeps one entry per request
        # and inserts at the front of a list, which costs O(limit) per hit at large limits.
        strategy="sliding-window-counter",
        headers_enabled=True,
        key_prefix="agentflow",
    )
