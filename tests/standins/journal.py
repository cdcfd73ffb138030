"""Thread-safe journal of every upstream request the stand-ins served, with timing and stats."""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections import Counter, deque
from typing import Any

__all__ = ["Journal", "max_overlap", "min_gap", "min_start_interval"]


class Journal:
    """Records one dict per request; safe to read from the test thread while serving.

    Keeps the newest ``max_entries`` entries (older ones drop out of ``entries()``), while
    ``stats()`` counts every request since the last ``clear()``.
    """

    def __init__(self, upstreams: tuple[str, ...], max_entries: int = 10_000) -> None:
        self._upstreams = upstreams
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=max_entries)
        self._seq = 0
        self._epoch = 0
        self._in_flight: Counter[str] = Counter()
        self._max_in_flight: Counter[str] = Counter()
        self._counts: Counter[str] = Counter()
        self._statuses: dict[str, Counter[str]] = {name: Counter() for name in upstreams}
        self._faults: dict[str, Counter[str]] = {name: Counter() for name in upstreams}

    def begin(self, upstream: str, method: str, path: str, query_string: str) -> dict[str, Any]:
        """Open an entry for a request that just arrived; returns the live entry dict."""
        with self._lock:
            self._seq += 1
            entry = _Tagged(
                {
                    "seq": self._seq,
                    "upstream": upstream,
                    "method": method,
                    "path": path,
                    "query_string": query_string,
                    "started_at": time.time(),
                    "finished_at": None,
                    "duration": None,
                    "status": None,
                    "fault": None,
                },
                self._epoch,
            )
            self._entries.append(entry)
            self._counts[upstream] += 1
            self._in_flight[upstream] += 1
            self._max_in_flight[upstream] = max(self._max_in_flight[upstream], self._in_flight[upstream])
            return entry

    def finish(self, entry: dict[str, Any], status: int | None) -> None:
        """Close an entry once its response is complete (or the request died); idempotent."""
        now = time.time()
        with self._lock:
            if entry["finished_at"] is not None:
                return
            entry["finished_at"] = now
            entry["duration"] = round(now - entry["started_at"], 6)
            if entry["status"] is None:
                entry["status"] = status
            upstream = entry["upstream"]
            self._in_flight[upstream] -= 1
            if _epoch_of(entry) == self._epoch:
                self._statuses[upstream][str(entry["status"])] += 1

    def annotate(self, entry: dict[str, Any] | None, **values: Any) -> None:
        """Add details (model, schema_name, fault, ...) to an entry."""
        if entry is None:
            return
        with self._lock:
            fault = values.get("fault")
            if fault and not entry.get("fault") and _epoch_of(entry) == self._epoch:
                self._faults[entry["upstream"]][fault] += 1
            entry.update(values)

    def entries(self, upstream: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the entries, oldest first, optionally for one upstream."""
        with self._lock:
            return [copy.deepcopy(dict(e)) for e in self._entries if upstream in (None, e["upstream"])]

    def stats(self) -> dict[str, Any]:
        """Return counts per upstream, per status and per fault, plus in-flight maxima."""
        with self._lock:
            per = {
                name: {
                    "count": self._counts[name],
                    "by_status": dict(self._statuses[name]),
                    "faults": dict(self._faults[name]),
                    "in_flight": self._in_flight[name],
                    "max_in_flight": self._max_in_flight[name],
                }
                for name in self._upstreams
            }
            return {"total": sum(self._counts.values()), "upstreams": per}

    def clear(self) -> None:
        """Forget all entries and counts; in-flight maxima restart from the current in-flight."""
        with self._lock:
            self._epoch += 1
            self._entries.clear()
            self._counts.clear()
            for counter in (*self._statuses.values(), *self._faults.values()):
                counter.clear()
            self._max_in_flight = Counter(self._in_flight)


class _Tagged(dict[str, Any]):
    """A journal entry that remembers which ``clear()`` epoch it was opened in."""

    def __init__(self, data: dict[str, Any], epoch: int) -> None:
        super().__init__(data)
        self.epoch = epoch


def _epoch_of(entry: dict[str, Any]) -> int:
    return entry.epoch if isinstance(entry, _Tagged) else -1


def max_overlap(entries: list[dict[str, Any]]) -> int:
    """Largest number of the given entries that were in flight at the same moment."""
    events: list[tuple[float, int]] = []
    for e in entries:
        end = e["finished_at"] if e["finished_at"] is not None else float("inf")
        events += [(e["started_at"], 1), (end, -1)]
    current = best = 0
    for _, delta in sorted(events, key=lambda ev: (ev[0], ev[1])):
        current += delta
        best = max(best, current)
    return best


def min_gap(entries: list[dict[str, Any]]) -> float | None:
    """Smallest time between one request finishing and the next one arriving (None if < 2).

    Negative when two requests overlapped.
    """
    ordered = sorted(entries, key=lambda e: e["started_at"])
    gaps = [b["started_at"] - a["finished_at"] for a, b in itertools.pairwise(ordered) if a["finished_at"] is not None]
    return min(gaps) if gaps else None


def min_start_interval(entries: list[dict[str, Any]]) -> float | None:
    """Smallest time between two consecutive arrivals (None if fewer than two entries)."""
    starts = sorted(e["started_at"] for e in entries)
    intervals = [b - a for a, b in itertools.pairwise(starts)]
    return min(intervals) if intervals else None
